%% @doc A worker's beat for the dashboard (worker_beat on <prefix>:workers; docs/worker.md,
%% docs/dashboard.md): its name, service, host, pid, concurrency, how many leases it
%% holds and a sample of their ids.
-module(homing_presence).
-export([beat/2, name/1]).

%% The dashboard's beat (worker_beat on <prefix>:workers): at start, after each
%% round's extends, and once more, marked stopped, after a graceful shutdown.
%% A failed beat is skipped, never retried.
beat(#{client := C, service := Svc, held := H, concurrency := N, name := Name,
       lease_ms := L} = S, Stopped) ->
    Args = #{name => Name, service => Svc, host => host(), pid => os_pid(),
             concurrency => N, held => maps:size(H), every_ms => max(1, L div 3),
             stopped => Stopped},
    %% A sample of the held ids; none given when none are held (an empty list is refused).
    _ = queue_client:call(C, worker_beat, none,
                          case lists:sublist(maps:keys(H), 50) of
                              [] -> Args;
                              Ids -> Args#{ids => Ids}
                          end),
    S.

%% service:host:pid:random, unique per worker.
name(Service) ->
    iolist_to_binary([Service, ":", host(), ":", integer_to_binary(os_pid()), ":",
                      binary:encode_hex(crypto:strong_rand_bytes(4))]).

host() ->
    {ok, H} = inet:gethostname(),
    B = unicode:characters_to_binary(H),
    binary:part(B, 0, min(255, byte_size(B))).

os_pid() -> list_to_integer(os:getpid()).
