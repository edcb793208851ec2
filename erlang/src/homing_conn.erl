%% @doc One Redis connection (Debian's eredis) and the script calls over it.
%%
%% A gen_server owns the eredis process and an ETS table that callers read
%% without a message round trip: the eredis pid, and when each service was
%% last seen in the registry. Commands go straight to eredis from the calling
%% process. If Redis cannot be reached at start or later, the connection is
%% tried again on the next call (eredis itself reconnects an established
%% connection), so a worker survives a Redis restart; a call is never resent
%% after a lost reply (docs/protocol.md section 1, rule 4): the error is
%% returned as {error, {connection, Detail}}.
-module(homing_conn).
-behaviour(gen_server).
-export([start_link/1, start/1, stop/1, client/1, q/2, q/3, script/4, registered/2,
         seen/2, parse_url/1, translate/2, wire/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-export_type([client/0]).
-type client() :: #{conn := pid(), tab := ets:tid(), prefix := binary(),
                    max_payload := pos_integer(), timeout := timeout(),
                    host := string(), port := inet:port_number(),
                    wait => {pos_integer(), pos_integer()}}.

-define(TIMEOUT, 10000).

%% @doc Options: url ("redis://[:password@]host:port/db"), or host, port, database,
%% password; prefix (default "homing"), max_payload (bytes, default 1 MiB),
%% timeout (ms per command, default 10 s), wait_replicas and wait_timeout_ms (the WAIT
%% option of docs/failover.md: after each write a producer or an acknowledgement makes,
%% WAIT for that many replicas, within the timeout, 1000 ms by default).
-spec start_link(map() | list()) -> {ok, pid()} | {error, term()}.
start_link(Opts) -> started(fun(O) -> gen_server:start_link(?MODULE, O, []) end, Opts).

%% @doc As start_link/1, not linked (for a shell or a test).
-spec start(map() | list()) -> {ok, pid()} | {error, term()}.
start(Opts) -> started(fun(O) -> gen_server:start(?MODULE, O, []) end, Opts).

started(Start, Opts0) ->
    Opts = options(Opts0),
    Timeout = maps:get(timeout, Opts, ?TIMEOUT),
    Bad = [io_lib:format("~s must be a whole number in [~B, ~B], got ~0tP", [K, Lo, Hi, V, 5])
           || {K, Lo, Hi, D} <- [{wait_replicas, 0, 1000, 0}, {timeout, 1, 86400000, ?TIMEOUT},
                                 {wait_timeout_ms, 1, Timeout - 1, 1000}],
              V <- [maps:get(K, Opts, D)], not (is_integer(V) andalso V >= Lo andalso V =< Hi)],
    case Bad of
        %% WAIT's timeout stays below the command's, or every WAIT that times out
        %% would look like a lost connection.
        [] -> Start(Opts);
        [Why | _] -> {error, {invalid_argument, iolist_to_binary(Why)}}
    end.

-spec stop(pid() | client()) -> ok.
stop(#{conn := Pid}) -> stop(Pid);
stop(Pid) -> gen_server:stop(Pid).

%% @doc The client handle that queue_client's functions take.
-spec client(pid() | atom()) -> client().
client(Conn) -> gen_server:call(Conn, client).

options(Opts) when is_list(Opts) -> options(maps:from_list(Opts));
options(#{url := Url} = Opts) -> maps:merge(parse_url(Url), maps:remove(url, Opts));
options(Opts) -> Opts.

%% @doc The parts of a redis:// URL.
-spec parse_url(unicode:chardata()) -> map().
parse_url(Url0) ->
    case unicode:characters_to_list(Url0) of
        "redis+sentinel://" ++ _ = Url -> homing_sentinel:parse_url(Url);
        Url -> parse_plain_url(Url)
    end.

parse_plain_url(Url) ->
    #{host := Host} = U = uri_string:parse(Url),
    Port = maps:get(port, U, 6379),
    Db = case string:trim(maps:get(path, U, ""), leading, "/") of
             "" -> 0;
             D -> list_to_integer(D)
         end,
    Pass = case string:split(maps:get(userinfo, U, ""), ":") of
               [_, P] -> P;
               _ -> ""
           end,
    #{host => Host, port => Port, database => Db, password => Pass}.

%% -- commands ------------------------------------------------------------------

%% @doc One Redis command; errors translated to homing's codes.
-spec q(client(), [iodata() | integer()]) -> {ok, term()} | {error, {atom(), binary()}}.
q(Client, Cmd) -> q(Client, Cmd, undefined).

%% Key names the key of a plain command, for a WRONGTYPE message.
q(Client, Cmd, Key) -> q(Client, Cmd, Key, 0).

%% Through Sentinel, READONLY (the node was the primary, or a sentinel not yet told of
%% a failover named it) wrote nothing: ask the sentinels again and resend, up to 5
%% times over 1.5 s.
q(#{conn := Conn} = Client, Cmd, Key, Tries) ->
    case send(Client, fun(Pid, T) -> eredis:q(Pid, Cmd, T) end) of
        {ok, {ok, V}} -> {ok, V};
        {ok, {error, Reply}} ->
            case translate(Reply, Key) of
                {read_only, _} when Tries < 5, is_map_key(sentinel, Client) ->
                    gen_server:cast(Conn, read_only),
                    timer:sleep(50 bsl Tries),
                    q(Client, Cmd, Key, Tries + 1);
                E -> {error, E}
            end;
        {error, _} = E -> E
    end.

%% Commands sent back to back on the connection (eredis writes them at once), each
%% reply {ok, V} or {error, Reply}, untranslated.
qp(Client, Cmds) -> send(Client, fun(Pid, T) -> eredis:qp(Pid, Cmds, T) end).

send(#{tab := Tab, conn := Conn, timeout := Timeout}, F) ->
    case redis(Tab, Conn) of
        {ok, Pid} ->
            try {ok, F(Pid, Timeout)}
            catch
                exit:{timeout, _} ->
                    {error, {connection, <<"no reply from Redis within the timeout">>}};
                exit:{noproc, _} ->
                    {error, {connection, <<"the Redis connection ended">>}}
            end;
        {error, _} = E -> E
    end.

redis(Tab, Conn) ->
    case ets:lookup(Tab, redis) of
        [{redis, Pid}] -> {ok, Pid};
        [] ->
            try gen_server:call(Conn, connect, 30000)
            catch exit:_ -> {error, {connection, <<"the homing connection is not running">>}}
            end
    end.

%% @doc Run manifest script Name for service keys Keys with Args: EVALSHA, and on
%% NOSCRIPT (an empty script cache after a restart or failover) EVAL once.
-spec script(client(), binary(), [binary()], [iodata() | integer()]) ->
    {ok, term()} | {error, {atom(), binary()}}.
script(Client, Name, Keys, Args) ->
    S = homing_manifest:script(Name),
    N = integer_to_binary(length(Keys)),
    Wire = [wire(A) || A <- Args],
    Sha = [<<"EVALSHA">>, maps:get(<<"sha1">>, S), N | Keys ++ Wire],
    Eval = [<<"EVAL">>, maps:get(<<"source">>, S), N | Keys ++ Wire],
    case {maps:get(wait, Client, undefined), maps:get(<<"wait">>, S, false)} of
        {{Replicas, Ms}, true} -> waited(Client, S, Keys, Sha, Eval, Replicas, Ms);
        _ ->
            case q(Client, Sha) of
                {error, {noscript, _}} -> q(Client, Eval);
                Other -> Other
            end
    end.

%% The WAIT option (docs/failover.md): the script and `WAIT replicas ms' go out
%% together on the one connection, so WAIT counts the replicas that have this
%% write. A repeat answered without writing (the script's `repeats' counter) is
%% vouched for by touching that counter (HINCRBY by 0) and waiting again.
%% Fewer replicas than asked: {error, {not_replicated, {Reply, Acked}}}; the
%% write did happen on the primary.
waited(Client, S, Keys, Sha, Eval, Replicas, Ms) ->
    Wait = [<<"WAIT">>, integer_to_binary(Replicas), integer_to_binary(Ms)],
    case qp(Client, [Sha, Wait]) of
        {ok, [{error, <<"NOSCRIPT", _/binary>>}, _]} -> waited_reply(Client, S, Keys, qp(Client, [Eval, Wait]), Wait, Replicas);
        R -> waited_reply(Client, S, Keys, R, Wait, Replicas)
    end.

waited_reply(_, _, _, {error, _} = E, _, _) -> E;
waited_reply(_, _, _, {ok, [{error, Reply}, _]}, _, _) -> {error, translate(Reply, undefined)};
waited_reply(_, _, _, {ok, [{ok, _}, {error, Reply}]}, _, _) ->
    {error, translate(Reply, undefined)};
waited_reply(Client, S, Keys, {ok, [{ok, Reply}, {ok, Acked0}]}, Wait, Replicas) ->
    Acked = case repeated(maps:get(<<"repeats">>, S, null), Reply) of
                false -> binary_to_integer(Acked0);
                Field -> touch(Client, counters(S, Keys), Field, Wait)
            end,
    case Acked >= Replicas of
        true -> {ok, Reply};
        false -> {error, {not_replicated, {Reply, Acked}}}
    end.

%% A repeat: a flag 0 at an odd position of the reply (id, flag, ...).
repeated(null, _) -> false;
repeated(Field, Reply) when is_list(Reply) ->
    Flags = [F || {I, F} <- lists:zip(lists:seq(0, length(Reply) - 1), Reply), I rem 2 =:= 1],
    lists:member(<<"0">>, Flags) andalso Field;
repeated(_, _) -> false.

counters(S, Keys) ->
    {_, Key} = lists:keyfind(<<"counters">>, 1, lists:zip(maps:get(<<"keys">>, S), Keys)),
    Key.

touch(Client, Key, Field, Wait) ->
    case qp(Client, [[<<"HINCRBY">>, Key, Field, <<"0">>], Wait]) of
        {ok, [{ok, _}, {ok, N}]} -> binary_to_integer(N);
        _ -> 0   % the script's answer stands; only its replication is unknown
    end.

%% @doc An argument as the bulk string Redis gets: numbers in decimal.
-spec wire(integer() | iodata()) -> binary().
wire(I) when is_integer(I) -> integer_to_binary(I);
wire(B) when is_binary(B) -> B;
wire(L) -> unicode:characters_to_binary(L).

%% @doc Whether the registry was seen holding Service within the last 10 s (on this client).
-spec registered(client(), binary()) -> boolean().
registered(#{tab := Tab}, Service) ->
    case ets:lookup(Tab, {seen, Service}) of
        [{_, At}] -> erlang:monotonic_time(millisecond) - At < 10000;
        [] -> false
    end.

-spec seen(client(), binary()) -> true.
seen(#{tab := Tab}, Service) ->
    ets:insert(Tab, {{seen, Service}, erlang:monotonic_time(millisecond)}).

%% @doc A Redis error reply in homing's terms (python/homing/connection.py translate()).
-spec translate(term(), binary() | undefined) -> {atom(), binary()}.
translate(no_connection, _) -> {connection, <<"Redis could not be reached">>};
translate(tcp_closed, _) -> {connection, <<"the connection to Redis was lost">>};
translate(Reply, Key) when is_binary(Reply) ->
    case re:run(Reply, <<"^HOMING (\\w+) (.*?)(?: script: \\w+, on @user_script:\\d+\\.)?$">>,
                [dotall, {capture, all_but_first, binary}]) of
        {match, [Code, Msg]} ->
            case homing_errors:atom(Code) of
                undefined -> {script, Reply};
                Atom -> {Atom, Msg}
            end;
        nomatch -> other(Reply, Key)
    end;
translate(Other, _) ->
    {connection, iolist_to_binary(io_lib:format("Redis could not be reached: ~0tP", [Other, 8]))}.

other(<<"NOSCRIPT", _/binary>> = R, _) -> {noscript, R};
other(<<"READONLY", _/binary>> = R, _) -> {read_only, R};
other(<<"NOREPLICAS", _/binary>> = R, _) -> {connection, R};
other(<<"WRONGTYPE", _/binary>> = R, Key) ->
    {wrong_type, iolist_to_binary([<<"key ">>, key_name(Key), <<" holds a value of the wrong "
                                   "Redis type; nothing was written: ">>, R])};
other(R, _) ->
    Checks = [{no_permission, [<<"NOPERM">>, <<"NOAUTH">>, <<"WRONGPASS">>,
                               <<"can't run this command">>, <<"has no permissions">>]},
              {redis_full, [<<"command not allowed when used memory">>]}],
    case [C || {C, Ts} <- Checks, lists:any(fun(T) -> binary:match(R, T) =/= nomatch end, Ts)] of
        [Code | _] -> {Code, R};
        [] -> {script, R}
    end.

key_name(undefined) -> <<"(a homing key)">>;
key_name(K) -> K.

%% -- gen_server ------------------------------------------------------------------

init(Opts) ->
    process_flag(trap_exit, true),
    Tab = ets:new(?MODULE, [public, set, {read_concurrency, true}]),
    State = #{opts => Opts, tab => Tab, redis => undefined, subs => []},
    {ok, watch(element(2, connect(State)))}.

%% Through Sentinel: subscribe to the failover notices, and ask every second.
watch(#{opts := #{sentinels := Sentinels}} = S) ->
    erlang:send_after(1000, self(), check_primary),
    S#{subs := homing_sentinel:subscribe(Sentinels)};
watch(S) -> S.

%% Point the connection at another node (the primary moved): the old connection is
%% closed, the next call connects to the new one.
point_at({H, P}, #{opts := O, redis := Pid, tab := Tab} = S) ->
    case {maps:get(host, O, undefined), maps:get(port, O, undefined)} of
        {H, P} -> S;
        _ ->
            logger:notice("homing: the Redis primary is now ~s:~B", [H, P]),
            ets:delete(Tab, redis),
            is_pid(Pid) andalso (catch eredis:stop(Pid)),
            element(2, connect(S#{opts := O#{host => H, port => P}, redis := undefined}))
    end.

%% While a promotion is under way the sentinels still name the old primary (until
%% +switch-master), which after a SENTINEL FAILOVER accepts writes for seconds more,
%% all of them lost when it becomes a replica: the promoted node is kept ("pinned")
%% until the sentinels name it, or 10 s.
resolved(#{opts := #{sentinels := Sentinels, master := Master}} = S) ->
    Pinned = maps:get(pinned, S, undefined),
    case homing_sentinel:resolve(Sentinels, Master) of
        {ok, HP} when Pinned =:= undefined -> point_at(HP, S);
        {ok, HP} ->
            {To, Until} = Pinned,
            case HP =:= To orelse erlang:monotonic_time(millisecond) > Until of
                true -> point_at(HP, maps:remove(pinned, S));
                false -> S
            end;
        {error, _} -> S
    end.

connect(#{redis := Pid} = S) when is_pid(Pid) -> {{ok, Pid}, S};
connect(#{opts := #{sentinels := Sentinels, master := Master} = O} = S)
  when not is_map_key(host, O) ->
    case homing_sentinel:resolve(Sentinels, Master) of
        {ok, {H, P}} -> connect(S#{opts := O#{host => H, port => P}});
        {error, _} = E -> {E, S}
    end;
connect(#{opts := O, tab := Tab} = S) ->
    Host = to_list(maps:get(host, O, "127.0.0.1")),
    Args = [Host, maps:get(port, O, 6379), maps:get(database, O, 0),
            to_list(maps:get(password, O, "")), 100, 5000],
    case catch apply(eredis, start_link, Args) of
        {ok, Pid} ->
            ets:insert(Tab, {redis, Pid}),
            {{ok, Pid}, S#{redis := Pid}};
        Err ->
            %% eredis's failed init also sends us its exit: drop it.
            receive {'EXIT', _, _} -> ok after 50 -> ok end,
            {{error, {connection, iolist_to_binary(io_lib:format(
                "Redis at ~s:~p could not be reached: ~0tP", [Host, maps:get(port, O, 6379),
                                                             Err, 8]))}}, S}
    end.

to_list(B) when is_binary(B) -> binary_to_list(B);
to_list(L) -> L.

handle_call(client, _From, #{opts := O, tab := Tab} = S) ->
    C = #{conn => self(), tab => Tab,
          prefix => iolist_to_binary(maps:get(prefix, O, <<"homing">>)),
          max_payload => maps:get(max_payload, O,
                                  homing_manifest:layout(<<"default_max_payload_bytes">>)),
          timeout => maps:get(timeout, O, ?TIMEOUT),
          host => to_list(maps:get(host, O, "127.0.0.1")), port => maps:get(port, O, 6379)},
    C0 = case O of
             #{sentinels := _} -> C#{sentinel => true};
             _ -> C
         end,
    C1 = case maps:get(wait_replicas, O, 0) of
             0 -> C0;
             N -> C0#{wait => {N, maps:get(wait_timeout_ms, O, 1000)}}
         end,
    {reply, C1, S};
handle_call(connect, _From, S) ->
    {Reply, S1} = connect(S),
    {reply, Reply, S1}.

handle_cast(read_only, #{opts := #{sentinels := _}} = S) -> {noreply, resolved(S)};
handle_cast(_, S) -> {noreply, S}.

handle_info(check_primary, S) ->
    erlang:send_after(1000, self(), check_primary),
    {noreply, resolved(S)};
handle_info({subscribed, _, Sub}, S) -> eredis_sub:ack_message(Sub), {noreply, S};
handle_info({message, Channel, Msg, Sub}, #{opts := #{master := Master}} = S) ->
    eredis_sub:ack_message(Sub),
    case homing_sentinel:notice(Channel, Msg, Master) of
        {ok, HP} when Channel =:= <<"+switch-master">> ->
            {noreply, point_at(HP, maps:remove(pinned, S))};
        {ok, HP} ->
            Until = erlang:monotonic_time(millisecond) + 10000,
            {noreply, point_at(HP, S#{pinned => {HP, Until}})};
        ignore -> {noreply, S}
    end;
handle_info({'EXIT', Pid, _}, #{redis := Pid, tab := Tab} = S) ->
    ets:delete(Tab, redis),
    {noreply, S#{redis := undefined}};
handle_info(_, S) -> {noreply, S}.

terminate(_, #{redis := Pid, subs := Subs}) ->
    [catch eredis_sub:stop(Sub) || Sub <- Subs],
    is_pid(Pid) andalso (catch eredis:stop(Pid)),
    ok.
