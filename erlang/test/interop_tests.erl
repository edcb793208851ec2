%% @doc Interop with the Python client on one private Redis: payload types both ways,
%% feedback (results) both ways, timers, retries and dead letters, and an Erlang
%% worker killed mid-event (kill -9 of its VM) whose event a Python worker completes.
%% Python runs from the worktree's .venv (make venv), driving test/interop.py.
-module(interop_tests).
-include_lib("eunit/include/eunit.hrl").
-export([payloads/0, js_payloads/0, python/3, root/0, with_python/3, js_to_erlang/1, erlang_to_js/1, python_to_erlang/1, erlang_to_python/1, timers/1,
         retries_and_dead_letters/1, killed_erlang_worker/1]).

%% The same payloads as PAYLOADS in interop.py, as Erlang terms.
payloads() ->
    [null, true, false, 0, 42, -7, 18446744073709551615, -9223372036854775808, 1.5, <<>>,
     <<"h", 16#e9/utf8, "llo ", 16#2713/utf8, " ", 16#1f600/utf8>>, {bytes, <<0, 255>>},
     {bytes, <<>>}, [], #{}, [1, <<"two">>, null, [true]],
     #{<<"city">> => <<"Oslo">>, <<"temp_c">> => -3, <<"tags">> => [<<"cold">>, <<"dark">>],
       <<"raw">> => {bytes, <<1, 2>>}},
     #{1 => <<"int key">>}].

%% JavaScript objects cannot hold an integer key: the same set without that map.
js_payloads() -> lists:droplast(payloads()).

root() -> filename:dirname(filename:dirname(homing_manifest:priv_dir())).

python_bin() -> filename:join([root(), ".venv", "bin", "python"]).

