%% @doc The envelope codec beyond the golden vectors: PropEr round trips (Debian's
%% erlang-proper, called without its header, which only erlang-proper-dev ships),
%% nesting limits without deep recursion, and what is not encodable.
-module(envelope_tests).
-include_lib("eunit/include/eunit.hrl").
-export([value/0]).

-define(MAX_U64, 18446744073709551615).
-define(MIN_I64, -9223372036854775808).

%% -- generators -------------------------------------------------------------------

text() ->
    proper_types:frequency([{3, proper_types:binary()}, {5, proper_unicode:utf8()}]).

scalar() ->
    proper_types:oneof([null, true, false,
                        proper_types:integer(?MIN_I64, ?MAX_U64),
                        proper_types:integer(-200, 70000),
                        proper_types:float(),
                        proper_unicode:utf8(),
                        {bytes, proper_types:binary()}]).

value() -> proper_types:sized(fun(N) -> value(N) end).

value(0) -> scalar();
value(N) ->
    Sub = proper_types:resize(N div 3, proper_types:lazy(fun() -> value(N div 3) end)),
    proper_types:frequency(
      [{4, scalar()},
       {1, proper_types:list(Sub)},
       {1, proper_types:bind(
             proper_types:list(proper_types:tuple([proper_types:oneof([proper_unicode:utf8(),
                                                                       proper_types:integer()]),
                                                   Sub])),
             fun maps:from_list/1, false)}]).

%% Text that is not UTF-8 must be refused, never written as a broken str.
check(Prop) ->
    ?assertEqual(true, proper:quickcheck(Prop, [{numtests, 300}, {max_size, 30}, quiet])).

%% -- properties ---------------------------------------------------------------------

round_trip_test_() ->
    {timeout, 120, fun() ->
        check(proper:forall(value(), fun(V) ->
            {ok, B} = homing_envelope:encode(V),
            {ok, V2} = homing_envelope:decode(B),
            V2 =:= V
        end))
    end}.

%% Encoding is canonical: what a decoder reads back encodes to the same bytes
%% (smallest formats), so every client writes the same bytes for a payload.
canonical_test_() ->
    {timeout, 120, fun() ->
        check(proper:forall(value(), fun(V) ->
            {ok, B} = homing_envelope:encode(V),
            {ok, V2} = homing_envelope:decode(B),
            homing_envelope:encode(V2) =:= {ok, B}
        end))
    end}.

%% Any bytes at all decode to a value or a corrupt_envelope error, never a crash.
garbage_test_() ->
    {timeout, 120, fun() ->
        check(proper:forall(proper_types:binary(), fun(B) ->
            case homing_envelope:decode(B) of
                {ok, _} -> true;
                {error, {corrupt_envelope, Why}} -> is_binary(Why)
            end
        end)),
        %% and every truncation of a real envelope is refused
        check(proper:forall(value(), fun(V) ->
            {ok, B} = homing_envelope:encode(V),
            Cuts = lists:usort([0, byte_size(B) - 1 | [rand:uniform(byte_size(B)) - 1
                                                        || _ <- lists:seq(1, 10)]]),
            lists:all(fun(N) ->
                              element(1, homing_envelope:decode(binary:part(B, 0, N))) =:= error
                      end, Cuts)
        end))
    end}.

text_test_() ->
    check(proper:forall(text(), fun(B) ->
        case unicode:characters_to_binary(B) of
            B -> element(1, homing_envelope:encode(B)) =:= ok;
            _ -> element(1, homing_envelope:encode(B)) =:= error
        end
    end)),
    [].

%% -- examples -----------------------------------------------------------------------

deep(N) -> lists:foldl(fun(_, A) -> [A] end, 1, lists:seq(1, N)).

nesting_test() ->
    Limit = homing_envelope:max_nesting(),
    ?assertMatch({ok, _}, homing_envelope:encode(deep(Limit))),
    ?assertMatch({error, {payload_not_encodable, _}}, homing_envelope:encode(deep(Limit + 1))),
    ?assertMatch({error, {payload_not_encodable, _}}, homing_envelope:encode(deep(10000))),
    %% A stored envelope nested 10,000 levels: refused, not a deep recursion.
    Deep = iolist_to_binary([<<16#82, 16#a1, $v, 1, 16#a1, $p>>,
                             binary:copy(<<16#91>>, 10000), <<1>>]),
    ?assertMatch({error, {corrupt_envelope, _}}, homing_envelope:decode(Deep)),
    {ok, AtLimit} = homing_envelope:encode(deep(Limit)),
    ?assertEqual({ok, deep(Limit)}, homing_envelope:decode(AtLimit)).

not_encodable_test() ->
    Bad = [?MAX_U64 + 1, ?MIN_I64 - 1, an_atom, {tuple}, self(), #{[1] => 2},
           #{{bytes, <<1>>} => 1}, <<255, 254>>, [1 | 2], {map, [notapair]}],
    [?assertMatch({error, {payload_not_encodable, _}}, homing_envelope:encode(B)) || B <- Bad].

trace_test() ->
    TP = <<"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01">>,
    {ok, B} = homing_envelope:encode(<<"x">>, #{<<"traceparent">> => TP, <<"tracestate">> => <<"a=1">>}),
    ?assertEqual({ok, <<"x">>}, homing_envelope:decode(B)),
    ?assertEqual({ok, #{<<"traceparent">> => TP, <<"tracestate">> => <<"a=1">>}},
                 homing_envelope:trace_of(B)),
    %% an invalid traceparent does not travel: the revision 1.0 bytes
    ?assertEqual(homing_envelope:encode(<<"x">>),
                 homing_envelope:encode(<<"x">>, #{<<"traceparent">> => <<"nope">>})),
    ?assertEqual({ok, null}, homing_envelope:trace_of(element(2, homing_envelope:encode(1)))).

forms_test() ->
    %% {text, Chardata} is text; {map, Pairs} keeps its order; NaN and the infinities.
    {ok, T} = homing_envelope:encode({text, "hé"}),
    ?assertEqual({ok, <<"hé"/utf8>>}, homing_envelope:decode(T)),
    {ok, M} = homing_envelope:encode({map, [{<<"b">>, 1}, {<<"a">>, 2}]}),
    ?assertEqual(<<16#82, 16#a1, $v, 1, 16#a1, $p, 16#82, 16#a1, $b, 1, 16#a1, $a, 2>>, M),
    [begin
         {ok, B} = homing_envelope:encode(F),
         ?assertEqual({ok, F}, homing_envelope:decode(B))
     end || F <- [nan, infinity, neg_infinity]],
    ?assertEqual({ok, 1.5}, homing_envelope:decode(
                              <<16#82, 16#a1, $v, 1, 16#a1, $p, 16#ca, 16#3f, 16#c0, 0, 0>>)).
