%% The talk's weather station consumer: "a gen server that consumes weather report,
%% and does a HTTP post to a web server". It takes the reports (and the forecasts,
%% which the weatherman schedules with create_timer) of service "weather" and posts
%% each as JSON to the site's /report, then completes the event with the site's
%% answer as its result. A failed POST crashes the handler: the worker fails the
%% event and homing delivers it again after the backoff.
%%
%% The site's URL comes from HOMING_DEMO_SITE (the demo's variable).
-module(weather_consumer).
-behaviour(gen_queue_consumer).
-export([init/0, handle_event/2]).

init() ->
    {ok, _} = application:ensure_all_started(inets),
    {ok, #{site => os:getenv("HOMING_DEMO_SITE", "http://127.0.0.1:8080/"), posted => 0}}.

handle_event({Id, Report}, #{site := Site, posted := N} = State) when is_map(Report) ->
    %% The event being handled: attempt 1 unless it was delivered before.
    #{attempt := Attempt, must_start := Again} = gen_queue_consumer:current(),
    Body = json(Report#{<<"event_id">> => list_to_binary(Id), <<"attempt">> => Attempt,
                        <<"redelivered">> => Attempt > 1 orelse Again}),
    {ok, {{_, 200, _}, _, Answer}} =
        httpc:request(post, {Site ++ "report", [], "application/json", Body},
                      [{timeout, 10000}], [{body_format, binary}]),
    ok = queue_client:complete("weather", Id, #{<<"site">> => Answer}),
    {ok, State#{posted := N + 1}}.

%% Enough JSON for a report: maps with text keys, text, numbers, booleans, null, lists.
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json(K), ":", json(V)] || {K, V} <- maps:to_list(M)]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(V) || V <- L]), "]"];
json(B) when is_binary(B) -> [$", [esc(C) || <<C/utf8>> <= B], $"];
json(I) when is_integer(I) -> integer_to_binary(I);
json(F) when is_float(F) -> float_to_binary(F, [short]);
json(A) when A =:= true; A =:= false; A =:= null -> atom_to_binary(A, utf8).

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> <<C/utf8>>.
