%% @doc ARGV parity with Python: for every call step of the conformance vectors, the
%% generic layer (homing_call:build/4) sends the bytes Python's layer sends, or refuses
%% with the same code and words (test/argv.py prints Python's side). Both read one call
%% table and its refusal texts.
-module(argv_tests).
-include_lib("eunit/include/eunit.hrl").

argv_test_() ->
    Py = filename:join([interop_tests:root(), ".venv", "bin", "python"]),
    case filelib:is_regular(Py) of
        false -> {"no .venv: run make venv for the ARGV parity test", []};
        true -> {timeout, 120, fun() -> parity(Py) end}
    end.

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

erlang_side(_Op, V, Step) ->
    Max = case proplists:get_value(<<"client">>, V) of
              {obj, Cl} -> proplists:get_value(<<"max_payload">>, Cl);
              undefined -> homing_manifest:layout(<<"default_max_payload_bytes">>)
          end,
    Client = #{max_payload => Max, prefix => <<"p">>},
    Name = proplists:get_value(<<"call">>, Step),
    Service = proplists:get_value(<<"service">>, Step, <<"svc">>),
    Args = homing_conformance:args(proplists:get_value(<<"args">>, Step)),
    case homing_call:build(Client, Name, Service, Args) of
        {ok, _, Argv} -> ["argv" | [hex(homing_conn:wire(A)) || A <- Argv]];
        {error, {Code, Why}} ->
            C = homing_errors:code(Code),
            ["error", binary_to_list(C), hex(words(C, Why))]
    end.

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
