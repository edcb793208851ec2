%% @doc The homing application: a default connection (for queue_client's talk forms)
%% and the consumers named in the application environment, under homing_sup.
-module(homing_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_Type, _Args) -> homing_sup:start_link().

stop(_State) -> ok.
