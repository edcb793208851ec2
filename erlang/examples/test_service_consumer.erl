%% The consumer of the original system's talk, as written there (README.md shows it).
-module(test_service_consumer).
-author('gye@tigertext.com').
-behaviour(gen_queue_consumer).
-export([init/0, handle_event/2]).

init() -> {ok, 0}.

handle_event({Id, Payload}, State) ->
    io:format("Received event for test service, id=~p, payload=~p~n", [Id, Payload]),
    queue_client:complete("test_service", Id),
    {ok, State}.
