%% @doc The worker that runs a gen_queue_consumer, following docs/worker.md.
%%
%% - Fetching: dequeue in reserve mode, at most concurrency + prefetch events
%%   held unhandled; each lease gets a local deadline by the monotonic clock
%%   (taken just before the dequeue, or the last extend that succeeded, plus
%%   the lease length), which is earlier than the real one.
%% - Starting: an event whose local deadline is within 10% of the lease is
%%   released, not started (expired_unstarted); a must_start event is started
%%   (the attempt charged) before its handler runs, and acknowledged alone;
%%   others run at once (the fast path costs no call).
%% - Handling: each handler runs in a process of its own. Returning completes
%%   the event (in the next batch of complete_many) unless the consumer did;
%%   {retry, R} and a crash fail it (retried after the backoff or dead-lettered),
%%   {reject, R} and an undecodable payload dead-letter it at once, {snooze, Ms}
%%   asks for it again after Ms without charging an attempt (a delay the
%%   client refuses fails the event with that reason). Past the
%%   handler timeout (option, else the service's handler_timeout_ms) the
%%   handler is killed (Erlang can) and the event failed with the reason
%%   "handler timed out after N ms".
%% - Heartbeat: every lease / 3, extend every lease held without an outcome,
%%   re-register the service, re-read the lease and timeout policy; an extend
%%   refused settles the lease as lost (not started, its completion not sent).
%%   Then the dashboard's beat (worker_beat), also at start and, marked stopped,
%%   after a graceful shutdown.
%% - Acknowledgements: sent in batches of up to 1000; a batch that cannot be
%%   sent (Redis down) is retried with a backoff; a refused item is lost.
%% - Shutdown: stop fetching, release unstarted events, give running handlers
%%   grace_ms while heartbeating them, send their acknowledgements, exit;
%%   handlers still running then are killed and left to their leases.
%% - Redis restarts: every call that fails on the connection is retried with a
%%   backoff; eredis reconnects, NOSCRIPT reloads the scripts.
-module(homing_worker).
-behaviour(gen_server).
-export([start_link/3, start/3, stop/1, complete_for/2, info/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% The most items one call takes (layout.limits.batch of lua/keys.json).
-define(BATCH, homing_manifest:limit(<<"batch">>)).

start_link(Module, Service, Opts) -> start(start_link, Module, Service, Opts).
start(Module, Service, Opts) -> start(start, Module, Service, Opts).

start(How, Module, Service0, Opts) ->
    case homing_worker_opts:check(Module, Service0, Opts) of
        {ok, Service} when is_map_key(require_durable, Opts) ->
            case homing_worker_opts:durable(Opts) of
                ok -> start(How, Module, Service, maps:remove(require_durable, Opts));
                E -> E
            end;
        {ok, Service} ->
            Args = {Module, Service, Opts},
            case maps:get(name, Opts, undefined) of
                undefined -> gen_server:How(?MODULE, Args, []);
                Name -> gen_server:How({local, Name}, ?MODULE, Args, [])
            end;
        {error, _} = E -> E
    end.

stop(W) -> gen_server:stop(W, normal, infinity).

%% @doc Counters and what the worker holds (for tests and operators).
info(W) -> gen_server:call(W, info).

%% @doc A consumer's complete(Service, Id[, Result]) from inside its handler: sent at
%% once with the lease token; the worker then sends no acknowledgement of its own.
complete_for(#{worker := W, client := C, service := S, id := Id, token := T}, Result) ->
    case queue_client:complete(C, S, Id, T, Result) of
        ok -> W ! {completed_by_consumer, Id}, ok;
        %% Done on the primary (the lease is spent): the worker must not send it again.
        {error, {not_replicated, _}} = E -> W ! {completed_by_consumer, Id}, E;
        %% A full Redis refused a result larger than what it frees: the worker keeps the
        %% completion, with its result, and sends it again (the lease kept extended).
        {error, {redis_full, _}} -> W ! {complete_later, Id, T, Result}, ok;
        E -> E
    end.

%% -- start ------------------------------------------------------------------------

init({Module, Service, Opts}) ->
    process_flag(trap_exit, true),
    Client = case maps:get(client, Opts, undefined) of
                 undefined ->
                     {ok, Conn} = homing_conn:start_link(maps:without(homing_worker_opts:keys(), Opts)),
                     homing_conn:client(Conn);
                 C -> C
             end,
    ok = homing_durability:check(Client, false),   % warns; start/4 refused already
    init(Module, Service, Opts, Client).

init(Module, Service, Opts, Client) ->
    Concurrency = maps:get(concurrency, Opts, 1),
    Slots = [begin {ok, St} = Module:init(), St end || _ <- lists:seq(1, Concurrency)],
    S0 = #{client => Client, service => Service, mod => Module, opts => Opts,
           rich => code:ensure_loaded(Module) =:= {module, Module}
               andalso erlang:function_exported(Module, handle_event, 3),
           concurrency => Concurrency, prefetch => maps:get(prefetch, Opts, 1),
           lease_ms => maps:get(lease_ms, Opts, 30000), timeout_ms => 600000,
           queue => queue:new(), held => #{}, free => Slots, acks => [],
           flushing => false, stopping => false, full => false, backoff => 0, poll => 5,
           ack_pause => 0, readonly_since => undefined,
           counters => #{}, name => homing_presence:name(Service)},
    S1 = policy(S0),
    _ = queue_client:register(Client, Service),
    _ = homing_presence:beat(S1, false),
    self() ! fetch,
    erlang:send_after(beat_every(S1), self(), beat),
    {ok, S1}.

%% The lease and handler timeout: the worker's options, else the service's policy.
policy(#{client := C, service := Svc, opts := O} = S) ->
    case queue_client:stats(C, Svc) of
        {ok, St} ->
            S#{lease_ms => maps:get(lease_ms, O, maps:get(<<"policy.lease_ms">>, St)),
               timeout_ms => maps:get(handler_timeout_ms, O,
                                      maps:get(<<"policy.handler_timeout_ms">>, St))};
        {error, _} -> S
    end.

beat_every(#{lease_ms := L}) -> max(1, L div 3).

count(K, #{counters := C} = S) -> S#{counters := maps:update_with(K, fun(N) -> N + 1 end, 1, C)}.

now_ms() -> erlang:monotonic_time(millisecond).

%% -- gen_server -------------------------------------------------------------------

handle_call(info, _, #{counters := C, held := H, queue := Q} = S) ->
    {reply, C#{held => maps:size(H), queued => queue:len(Q)}, S}.

handle_cast(_, S) -> {noreply, S}.

handle_info(fetch, #{stopping := false} = S) -> {noreply, dispatch(fetch(S))};
handle_info(fetch, S) -> {noreply, S};
handle_info(beat, S) ->
    S1 = policy(homing_presence:beat(beat(S), false)),
    _ = queue_client:register(maps:get(client, S1), maps:get(service, S1)),
    erlang:send_after(beat_every(S1), self(), beat),
    {noreply, dispatch(S1)};
handle_info(flush, S) -> {noreply, flush(S#{flushing := false})};
handle_info({handled, Pid, Id, Outcome}, S) ->
    {noreply, after_handling(handled(Pid, Id, Outcome, S))};
handle_info({'DOWN', _, process, Pid, Why}, S) ->
    {noreply, after_handling(down(Pid, Why, S))};
handle_info({handler_timeout, Id, Pid}, S) -> {noreply, after_handling(timed_out(Id, Pid, S))};
handle_info({complete_later, _, _, _} = Later, S) -> {noreply, schedule_flush(later(Later, S))};
handle_info({completed_by_consumer, Id}, #{held := H} = S) ->
    case H of
        #{Id := Ev} -> {noreply, S#{held := H#{Id := Ev#{completed => true}}}};
        _ -> {noreply, S}
    end;
handle_info({'EXIT', _, Why}, S) when Why =/= normal -> {stop, Why, S};
handle_info(_, S) -> {noreply, S}.

after_handling(S) -> schedule_flush(dispatch(maybe_fetch(S))).

%% -- fetching -----------------------------------------------------------------------

room(#{concurrency := C, prefetch := P, held := H}) -> C + P - maps:size(H).

%% A fetch that found no room waits for handlers to finish: until half the room is
%% free (one dequeue per batch, not per event), or nothing is left to start.
maybe_fetch(#{stopping := false, full := true, concurrency := C, prefetch := P,
              queue := Q} = S) ->
    case room(S) >= max(1, (C + P) div 2) orelse (room(S) > 0 andalso queue:is_empty(Q)) of
        true -> self() ! fetch, S#{full := false};
        false -> S
    end;
maybe_fetch(S) -> S.

fetch(#{client := C, service := Svc, lease_ms := L, opts := O} = S) ->
    case room(S) of
        N when N =< 0 -> S#{full := true};
        N ->
            Before = now_ms(),
            case queue_client:dequeue_batch(C, Svc, #{count => min(N, ?BATCH), reserve => true,
                                                      lease_ms => maps:get(lease_ms, O, 0)}) of
                {ok, #{events := [], wait_ms := W}} when W > 0 ->
                    %% The service's limits (or its pause) hold ready events back: ask
                    %% again when they say, not sooner.
                    erlang:send_after(W, self(), fetch),
                    S#{poll := 5, backoff := 0, readonly_since := undefined};
                {ok, #{events := []}} ->
                    Poll = maps:get(poll, S),
                    erlang:send_after(Poll, self(), fetch),
                    S#{poll := min(Poll * 2, maps:get(poll_max_ms, O, 100)), backoff := 0,
                       readonly_since := undefined};
                {ok, #{events := Events}} ->
                    self() ! fetch,
                    lists:foldl(fun(E, Acc) -> hold(E, Before + L, Acc) end,
                                S#{poll := 5, backoff := 0, readonly_since := undefined}, Events);
                {error, Why} ->
                    B = min(max(50, maps:get(backoff, S) * 2), 2000),
                    logger:warning("homing worker ~ts: dequeue failed (retrying in ~B ms): ~p",
                                   [Svc, B, Why]),
                    erlang:send_after(B, self(), fetch),
                    read_only(Why, S#{backoff := B})
            end
    end.

hold(#{id := Id} = E, Deadline, #{held := H, queue := Q} = S) ->
    S#{held := H#{Id => E#{local_deadline => Deadline, phase => queued}},
       queue := queue:in(Id, Q)}.

%% -- starting -----------------------------------------------------------------------

dispatch(#{free := []} = S) -> S;
dispatch(#{stopping := true} = S) -> S;
dispatch(#{queue := Q, held := H, lease_ms := L, client := C, service := Svc} = S) ->
    case queue:out(Q) of
        {empty, _} -> S;
        {{value, Id}, Q1} ->
            S1 = S#{queue := Q1},
            case H of
                #{Id := #{lost := true}} -> dispatch(drop(Id, S1));
                #{Id := #{local_deadline := D, token := T} = Ev} ->
                    case D - now_ms() < L div 10 of
                        true ->
                            %% Its lease may have run out (an outage, a stall): someone
                            %% else's by now, perhaps. Refused if reclaimed: fine.
                            _ = queue_client:release(C, Svc, [{Id, T}]),
                            dispatch(count(expired_unstarted, drop(Id, S1)));
                        false -> dispatch(start_event(Ev, S1))
                    end;
                _ -> dispatch(S1)
            end
    end.

start_event(#{must_start := true, id := Id, token := T} = Ev, #{client := C, service := Svc} = S) ->
    case queue_client:start(C, Svc, [{Id, T}]) of
        {ok, [Attempt]} when is_integer(Attempt) ->
            run(Ev#{attempt => Attempt, alone => true}, S);
        _ -> count(lost, drop(Id, S))
    end;
start_event(Ev, S) -> run(Ev, S).

run(#{id := Id, token := T} = Ev, #{free := [Slot | Free], held := H, mod := M, rich := Rich,
                                   client := C, service := Svc, timeout_ms := TO} = S) ->
    W = self(),
    Ctx = #{worker => W, client => C, service => Svc, id => Id, token => T,
            attempt => maps:get(attempt, Ev), must_start => maps:get(must_start, Ev)},
    {Pid, Ref} = spawn_monitor(fun() ->
                                       put(homing_current_event, Ctx),
                                       W ! {handled, self(), Id, handle(M, Rich, Ev, Svc, Slot)}
                               end),
    Timer = case TO of
                0 -> undefined;
                _ -> erlang:send_after(TO, W, {handler_timeout, Id, Pid})
            end,
    S#{free := Free, held := H#{Id := Ev#{phase => running, pid => Pid, ref => Ref,
                                          timer => Timer, slot => Slot}}}.

%% In the handler's process: the consumer's callback, its outcome.
handle(M, Rich, #{raw := Raw, attempt := A} = Ev, Svc, Slot) ->
    case homing_envelope:decode(Raw) of
        {error, {_, Why}} -> {reject, <<"corrupt envelope: ", Why/binary>>, Slot};
        {ok, Payload} ->
            try
                R = case Rich of
                        true ->
                            {ok, Trace} = homing_envelope:trace_of(Raw),
                            M:handle_event(maps:without([raw, local_deadline, phase], Ev#{
                                               payload => Payload, service => Svc,
                                               trace => Trace}), A, Slot);
                        false ->
                            M:handle_event({binary_to_list(maps:get(id, Ev)), talk(Payload)}, Slot)
                    end,
                case R of
                    {ok, NewState} -> {ok, NewState};
                    {retry, Why} -> {retry, reason(Why), Slot};
                    {reject, Why} -> {reject, reason(Why), Slot};
                    {snooze, Ms} when is_integer(Ms) -> {snooze, Ms, Slot};
                    Other -> {retry, reason(io_lib:format("handle_event returned ~0tP", [Other, 8])),
                              Slot}
                end
            catch Class:Reason:St ->
                    {retry, reason(io_lib:format("~p:~0tP ~0tP", [Class, Reason, 12, St, 8])), Slot}
            end
    end.

%% The talk's handle_event/2 gets text as a string.
talk(B) when is_binary(B) -> unicode:characters_to_list(B);
talk(V) -> V.

reason(R) ->
    case unicode:characters_to_binary(R) of
        B when is_binary(B) -> B;
        _ -> iolist_to_binary(io_lib:format("~0tp", [R]))
    end.

%% -- outcomes -----------------------------------------------------------------------

handled(Pid, Id, Outcome, #{held := H} = S) ->
    case H of
        #{Id := #{pid := Pid, ref := Ref, timer := Timer} = Ev} ->
            erlang:demonitor(Ref, [flush]),
            Timer =:= undefined orelse erlang:cancel_timer(Timer),
            settle(Ev, Outcome, S);
        _ -> S
    end.

down(Pid, Why, #{held := H} = S) ->
    case [Ev || #{pid := P} = Ev <- maps:values(H), P =:= Pid] of
        [#{slot := Slot, timer := Timer} = Ev] ->
            Timer =:= undefined orelse erlang:cancel_timer(Timer),
            settle(Ev, {retry, reason(io_lib:format("handler exited: ~0tP", [Why, 10])), Slot}, S);
        [] -> S
    end.

timed_out(Id, Pid, #{held := H, timeout_ms := TO, mod := M} = S) ->
    case H of
        #{Id := #{pid := Pid, ref := Ref} = Ev} ->
            erlang:demonitor(Ref, [flush]),
            exit(Pid, kill),
            {ok, Fresh} = M:init(),
            Why = iolist_to_binary(io_lib:format("handler timed out after ~B ms", [TO])),
            count(timed_out, settle(Ev, {retry, Why, Fresh}, S));
        _ -> S
    end.

settle(#{id := Id} = Ev, Outcome, #{free := Free} = S) ->
    Slot = element(tuple_size(Outcome), Outcome),
    S1 = drop(Id, S#{free := [Slot | Free]}),
    case Ev of
        #{lost := true} -> count(lost, S1);
        _ -> ack(Ev, Outcome, S1)
    end.

ack(#{completed := true}, {ok, _}, S) -> count(completed, S);
ack(#{id := Id, token := T} = Ev, {ok, _}, #{acks := A} = S) ->
    S1 = count(completed, S#{acks := A ++ [{complete, Id, T, null}]}),
    case maps:get(alone, Ev, false) of
        true -> flush(S1);   % a started must_start event: acknowledged at once
        false -> S1
    end;
ack(#{id := Id, token := T}, {retry, Why, _}, #{acks := A} = S) ->
    count(failed, S#{acks := A ++ [{fail, Id, T, #{reason => Why}}]});
ack(#{id := Id, token := T}, {reject, Why, _}, #{acks := A} = S) ->
    count(rejected, S#{acks := A ++ [{fail, Id, T, #{reason => Why, dead => true}}]});
ack(#{id := Id, token := T}, {snooze, Ms, _}, #{acks := A} = S) ->
    count(snoozed, S#{acks := A ++ [{snooze, Id, T, Ms}]}).

drop(Id, #{held := H} = S) -> S#{held := maps:remove(Id, H)}.

%% The consumer's completion that a full Redis refused: the worker's to send now.
later({complete_later, Id, T, Result}, #{held := H, acks := A} = S) ->
    H1 = case H of
             #{Id := Ev} -> H#{Id := Ev#{completed => true}};
             _ -> H
         end,
    S#{held := H1, acks := A ++ [{complete, Id, T, Result}]}.

schedule_flush(#{acks := []} = S) -> S;
schedule_flush(#{flushing := true} = S) -> S;
%% A short pause lets the completions of a burst go in one call.
schedule_flush(S) -> erlang:send_after(2, self(), flush), S#{flushing := true}.

%% Completions in batches of up to 1000; fails one by one. A call that cannot
%% reach Redis keeps its acknowledgements for the next try (with a backoff).
flush(#{acks := []} = S) -> S;
flush(#{acks := Acks, client := C, service := Svc} = S) ->
    {Completes, Fails} = lists:partition(fun(A) -> element(1, A) =:= complete end, Acks),
    {Left1, S1} = send_completes(Completes, C, Svc, S),
    {Left2, S2} = lists:foldl(
                    fun(F, {L, Acc}) ->
                            case settle_call(C, Svc, F) of
                                {ok, _} -> {L, Acc};
                                {error, {not_replicated, _}} -> {L, unreplicated(Acc)};
                                {error, {connection, _}} -> {L ++ [F], Acc};
                                {error, _} -> {L, count(lost, Acc)}
                            end
                    end, {[], S1}, Fails),
    case Left1 ++ Left2 of
        [] -> S2#{acks := [], ack_pause := 0};
        Left ->
            %% Redis down, or full (a result larger than what it frees): again after a
            %% pause that doubles from 50 ms to 2 s; the heartbeat keeps the leases.
            Pause = min(max(50, maps:get(ack_pause, S2) * 2), 2000),
            erlang:send_after(Pause, self(), flush),
            S2#{acks := Left, flushing := true, ack_pause := Pause}
    end.

%% A fail or a snooze: sent alone, as its reply matters per event.
settle_call(C, Svc, {fail, Id, T, O}) -> queue_client:fail(C, Svc, Id, T, O);
settle_call(C, Svc, {snooze, Id, T, Ms}) ->
    case queue_client:snooze(C, Svc, Id, T, Ms) of
        %% A delay outside the call's range is the handler's bug (docs/worker.md): the
        %% event is failed with the refusal as its reason, not left to its lease.
        {error, {invalid_argument, Why}} ->
            queue_client:fail(C, Svc, Id, T, #{reason => <<"snooze refused: ", Why/binary>>});
        R -> R
    end.

send_completes([], _, _, S) -> {[], S};
send_completes(Completes, C, Svc, S) ->
    {Batch, Rest} = lists:split(min(?BATCH, length(Completes)), Completes),
    case queue_client:complete_many(C, Svc, [{Id, T, R} || {complete, Id, T, R} <- Batch]) of
        {error, {not_replicated, #{result := {ok, Items}}}} ->
            %% Done on the primary, fewer replicas confirmed it: sending it again would
            %% only be refused (the leases are spent) and count the events as lost.
            send_completes(Rest, C, Svc, unreplicated(lists:foldl(
                fun(ok, A) -> A; (_, A) -> count(lost, A) end, S, Items)));
        {ok, Items} ->
            S1 = lists:foldl(fun(ok, Acc) -> Acc;
                                ({error, {redis_full, _}}, Acc) -> Acc;
                                ({error, _}, Acc) -> count(lost, Acc)
                             end, S, Items),
            Full = [B || {B, {error, {redis_full, _}}} <- lists:zip(Batch, Items)],
            {Left, S2} = send_completes(Rest, C, Svc, S1),
            {Full ++ Left, S2};
        {error, _} -> {Completes, S}
    end.

%% Counted, and warned about at most once a minute.
unreplicated(#{service := Svc} = S) ->
    Now = now_ms(),
    case Now - maps:get(unreplicated_told, S, -60000) >= 60000 of
        true ->
            logger:warning("homing worker ~ts: acknowledgements confirmed by fewer replicas "
                           "than wait_replicas asks (done on the primary)", [Svc]),
            count(unreplicated, S#{unreplicated_told => Now});
        false -> count(unreplicated, S)
    end.

%% READONLY (the server became a replica) is retried like a lost connection, but not
%% for ever: after readonly_give_up_ms (60 s) of nothing but READONLY the worker stops
%% with {gave_up, {read_only, Detail}} (its supervisor decides what next).
read_only({read_only, Detail}, #{readonly_since := undefined} = S) ->
    read_only({read_only, Detail}, S#{readonly_since := now_ms()});
read_only({read_only, Detail}, #{readonly_since := Since, opts := O} = S) ->
    case now_ms() - Since >= maps:get(readonly_give_up_ms, O, 60000) of
        true -> exit({gave_up, {read_only, Detail}});
        false -> S
    end;
read_only(_, S) -> S.

%% -- heartbeat ----------------------------------------------------------------------

beat(#{held := H, client := C, service := Svc, lease_ms := L, opts := O, acks := A} = S) ->
    Live = [E || E <- maps:values(H), not maps:get(lost, E, false)],
    %% and the leases of acknowledgements still waiting to be sent (Redis down or
    %% full): their events stay this worker's until they are.
    Items = lists:usort([{Id, T} || #{id := Id, token := T} <- Live] ++
                        [{element(2, Ack), element(3, Ack)} || Ack <- A]),
    Before = now_ms(),
    lists:foldl(
      fun(Chunk, Acc) ->
              case queue_client:extend_many(C, Svc, Chunk, maps:get(lease_ms, O, 0)) of
                  {ok, Res} ->
                      lists:foldl(fun({{Id, _}, R}, A2) -> extended(Id, R, Before + L, A2) end,
                                  Acc, lists:zip(Chunk, Res));
                  {error, _} -> Acc
              end
      end, S, [Ch || Ch <- chunk(Items), Ch =/= []]).

chunk(L) ->
    case length(L) =< ?BATCH of
        true -> [L];
        false -> {A, B} = lists:split(?BATCH, L), [A | chunk(B)]
    end.

extended(Id, R, Deadline, #{held := H} = S) ->
    case H of
        #{Id := Ev} when is_integer(R) -> S#{held := H#{Id := Ev#{local_deadline := Deadline}}};
        #{Id := Ev} -> S#{held := H#{Id := Ev#{lost => true}}};
        _ -> S
    end.

%% -- shutdown -----------------------------------------------------------------------

terminate(_Why, #{client := C, service := Svc, queue := Q, held := H, opts := O} = S) ->
    Unstarted = [{Id, maps:get(token, maps:get(Id, H))} || Id <- queue:to_list(Q),
                                                           maps:is_key(Id, H)],
    [_ = queue_client:release(C, Svc, Chunk) || Chunk <- chunk(Unstarted), Chunk =/= []],
    S1 = lists:foldl(fun({Id, _}, A) -> drop(Id, A) end, S#{stopping := true, queue := queue:new()},
                     Unstarted),
    Grace = now_ms() + maps:get(grace_ms, O, 30000),
    S2 = drain(S1, Grace),
    S3 = flush(S2),
    _ = flush(S3),  % one more try for what Redis did not take
    _ = homing_presence:beat(S3, true),
    [exit(P, kill) || #{pid := P} <- maps:values(maps:get(held, S3))],
    ok;
terminate(_, _) -> ok.

drain(#{held := H} = S, Grace) when map_size(H) =:= 0 -> S#{grace => Grace};
drain(S, Grace) ->
    Left = Grace - now_ms(),
    case Left > 0 of
        false -> S;
        true ->
            receive
                {handled, Pid, Id, Outcome} -> drain(handled(Pid, Id, Outcome, S), Grace);
                {'DOWN', _, process, Pid, Why} -> drain(down(Pid, Why, S), Grace);
                {handler_timeout, Id, Pid} -> drain(timed_out(Id, Pid, S), Grace);
                {complete_later, _, _, _} = Later -> drain(later(Later, S), Grace);
                {completed_by_consumer, Id} ->
                    H = maps:get(held, S),
                    drain(case H of
                              #{Id := Ev} -> S#{held := H#{Id := Ev#{completed => true}}};
                              _ -> S
                          end, Grace);
                beat ->
                    erlang:send_after(beat_every(S), self(), beat),
                    drain(homing_presence:beat(beat(S), false), Grace)
            after min(Left, 1000) -> drain(S, Grace)
            end
    end.
