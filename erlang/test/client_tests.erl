%% @doc queue_client and the call layer beyond the vectors: the generated copies are
%% current, the error table, EVALSHA with NOSCRIPT reload, the registry rule, typed
%% refusals that write nothing, a refused connection, and that the conformance runner
%% reports a mismatch (a runner that cannot fail proves nothing).
-module(client_tests).
-include_lib("eunit/include/eunit.hrl").

%% The committed priv/ copies and src/homing_errors.erl equal a fresh conversion.
generated_copies_test() ->
    Tool = filename:join([interop_tests:root(), "erlang", "tools", "manifest_terms.py"]),
    Out = os:cmd("python3 " ++ Tool ++ " --check 2>&1; echo \"exit=$?\""),
    ?assertEqual("exit=0", lists:last(string:lexemes(Out, "\n")), Out).

error_table_test() ->
    Table = maps:get(<<"errors">>, homing_manifest:manifest()),
    ?assertEqual([homing_errors:atom(maps:get(<<"code">>, E)) || E <- Table], homing_errors:codes()),
    [?assertEqual(maps:get(<<"class">>, E), homing_errors:class(homing_errors:atom(maps:get(<<"code">>, E))))
     || E <- Table],
    ?assertEqual(undefined, homing_errors:atom(<<"NO_SUCH_CODE">>)).

%% Every call of the table is one the layer can build: its arg and reply types are known.
call_table_test() ->
    Known = [<<"whole">>, <<"ms">>, <<"token">>, <<"id">>, <<"key">>, <<"envelope">>,
             <<"result">>, <<"text">>, <<"bool">>, <<"config">>, <<"count">>, <<"list">>,
             <<"rest">>, <<"pairs">>, <<"name">>],
    Table = homing_call:table(),
    ?assert(map_size(Table) >= 20),
    [begin
         [?assert(lists:member(maps:get(<<"type">>, A), Known)) || A <- maps:get(<<"args">>, Spec)],
         ?assert(lists:member(maps:get(<<"kind">>, maps:get(<<"reply">>, Spec)),
                              [<<"value">>, <<"tuple">>, <<"records">>, <<"items">>, <<"union">>,
                               <<"map">>])),
         _ = homing_manifest:script(maps:get(<<"script">>, Spec))
     end || Spec <- maps:values(Table)].

