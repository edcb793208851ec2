%% @doc The consumer behaviour of the original system, on homing.
%%
%% A consumer is a module with the talk's two callbacks:
%%
%%   -callback init() -> {ok, State}.
%%   -callback handle_event({Id :: string(), Payload :: string()}, State) -> {ok, NewState}.
%%
%% Id is the event id as a string; Payload is the payload as a string when it
%% is text (the talk's metadata), otherwise its decoded term (a map, a list, a
%% number, ...; see homing_msgpack). A consumer that needs more exports the
%% optional handle_event/3 instead, which gets the whole event (a map: id,
%% payload, attempt, must_start, deadline_ms, service; payload decoded, text
%% as a binary) and may return {retry, Reason} (fail now, retried after the
%% service's backoff), {reject, Reason} (to the dead letters at once) or
%% {snooze, DelayMs} (again after DelayMs, not counted as an attempt; past the
%% service's max_snoozes it is dead-lettered) as well as {ok, NewState}.
%%
%% Inside a handler, queue_client:complete(Service, Id) (and complete/3 with a
%% result) acknowledges the event as in the talk; if the handler returns
%% without doing so, the worker completes it. A handler that crashes fails
%% the event (retried, or dead-lettered after max_attempts).
%%
%% start_link/3 starts a supervised worker (homing_worker, docs/worker.md);
%% child_spec/3 puts one under your own supervisor.
-module(gen_queue_consumer).
-export([start_link/3, start/3, stop/1, child_spec/3, complete/3, current/0]).

-callback init() -> {ok, State :: term()}.
-callback handle_event({Id :: string(), Payload :: string()}, State :: term()) ->
    {ok, NewState :: term()}.
-callback handle_event(Event :: map(), Attempt :: pos_integer(), State :: term()) ->
    {ok, NewState :: term()} | {retry, Reason :: unicode:chardata()}
    | {reject, Reason :: unicode:chardata()} | {snooze, DelayMs :: non_neg_integer()}.
-optional_callbacks([handle_event/3]).

%% @doc Run Module as a worker of Service. Opts: the connection (client => a
%% homing_conn client, or url / host / port / prefix ...), concurrency (1),
%% prefetch (1), lease_ms (the service's policy), handler_timeout_ms (the
%% service's policy), grace_ms (30000), name (a registered name).
-spec start_link(module(), unicode:chardata(), map()) -> {ok, pid()} | {error, term()}.
start_link(Module, Service, Opts) -> homing_worker:start_link(Module, Service, Opts).

-spec start(module(), unicode:chardata(), map()) -> {ok, pid()} | {error, term()}.
start(Module, Service, Opts) -> homing_worker:start(Module, Service, Opts).

%% @doc Stop gracefully: unstarted events released, running handlers given grace_ms.
-spec stop(pid() | atom()) -> ok.
stop(Worker) -> homing_worker:stop(Worker).

-spec child_spec(module(), unicode:chardata(), map()) -> supervisor:child_spec().
child_spec(Module, Service, Opts) ->
    #{id => {?MODULE, Module, iolist_to_binary(Service)},
      start => {?MODULE, start_link, [Module, Service, Opts]},
      restart => permanent, shutdown => maps:get(grace_ms, Opts, 30000) + 5000,
      type => worker, modules => [homing_worker, Module]}.

%% @doc The event the calling handler process is running: its worker, client,
%% service, id and lease token.
-spec current() -> map() | undefined.
current() -> get(homing_current_event).

%% @doc complete(Service, Id, Result) from inside a handler (queue_client:complete/2,3):
%% the worker holds the lease token, so the consumer names the event only.
-spec complete(unicode:chardata(), unicode:chardata(), term()) -> ok | {error, term()}.
complete(Service0, Id0, Result) ->
    Service = unicode:characters_to_binary(Service0),
    Id = unicode:characters_to_binary(Id0),
    case current() of
        #{service := Service, id := Id} = Ev -> homing_worker:complete_for(Ev, Result);
        _ ->
            {error, {invalid_argument, <<"complete/2 names the event this handler is running; "
                                         "elsewhere use queue_client:complete/5 with its token">>}}
    end.
