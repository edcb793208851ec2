%% @doc The homing client for Erlang: producer and consumer calls on the shared Lua.
%%
%% Every function takes a client (homing_conn:client/1, or new/1) first. The
%% forms of the original system's talk take no client and use the homing
%% application's default connection (see README.md):
%%
%%   queue_client:enqueue(ServiceName, MetaData)
%%   queue_client:create_timer(ServiceName, TimeInFutureMs, MetaData)
%%   queue_client:complete(ServiceName, Id)        % inside a gen_queue_consumer
%%
%% Services and ids are text (a binary or a string); payloads follow the
%% mapping of homing_msgpack (text is a binary, bytes {bytes, B}, maps maps).
%% Errors are {error, {Code, Detail}} with Code an atom of homing_errors.
%% Every call is built and parsed by homing_call from the manifest's call table.
-module(queue_client).
-compile({no_auto_import, [register/2]}).
-export([new/1, default/0]).
-export([enqueue/2, enqueue/3, enqueue/4, enqueue_many/3, enqueue_many/4,
         create_timer/3, create_timer/4, schedule/4, cancel_timer/3,
         dequeue/2, dequeue/3, dequeue_batch/3, start/3, complete/2, complete/3, complete/4, complete/5,
         complete_many/3, extend_lease/4, extend_lease/5, extend_many/4, fail/4, fail/5,
         snooze/5, progress/5,
         release/3, status/3, result/3, result/4, stats/2, configure/3,
         dead_list/2, dead_list/4, dead_requeue/3, dead_purge/3, promote/3, distribute/3,
         cancel/3, pause/2, resume/2, recurring_put/5, recurring_list/2, recurring_list/4,
         recurring_remove/3,
         enqueue_group/3, enqueue_group/4, group_status/3, group_result/3, wait_group/4,
         group_forget/3,
         beat/2, register/2, payload/1, call/4]).

-type client() :: homing_conn:client().
-type name() :: unicode:chardata().
-type error() :: {error, {homing_errors:code(), binary()}}.
-type event() :: #{id := binary(), token := integer(), attempt := integer(),
                   deadline_ms := integer(), must_start := boolean(), raw := binary()}.
-export_type([event/0]).

-define(DEFAULT, homing_default).

%% @doc A connection of its own, linked to the caller (options: homing_conn:start_link/1,
%% and require_durable: refuse a Redis whose settings may lose acknowledged events,
%% {error, {not_durable, Why}}; without it they are warned about, see homing_durability).
-spec new(map() | list()) -> {ok, client()} | {error, term()}.
new(Opts0) ->
    Opts = maps:from_list(opts_list(Opts0)),
    case homing_conn:start_link(maps:remove(require_durable, Opts)) of
        {ok, Pid} ->
            C = homing_conn:client(Pid),
            case checked(C, Opts) of
                ok -> {ok, C};
                E -> homing_conn:stop(Pid), E
            end;
        E -> E
    end.

%% The durability settings, and with the WAIT option whether the user may send WAIT
%% (WAIT 0 0 answers at once): refused now rather than after a write.
checked(C, Opts) ->
    case homing_durability:check(C, maps:get(require_durable, Opts, false)) of
        ok when is_map_key(wait, C) ->
            case homing_conn:q(C, [<<"WAIT">>, <<"0">>, <<"0">>]) of
                {error, {no_permission, _}} = E -> E;
                _ -> ok
            end;
        R -> R
    end.

opts_list(O) when is_map(O) -> maps:to_list(O);
opts_list(O) -> O.

%% @doc The homing application's connection (application env: url, prefix, ...).
-spec default() -> client().
default() -> homing_conn:client(?DEFAULT).

%% @doc Run a call of the call table by name with its client arguments (a map).
-spec call(client(), atom(), name() | none, map()) -> {ok, term()} | error().
call(C, Name, Service, Args) -> homing_call:run(C, Name, Service, Args).

%% -- producer ---------------------------------------------------------------

