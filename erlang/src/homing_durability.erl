%% @doc The Redis settings that bound homing's promises (python/homing/durability.py).
%%
%% homing is exactly as durable as its Redis (docs/guarantees.md): under an
%% eviction policy Redis silently deletes keys when memory runs out, queued
%% events included, and without persistence a restart loses everything. So a
%% client (queue_client:new/1) and a worker read maxmemory-policy, appendonly,
%% appendfsync and save when they start and warn once per node and server;
%% the option require_durable turns the warning into a refusal
%% ({error, {not_durable, Why}}). A server that refuses CONFIG (managed
%% services) is read through INFO; what neither shows is unknown, never guessed.
-module(homing_durability).
-export([read/1, assess/1, check/2]).

-define(SETTINGS, [<<"maxmemory-policy">>, <<"appendonly">>, <<"appendfsync">>, <<"save">>]).

-type finding() :: #{setting := binary(), value := binary() | unknown, consequence := binary(),
                     fatal := boolean()}.

%% @doc The server's settings: name => value, or unknown where neither CONFIG nor INFO told.
-spec read(homing_conn:client()) -> {ok, map()} | {error, {atom(), binary()}}.
read(C) ->
    case homing_conn:q(C, [<<"CONFIG">>, <<"GET">> | ?SETTINGS]) of
        {ok, Flat} ->
            Got = maps:from_list(pairs(Flat)),
            {ok, maps:from_list([{K, maps:get(K, Got, unknown)} || K <- ?SETTINGS])};
        {error, {connection, _}} = E -> E;
        {error, _} -> from_info(C)
    end.

pairs([K, V | R]) -> [{K, V} | pairs(R)];
pairs(_) -> [].

from_info(C) ->
    Info = fun(Section) ->
                   case homing_conn:q(C, [<<"INFO">>, Section]) of
                       {ok, Text} ->
                           maps:from_list([list_to_tuple(binary:split(L, <<":">>))
                                           || L <- binary:split(Text, <<"\r\n">>, [global]),
                                              binary:match(L, <<":">>) =/= nomatch]);
                       _ -> #{}
                   end
           end,
    Mem = Info(<<"memory">>),
    Per = Info(<<"persistence">>),
    Aof = case maps:get(<<"aof_enabled">>, Per, unknown) of
              <<"1">> -> <<"yes">>;
              unknown -> unknown;
              _ -> <<"no">>
          end,
    {ok, #{<<"maxmemory-policy">> => maps:get(<<"maxmemory_policy">>, Mem, unknown),
           <<"appendonly">> => Aof, <<"appendfsync">> => unknown, <<"save">> => unknown}}.

%% @doc What the settings may lose; fatal findings make require_durable refuse.
-spec assess(map()) -> [finding()].
assess(S) ->
    Policy = maps:get(<<"maxmemory-policy">>, S, unknown),
    Evict = case Policy of
                <<"noeviction">> -> [];
                unknown -> [f(<<"maxmemory-policy">>, Policy, <<"whether Redis may evict (silently "
                              "delete) queued events is unknown">>, true)];
                _ -> [f(<<"maxmemory-policy">>, Policy, <<"when memory runs out Redis evicts keys "
                        "and may silently delete queued events; set it to noeviction">>, true)]
            end,
    Persist = case {maps:get(<<"appendonly">>, S, unknown), maps:get(<<"save">>, S, unknown)} of
                  {unknown, _} ->
                      [f(<<"appendonly">>, unknown, <<"whether acknowledged events survive a "
                         "restart is unknown">>, true)];
                  {<<"yes">>, _} -> fsync(maps:get(<<"appendfsync">>, S, unknown));
                  {Aof, <<>>} ->
                      [f(<<"appendonly">>, Aof, <<"no persistence at all (save \"\"): a restart "
                         "loses every queued event; set appendonly yes">>, true)];
                  {Aof, _} ->
                      [f(<<"appendonly">>, Aof, <<"RDB snapshots only: a crash loses every event "
                         "acknowledged since the last snapshot; set appendonly yes">>, true)]
              end,
    Evict ++ Persist.

fsync(<<"always">>) -> [];
fsync(<<"everysec">> = V) ->
    [f(<<"appendfsync">>, V, <<"a crash may lose about the last second of acknowledged events "
       "(appendfsync always loses none)">>, false)];
fsync(unknown) -> [f(<<"appendfsync">>, unknown, <<"how much a crash may lose is unknown">>, false)];
fsync(V) ->
    [f(<<"appendfsync">>, V, <<"the operating system decides when the AOF reaches the disk: a "
       "machine crash may lose the last ~30 s of acknowledged events">>, false)].

f(Setting, Value, Consequence, Fatal) ->
    #{setting => Setting, value => Value, consequence => Consequence, fatal => Fatal}.

text(#{setting := S, value := unknown, consequence := C}) -> [S, " could not be read: ", C];
text(#{setting := S, value := V, consequence := C}) -> [S, " is '", V, "': ", C].

%% @doc Read and assess the server: warn once per node and server (logger), and with
%% Require refuse a server whose settings may lose acknowledged events.
-spec check(homing_conn:client(), boolean()) -> ok | {error, {atom(), binary()}}.
check(#{host := H, port := P} = C, Require) ->
    case read(C) of
        {ok, Settings} ->
            Findings = assess(Settings),
            Where = io_lib:format("Redis at ~s:~B", [H, P]),
            Fatal = [F || #{fatal := true} = F <- Findings],
            case {Require, Fatal} of
                {true, [_ | _]} ->
                    {error, {not_durable, iolist_to_binary(
                        [Where, ": ", lists:join("; ", [text(F) || F <- Fatal]),
                         " (see docs/guarantees.md)"])}};
                _ ->
                    Key = {?MODULE, warned, H, P},
                    case Findings =/= [] andalso persistent_term:get(Key, false) =:= false of
                        true ->
                            persistent_term:put(Key, true),
                            [logger:warning("homing: ~s: ~s (see docs/guarantees.md)",
                                            [Where, text(F)]) || F <- Findings];
                        false -> ok
                    end,
                    ok
            end;
        {error, _} when not Require -> ok;    % unreachable now: the calls will say so
        {error, _} = E -> E
    end.
