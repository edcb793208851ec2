%% @doc Sentinel (homing_sentinel in homing_conn): a client on a redis+sentinel:// URL
%% writes to the primary the sentinel names, follows a SENTINEL FAILOVER to the promoted
%% replica, and a worker keeps consuming across it. Private primary, replica, sentinel.
-module(sentinel_tests).
-include_lib("eunit/include/eunit.hrl").

sentinel_test_() ->
    {timeout, 120, fun failover/0}.

role(R) ->
    Info = homing_test_redis:cli(R, "INFO replication"),
    case string:find(Info, "role:master") of
        nomatch -> replica;
        _ -> master
    end.

wait_until(F, 0) -> ?assert(F());
wait_until(F, N) ->
    case F() of
        true -> ok;
        false -> timer:sleep(50), wait_until(F, N - 1)
    end.

synced(R) -> string:find(homing_test_redis:cli(R, "INFO replication"), "master_link_status:up") =/= nomatch.

failover() ->
    Primary = homing_test_redis:start(#{appendonly => true}),
    Replica = homing_test_redis:start(#{appendonly => true,
                                        extra => ["--replicaof", "127.0.0.1",
                                                  integer_to_list(maps:get(port, Primary))]}),
    wait_until(fun() -> synced(Replica) end, 200),
    Sentinel = homing_test_redis:start_sentinel(maps:get(port, Primary), [maps:get(port, Replica)]),
    Url = "redis+sentinel://127.0.0.1:" ++ integer_to_list(maps:get(port, Sentinel)) ++ "/mymaster/0",
    P = <<"sent">>,
    try
        {ok, C} = queue_client:new(#{url => Url, prefix => P}),
        ?assertMatch(#{port := _}, C),
        ?assertEqual(maps:get(port, Primary), maps:get(port, C)),
        %% done_ttl_ms: a completion without a result keeps nothing otherwise
        {ok, _} = queue_client:configure(C, "s", #{<<"done_ttl_ms">> => 600000}),
        {ok, Id1} = queue_client:enqueue(C, "s", <<"before">>),
        persistent_term:put(rich_consumer, self()),
        {ok, W} = gen_queue_consumer:start_link(rich_consumer, "s", #{url => Url, prefix => P}),
        {Id1, _, 1} = event(),
        "OK\n" = homing_test_redis:cli(Sentinel, "SENTINEL FAILOVER mymaster"),
        wait_until(fun() -> role(Replica) =:= master end, 400),
        %% the client follows: its next writes land on the promoted replica
        Enq = fun() -> queue_client:enqueue(C, "s", <<"after">>, #{id => <<"after1">>}) end,
        wait_until(fun() -> element(1, Enq()) =:= ok end, 400),
        Direct = homing_test_redis:client(Replica, #{prefix => P}),
        ?assertMatch({ok, #{state := <<"pending">>}}, queue_client:status(Direct, "s", "after1")),
        %% and the worker goes on consuming from the new primary
        {<<"after1">>, _, 1} = event(),
        wait_until(fun() -> element(2, queue_client:status(Direct, "s", "after1"))
                                =:= #{state => <<"done">>, result => null} end, 400),
        gen_queue_consumer:stop(W),
        homing_conn:stop(C),
        homing_conn:stop(Direct)
    after
        persistent_term:erase(rich_consumer),
        [homing_test_redis:stop(X) || X <- [Sentinel, Replica, Primary]]
    end.

event() ->
    receive {event, _, Id, P, A, _} -> {Id, P, A}
    after 20000 -> error(no_event)
    end.
