%% @doc Private redis-server processes for the EUnit suites (never the shared 6379).
%%
%% Each server runs under `sh', which reads its stdin: when the port closes
%% (stop/1, or the Erlang VM dying however it dies) the read ends and sh kills
%% the server, so no redis-server outlives the tests. A server keeps its port
%% across restart/1, so connections reconnect to it.
-module(homing_test_redis).
-export([start/0, start/1, stop/1, kill/1, restart/1, url/1, client/1, client/2, free_port/0,
         closed_port/0, cli/2, start_sentinel/2]).

free_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    gen_tcp:close(S),
    P.

%% A port where nothing listens, for "connection refused" steps.
closed_port() -> free_port().

start() -> start(#{}).

%% Opts: port (default a free one), dir (default a fresh temporary directory),
%% appendonly (default false), extra (more redis-server arguments).
start(Opts) ->
    Port = maps:get(port, Opts, free_port()),
    Dir = case maps:get(dir, Opts, undefined) of
              undefined ->
                  D = filename:join(["/tmp", "homing-erl-" ++ integer_to_list(Port) ++ "-" ++
                                     integer_to_list(erlang:unique_integer([positive]))]),
                  ok = filelib:ensure_dir(filename:join(D, "x")),
                  D;
              D -> D
          end,
    Args = ["--port", integer_to_list(Port), "--bind", "127.0.0.1", "--dir", Dir,
            "--save", "", "--appendonly", case maps:get(appendonly, Opts, false) of
                                             true -> "yes";
                                             false -> "no"
                                         end,
            "--daemonize", "no", "--logfile", filename:join(Dir, "redis.log")]
        ++ maps:get(extra, Opts, []),
    Cmd = "redis-server " ++ lists:join(" ", [quote(A) || A <- maps:get(args, Opts, Args)])
        ++ " & pid=$!; echo $pid; read _; kill -9 $pid 2>/dev/null",
    OsPort = open_port({spawn_executable, "/bin/sh"}, [{args, ["-c", Cmd]}, {line, 256},
                                                      exit_status]),
    Pid = receive {OsPort, {data, {eol, P}}} -> P after 5000 -> error(no_redis_pid) end,
    S = Opts#{port => Port, dir => Dir, os_port => OsPort, pid => Pid},
    wait_up(Port, 100),
    S.

quote("") -> "''";
quote(A) -> "'" ++ A ++ "'".

wait_up(Port, 0) -> error({redis_not_up, Port});
wait_up(Port, N) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 200) of
        {ok, S} ->
            ok = gen_tcp:send(S, <<"PING\r\n">>),
            R = gen_tcp:recv(S, 0, 1000),
            gen_tcp:close(S),
            case R of
                {ok, <<"+PONG", _/binary>>} -> ok;
                _ -> timer:sleep(50), wait_up(Port, N - 1)
            end;
        _ -> timer:sleep(50), wait_up(Port, N - 1)
    end.

%% Stop the server (SIGKILL through its sh: a crash as far as clients can tell).
stop(#{os_port := OsPort, port := Port}) ->
    catch port_close(OsPort),
    wait_down(Port, 100).

kill(S) -> stop(S).

wait_down(_, 0) -> ok;
wait_down(Port, N) ->
    case gen_tcp:connect({127, 0, 0, 1}, Port, [binary], 100) of
        {ok, Sock} -> gen_tcp:close(Sock), timer:sleep(50), wait_down(Port, N - 1);
        _ -> ok
    end.

%% The same port and directory again (an AOF written before is reloaded).
restart(S) ->
    stop(S),
    start(maps:with([port, dir, appendonly, extra], S)).

url(#{port := Port}) -> "redis://127.0.0.1:" ++ integer_to_list(Port) ++ "/0".

client(S) -> client(S, #{}).

client(#{port := Port}, Opts) ->
    {ok, Pid} = homing_conn:start(maps:merge(#{port => Port}, Opts)),
    homing_conn:client(Pid).

%% redis-cli for a one-off command in a test.
cli(#{port := Port}, Args) ->
    os:cmd("redis-cli -p " ++ integer_to_list(Port) ++ " " ++ Args).

%% A sentinel watching the primary on MasterPort (master name mymaster, quorum 1, short
%% timings), told of the replicas so that it need not wait to discover them.
start_sentinel(MasterPort, ReplicaPorts) ->
    Port = free_port(),
    Dir = filename:join(["/tmp", "homing-erl-sentinel-" ++ integer_to_list(Port)]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Conf = filename:join(Dir, "sentinel.conf"),
    M = integer_to_list(MasterPort),
    ok = file:write_file(Conf, [
        "port ", integer_to_list(Port), "\nbind 127.0.0.1\ndir ", Dir, "\n",
        "sentinel monitor mymaster 127.0.0.1 ", M, " 1\n",
        "sentinel down-after-milliseconds mymaster 1000\n",
        "sentinel failover-timeout mymaster 5000\n",
        "sentinel parallel-syncs mymaster 1\n",
        ["sentinel known-replica mymaster 127.0.0.1 " ++ integer_to_list(R) ++ "\n"
         || R <- ReplicaPorts]]),
    start(#{port => Port, dir => Dir,
            args => [Conf, "--sentinel", "--logfile", filename:join(Dir, "sentinel.log")]}).
