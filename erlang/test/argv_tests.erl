%% @doc ARGV parity with Python: for every call step of the conformance vectors, the
%% generic layer (homing_call:build/4) sends the bytes Python's layer sends, or refuses
%% with the same code and words (test/argv.py prints Python's side). Both read one call
%% table and its refusal texts.
-module(argv_tests).
-include_lib("eunit/include/eunit.hrl").

argv_test_() -> interop_tests:with_python("the ARGV parity test", 120, fun parity/1).

parity(Py) ->
    Root = interop_tests:root(),
    Out = os:cmd(Py ++ " " ++ filename:join([Root, "erlang", "test", "argv.py"]) ++ " "
                 ++ filename:join(Root, "conformance")),
    Python = [string:lexemes(L, " ") || L <- string:lexemes(Out, "\n")],
    Erlang = [erlang_side(Op, V, Step) || {Op, {obj, V}} <- homing_conformance:vectors(),
                                         {obj, Step} <- proplists:get_value(<<"steps">>, V),
                                         proplists:is_defined(<<"call">>, Step)],
    ?assertEqual(length(Python), length(Erlang)),
    Diffs = [{N, P, E} || {N, P, E} <- lists:zip3(lists:seq(1, length(Erlang)), Python, Erlang),
                         P =/= E],
    io:format(user, "~nARGV parity: ~B call steps, ~B refused, ~B differ~n",
              [length(Erlang), length([x || ["error" | _] <- Erlang]), length(Diffs)]),
    ?assertEqual([], lists:sublist(Diffs, 5)).

%% What no vector can hold (their lint refuses an unknown argument name and a missing
%% required one): argv.py's CASES, an unknown name, a fraction of an ms, text missing
%% or null. Each line is the case (Erlang text) and Python's outcome.
cases_test_() -> interop_tests:with_python("the call-layer cases", 60, fun cases/1).

cases(Py) ->
    Out = os:cmd(Py ++ " " ++ filename:join([interop_tests:root(), "erlang", "test", "argv.py"])
                 ++ " --cases"),
    Lines = [string:lexemes(L, " ") || L <- string:lexemes(Out, "\n")],
    Diffs = [{Case, Python, Erlang}
             || ["case", Hex | Python] <- Lines,
                {Case, Erlang} <- [run_case(Hex)], Erlang =/= Python],
    ?assert(length(Lines) >= 20),
    ?assertEqual([], Diffs).

run_case(Hex) ->
    Text = binary_to_list(binary:decode_hex(list_to_binary(Hex))),
    {ok, Tokens, _} = erl_scan:string(Text ++ "."),
    {ok, {Name, Args}} = erl_parse:parse_term(Tokens),
    Client = #{max_payload => homing_manifest:layout(<<"default_max_payload_bytes">>),
               prefix => <<"p">>},
    {Text, outcome(homing_call:build(Client, Name, <<"svc">>, Args))}.

%% NaN and the infinities are no Erlang floats; their names as atoms (what a caller
%% might pass) are refused by the ms text, as Python and JavaScript refuse NaN.
non_finite_test() ->
    Client = #{max_payload => 1000, prefix => <<"p">>},
    [?assertEqual({error, {invalid_argument, <<"delay_ms must be a finite number in [0, 2^53 - 1], got ",
                                               (atom_to_binary(A, utf8))/binary>>}},
                  homing_call:build(Client, create_timer, <<"svc">>,
                                    #{payload => 1, id => <<"t1">>, delay_ms => A}))
     || A <- [nan, infinity, neg_infinity]].

%% The refusal of an unknown argument names the call and the names, sorted, in the
%% table's text; a binary key is as unknown as a misspelt atom.
unknown_argument_test() ->
    Client = #{max_payload => 1000, prefix => <<"p">>},
    ?assertEqual({error, {invalid_argument, <<"enqueue takes no argument prority, ttl">>}},
                 homing_call:build(Client, enqueue, <<"svc">>,
                                   #{payload => 1, ttl => 5, <<"prority">> => 3})),
    ?assertMatch({error, {invalid_argument, <<"enqueue takes no argument colour">>}},
                 queue_client:enqueue(#{max_payload => 1000, prefix => <<"p">>}, <<"svc">>, 1,
                                      #{colour => red})).

outcome({ok, _, Argv}) -> ["argv" | [hex(homing_conn:wire(A)) || A <- Argv]];
outcome({error, {Code, Why}}) ->
    C = homing_errors:code(Code),
    ["error", binary_to_list(C), hex(words(C, Why))].

erlang_side(_Op, V, Step) ->
    Max = case proplists:get_value(<<"client">>, V) of
              {obj, Cl} -> proplists:get_value(<<"max_payload">>, Cl);
              undefined -> homing_manifest:layout(<<"default_max_payload_bytes">>)
          end,
    Client = #{max_payload => Max, prefix => <<"p">>},
    Name = proplists:get_value(<<"call">>, Step),
    Service = proplists:get_value(<<"service">>, Step, <<"svc">>),
    Args = homing_conformance:args(proplists:get_value(<<"args">>, Step)),
    outcome(homing_call:build(Client, Name, Service, Args)).

%% As argv.py's words/2: the message without the value refused, or "-".
words(<<"INVALID_NAME">>, Why) ->
    re:replace(Why, <<"^(invalid \\w+ \\w+) .*?(: use .*)$">>, <<"\\1\\2">>,
               [dotall, unicode, {return, binary}]);
words(C, Why) when C =:= <<"INVALID_ARGUMENT">>; C =:= <<"PAYLOAD_TOO_LARGE">> ->
    case string:split(Why, <<", got ">>, trailing) of
        [Head, _] -> Head;
        [Whole] -> Whole
    end;
words(_, _) -> <<"-">>.

hex(<<>>) -> "-";
hex(B) -> string:lowercase(binary_to_list(binary:encode_hex(B))).
