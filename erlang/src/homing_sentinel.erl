%% @doc Sentinel for homing_conn (docs/failover.md): which node is the primary.
%%
%% redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>[/db]
%% names sentinels (port 26379 when none is given). The connection asks them
%% for the primary when it connects, every second, and when a call meets
%% READONLY; it also subscribes to every sentinel and points at the replica
%% being promoted as soon as the failover's leader announces it
%% (+failover-state-send-slaveof-noone), and at the new primary on
%% +switch-master, so nothing more is written to the old primary.
-module(homing_sentinel).
-export([parse_url/1, resolve/2, subscribe/1, notice/3, channels/0]).

-spec channels() -> [binary()].
channels() -> [<<"+switch-master">>, <<"+failover-state-send-slaveof-noone">>].

%% @doc The parts of a redis+sentinel:// URL (sentinels, master, database, password).
-spec parse_url(string()) -> map().
parse_url("redis+sentinel://" ++ Rest) ->
    {Auth, HostsPath} = case string:split(Rest, "@", trailing) of
                            [A, B] -> {A, B};
                            [B] -> {"", B}
                        end,
    {Hosts, Path} = case string:split(HostsPath, "/") of
                        [H, P] -> {H, P};
                        [H] -> {H, ""}
                    end,
    {Master, Db} = case string:lexemes(Path, "/") of
                       [M] -> {M, 0};
                       [M, D | _] -> {M, list_to_integer(D)};
                       [] -> error({bad_sentinel_url, "no master name"})
                   end,
    Sentinels = [case string:split(S, ":", trailing) of
                     [Host, Port] -> {Host, list_to_integer(Port)};
                     [Host] -> {Host, 26379}
                 end || S <- string:lexemes(Hosts, ",")],
    Password = case string:split(Auth, ":") of
                   [_, Pass] -> Pass;
                   _ -> ""
               end,
    #{sentinels => Sentinels, master => Master, database => Db, password => Password}.

%% @doc The primary's address as the first sentinel that answers names it.
-spec resolve([{string(), inet:port_number()}], string()) ->
    {ok, {string(), inet:port_number()}} | {error, {connection, binary()}}.
resolve([], Master) ->
    {error, {connection, iolist_to_binary(["no sentinel named a primary for ", Master])}};
resolve([{H, P} | Rest], Master) ->
    case catch eredis:start_link(H, P, 0, "", no_reconnect, 2000) of
        {ok, S} ->
            R = (catch eredis:q(S, [<<"SENTINEL">>, <<"get-master-addr-by-name">>, Master], 2000)),
            catch eredis:stop(S),
            case R of
                {ok, [Ip, Port]} -> {ok, {binary_to_list(Ip), binary_to_integer(Port)}};
                _ -> resolve(Rest, Master)
            end;
        _ ->
            receive {'EXIT', _, _} -> ok after 0 -> ok end,
            resolve(Rest, Master)
    end.

%% @doc Subscriptions to every sentinel's failover notices, for the calling process
%% (messages {subscribed | message, ...}, each to be acknowledged with
%% eredis_sub:ack_message/1). A sentinel that is down is skipped.
-spec subscribe([{string(), inet:port_number()}]) -> [pid()].
subscribe(Sentinels) ->
    lists:flatmap(fun({H, P}) ->
                          case catch eredis_sub:start_link(H, P, "") of
                              {ok, Sub} ->
                                  eredis_sub:controlling_process(Sub),
                                  eredis_sub:subscribe(Sub, channels()),
                                  [Sub];
                              _ -> []
                          end
                  end, Sentinels).

%% @doc The node a notice says to point at, if it is about Master.
-spec notice(binary(), binary(), string()) -> {ok, {string(), inet:port_number()}} | ignore.
notice(Channel, Msg, Master) ->
    M = list_to_binary(Master),
    case {Channel, binary:split(Msg, <<" ">>, [global])} of
        {<<"+switch-master">>, [M, _OldIp, _OldPort, Ip, Port]} ->
            {ok, {binary_to_list(Ip), binary_to_integer(Port)}};
        %% "slave <ip>:<port> <ip> <port> @ <master> <master-ip> <master-port>"
        {<<"+failover-state-send-slaveof-noone">>, [_, _, Ip, Port, <<"@">>, M | _]} ->
            {ok, {binary_to_list(Ip), binary_to_integer(Port)}};
        _ -> ignore
    end.
