%% The consumer of the killed worker in interop_tests: writes the id of the event
%% it got to $HOMING_MARKER, then hangs mid-event until its VM is killed.
-module(interop_hang_consumer).
-behaviour(gen_queue_consumer).
-export([init/0, handle_event/2]).

init() -> {ok, none}.

handle_event({Id, _Payload}, State) ->
    ok = file:write_file(os:getenv("HOMING_MARKER"), Id),
    receive never -> {ok, State} end.
