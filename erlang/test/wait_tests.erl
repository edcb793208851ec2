%% @doc The WAIT option (docs/failover.md) against a private primary and replica: a
%% write confirmed by the replica returns as usual; with the replica paused (SIGSTOP)
%% it returns {error, {not_replicated, _}} carrying its outcome, the write done on the
%% primary; an idempotent repeat is vouched for once the replica is back; a worker
%% counts an unconfirmed acknowledgement as done, not lost.
-module(wait_tests).
-include_lib("eunit/include/eunit.hrl").
-export([confirmed_and_not/1, worker_counts_unreplicated/1, no_wait_permission/1]).

setup() ->
    Primary = homing_test_redis:start(),
    Replica = homing_test_redis:start(#{extra => ["--replicaof", "127.0.0.1",
                                                  integer_to_list(maps:get(port, Primary))]}),
    wait_synced(Replica, 200),
    P = <<"wait", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    C = homing_test_redis:client(Primary, #{prefix => P, wait_replicas => 1,
                                            wait_timeout_ms => 300}),
    #{primary => Primary, replica => Replica, client => C, prefix => P}.

teardown(#{primary := P, replica := R, client := C}) ->
    resume(R),
    homing_conn:stop(C),
    homing_test_redis:stop(R),
    homing_test_redis:stop(P).

wait_synced(_, 0) -> error(replica_never_synced);
wait_synced(R, N) ->
    case string:find(homing_test_redis:cli(R, "INFO replication"), "master_link_status:up") of
        nomatch -> timer:sleep(50), wait_synced(R, N - 1);
        _ -> ok
    end.

pause(#{pid := Pid}) -> os:cmd("kill -STOP " ++ Pid).
resume(#{pid := Pid}) -> os:cmd("kill -CONT " ++ Pid).

wait_test_() ->
    {foreach, fun setup/0, fun teardown/1,
     [fun(Ctx) -> {atom_to_list(N), {timeout, 60, fun() -> ?MODULE:N(Ctx) end}} end
      || N <- [confirmed_and_not, worker_counts_unreplicated, no_wait_permission]]}.

confirmed_and_not(#{client := C, replica := R, primary := Pr}) ->
    ?assertMatch({ok, _}, queue_client:enqueue(C, "w", <<"one">>, #{key => <<"k1">>})),
    pause(R),
    {error, {not_replicated, #{result := {ok, Id}, acked := 0}}} =
        queue_client:enqueue(C, "w", <<"two">>, #{key => <<"k2">>}),
    %% written on the primary all the same
    Plain = homing_test_redis:client(Pr, #{prefix => maps:get(prefix, C)}),
    ?assertMatch({ok, #{state := <<"pending">>}}, queue_client:status(Plain, "w", Id)),
    %% a repeat with the same key is answered without writing: still unconfirmed
    ?assertMatch({error, {not_replicated, #{result := {ok, Id}}}},
                 queue_client:enqueue(C, "w", <<"two">>, #{key => <<"k2">>})),
    resume(R),
    %% and once the replica is back, the repeat's touch vouches for the first send
    wait_ok(fun() -> queue_client:enqueue(C, "w", <<"two">>, #{key => <<"k2">>}) end, {ok, Id}),
    %% writes that need no confirmation (dequeue) are not waited for
    pause(R),
    {ok, [#{id := DId, token := T}]} = queue_client:dequeue(C, "w"),
    %% but a fail is (it must survive a failover)
    ?assertMatch({error, {not_replicated, #{result := {ok, #{action := <<"retry">>}}}}},
                 queue_client:fail(C, "w", DId, T, #{})),
    resume(R),
    homing_conn:stop(Plain).

wait_ok(F, Want) -> wait_ok(F, Want, 100).
wait_ok(F, Want, 0) -> ?assertEqual(Want, F());
wait_ok(F, Want, N) ->
    case F() of
        Want -> ok;
        _ -> timer:sleep(50), wait_ok(F, Want, N - 1)
    end.

%% A worker whose completion fewer replicas confirmed counts it unreplicated, done.
worker_counts_unreplicated(#{client := C, replica := R, primary := Pr, prefix := P}) ->
    persistent_term:put(rich_consumer, self()),
    %% done_ttl_ms: a completion without a result keeps nothing otherwise
    {ok, _} = queue_client:configure(C, "wk", #{<<"done_ttl_ms">> => 600000}),
    {ok, Id} = queue_client:enqueue(C, "wk", <<"fine">>),
    pause(R),
    {ok, W} = gen_queue_consumer:start_link(rich_consumer, "wk",
                                            #{port => maps:get(port, Pr), prefix => P,
                                              wait_replicas => 1, wait_timeout_ms => 200}),
    receive {event, _, Id, _, _, _} -> ok after 10000 -> error(no_event) end,
    wait_ok(fun() -> maps:get(unreplicated, homing_worker:info(W), 0) end, 1),
    ?assertEqual(0, maps:get(lost, homing_worker:info(W), 0)),
    resume(R),
    ?assertMatch({ok, #{state := <<"done">>}}, queue_client:status(C, "wk", Id)),
    gen_queue_consumer:stop(W).

%% A user that may not send WAIT is refused when the client starts, before any write.
no_wait_permission(#{primary := Pr}) ->
    "OK\n" = homing_test_redis:cli(Pr, "ACL SETUSER default -wait"),
    try
        ?assertMatch({error, {no_permission, _}},
                     queue_client:new(#{port => maps:get(port, Pr), wait_replicas => 1,
                                        wait_timeout_ms => 200}))
    after
        "OK\n" = homing_test_redis:cli(Pr, "ACL SETUSER default +@all")
    end.