%% @doc The talk's form: enqueue on the default connection; {ok, Id}.
-spec enqueue(name(), term()) -> {ok, binary()} | error().
enqueue(Service, Payload) -> enqueue(default(), Service, Payload).

-spec enqueue(client(), name(), term()) -> {ok, binary()} | error().
enqueue(C, Service, Payload) -> enqueue(C, Service, Payload, #{}).

%% @doc Opts: id (default a new UUID4 hex), key (an idempotency key: a repeat within
%% the service's idem_ttl_ms returns the first event's id and adds nothing), priority
%% (its level 0..9, default 0: ready events of a higher level are delivered first,
%% FIFO within a level).
-spec enqueue(client(), name(), term(), map()) -> {ok, binary()} | error().
enqueue(C, Service, Payload, Opts) ->
    call(C, enqueue, Service, maps:merge(Opts, #{payload => Payload})).

-spec enqueue_many(client(), name(), [term()]) -> {ok, [binary()]} | error().
enqueue_many(C, Service, Payloads) -> enqueue_many(C, Service, Payloads, #{}).

%% @doc Up to 1000 events in one atomic call. Opts: ids, keys (lists as long as
%% Payloads), priorities (such a list, or one level 0..9 for every event, as in Python
%% and JavaScript).
-spec enqueue_many(client(), name(), [term()], map()) -> {ok, [binary()]} | error().
enqueue_many(C, Service, Payloads, Opts) ->
    call(C, enqueue_many, Service, maps:merge(levels(Opts, Payloads), #{payloads => Payloads})).

%% One level for every item, spread into the per-item list the call table takes.
levels(#{priorities := P} = Opts, Payloads) when is_integer(P), is_list(Payloads) ->
    Opts#{priorities := lists:duplicate(length(Payloads), P)};
levels(Opts, _) -> Opts.

%% @doc The talk's form: a timer due TimeInFuture ms from now, by the Redis clock.
-spec create_timer(name(), non_neg_integer(), term()) -> {ok, binary()} | error().
create_timer(Service, DelayMs, Payload) -> create_timer(default(), Service, DelayMs, Payload).

-spec create_timer(client(), name(), non_neg_integer(), term()) -> {ok, binary()} | error().
create_timer(C, Service, DelayMs, Payload) ->
    schedule(C, Service, Payload, #{delay_ms => DelayMs}).

%% @doc Opts: exactly one of delay_ms and at_ms (ms since the epoch, compared with
%% the Redis clock); id, key, priority (the level it fires into) as for enqueue.
-spec schedule(client(), name(), term(), map()) -> {ok, binary()} | error().
schedule(C, Service, Payload, Opts) ->
    call(C, create_timer, Service, maps:merge(Opts, #{payload => Payload})).

-spec cancel_timer(client(), name(), name()) -> {ok, boolean()} | error().
cancel_timer(C, Service, Id) -> call(C, cancel_timer, Service, #{id => Id}).

%% @doc The producer's feedback: what became of event Id (looks once).
-spec status(client(), name(), name()) -> {ok, map()} | error().
status(C, Service, Id) ->
    case call(C, status, Service, #{id => Id}) of
        {ok, #{state := <<"done">>, raw_result := Raw}} ->
            {ok, #{state => <<"done">>, result => result_of(Raw)}};
        Other -> Other
    end.

result_of(<<>>) -> null;
result_of(Raw) ->
    case homing_envelope:decode(Raw) of
        {ok, V} -> V;
        E -> E
    end.

%% @doc The result of event Id once it completed, waiting up to TimeoutMs (polling
%% with a backoff from 2 to 100 ms); {error, {event_dead | unknown_event | timeout, _}}.
-spec result(client(), name(), name()) -> {ok, term()} | error().
result(C, Service, Id) -> result(C, Service, Id, 0).

-spec result(client(), name(), name(), non_neg_integer()) -> {ok, term()} | error().
result(C, Service, Id, TimeoutMs) when is_integer(TimeoutMs), TimeoutMs >= 0 ->
    Deadline = erlang:monotonic_time(millisecond) + TimeoutMs,
    wait_result(C, Service, Id, Deadline, 2);
result(_, _, _, T) ->
    {error, {invalid_argument, iolist_to_binary(io_lib:format(
        "timeout must be whole ms >= 0, got ~0tP", [T, 5]))}}.

wait_result(C, Service, Id, Deadline, Pause) ->
    case status(C, Service, Id) of
        {ok, #{state := <<"done">>, result := {error, _} = E}} -> E;
        {ok, #{state := <<"done">>, result := R}} -> {ok, R};
        {ok, #{state := <<"dead">>, detail := Why}} ->
            {error, {event_dead, <<"the event went to the dead letters: ", Why/binary>>}};
        {ok, #{state := <<"unknown">>}} ->
            {error, {unknown_event, homing_errors:message(unknown_event)}};
        {ok, _Pending} ->
            Left = Deadline - erlang:monotonic_time(millisecond),
            case Left > 0 of
                true ->
                    timer:sleep(min(Pause, Left)),
                    wait_result(C, Service, Id, Deadline, min(Pause * 2, 100));
                false -> {error, {timeout, homing_errors:message(timeout)}}
            end;
        E -> E
    end.

%% -- groups -----------------------------------------------------------------
%% Many events enqueued as one group, their results waited for (or the first
%% failure) with one call and removed together (docs/architecture.md, groups).

-spec enqueue_group(client(), name(), [term()]) -> {ok, map()} | error().
enqueue_group(C, Service, Payloads) -> enqueue_group(C, Service, Payloads, #{}).

%% @doc Up to 1000 new events as one group: {ok, #{group := Gid, ids := [Id]}}.
%% Opts: ids (as long as Payloads; every id must be new), priorities (one level 0..9
%% per member, or one for all, as for enqueue_many).
-spec enqueue_group(client(), name(), [term()], map()) -> {ok, map()} | error().
enqueue_group(C, Service, Payloads, Opts) ->
    case call(C, enqueue_group, Service, maps:merge(levels(Opts, Payloads),
                                                    #{payloads => Payloads})) of
        {ok, #{group := G, records := Rs}} -> {ok, #{group => G, ids => [I || #{id := I} <- Rs]}};
        Other -> Other
    end.

%% @doc {ok, #{total, done, failed (<<>> if none), finished_ms (0 while it runs)}}.
-spec group_status(client(), name(), name()) -> {ok, map()} | error().
group_status(C, Service, Gid) -> call(C, group_status, Service, #{group => Gid}).

%% @doc Looks once: {ok, null} while the group runs, {ok, [Result]} in order once every
%% member completed, {error, {group_failed, _}} once one was dead-lettered or cancelled.
-spec group_result(client(), name(), name()) -> {ok, null | [term()]} | error().
group_result(C, Service, Gid) ->
    case call(C, group_result, Service, #{group => Gid}) of
        {ok, #{finished := false}} -> {ok, null};
        {ok, #{records := Rs}} -> {ok, [result_of(R) || #{raw_result := R} <- Rs]};
        Other -> Other
    end.

%% @doc group_result/3, polled with a backoff from 2 to 100 ms for up to TimeoutMs.
-spec wait_group(client(), name(), name(), non_neg_integer()) -> {ok, [term()]} | error().
wait_group(C, Service, Gid, TimeoutMs) when is_integer(TimeoutMs), TimeoutMs >= 0 ->
    wait_group(C, Service, Gid, erlang:monotonic_time(millisecond) + TimeoutMs, 2).

wait_group(C, Service, Gid, Deadline, Pause) ->
    case group_result(C, Service, Gid) of
        {ok, null} ->
            Left = Deadline - erlang:monotonic_time(millisecond),
            case Left > 0 of
                true ->
                    timer:sleep(min(Pause, Left)),
                    wait_group(C, Service, Gid, Deadline, min(Pause * 2, 100));
                false -> {error, {timeout, homing_errors:message(timeout)}}
            end;
        Other -> Other
    end.

%% @doc Remove a group and its members' results now: {ok, ResultsRemoved}.
-spec group_forget(client(), name(), name()) -> {ok, non_neg_integer()} | error().
group_forget(C, Service, Gid) -> call(C, group_forget, Service, #{group => Gid}).

%% -- consumer ---------------------------------------------------------------

-spec dequeue(client(), name()) -> {ok, [event()]} | error().
dequeue(C, Service) -> dequeue(C, Service, #{}).

%% @doc Opts: count (1..1000, default 1), lease_ms (default the service's policy),
%% reserve (the worker's prefetch: the attempt is charged once started).
-spec dequeue(client(), name(), map()) -> {ok, [event()]} | error().
dequeue(C, Service, Opts) -> call(C, dequeue, Service, Opts).

%% @doc As dequeue/3, with the reply's wait_ms: #{events => [event()], wait_ms => Ms}.
%% wait_ms is above 0 when the service's rate_limit, concurrency or pause held ready
%% events back: ask again after that long (what the worker does), not at once.
-spec dequeue_batch(client(), name(), map()) ->
          {ok, #{events := [event()], wait_ms := non_neg_integer()}} | error().
dequeue_batch(C, Service, Opts) -> call(C, dequeue_batch, Service, Opts).

%% @doc Mark reserved events started: per item the attempt now charged, or its error.
-spec start(client(), name(), [{name(), integer()}]) -> {ok, [integer() | error()]} | error().
start(C, Service, Items) -> call(C, start, Service, #{items => leases(Items)}).

%% @doc The talk's form, inside a gen_queue_consumer's handle_event: complete the event
%% this process is handling (its worker knows the lease token).
-spec complete(name(), name()) -> ok | error().
complete(Service, Id) -> complete(Service, Id, null).

%% @doc The same with a result for the producer's result/4 (any payload term).
-spec complete(name(), name(), term()) -> ok | error().
complete(Service, Id, Result) -> gen_queue_consumer:complete(Service, Id, Result).

-spec complete(client(), name(), name(), integer()) -> ok | error().
complete(C, Service, Id, Token) -> ok_of(call(C, complete, Service, #{id => Id, token => Token})).

-spec complete(client(), name(), name(), integer(), term()) -> ok | error().
complete(C, Service, Id, Token, Result) ->
    ok_of(call(C, complete, Service, #{id => Id, token => Token, result => Result})).

%% @doc Items {Id, Token} or {Id, Token, Result}: per item ok or its error.
-spec complete_many(client(), name(), list()) -> {ok, [ok | error()]} | error().
complete_many(C, Service, Items) ->
    call(C, complete_many, Service,
         #{items => case is_list(Items) of
                        true -> [case I of
                                     {Id, T, R} -> #{id => Id, token => T, result => R};
                                     {Id, T} -> #{id => Id, token => T};
                                     M -> M
                                 end || I <- Items];
                        false -> Items
                    end}).

-spec extend_lease(client(), name(), name(), integer()) -> {ok, integer()} | error().
extend_lease(C, Service, Id, Token) -> call(C, extend_lease, Service, #{id => Id, token => Token}).

%% @doc The new deadline (ms); LeaseMs 0 takes the service's lease_ms.
-spec extend_lease(client(), name(), name(), integer(), non_neg_integer()) ->
    {ok, integer()} | error().
extend_lease(C, Service, Id, Token, LeaseMs) ->
    call(C, extend_lease, Service, #{id => Id, token => Token, lease_ms => LeaseMs}).

-spec extend_many(client(), name(), [{name(), integer()}], non_neg_integer()) ->
    {ok, [integer() | error()]} | error().
extend_many(C, Service, Items, LeaseMs) ->
    call(C, extend_many, Service, #{items => leases(Items), lease_ms => LeaseMs}).

-spec fail(client(), name(), name(), integer()) -> {ok, map()} | error().
fail(C, Service, Id, Token) -> fail(C, Service, Id, Token, #{}).

%% @doc Opts: reason (text), dead (true: to the dead letters now), delay_ms (instead of
%% the backoff policy). {ok, #{action := <<"retry">> | <<"dead">>, at_ms := Ms}}.
-spec fail(client(), name(), name(), integer(), map()) -> {ok, map()} | error().
fail(C, Service, Id, Token, Opts) ->
    call(C, fail, Service, maps:merge(Opts, #{id => Id, token => Token})).

%% @doc Ask for a leased event again in DelayMs ms without it counting as an attempt:
%% {ok, #{action := <<"snoozed">>, at_ms := Due}}, or, once the event had used up the
%% service's max_snoozes, {ok, #{action := <<"dead">>, at_ms := Died}}. A stale token is
%% {error, {stale_lease, _}}. (The Python and JavaScript clients also hint the due-time
%% index after it; without the hint the scheduler's backstop sweep finds the snooze.)
-spec snooze(client(), name(), name(), integer(), non_neg_integer()) -> {ok, map()} | error().
snooze(C, Service, Id, Token, DelayMs) ->
    call(C, snooze, Service, #{id => Id, token => Token, delay_ms => DelayMs}).

%% @doc Record how far the handler got with a leased event, a whole percentage 0..100
%% (fenced by the token): {ok, Value}; status/3 shows it as progress.
-spec progress(client(), name(), name(), integer(), 0..100) -> {ok, integer()} | error().
progress(C, Service, Id, Token, Value) ->
    call(C, progress, Service, #{id => Id, token => Token, value => Value}).

%% @doc Back to the head of the line, no attempt counted: per item ok or its error.
-spec release(client(), name(), [{name(), integer()}]) -> {ok, [ok | error()]} | error().
release(C, Service, Items) -> call(C, release, Service, #{items => leases(Items)}).

%% Not a list: passed on as it is, for the call layer to refuse (invalid_argument).
leases(Items) when is_list(Items) ->
    [case I of
         {Id, T} -> #{id => Id, token => T};
         M -> M
     end || I <- Items];
leases(Other) -> Other.

%% @doc An event's payload decoded, or {error, {corrupt_envelope, _}}.
-spec payload(event() | binary()) -> {ok, term()} | error().
payload(#{raw := Raw}) -> homing_envelope:decode(Raw);
payload(Raw) -> homing_envelope:decode(Raw).

%% -- operations ------------------------------------------------------------

-spec stats(client(), name()) -> {ok, map()} | error().
stats(C, Service) -> call(C, stats, Service, #{}).

%% @doc Policy overrides (field => number, null removes one); the effective policy.
-spec configure(client(), name(), map() | list()) -> {ok, map()} | error().
configure(C, Service, Policy) -> call(C, configure, Service, #{policy => Policy}).

%% @doc The first page, by the call table's defaults (offset 0, count 100).
-spec dead_list(client(), name()) -> {ok, map()} | error().
dead_list(C, Service) -> call(C, dead_list, Service, #{}).

%% @doc {ok, #{total := N, letters := [#{id, died_ms, attempt, reason, raw}]}}, oldest first.
-spec dead_list(client(), name(), non_neg_integer(), pos_integer()) -> {ok, map()} | error().
dead_list(C, Service, Offset, Count) ->
    call(C, dead_list, Service, #{offset => Offset, count => Count}).

%% @doc Back to ready: Which is a list of ids, or {oldest, Count}. {ok, {Moved, Remaining}}.
-spec dead_requeue(client(), name(), [name()] | {oldest, pos_integer()}) ->
    {ok, {integer(), integer()}} | error().
dead_requeue(C, Service, Which) -> dead(C, dead_requeue, requeued, Service, Which).

-spec dead_purge(client(), name(), [name()] | {oldest, pos_integer()}) ->
    {ok, {integer(), integer()}} | error().
dead_purge(C, Service, Which) -> dead(C, dead_purge, purged, Service, Which).

dead(C, Call, Field, Service, Which) ->
    Args = case Which of
               {oldest, N} -> #{count => N};
               Ids -> #{ids => Ids}
           end,
    case call(C, Call, Service, Args) of
        {ok, #{Field := Moved, remaining := Left}} -> {ok, {Moved, Left}};
        Other -> Other
    end.

%% @doc Cancel a queued event (ready, waiting out a retry, or a pending timer):
%% {ok, #{cancelled := true, state := Left}} or {ok, #{cancelled := false, state := WhyNot}}
%% (leased and reserved events are left to their holders). O(1) whatever the
%% queue's length: a ready event's id stays in the ready list as a dead copy that
%% dequeue skips (docs/architecture.md).
-spec cancel(client(), name(), name()) -> {ok, map()} | error().
cancel(C, Service, Id) -> call(C, cancel, Service, #{id => Id}).

%% @doc Pause a service: dequeue hands out nothing until resume/2 (producers, timers
%% and leases already out go on); the policy field paused, shown by stats.
-spec pause(client(), name()) -> ok | error().
pause(C, Service) -> ok_of(configure(C, Service, #{<<"paused">> => 1})).

-spec resume(client(), name()) -> ok | error().
resume(C, Service) -> ok_of(configure(C, Service, #{<<"paused">> => null})).

ok_of({ok, _}) -> ok;
ok_of(E) -> E.

%% @doc The recurring timer Name: Opts has exactly one of every_ms and cron (UTC), and
%% catch_up (default true: after downtime one event stands for the missed ticks), priority
%% (0..9, the level every occurrence fires into). Each tick fires the event
%% <Name>.<tick_ms> with Payload. {ok, NextTickMs}.
-spec recurring_put(client(), name(), name(), term(), map()) -> {ok, integer()} | error().
recurring_put(C, Service, Name, Payload, Opts) ->
    call(C, recurring_put, Service, maps:merge(Opts, #{name => Name, payload => Payload})).

%% @doc The first page, by the call table's defaults (offset 0, count 100).
-spec recurring_list(client(), name()) -> {ok, map()} | error().
recurring_list(C, Service) -> call(C, recurring_list, Service, #{}).

%% @doc {ok, #{total := N, schedules := [#{name, spec, next_ms, fired, skipped, priority}]}}, by name.
-spec recurring_list(client(), name(), non_neg_integer(), pos_integer()) -> {ok, map()} | error().
recurring_list(C, Service, Offset, Count) ->
    call(C, recurring_list, Service, #{offset => Offset, count => Count}).

-spec recurring_remove(client(), name(), name()) -> {ok, boolean()} | error().
recurring_remove(C, Service, Name) -> call(C, recurring_remove, Service, #{name => Name}).

%% @doc One scheduler step (timers, retries, expired leases); Limit per kind.
-spec promote(client(), name(), pos_integer()) -> {ok, map()} | error().
promote(C, Service, Limit) -> call(C, promote, Service, #{limit => Limit}).

%% @doc One distributor step (expired leases to retry or the dead letters).
-spec distribute(client(), name(), pos_integer()) -> {ok, map()} | error().
distribute(C, Service, Limit) -> call(C, distribute, Service, #{limit => Limit}).

%% @doc A daemon's heartbeat, by the Redis clock.
-spec beat(client(), name()) -> ok | error().
beat(C, Name) ->
    case call(C, beat, none, #{name => Name}) of
        {ok, _} -> ok;
        E -> E
    end.

%% @doc Add Service to the registry the daemons sweep (workers do it on start and
%% with each heartbeat). On a full Redis the SADD is refused even for a member:
%% then a member is fine.
-spec register(client(), name()) -> ok | error().
register(#{prefix := P} = C, Service0) ->
    Service = unicode:characters_to_binary(Service0),
    case homing_manifest:check_service(Service) of
        ok ->
            Key = homing_manifest:global_key(P, <<"services">>),
            case homing_conn:q(C, [<<"SADD">>, Key, Service], Key) of
                {ok, _} -> homing_conn:seen(C, Service), ok;
                {error, {redis_full, _}} = E ->
                    case homing_conn:q(C, [<<"SISMEMBER">>, Key, Service], Key) of
                        {ok, <<"1">>} -> ok;
                        _ -> E
                    end;
                E -> E
            end;
        E -> E
    end.