with_redis(F) ->
    {setup, fun() ->
                    R = homing_test_redis:start(),
                    P = <<"ct", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
                    {R, homing_test_redis:client(R, #{prefix => P})}
            end,
     fun({R, C}) -> homing_conn:stop(C), homing_test_redis:stop(R) end,
     fun({R, C}) -> ?_test(F(R, C)) end}.

keys(R, P) -> lists:sort(string:lexemes(homing_test_redis:cli(R, "--raw KEYS '" ++ P ++ "*'"), "\n")).

noscript_test_() ->
    with_redis(fun(R, C) ->
        {ok, _} = queue_client:enqueue(C, "ns", 1),
        "OK\n" = homing_test_redis:cli(R, "SCRIPT FLUSH"),
        %% the cache is empty: EVALSHA says NOSCRIPT, the call is sent once more as EVAL
        ?assertMatch({ok, [_]}, queue_client:dequeue(C, "ns")),
        ?assertMatch({ok, _}, queue_client:enqueue(C, "ns", 2))
    end).

registry_test_() ->
    with_redis(fun(R, #{prefix := P} = C) ->
        Reg = binary_to_list(P) ++ ":services",
        {error, {payload_too_large, _}} = queue_client:enqueue(C#{max_payload => 10}, "big",
                                                               binary:copy(<<"x">>, 100)),
        ?assertEqual([], keys(R, binary_to_list(P))),
        {ok, _} = queue_client:enqueue(C, "reg", 1),
        ?assertEqual("reg\n", homing_test_redis:cli(R, "--raw SMEMBERS " ++ Reg)),
        %% a registry of the wrong type: refused before anything is written
        "1\n" = homing_test_redis:cli(R, "--raw DEL " ++ Reg),
        "OK\n" = homing_test_redis:cli(R, "--raw SET " ++ Reg ++ " x"),
        {ok, C2} = {ok, homing_test_redis:client(R, #{prefix => P})},
        ?assertMatch({error, {wrong_type, _}}, queue_client:enqueue(C2, "other", 1)),
        ?assertEqual([], [K || K <- keys(R, binary_to_list(P)), string:find(K, "{other}") =/= nomatch]),
        homing_conn:stop(C2)
    end).

refusals_test_() ->
    with_redis(fun(R, #{prefix := P} = C) ->
        Cases = [{invalid_name, fun() -> queue_client:enqueue(C, "bad{name}", 1) end},
                 {invalid_name, fun() -> queue_client:enqueue(C, "s", 1, #{id => <<"a:b">>}) end},
                 {payload_not_encodable, fun() -> queue_client:enqueue(C, "s", {tuple}) end},
                 {payload_not_encodable, fun() -> queue_client:enqueue(C, "s", 1 bsl 64) end},
                 {invalid_argument, fun() -> queue_client:enqueue_many(C, "s", []) end},
                 {invalid_argument, fun() -> queue_client:enqueue_many(C, "s", [1, 2],
                                                                       #{ids => [<<"a">>]}) end},
                 {invalid_argument, fun() -> queue_client:dequeue(C, "s", #{count => 0}) end},
                 {invalid_argument, fun() -> queue_client:dequeue(C, "s", #{count => 1.5}) end},
                 {invalid_argument, fun() -> queue_client:complete(C, "s", "e1", -1) end},
                 {invalid_argument, fun() -> queue_client:configure(C, "s", #{<<"nope">> => 1}) end},
                 {invalid_argument, fun() -> queue_client:configure(C, "s",
                                                                    #{<<"lease_ms">> => <<"1">>}) end},
                 {invalid_argument, fun() -> queue_client:fail(C, "s", "e1", 1, #{dead => maybe}) end},
                 {invalid_argument, fun() -> queue_client:result(C, "s", "e1", -5) end},
                 {invalid_argument, fun() -> queue_client:release(C, "s", notalist) end}],
        [?assertMatch({Code, {error, {Code, _}}}, {Code, F()}) || {Code, F} <- Cases],
        ?assertEqual([], keys(R, binary_to_list(P)))
    end).

bad_connection_options_test() ->
    [?assertMatch({error, {invalid_argument, _}}, homing_conn:start(O))
     || O <- [#{wait_replicas => -1}, #{wait_replicas => 1, wait_timeout_ms => 10000},
              #{wait_replicas => 1, wait_timeout_ms => 0}, #{timeout => 0}]].

%% A Redis user that may not run EVALSHA: no_permission, nothing written.
no_permission_test_() ->
    with_redis(fun(R, #{prefix := P} = C) ->
        "OK\n" = homing_test_redis:cli(R, "ACL SETUSER default -evalsha -eval"),
        ?assertMatch({error, {no_permission, _}}, queue_client:enqueue(C, "acl", 1)),
        "OK\n" = homing_test_redis:cli(R, "ACL SETUSER default +@all"),
        ?assertEqual([], keys(R, binary_to_list(P)))
    end).

%% A Redis past its maxmemory (noeviction) refuses a call that grows memory before it
%% writes anything: redis_full; one that frees memory (dequeue, complete) still runs.
redis_full_test_() ->
    {setup, fun() ->
                    R = homing_test_redis:start(#{extra => ["--maxmemory", "2mb",
                                                            "--maxmemory-policy", "noeviction"]}),
                    {R, homing_test_redis:client(R, #{prefix => <<"full">>})}
            end,
     fun({R, C}) -> homing_conn:stop(C), homing_test_redis:stop(R) end,
     fun({R, C}) -> ?_test(begin
         {ok, Id} = queue_client:enqueue(C, "f", <<"before">>),
         "3000001\n" = homing_test_redis:cli(R, "SETRANGE ballast 3000000 x"),
         ?assertMatch({error, {redis_full, _}}, queue_client:enqueue(C, "f", <<"refused">>)),
         {ok, [#{id := Id, token := T}]} = queue_client:dequeue(C, "f"),
         ?assertEqual(ok, queue_client:complete(C, "f", Id, T)),
         ?assertMatch({ok, #{<<"ready">> := 0, <<"total.enqueued">> := 1}},
                      queue_client:stats(C, "f"))
     end) end}.

assess_test() ->
    Fatal = fun(S) -> [K || #{setting := K, fatal := true} <- homing_durability:assess(S)] end,
    Good = #{<<"maxmemory-policy">> => <<"noeviction">>, <<"appendonly">> => <<"yes">>,
             <<"appendfsync">> => <<"always">>, <<"save">> => <<>>},
    ?assertEqual([], homing_durability:assess(Good)),
    ?assertEqual([], Fatal(Good#{<<"appendfsync">> => <<"everysec">>})),
    ?assertEqual([<<"maxmemory-policy">>], Fatal(Good#{<<"maxmemory-policy">> => <<"allkeys-lru">>})),
    ?assertEqual([<<"appendonly">>], Fatal(Good#{<<"appendonly">> => <<"no">>})),
    ?assertEqual([<<"maxmemory-policy">>, <<"appendonly">>],
                 Fatal(#{<<"maxmemory-policy">> => unknown, <<"appendonly">> => unknown})).

%% require_durable refuses a server without the AOF, for a client and a worker alike,
%% and takes one with it and noeviction.
require_durable_test_() ->
    {setup, fun() ->
                    {homing_test_redis:start(), homing_test_redis:start(#{appendonly => true})}
            end,
     fun({A, B}) -> homing_test_redis:stop(A), homing_test_redis:stop(B) end,
     fun({Volatile, Durable}) -> ?_test(begin
         Opts = fun(R) -> #{port => maps:get(port, R), require_durable => true} end,
         process_flag(trap_exit, true),
         ?assertMatch({error, {not_durable, _}}, queue_client:new(Opts(Volatile))),
         ?assertMatch({error, {not_durable, _}},
                      gen_queue_consumer:start_link(rich_consumer, "d", Opts(Volatile))),
         {ok, C} = queue_client:new(Opts(Durable)),
         {ok, W} = gen_queue_consumer:start_link(rich_consumer, "d", Opts(Durable)),
         gen_queue_consumer:stop(W),
         homing_conn:stop(C),
         %% without require_durable a volatile server is only warned about
         {ok, C2} = queue_client:new(#{port => maps:get(port, Volatile)}),
         homing_conn:stop(C2),
         receive {'EXIT', _, Why} when Why =/= normal -> error({exit, Why}) after 0 -> ok end
     end) end}.

refused_connection_test() ->
    {ok, Pid} = homing_conn:start(#{port => homing_test_redis:closed_port()}),
    C = homing_conn:client(Pid),
    ?assertMatch({error, {connection, _}}, queue_client:enqueue(C, "s", 1)),
    ?assertMatch({error, {connection, _}}, queue_client:dequeue(C, "s")),
    homing_conn:stop(Pid).

%% The talk's forms use the homing application's default connection.
application_test_() ->
    with_redis(fun(R, C) ->
        application:load(homing),
        application:set_env(homing, url, homing_test_redis:url(R)),
        application:set_env(homing, prefix, maps:get(prefix, C)),
        {ok, _} = application:ensure_all_started(homing),
        try
            {ok, Id} = queue_client:enqueue("test_service", <<"metadata">>),
            {ok, T} = queue_client:create_timer("test_service", 60000, <<"later">>),
            ?assertMatch({ok, #{state := <<"pending">>, detail := <<"ready">>}},
                         queue_client:status(C, "test_service", Id)),
            ?assertMatch({ok, #{detail := <<"timer">>}}, queue_client:status(C, "test_service", T)),
            %% complete/2 outside a handler names no lease: refused, typed
            ?assertMatch({error, {invalid_argument, _}}, queue_client:complete("test_service", Id))
        after
            application:stop(homing)
        end
    end).

%% Any payload PropEr makes survives Redis: enqueue_many, dequeue, the same term back.
payload_property_test_() ->
    with_redis(fun(_, C) ->
        Prop = proper:forall(proper_types:non_empty(proper_types:list(envelope_tests:value())),
                             fun(Ps) ->
                                     {ok, Ids} = queue_client:enqueue_many(C, "prop", Ps),
                                     {ok, Es} = queue_client:dequeue(C, "prop", #{count => 1000}),
                                     [ok = queue_client:complete(C, "prop", I, T)
                                      || #{id := I, token := T} <- Es],
                                     Ids =:= [I || #{id := I} <- Es] andalso
                                         [element(2, queue_client:payload(E)) || E <- Es] =:= Ps
                             end),
        ?assert(proper:quickcheck(Prop, [{numtests, 60}, {max_size, 12}, quiet]))
    end).

%% The README shows the talk's consumer exactly as examples/ has it (which the worker
%% tests run), and the weather consumer's callbacks as the file has them.
readme_examples_test() ->
    Dir = filename:join(interop_tests:root(), "erlang"),
    {ok, Readme} = file:read_file(filename:join(Dir, "README.md")),
    Blocks = [B || [B] <- element(2, re:run(Readme, <<"```erlang\n(.*?)```">>,
                                            [global, dotall, {capture, all_but_first, binary}]))],
    Code = fun(F) -> {ok, B} = file:read_file(filename:join([Dir, "examples", F])), B end,
    %% Code lines: blank lines and comment lines aside (the files have header comments).
    Lines = fun(B) -> [L || L <- binary:split(B, <<"\n">>, [global]), L =/= <<>>,
                            binary:first(string:trim(L)) =/= $%] end,
    Talk = Lines(Code("test_service_consumer.erl")),
    ?assert(lists:member(Talk, [Lines(B) || B <- Blocks])),
    [Weather] = [Lines(B) || B <- Blocks, binary:match(B, <<"-module(weather_consumer)">>) =/= nomatch],
    Shown = Weather,
    ?assertEqual(Shown, [L || L <- Lines(Code("weather_consumer.erl")), lists:member(L, Shown)]).

%% The runner reports a changed expectation: a token, a state value, an error code.
runner_fails_test_() ->
    with_redis(fun(_, C) ->
        [{Op, {obj, V}} | _] = [X || {"dequeue", _} = X <- homing_conformance:vectors()],
        ?assertEqual(ok, homing_conformance:run_vector(C, Op, {obj, V})),
        Steps = proplists:get_value(<<"steps">>, V),
        [begin
             Mut = mutate(Key, Steps),
             ?assertNotEqual(Steps, Mut),
             ?assertMatch({fail, _}, homing_conformance:run_vector(
                                       C, Op, {obj, lists:keyreplace(<<"steps">>, 1, V,
                                                                     {<<"steps">>, Mut})}))
         end || Key <- [<<"token">>, <<"seq">>, <<"deadline_ms">>]]
    end).

mutate(Key, {obj, L}) ->
    {obj, [case K of
               Key when is_integer(X) -> {K, X + 1};
               _ -> {K, mutate(Key, X)}
           end || {K, X} <- L]};
mutate(Key, L) when is_list(L) -> [mutate(Key, X) || X <- L];
mutate(_, X) -> X.

%% Priorities through the generic options: higher levels first, status/3 shows the level.
priority_test_() ->
    with_redis(fun(_, C) ->
        {ok, Low} = queue_client:enqueue(C, "prio", <<"low">>),
        {ok, High} = queue_client:enqueue(C, "prio", <<"high">>, #{priority => 8}),
        {ok, [Mid, Zero]} = queue_client:enqueue_many(C, "prio", [<<"mid">>, <<"zero">>],
                                                      #{priorities => [3, 0]}),
        ?assertMatch({error, {invalid_argument, _}},
                     queue_client:enqueue(C, "prio", <<"x">>, #{priority => 10})),
        ?assertMatch({ok, #{state := <<"pending">>, detail := <<"ready">>, priority := 8}},
                     queue_client:status(C, "prio", High)),
        {ok, Events} = queue_client:dequeue(C, "prio", #{count => 10}),
        ?assertEqual([High, Mid, Low, Zero], [I || #{id := I} <- Events]),
        %% one level for every event, as in Python and JavaScript
        {ok, [P1, P2]} = queue_client:enqueue_many(C, "prio", [1, 2], #{priorities => 4}),
        {ok, L} = queue_client:enqueue(C, "prio", 3),
        ?assertMatch({error, {invalid_argument, _}},
                     queue_client:enqueue_many(C, "prio", [4], #{priorities => 10})),
        {ok, More} = queue_client:dequeue(C, "prio", #{count => 10}),
        ?assertEqual([P1, P2, L], [I || #{id := I} <- More])
    end).

%% A group's members and a recurring timer's occurrences take their levels too.
priority_group_recurring_test_() ->
    with_redis(fun(_, C) ->
        {ok, Plain} = queue_client:enqueue(C, "prio2", <<"plain">>),
        {ok, #{ids := [A, B]}} = queue_client:enqueue_group(C, "prio2", [1, 2],
                                                           #{priorities => [0, 7]}),
        ?assertMatch({error, {invalid_argument, _}},
                     queue_client:enqueue_group(C, "prio2", [3], #{priorities => [10]})),
        {ok, _} = queue_client:recurring_put(C, "prio2", <<"r">>, 1,
                                             #{cron => <<"@hourly">>, priority => 5}),
        ?assertMatch({error, {invalid_argument, _}},
                     queue_client:recurring_put(C, "prio2", <<"r2">>, 1,
                                                #{cron => <<"@hourly">>, priority => -1})),
        ?assertMatch({ok, #{total := 1, schedules := [#{name := <<"r">>, priority := 5}]}},
                     queue_client:recurring_list(C, "prio2")),
        {ok, Events} = queue_client:dequeue(C, "prio2", #{count => 10}),
        ?assertEqual([B, Plain, A], [I || #{id := I} <- Events])
    end).

%% snooze/5 and progress/5: thin functions over the call table; status/3 shows both.
snooze_progress_test_() ->
    with_redis(fun(_, C) ->
        {ok, Id} = queue_client:enqueue(C, "snz", <<"later">>),
        {ok, [#{token := T}]} = queue_client:dequeue(C, "snz"),
        ?assertEqual({ok, 60}, queue_client:progress(C, "snz", Id, T, 60)),
        ?assertMatch({error, {invalid_argument, _}}, queue_client:progress(C, "snz", Id, T, 101)),
        ?assertMatch({error, {stale_lease, _}}, queue_client:progress(C, "snz", Id, T + 1, 5)),
        ?assertMatch({ok, #{action := <<"snoozed">>}}, queue_client:snooze(C, "snz", Id, T, 60000)),
        ?assertMatch({ok, #{state := <<"pending">>, detail := <<"waiting">>, attempt := 0,
                            snoozes := 1, progress := 60}},
                     queue_client:status(C, "snz", Id)),
        ?assertMatch({error, {stale_lease, _}}, queue_client:snooze(C, "snz", Id, T, 0))
    end).

%% enqueue_group/3 .. group_forget/3: a group completed by hand, its results in order,
%% then a failing member and forget.
groups_test_() ->
    with_redis(fun(_, C) ->
        {ok, #{group := G, ids := [A, B]}} = queue_client:enqueue_group(C, "grp", [1, 2]),
        ?assertEqual({ok, null}, queue_client:group_result(C, "grp", G)),
        {ok, [#{id := A, token := Ta}, #{id := B, token := Tb}]} =
            queue_client:dequeue(C, "grp", #{count => 2}),
        ok = queue_client:complete(C, "grp", B, Tb),
        ok = queue_client:complete(C, "grp", A, Ta, <<"one">>),
        ?assertEqual({ok, [<<"one">>, null]}, queue_client:wait_group(C, "grp", G, 1000)),
        ?assertMatch({ok, #{total := 2, done := 2, failed := <<>>}},
                     queue_client:group_status(C, "grp", G)),
        ?assertEqual({ok, 2}, queue_client:group_forget(C, "grp", G)),
        ?assertMatch({error, {unknown_group, _}}, queue_client:group_status(C, "grp", G)),
        {ok, #{group := G2, ids := [X]}} = queue_client:enqueue_group(C, "grp", [3]),
        {ok, [#{token := Tx}]} = queue_client:dequeue(C, "grp"),
        {ok, _} = queue_client:fail(C, "grp", X, Tx, #{reason => <<"no">>, dead => true}),
        ?assertMatch({error, {group_failed, _}}, queue_client:wait_group(C, "grp", G2, 1000))
    end).
