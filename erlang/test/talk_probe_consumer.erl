%% A consumer with only the talk's callbacks that reports what handle_event/2 got.
-module(talk_probe_consumer).
-behaviour(gen_queue_consumer).
-export([init/0, handle_event/2]).

init() -> {ok, 0}.

handle_event({Id, Payload}, N) ->
    persistent_term:get(rich_consumer) ! {talk, Id, Payload, N},
    {ok, N + 1}.
