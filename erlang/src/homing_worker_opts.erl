%% @doc The options of a worker (homing_worker, gen_queue_consumer:start_link/3), checked
%% before it starts so that a bad one is a typed error for the caller, not a crash.
-module(homing_worker_opts).
-export([check/3, durable/1, keys/0]).

%% The options that are the worker's own; the rest go to its connection.
keys() ->
    [client, concurrency, prefetch, lease_ms, handler_timeout_ms, grace_ms, name, poll_max_ms,
     readonly_give_up_ms, require_durable].

%% require_durable: a Redis whose settings may lose acknowledged events is refused
%% before the worker starts (its supervisor sees {error, {not_durable, Why}}).
durable(#{require_durable := false}) -> ok;
durable(#{client := C}) -> homing_durability:check(C, true);
durable(Opts) ->
    case homing_conn:start(maps:without(keys(), Opts)) of
        {ok, Pid} ->
            R = homing_durability:check(homing_conn:client(Pid), true),
            homing_conn:stop(Pid),
            R;
        E -> E
    end.

%% Settings that would only fail later, in the worker, are refused here, typed.
check(Module, Service0, Opts) when is_atom(Module), is_map(Opts) ->
    Service = case unicode:characters_to_binary(Service0) of
                  B when is_binary(B) -> B;
                  _ -> Service0
              end,
    Lease = homing_manifest:layout(<<"policy">>),
    #{<<"min">> := LeaseMin, <<"max">> := LeaseMax} = maps:get(<<"lease_ms">>, Lease),
    Checks = [{concurrency, 1, 1000}, {prefetch, 0, 1000}, {lease_ms, LeaseMin, LeaseMax},
              {handler_timeout_ms, 0, 86400000}, {grace_ms, 0, 86400000},
              {poll_max_ms, 1, 60000}, {readonly_give_up_ms, 0, 86400000}],
    Bad = [homing_manifest:refusal(<<"whole">>, #{<<"what">> => atom_to_binary(K, utf8),
                                                  <<"min">> => Lo, <<"max">> => Hi,
                                                  <<"value">> => io_lib:format("~0tP", [V, 5])})
           || {K, Lo, Hi} <- Checks, V <- [maps:get(K, Opts, Lo)],
              not (is_integer(V) andalso V >= Lo andalso V =< Hi)],
    Loaded = code:ensure_loaded(Module) =:= {module, Module},
    if
        Bad =/= [] -> {error, {invalid_argument, hd(Bad)}};
        not Loaded -> {error, {invalid_argument, <<"no consumer module ",
                                                   (atom_to_binary(Module, utf8))/binary>>}};
        true ->
            case homing_manifest:check_service(Service) of
                ok -> {ok, Service};
                E -> E
            end
    end;
check(_, _, _) ->
    {error, {invalid_argument, <<"a worker takes a consumer module and a map of options">>}}.
