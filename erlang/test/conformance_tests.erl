%% @doc Every conformance vector and every golden envelope vector, one EUnit test each,
%% against a private standalone redis-server.
-module(conformance_tests).
-include_lib("eunit/include/eunit.hrl").

envelope_vectors_test_() ->
    [{binary_to_list(name(V)), ?_assertEqual(ok, homing_conformance:run_envelope(V))}
     || V <- homing_conformance:envelopes()].

vectors_test_() ->
    {setup,
     fun() ->
             R = homing_test_redis:start(),
             C = homing_test_redis:client(R, #{prefix => homing_conformance:new_prefix()}),
             {R, C}
     end,
     fun({R, C}) -> homing_conn:stop(C), homing_test_redis:stop(R) end,
     fun({_, C}) ->
             {timeout, 300,
              [{Op ++ ": " ++ binary_to_list(name(V)),
                ?_assertEqual(ok, homing_conformance:run_vector(C, Op, V))}
               || {Op, V} <- homing_conformance:vectors()]}
     end}.

name({obj, L}) -> proplists:get_value(<<"name">>, L).
