%% @doc A minimal RESP2 connection for the conformance runner's raw script steps only.
%%
%% eredis gives an integer reply as its decimal text, so through it a raw step could
%% not tell the integer 1 from the bulk string "1", and vectors pin exactly that. This
%% keeps the reply types: integer(), binary() for a bulk or status string, null for a
%% nil, lists for arrays, {error, Text} for an error reply. Tests only.
-module(homing_test_resp).
-export([command/3]).

%% One command on a fresh connection to Host:Port.
command(Host, Port, Args) ->
    {ok, S} = gen_tcp:connect(Host, Port, [binary, {active, false}], 5000),
    try
        ok = gen_tcp:send(S, [<<"*">>, integer_to_binary(length(Args)), <<"\r\n">>,
                              [[<<"$">>, integer_to_binary(iolist_size(A)), <<"\r\n">>, A, <<"\r\n">>]
                               || A <- Args]]),
        read(S, <<>>)
    after
        gen_tcp:close(S)
    end.

read(S, Buf) ->
    case parse(Buf) of
        {ok, V, <<>>} -> V;
        more ->
            {ok, More} = gen_tcp:recv(S, 0, 10000),
            read(S, <<Buf/binary, More/binary>>)
    end.

parse(Buf) ->
    case binary:split(Buf, <<"\r\n">>) of
        [_] -> more;
        [<<$+, T/binary>>, R] -> {ok, T, R};
        [<<$-, T/binary>>, R] -> {ok, {error, T}, R};
        [<<$:, T/binary>>, R] -> {ok, binary_to_integer(T), R};
        [<<"$-1">>, R] -> {ok, null, R};
        [<<$$, N0/binary>>, R] ->
            N = binary_to_integer(N0),
            case R of
                <<B:N/binary, "\r\n", R1/binary>> -> {ok, B, R1};
                _ -> more
            end;
        [<<"*-1">>, R] -> {ok, null, R};
        [<<$*, N0/binary>>, R] -> items(binary_to_integer(N0), R, [])
    end.

items(0, R, Acc) -> {ok, lists:reverse(Acc), R};
items(N, R, Acc) ->
    case parse(R) of
        {ok, V, R1} -> items(N - 1, R1, [V | Acc]);
        more -> more
    end.
