%% @doc The talk's weather station, for real: the Python demo's site and producer (the
%% weatherman: reports by enqueue_many, forecasts by create_timer, with the scheduler
%% and distributor) against the Erlang weather_consumer (examples/), which posts every
%% event to the site over HTTP and completes it with the site's answer.
-module(weather_tests).
-include_lib("eunit/include/eunit.hrl").

weather_test_() -> interop_tests:with_python("the weather test", 120, fun weather/1).

weather(Py) ->
    R = homing_test_redis:start(#{appendonly => true}),
    Prefix = <<"weather", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    C = homing_test_redis:client(R, #{prefix => Prefix}),
    Script = filename:join([interop_tests:root(), "erlang", "test", "weather_demo.py"]),
    Port = open_port({spawn_executable, Py},
                     [{args, [Script, homing_test_redis:url(R), Prefix, "2"]},
                      {line, 4096}, exit_status, stderr_to_stdout]),
    Site = site_url(Port),
    os:putenv("HOMING_DEMO_SITE", Site),
    {ok, W} = gen_queue_consumer:start_link(weather_consumer, "weather",
                                            #{port => maps:get(port, R), prefix => Prefix,
                                              concurrency => 4, prefetch => 8}),
    {Status, Lines} = finish(Port, []),
    io:format(user, "~nweather demo: ~s~n", [lists:join(" | ", Lines)]),
    ?assertEqual(0, Status),
    %% every event completed, with the site's answer as its result
    {ok, Stats} = queue_client:stats(C, "weather"),
    ?assertEqual(0, maps:get(<<"ready">>, Stats) + maps:get(<<"dead">>, Stats)),
    ?assert(maps:get(<<"total.completed">>, Stats) >= 40),
    [Id] = [list_to_binary(I) || "first " ++ I <- Lines],
    ?assertEqual({ok, #{<<"site">> => <<"{\"ok\": true}">>}},
                 queue_client:result(C, "weather", Id, 0)),
    gen_queue_consumer:stop(W),
    homing_conn:stop(C),
    homing_test_redis:stop(R).

site_url(Port) ->
    receive
        {Port, {data, {eol, "site " ++ Url}}} -> Url;
        {Port, {data, {eol, _Other}}} -> site_url(Port);
        {Port, {exit_status, N}} -> error({weather_demo_exited, N})
    after 30000 -> error(no_site)
    end.

finish(Port, Acc) ->
    receive
        {Port, {data, {eol, L}}} -> finish(Port, [L | Acc]);
        {Port, {data, {noeol, L}}} -> finish(Port, [L | Acc]);
        {Port, {exit_status, N}} -> {N, lists:reverse(Acc)}
    after 90000 -> error(weather_demo_timeout)
    end.
