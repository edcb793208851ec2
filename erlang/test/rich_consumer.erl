%% A consumer with the richer callback: the payload says what to do, and every
%% event is reported to the test process named in persistent_term rich_consumer.
-module(rich_consumer).
-behaviour(gen_queue_consumer).
-export([init/0, handle_event/2, handle_event/3]).

init() -> {ok, 0}.

handle_event(_, State) -> {ok, State}.

handle_event(#{id := Id, payload := P} = Ev, Attempt, N) ->
    Test = persistent_term:get(rich_consumer, undefined),
    Test =/= undefined andalso (Test ! {event, self(), Id, P, Attempt, Ev}),
    case P of
        <<"retry">> -> {retry, "asked to retry"};
        <<"reject">> -> {reject, <<"asked to reject">>};
        <<"crash">> -> error(asked_to_crash);
        <<"snooze">> -> {snooze, 60000};
        <<"snooze too long">> -> {snooze, 100 * 86400000};
        <<"hang">> -> receive never -> ok end;
        <<"sleep">> -> timer:sleep(600), {ok, N + 1};
        <<"big result">> ->
            ok = queue_client:complete(maps:get(service, Ev), Id, {bytes, binary:copy(<<"r">>, 200000)}),
            {ok, N + 1};
        <<"complete with result">> ->
            ok = queue_client:complete(maps:get(service, Ev), Id, #{<<"answer">> => 42}),
            {ok, N + 1};
        _ -> {ok, N + 1}
    end.
