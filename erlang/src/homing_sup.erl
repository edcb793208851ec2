%% @doc The homing supervisor: the default connection `homing_default' (application
%% env url, prefix, max_payload) and one worker per {Module, Service, Opts} of the
%% env `consumers'. A worker that dies (Redis refused it for ever, a bug) is
%% restarted; its held leases come back to the queue by themselves.
-module(homing_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

start_link() -> supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Conn = maps:from_list([{K, V} || K <- [url, prefix, max_payload, timeout],
                                     {ok, V} <- [application:get_env(homing, K)]]),
    Default = #{id => homing_default,
                start => {gen_server, start_link, [{local, homing_default}, homing_conn, conn(Conn), []]},
                restart => permanent, type => worker, modules => [homing_conn]},
    Consumers = [gen_queue_consumer:child_spec(M, S, maps:merge(Conn, maps:from_list(opts(O))))
                 || {M, S, O} <- application:get_env(homing, consumers, [])],
    {ok, {#{strategy => one_for_one, intensity => 10, period => 60}, [Default | Consumers]}}.

opts(O) when is_map(O) -> maps:to_list(O);
opts(O) -> O.

conn(#{url := Url} = O) -> maps:merge(homing_conn:parse_url(Url), maps:remove(url, O));
conn(O) -> O.