%% An eunit generator running Fun(Python) within Timeout seconds, or skipped, saying
%% why, where the checkout has no .venv (the tests that compare with Python's side).
with_python(What, Timeout, Fun) ->
    case filelib:is_regular(python_bin()) of
        false -> {"no .venv: run make venv for " ++ What, []};
        true -> {timeout, Timeout, fun() -> Fun(python_bin()) end}
    end.

%% Run interop.py COMMAND with the test's Redis and prefix; its output on failure.
python(#{redis := R, prefix := P}, Command, Args) ->
    Py = python_bin(),
    Script = filename:join([root(), "erlang", "test", "interop.py"]),
    Port = open_port({spawn_executable, Py},
                     [{args, [Script, homing_test_redis:url(R), P, Command | Args]},
                      exit_status, stderr_to_stdout, binary]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, N}} -> {N, iolist_to_binary(lists:reverse(Acc))}
    after 60000 -> error(python_timeout)
    end.

ok_python(Ctx, Command, Args) ->
    {Status, Out} = python(Ctx, Command, Args),
    Status =:= 0 orelse io:format(user, "interop.py ~s ~p failed:~n~s~n", [Command, Args, Out]),
    ?assertEqual({0, Command}, {Status, Command}),
    Out.

setup() ->
    R = homing_test_redis:start(#{appendonly => true}),
    P = <<"interop", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    C = homing_test_redis:client(R, #{prefix => P}),
    #{redis => R, prefix => P, client => C}.

teardown(#{redis := R, client := C}) ->
    homing_conn:stop(C),
    homing_test_redis:stop(R).

node_bin() -> os:find_executable("node").

js_ready() ->
    node_bin() =/= false andalso filelib:is_dir(filename:join([root(), "javascript", "node_modules"])).

%% Run interop.mjs COMMAND (the JavaScript client of the checkout, after npm ci).
js(#{redis := R, prefix := P}, Command, Args) ->
    Script = filename:join([root(), "erlang", "test", "interop.mjs"]),
    Port = open_port({spawn_executable, node_bin()},
                     [{args, [Script, homing_test_redis:url(R), P, Command | Args]},
                      exit_status, stderr_to_stdout, binary]),
    {Status, Out} = collect(Port, []),
    Status =:= 0 orelse io:format(user, "interop.mjs ~s failed:~n~s~n", [Command, Out]),
    ?assertEqual({0, Command}, {Status, Command}).

js_test_() ->
    case js_ready() of
        false -> {"no node or javascript/node_modules (npm ci): JS interop skipped", []};
        true ->
            {foreach, fun setup/0, fun teardown/1,
             [fun(Ctx) -> {atom_to_list(N), {timeout, 120, fun() -> ?MODULE:N(Ctx) end}} end
              || N <- [js_to_erlang, erlang_to_js]]}
    end.

%% Completions without a result keep nothing unless the service sets done_ttl_ms
%% (docs/protocol.md "What a completion keeps"): the tests that read a null result ask.
keep_done(C, S) ->
    {ok, _} = queue_client:configure(C, S, #{<<"done_ttl_ms">> => 600000}),
    ok.

%% JavaScript enqueues every payload; Erlang reads them exactly and echoes each as its
%% result, which JavaScript reads back exactly.
js_to_erlang(#{client := C} = Ctx) ->
    ok = keep_done(C, "j2e"),  % a null payload echoed is a completion without a result
    js(Ctx, "produce", ["j2e"]),
    {ok, Events} = queue_client:dequeue(C, "j2e", #{count => 100}),
    Expected = js_payloads(),
    ?assertEqual(length(Expected), length(Events)),
    [begin
         <<"js-", N/binary>> = Id,
         Want = lists:nth(binary_to_integer(N) + 1, Expected),
         ?assertEqual({Id, {ok, Want}}, {Id, queue_client:payload(E)}),
         ok = queue_client:complete(C, "j2e", Id, T, Want)
     end || #{id := Id, token := T} = E <- Events],
    js(Ctx, "check-results", ["j2e"]).

erlang_to_js(#{client := C} = Ctx) ->
    ok = keep_done(C, "e2j"),
    Ps = js_payloads(),
    Ids = [<<"er-", (integer_to_binary(I))/binary>> || I <- lists:seq(0, length(Ps) - 1)],
    {ok, Ids} = queue_client:enqueue_many(C, "e2j", Ps, #{ids => Ids}),
    js(Ctx, "consume", ["e2j"]),
    [?assertEqual({Id, {ok, P}}, {Id, queue_client:result(C, "e2j", Id, 5000)})
     || {Id, P} <- lists:zip(Ids, Ps)].

interop_test_() ->
    case filelib:is_regular(python_bin()) of
        false -> {"no .venv: run make venv for the interop tests", []};
        true ->
            {foreach, fun setup/0, fun teardown/1,
             [fun(Ctx) -> {atom_to_list(N), {timeout, 120, fun() -> ?MODULE:N(Ctx) end}} end
              || N <- [python_to_erlang, erlang_to_python, timers, retries_and_dead_letters,
                       killed_erlang_worker]]}
    end.

%% Python enqueues every payload; Erlang reads them exactly and completes each with
%% the payload as its result, which Python reads back exactly.
python_to_erlang(#{client := C} = Ctx) ->
    ok = keep_done(C, "p2e"),
    ok_python(Ctx, "produce", ["p2e"]),
    {ok, Events} = queue_client:dequeue(C, "p2e", #{count => 100}),
    Expected = payloads(),
    ?assertEqual(length(Expected), length(Events)),
    [begin
         <<"py-", N/binary>> = Id,
         Want = lists:nth(binary_to_integer(N) + 1, Expected),
         ?assertEqual({Id, {ok, Want}}, {Id, queue_client:payload(E)}),
         ok = queue_client:complete(C, "p2e", Id, T, Want)
     end || #{id := Id, token := T} = E <- Events],
    ok_python(Ctx, "check-results", ["p2e"]).

%% Erlang enqueues every payload; Python checks them and echoes each as its result,
%% which Erlang's result/4 (the producer's feedback, waiting) reads back exactly.
erlang_to_python(#{client := C} = Ctx) ->
    ok = keep_done(C, "e2p"),
    Ps = payloads(),
    Ids = [<<"er-", (integer_to_binary(I))/binary>> || I <- lists:seq(0, length(Ps) - 1)],
    {ok, Ids} = queue_client:enqueue_many(C, "e2p", Ps, #{ids => Ids}),
    ok_python(Ctx, "consume", ["e2p"]),
    [?assertEqual({Id, {ok, P}}, {Id, queue_client:result(C, "e2p", Id, 5000)})
     || {Id, P} <- lists:zip(Ids, Ps)].

%% A Python timer fires for Erlang, an Erlang timer for Python (the Redis clock decides).
timers(#{client := C} = Ctx) ->
    ok_python(Ctx, "timer", ["timers", "py-timer", "150"]),
    {ok, []} = queue_client:dequeue(C, "timers"),
    {ok, #{detail := <<"timer">>}} = queue_client:status(C, "timers", "py-timer"),
    E = wait_event(C, "timers"),
    ?assertMatch(#{id := <<"py-timer">>, attempt := 1}, E),
    ?assertEqual({ok, #{<<"kind">> => <<"timer">>, <<"from">> => <<"python">>}},
                 queue_client:payload(E)),
    ok = queue_client:complete(C, "timers", <<"py-timer">>, maps:get(token, E)),
    {ok, <<"er-timer">>} = queue_client:schedule(C, "timers", <<"erlang timer">>,
                                                 #{delay_ms => 150, id => <<"er-timer">>}),
    ok_python(Ctx, "take", ["timers", "er-timer", "erlang timer", "1"]),
    ?assertEqual({ok, #{<<"by">> => <<"python">>, <<"attempt">> => 1}},
                 queue_client:result(C, "timers", "er-timer", 1000)).

wait_event(C, S) -> wait_event(C, S, 500).
wait_event(_, _, 0) -> error(no_event);
wait_event(C, S, N) ->
    {ok, _} = queue_client:promote(C, S, 100),
    case queue_client:dequeue(C, S) of
        {ok, [E]} -> E;
        {ok, []} -> timer:sleep(20), wait_event(C, S, N - 1)
    end.

%% Erlang fails an event (retry now); Python gets attempt 2 and dead-letters it;
%% Erlang sees the dead letter with Python's reason, requeues it, and Python
%% completes it, which Erlang's feedback sees.
retries_and_dead_letters(#{client := C} = Ctx) ->
    S = "retries",
    {ok, <<"r1">>} = queue_client:enqueue(C, S, <<"retry me">>, #{id => <<"r1">>}),
    {ok, [#{token := T, attempt := 1}]} = queue_client:dequeue(C, S),
    {ok, #{action := <<"retry">>}} = queue_client:fail(C, S, "r1", T, #{reason => <<"erlang says again">>,
                                                                       delay_ms => 0}),
    ok_python(Ctx, "take", [S, "r1", "retry me", "2", "dead"]),
    {ok, #{total := 1, letters := [L]}} = queue_client:dead_list(C, S),
    ?assertMatch(#{id := <<"r1">>, attempt := 2, reason := <<"python gave up">>}, L),
    ?assertEqual({ok, <<"retry me">>}, queue_client:payload(L)),
    ?assertMatch({error, {event_dead, _}}, queue_client:result(C, S, "r1", 0)),
    {ok, {1, 0}} = queue_client:dead_requeue(C, S, [<<"r1">>]),
    %% a requeued dead letter starts over: its attempts are counted afresh
    ok_python(Ctx, "take", [S, "r1", "retry me", "1"]),
    ?assertEqual({ok, #{<<"by">> => <<"python">>, <<"attempt">> => 1}},
                 queue_client:result(C, S, "r1", 1000)),
    %% Python fails an event (retry now): Erlang gets it again as attempt 2
    {ok, <<"r3">>} = queue_client:enqueue(C, S, <<"again">>, #{id => <<"r3">>}),
    ok_python(Ctx, "take", [S, "r3", "again", "1", "retry"]),
    E3 = wait_event(C, S),
    ?assertMatch(#{id := <<"r3">>, attempt := 2}, E3),
    ok = queue_client:complete(C, S, <<"r3">>, maps:get(token, E3)),
    %% and the purge of a dead letter Python made
    {ok, <<"r2">>} = queue_client:enqueue(C, S, <<"purge me">>, #{id => <<"r2">>}),
    ok_python(Ctx, "take", [S, "r2", "purge me", "1", "dead"]),
    ?assertEqual({ok, {1, 0}}, queue_client:dead_purge(C, S, {oldest, 10})),
    ?assertMatch({ok, #{state := <<"unknown">>}}, queue_client:status(C, S, "r2")).

%% An Erlang worker in a VM of its own takes an event and hangs in its handler; the
%% VM is killed (-9). The event was reserved and unstarted (the fast path), so when its
%% lease runs out the scheduler puts it back (must_start), and a Python worker
%% completes it.
killed_erlang_worker(#{client := C, redis := R, prefix := P} = Ctx) ->
    S = "killme",
    {ok, _} = queue_client:configure(C, S, #{<<"lease_ms">> => 1000}),
    {ok, Id} = queue_client:enqueue(C, S, <<"hang here">>),
    Marker = filename:join(maps:get(dir, R), "marker"),
    Ebin = filename:join([root(), "erlang", "ebin"]),
    TestEbin = filename:join([root(), "erlang", "test_ebin"]),
    Expr = lists:flatten(io_lib:format(
             "{ok, _} = gen_queue_consumer:start(interop_hang_consumer, ~p, "
             "#{port => ~B, prefix => ~p}), receive after infinity -> ok end.",
             ["killme", maps:get(port, R), P])),
    Port = open_port({spawn_executable, os:find_executable("erl")},
                     [{args, ["-noshell", "-pa", Ebin, TestEbin, "-eval", Expr]},
                      {env, [{"HOMING_MARKER", Marker}]}, exit_status, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    wait_file(Marker, 400),
    {ok, Held} = file:read_file(Marker),
    ?assertEqual(Id, Held),
    ?assertMatch({ok, #{detail := <<"reserved">>}}, queue_client:status(C, S, Id)),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok after 10000 -> error(erl_not_killed) end,
    ok_python(Ctx, "finish", [S, binary_to_list(Id)]),
    {ok, Result} = queue_client:result(C, S, Id, 0),
    ?assertMatch(#{<<"finished_by">> := <<"python">>, <<"must_start">> := true,
                   <<"attempt">> := 1}, Result).

wait_file(F, 0) -> error({no_file, F});
wait_file(F, N) ->
    case filelib:is_regular(F) of
        true -> ok;
        false -> timer:sleep(25), wait_file(F, N - 1)
    end.
