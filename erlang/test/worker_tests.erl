%% @doc The worker (homing_worker under gen_queue_consumer) against a private Redis:
%% the talk's consumer, the richer callback's outcomes, handler timeouts, prefetch in
%% reserve mode, release on shutdown, a consumer crash, and a Redis restart.
-module(worker_tests).
-include_lib("eunit/include/eunit.hrl").
-export([talk_consumer/1, outcomes/1, snooze/1, handler_timeout/1, prefetch_and_release/1, must_start/1,
         redis_restart/1, heartbeat/1, graceful_stop/1, corrupt_payload/1, supervised/1, read_only/1, talk_types/1, bad_options/1, full_redis/1]).

setup() ->
    R = homing_test_redis:start(#{appendonly => true}),
    Prefix = <<"wt", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    C = homing_test_redis:client(R, #{prefix => Prefix}),
    #{redis => R, client => C, prefix => Prefix}.

teardown(#{redis := R, client := C}) ->
    persistent_term:erase(rich_consumer),
    homing_conn:stop(C),
    homing_test_redis:stop(R).

worker_test_() ->
    {foreach, fun setup/0, fun teardown/1,
     [fun(Ctx) -> {atom_to_list(Name), {timeout, 60, fun() ->
                                                             persistent_term:put(rich_consumer, self()),
                                                             ?MODULE:Name(Ctx)
                                                     end}} end
      || Name <- [talk_consumer, outcomes, snooze, handler_timeout, prefetch_and_release, must_start,
                  redis_restart, heartbeat, graceful_stop, corrupt_payload, supervised, read_only, talk_types, bad_options, full_redis]]}.

opts(#{redis := R, prefix := P}, More) ->
    maps:merge(#{port => maps:get(port, R), prefix => P}, More).

wait_until(F) -> wait_until(F, 400).
wait_until(F, 0) -> ?assert(F());
wait_until(F, N) ->
    case F() of
        true -> ok;
        false -> timer:sleep(25), wait_until(F, N - 1)
    end.

%% Completions without a result keep nothing unless the service sets done_ttl_ms
%% (docs/protocol.md "What a completion keeps"): the tests that wait for done ask.
keep_done(C, S) ->
    {ok, _} = queue_client:configure(C, S, #{<<"done_ttl_ms">> => 600000}),
    ok.

state(C, S, Id) ->
    {ok, #{state := St}} = queue_client:status(C, S, Id),
    St.

event() -> receive {event, _, Id, P, A, Ev} -> {Id, P, A, Ev} after 10000 -> error(no_event) end.

%% The talk's test_service_consumer, exactly as in the talk: complete/2 inside.
talk_consumer(#{client := C} = Ctx) ->
    ok = keep_done(C, "test_service"),
    {ok, Id} = queue_client:enqueue(C, "test_service", <<"metadata">>),
    {ok, W} = gen_queue_consumer:start_link(test_service_consumer, "test_service", opts(Ctx, #{})),
    wait_until(fun() -> state(C, "test_service", Id) =:= <<"done">> end),
    ?assertEqual({ok, null}, queue_client:result(C, "test_service", Id, 0)),
    ?assertMatch(#{completed := 1}, homing_worker:info(W)),
    ?assertEqual(0, maps:get(lost, homing_worker:info(W), 0)),
    gen_queue_consumer:stop(W).

outcomes(#{client := C} = Ctx) ->
    S = "outcomes",
    {ok, _} = queue_client:configure(C, S, #{<<"backoff_base_ms">> => 60000,
                                             <<"max_attempts">> => 3,
                                             <<"done_ttl_ms">> => 600000}),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{concurrency => 2})),
    Ids = [begin {ok, I} = queue_client:enqueue(C, S, P), {P, I} end
           || P <- [<<"fine">>, <<"retry">>, <<"reject">>, <<"crash">>,
                    <<"complete with result">>]],
    Seen = [event() || _ <- Ids],
    ?assertEqual(lists:sort([I || {_, I} <- Ids]), lists:sort([I || {I, _, _, _} <- Seen])),
    [?assertEqual(1, A) || {_, _, A, _} <- Seen],
    Id = fun(P) -> proplists:get_value(P, Ids) end,
    wait_until(fun() ->
                       [state(C, S, Id(P)) || P <- [<<"fine">>, <<"retry">>, <<"reject">>,
                                                     <<"crash">>, <<"complete with result">>]]
                           =:= [<<"done">>, <<"pending">>, <<"dead">>, <<"pending">>, <<"done">>]
               end),
    ?assertMatch({ok, #{detail := <<"waiting">>, attempt := 1}},
                 queue_client:status(C, S, Id(<<"retry">>))),
    {ok, #{letters := [Dead]}} = queue_client:dead_list(C, S),
    ?assertMatch(#{reason := <<"asked to reject">>}, Dead),
    {ok, #{letters := []}} = queue_client:dead_list(C, S, 1, 10),
    ?assertEqual({ok, #{<<"answer">> => 42}},
                 queue_client:result(C, S, Id(<<"complete with result">>), 1000)),
    %% the crash's reason is kept with the waiting event
    ?assertMatch({ok, #{state := <<"pending">>}}, queue_client:status(C, S, Id(<<"crash">>))),
    gen_queue_consumer:stop(W).

%% {snooze, Ms}: the event waits again, uncharged, its snooze counted in its record.
snooze(#{client := C} = Ctx) ->
    S = "snoozing",
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{})),
    {ok, Id} = queue_client:enqueue(C, S, <<"snooze">>),
    {Id, _, 1, _} = event(),
    wait_until(fun() -> maps:get(snoozed, homing_worker:info(W), 0) =:= 1 andalso
                            maps:get(detail, element(2, queue_client:status(C, S, Id))) =:= <<"waiting">> end),
    ?assertMatch({ok, #{state := <<"pending">>, attempt := 0, snoozes := 1}},
                 queue_client:status(C, S, Id)),
    %% a delay snooze refuses: the event is failed (charged, retried later), not lost
    {ok, Id2} = queue_client:enqueue(C, S, <<"snooze too long">>),
    {Id2, _, 1, _} = event(),
    wait_until(fun() -> maps:get(detail, element(2, queue_client:status(C, S, Id2))) =:= <<"waiting">> end),
    ?assertMatch({ok, #{state := <<"pending">>, attempt := 1, snoozes := 0}},
                 queue_client:status(C, S, Id2)),
    ?assertEqual(0, maps:get(lost, homing_worker:info(W), 0)),
    gen_queue_consumer:stop(W).

handler_timeout(#{client := C} = Ctx) ->
    S = "timeouts",
    {ok, _} = queue_client:configure(C, S, #{<<"backoff_base_ms">> => 60000,
                                             <<"done_ttl_ms">> => 600000}),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S,
                                            opts(Ctx, #{handler_timeout_ms => 200})),
    {ok, Id} = queue_client:enqueue(C, S, <<"hang">>),
    {Id, _, 1, #{}} = event(),
    wait_until(fun() -> state(C, S, Id) =:= <<"pending">> andalso
                            maps:get(timed_out, homing_worker:info(W), 0) =:= 1 end),
    {ok, St} = queue_client:status(C, S, Id),
    ?assertMatch(#{detail := <<"waiting">>, attempt := 1}, St),
    %% the slot was given a fresh state: the worker still handles events
    {ok, Id2} = queue_client:enqueue(C, S, <<"fine">>),
    {Id2, _, 1, _} = event(),
    wait_until(fun() -> state(C, S, Id2) =:= <<"done">> end),
    gen_queue_consumer:stop(W).

%% Prefetched events are reserved, not charged; a stop releases them uncharged.
prefetch_and_release(#{client := C} = Ctx) ->
    S = "prefetch",
    {ok, Ids} = queue_client:enqueue_many(C, S, [<<"hang">>, <<"fine">>, <<"fine">>]),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S,
                                            opts(Ctx, #{prefetch => 2, grace_ms => 100})),
    {First, <<"hang">>, 1, _} = event(),
    ?assertEqual(hd(Ids), First),
    wait_until(fun() -> maps:get(held, homing_worker:info(W)) =:= 3 end),
    [?assertMatch({ok, #{detail := <<"reserved">>, attempt := 0}}, queue_client:status(C, S, I))
     || I <- tl(Ids)],
    unlink(W),
    gen_queue_consumer:stop(W),
    %% released: ready again, no attempt counted; the hung one is left to its lease
    [?assertMatch({ok, #{detail := <<"ready">>, attempt := 0}}, queue_client:status(C, S, I))
     || I <- tl(Ids)],
    ?assertMatch({ok, #{detail := <<"reserved">>}}, queue_client:status(C, S, First)).

%% An event whose reserved lease ran out unstarted comes back must_start: started
%% (charged) before it runs.
must_start(#{client := C} = Ctx) ->
    S = "muststart",
    ok = keep_done(C, S),
    {ok, Id} = queue_client:enqueue(C, S, <<"fine">>),
    {ok, [#{id := Id}]} = queue_client:dequeue(C, S, #{reserve => true, lease_ms => 50}),
    timer:sleep(80),
    {ok, #{returned := 1}} = queue_client:promote(C, S, 100),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{})),
    {Id, _, 1, #{must_start := true}} = event(),
    wait_until(fun() -> state(C, S, Id) =:= <<"done">> end),
    gen_queue_consumer:stop(W).

%% Redis restarts under a running worker (AOF kept): the worker reconnects, the
%% scripts are loaded again (NOSCRIPT), and events sent after the restart are handled.
redis_restart(#{redis := R, client := C} = Ctx) ->
    S = "restart",
    ok = keep_done(C, S),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{})),
    {ok, Id1} = queue_client:enqueue(C, S, <<"before">>),
    {Id1, _, 1, _} = event(),
    wait_until(fun() -> state(C, S, Id1) =:= <<"done">> end),
    R2 = homing_test_redis:restart(R),
    ?assertEqual(maps:get(port, R), maps:get(port, R2)),
    wait_until(fun() -> element(1, queue_client:enqueue(C, S, <<"after">>, #{id => <<"after1">>}))
                            =:= ok end),
    {<<"after1">>, <<"after">>, 1, _} = event(),
    wait_until(fun() -> state(C, S, <<"after1">>) =:= <<"done">> end),
    ?assert(is_process_alive(W)),
    gen_queue_consumer:stop(W).

%% A handler that runs three times longer than its 200 ms lease keeps it: the heartbeat
%% extends it (every lease / 3), so the scheduler never reclaims it meanwhile.
heartbeat(#{client := C} = Ctx) ->
    S = "heartbeat",
    ok = keep_done(C, S),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{lease_ms => 200})),
    {ok, Id} = queue_client:enqueue(C, S, <<"sleep">>),
    {Id, _, 1, _} = event(),
    Promote = fun Loop(Acc) ->
                      {ok, #{expired := E}} = queue_client:promote(C, S, 100),
                      case state(C, S, Id) of
                          <<"done">> -> Acc + E;
                          _ -> timer:sleep(40), Loop(Acc + E)
                      end
              end,
    ?assertEqual(0, Promote(0)),
    {ok, Stats} = queue_client:stats(C, S),
    ?assertEqual(0, maps:get(<<"total.expired">>, Stats, 0)),
    ?assertEqual(1, maps:get(<<"total.completed">>, Stats)),
    %% the worker registered its service when it started
    {ok, <<"1">>} = homing_conn:q(C, [<<"SISMEMBER">>, <<(maps:get(prefix, Ctx))/binary,
                                                         ":services">>, <<"heartbeat">>]),
    gen_queue_consumer:stop(W).

%% A stop while a handler runs waits for it (within grace_ms) and sends its completion.
graceful_stop(#{client := C} = Ctx) ->
    S = "graceful",
    ok = keep_done(C, S),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{grace_ms => 5000})),
    {ok, Id} = queue_client:enqueue(C, S, <<"sleep">>),
    {Id, _, 1, _} = event(),
    ok = gen_queue_consumer:stop(W),
    ?assertEqual(<<"done">>, state(C, S, Id)),
    %% its last beat for the dashboard says it stopped: beat_ms;every_ms;pid;concurrency;
    %% held;stopped;service;ids;host
    {ok, [_Name, Beat]} = homing_conn:q(C, [<<"HGETALL">>, <<(maps:get(prefix, Ctx))/binary,
                                                            ":workers">>]),
    [_, _, Pid, <<"1">>, <<"0">>, <<"1">>, <<"graceful">> | _] = binary:split(Beat, <<";">>, [global]),
    ?assertEqual(os:getpid(), binary_to_list(Pid)).

%% Stored bytes that are not an envelope go to the dead letters at once, unhandled.
corrupt_payload(#{client := C, prefix := P} = Ctx) ->
    S = "corrupt",
    {ok, Id} = queue_client:enqueue(C, S, <<"fine">>),
    {ok, _} = homing_conn:q(C, [<<"HSET">>, homing_manifest:service_key(P, <<"corrupt">>, <<"data">>),
                                Id, <<"not msgpack">>]),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, S, opts(Ctx, #{})),
    wait_until(fun() -> state(C, S, Id) =:= <<"dead">> end),
    {ok, #{letters := [#{reason := Why}]}} = queue_client:dead_list(C, S),
    ?assertMatch(<<"corrupt envelope", _/binary>>, Why),
    receive {event, _, _, _, _, _} -> error(handler_ran) after 0 -> ok end,
    gen_queue_consumer:stop(W).

%% Consumers named in the application env run under homing_sup; one that dies is
%% restarted and goes on consuming (what it held comes back by its leases).
supervised(#{client := C, redis := R, prefix := P}) ->
    S = "supervised",
    ok = keep_done(C, S),
    application:load(homing),
    application:set_env(homing, url, homing_test_redis:url(R)),
    application:set_env(homing, prefix, P),
    application:set_env(homing, consumers, [{rich_consumer, S, #{name => sup_worker}}]),
    {ok, _} = application:ensure_all_started(homing),
    try
        {ok, Id1} = queue_client:enqueue(C, S, <<"fine">>),
        {Id1, _, 1, _} = event(),
        Old = whereis(sup_worker),
        exit(Old, kill),
        wait_until(fun() -> is_pid(whereis(sup_worker)) andalso whereis(sup_worker) =/= Old end),
        {ok, Id2} = queue_client:enqueue(C, S, <<"fine">>),
        {Id2, _, 1, _} = event(),
        wait_until(fun() -> state(C, S, Id2) =:= <<"done">> end)
    after
        application:stop(homing),
        application:unset_env(homing, consumers)
    end.

%% A worker pointed at a replica meets READONLY on every write: it retries, then gives
%% up after readonly_give_up_ms and stops with the error, for its supervisor to see.
read_only(#{redis := R, prefix := P}) ->
    Replica = homing_test_redis:start(#{extra => ["--replicaof", "127.0.0.1",
                                                  integer_to_list(maps:get(port, R))]}),
    try
        {ok, W} = gen_queue_consumer:start(rich_consumer, "ro",
                                           #{port => maps:get(port, Replica), prefix => P,
                                             readonly_give_up_ms => 300}),
        Ref = monitor(process, W),
        receive
            {'DOWN', Ref, process, W, Why} ->
                ?assertMatch({gave_up, {read_only, <<"READONLY", _/binary>>}}, Why)
        after 10000 -> error(did_not_give_up)
        end
    after
        homing_test_redis:stop(Replica)
    end.

%% handle_event/2 gets the id as a string and a text payload as a string (the talk's
%% types); other payloads as their decoded terms. The state is kept per slot.
talk_types(#{client := C} = Ctx) ->
    S = "talktypes",
    ok = keep_done(C, S),
    {ok, W} = gen_queue_consumer:start_link(talk_probe_consumer, S, opts(Ctx, #{})),
    {ok, [A, B, D]} = queue_client:enqueue_many(C, S, [<<"h", 16#e9/utf8, "llo">>,
                                                      #{<<"n">> => 1}, [1, {bytes, <<2>>}]]),
    Got = [receive {talk, Id, P, N} -> {Id, P, N} after 10000 -> error(no_event) end
           || _ <- [1, 2, 3]],
    ?assertEqual([{binary_to_list(A), "h" ++ [16#e9] ++ "llo", 0},
                  {binary_to_list(B), #{<<"n">> => 1}, 1},
                  {binary_to_list(D), [1, {bytes, <<2>>}], 2}], Got),
    wait_until(fun() -> state(C, S, D) =:= <<"done">> end),
    gen_queue_consumer:stop(W).

%% Worker settings that could only fail later are refused at once, typed.
bad_options(Ctx) ->
    Bad = [{rich_consumer, "bad{name}", #{}}, {rich_consumer, "s", #{concurrency => 0}},
           {rich_consumer, "s", #{prefetch => -1}}, {rich_consumer, "s", #{lease_ms => 0}},
           {rich_consumer, "s", #{handler_timeout_ms => 1.5}}, {no_such_module, "s", #{}},
           {rich_consumer, "s", not_a_map}],
    [?assertMatch({error, {_, _}}, gen_queue_consumer:start_link(M, S, case O of
                                                                         #{} -> opts(Ctx, O);
                                                                         _ -> O
                                                                     end))
     || {M, S, O} <- Bad],
    ?assertMatch({error, {invalid_name, _}}, gen_queue_consumer:start(rich_consumer, "a:b", #{})).

%% On a full Redis a consumer's completion with a result larger than the payload it
%% frees is refused (redis_full); complete/3 returns ok, the worker keeps it with its
%% result, extends the lease meanwhile, and sends it once Redis has room again.
full_redis(#{prefix := P}) ->
    R = homing_test_redis:start(#{extra => ["--maxmemory", "4mb", "--maxmemory-policy",
                                            "noeviction"]}),
    C = homing_test_redis:client(R, #{prefix => P}),
    try
        S = "full",
        {ok, Id} = queue_client:enqueue(C, S, <<"big result">>),
        "3000001\n" = homing_test_redis:cli(R, "SETRANGE ballast 3000000 x"),
        {ok, W} = gen_queue_consumer:start_link(rich_consumer, S,
                                                #{port => maps:get(port, R), prefix => P,
                                                  lease_ms => 300}),
        {Id, _, 1, _} = event(),
        timer:sleep(700),   % past two leases: only the heartbeat keeps it
        ?assertMatch({ok, #{state := <<"pending">>, detail := <<"reserved">>}},
                     queue_client:status(C, S, Id)),
        %% the lease was kept: nothing for the scheduler to reclaim
        ?assertMatch({ok, #{expired := 0}}, queue_client:promote(C, S, 10)),
        "1\n" = homing_test_redis:cli(R, "DEL ballast"),
        wait_until(fun() -> state(C, S, Id) =:= <<"done">> end),
        {ok, {bytes, Result}} = queue_client:result(C, S, Id, 0),
        ?assertEqual(200000, byte_size(Result)),
        ?assertEqual(0, maps:get(lost, homing_worker:info(W), 0)),
        gen_queue_consumer:stop(W)
    after
        homing_conn:stop(C),
        homing_test_redis:stop(R)
    end.
