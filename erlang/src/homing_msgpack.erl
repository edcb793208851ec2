%% @doc The subset of msgpack the homing envelope needs (docs/protocol.md section 4).
%%
%% Debian ships no msgpack library for Erlang, and the protocol needs exactly
%% one mapping that every client shares: smallest formats, str for text and
%% bin for bytes, 64-bit integers, float64, maps in the order given, nesting
%% at most 100 levels. The Erlang terms:
%%
%%   msgpack        Erlang
%%   nil            null
%%   true/false     true / false
%%   int (64 bit)   integer()
%%   float 32/64    float()  (NaN and the infinities, which Erlang floats cannot
%%                  hold, are the atoms nan, infinity, neg_infinity)
%%   str            binary() holding UTF-8 (encode also takes {text, Chardata})
%%   bin            {bytes, binary()}
%%   array          list()
%%   map            map(); encode also takes {map, [{Key, Value}]}, which keeps
%%                  its order (an Erlang map's order is Erlang's)
%%
%% Map keys are text or integers; extension types are not part of the protocol.
%% Both directions count depth and stop at the limit: a payload nested 10,000
%% levels is an error, never a deep recursion.
-module(homing_msgpack).
-export([encode/2, decode/2]).
-export_type([value/0]).

-type value() :: null | boolean() | integer() | float() | nan | infinity | neg_infinity
               | binary() | {bytes, binary()} | {text, unicode:chardata()}
               | [value()] | #{value() => value()} | {map, [{value(), value()}]}.

-define(MAX_U64, 18446744073709551615).
-define(MIN_I64, -9223372036854775808).

%% @doc Encode Value; containers may nest MaxDepth levels (the outermost is level 1).
-spec encode(value(), non_neg_integer()) -> {ok, binary()} | {error, binary()}.
encode(Value, MaxDepth) ->
    try {ok, iolist_to_binary(enc(Value, MaxDepth))}
    catch throw:{not_encodable, Why} -> {error, Why}
    end.

enc(null, _) -> <<16#c0>>;
enc(false, _) -> <<16#c2>>;
enc(true, _) -> <<16#c3>>;
enc(nan, _) -> <<16#cb, 16#7f, 16#f8, 0:48>>;
enc(infinity, _) -> <<16#cb, 16#7f, 16#f0, 0:48>>;
enc(neg_infinity, _) -> <<16#cb, 16#ff, 16#f0, 0:48>>;
enc(I, _) when is_integer(I) -> int(I);
enc(F, _) when is_float(F) -> <<16#cb, F:64/float>>;
enc(B, _) when is_binary(B) -> text(B);
enc({text, Chars}, _) ->
    case unicode:characters_to_binary(Chars) of
        B when is_binary(B) -> text(B);
        _ -> throw({not_encodable, <<"{text, _} holds no valid Unicode text">>})
    end;
enc({bytes, B}, _) when is_binary(B) ->
    case byte_size(B) of
        N when N < 16#100 -> [<<16#c4, N>>, B];
        N when N < 16#10000 -> [<<16#c5, N:16>>, B];
        N when N < 16#100000000 -> [<<16#c6, N:32>>, B];
        _ -> throw({not_encodable, <<"bytes over 4 GiB">>})
    end;
enc(L, Depth) when is_list(L) ->
    deeper(Depth),
    N = try length(L) catch error:badarg -> throw({not_encodable, <<"an improper list">>}) end,
    Head = if N < 16 -> <<(16#90 bor N)>>;
              N < 16#10000 -> <<16#dc, N:16>>;
              true -> <<16#dd, N:32>>
           end,
    [Head | [enc(X, Depth - 1) || X <- L]];
enc(M, Depth) when is_map(M) -> map(maps:to_list(M), Depth);
enc({map, Pairs}, Depth) when is_list(Pairs) -> map(Pairs, Depth);
enc(Other, _) ->
    throw({not_encodable, iolist_to_binary(io_lib:format(
        "~P is not a payload value (text is a binary, bytes {bytes, B}, a map a map or "
        "{map, Pairs})", [Other, 6]))}).

deeper(0) ->
    throw({not_encodable, <<"payload is nested deeper than the limit of arrays and maps">>});
deeper(_) -> ok.

map(Pairs, Depth) ->
    deeper(Depth),
    N = length(Pairs),
    Head = if N < 16 -> <<(16#80 bor N)>>;
              N < 16#10000 -> <<16#de, N:16>>;
              true -> <<16#df, N:32>>
           end,
    [Head | [[key(K), enc(V, Depth - 1)] || {K, V} <- pair_list(Pairs)]].

pair_list(Pairs) ->
    [case P of
         {_, _} -> P;
         _ -> throw({not_encodable, <<"{map, Pairs} takes a list of {Key, Value}">>})
     end || P <- Pairs].

key(K) when is_integer(K) -> int(K);
key(K) when is_binary(K) -> text(K);
key({text, _} = K) -> enc(K, 0);
key(K) ->
    throw({not_encodable, iolist_to_binary(io_lib:format(
        "map key ~P: map keys must be text (a binary) or integers", [K, 6]))}).

text(B) ->
    case valid_utf8(B) of
        true -> ok;
        false -> throw({not_encodable, <<"text (a binary) that is not UTF-8: give bytes as "
                                         "{bytes, B}">>})
    end,
    case byte_size(B) of
        N when N < 32 -> [<<(16#a0 bor N)>>, B];
        N when N < 16#100 -> [<<16#d9, N>>, B];
        N when N < 16#10000 -> [<<16#da, N:16>>, B];
        N when N < 16#100000000 -> [<<16#db, N:32>>, B];
        _ -> throw({not_encodable, <<"text over 4 GiB">>})
    end.

valid_utf8(<<>>) -> true;
valid_utf8(<<C, Rest/binary>>) when C < 128 -> valid_utf8(Rest);
valid_utf8(<<_/utf8, Rest/binary>>) -> valid_utf8(Rest);
valid_utf8(_) -> false.

int(I) when I >= 0, I < 128 -> <<I>>;
int(I) when I >= 0, I < 16#100 -> <<16#cc, I>>;
int(I) when I >= 0, I < 16#10000 -> <<16#cd, I:16>>;
int(I) when I >= 0, I < 16#100000000 -> <<16#ce, I:32>>;
int(I) when I >= 0, I =< ?MAX_U64 -> <<16#cf, I:64>>;
int(I) when I < 0, I >= -32 -> <<I:8/signed>>;
int(I) when I < 0, I >= -128 -> <<16#d0, I:8/signed>>;
int(I) when I < 0, I >= -32768 -> <<16#d1, I:16/signed>>;
int(I) when I < 0, I >= -2147483648 -> <<16#d2, I:32/signed>>;
int(I) when I < 0, I >= ?MIN_I64 -> <<16#d3, I:64/signed>>;
int(I) ->
    throw({not_encodable, iolist_to_binary(io_lib:format(
        "integer ~B does not fit 64 bits", [I]))}).

%% @doc Decode exactly one value filling Bin; containers may nest MaxDepth levels.
-spec decode(binary(), non_neg_integer()) -> {ok, value()} | {error, binary()}.
decode(Bin, MaxDepth) when is_binary(Bin) ->
    try dec(Bin, MaxDepth) of
        {Value, <<>>} -> {ok, Value};
        {_, Rest} -> {error, iolist_to_binary(io_lib:format(
                       "~B bytes after the value", [byte_size(Rest)]))}
    catch
        throw:{corrupt, Why} -> {error, Why};
        error:{badmatch, _} -> {error, <<"truncated">>};
        error:function_clause -> {error, <<"truncated or not msgpack">>}
    end.

dec(<<16#c0, R/binary>>, _) -> {null, R};
dec(<<16#c2, R/binary>>, _) -> {false, R};
dec(<<16#c3, R/binary>>, _) -> {true, R};
dec(<<I, R/binary>>, _) when I < 16#80 -> {I, R};
dec(<<I:8/signed, R/binary>>, _) when I >= -32 -> {I, R};
dec(<<16#cc, I, R/binary>>, _) -> {I, R};
dec(<<16#cd, I:16, R/binary>>, _) -> {I, R};
dec(<<16#ce, I:32, R/binary>>, _) -> {I, R};
dec(<<16#cf, I:64, R/binary>>, _) -> {I, R};
dec(<<16#d0, I:8/signed, R/binary>>, _) -> {I, R};
dec(<<16#d1, I:16/signed, R/binary>>, _) -> {I, R};
dec(<<16#d2, I:32/signed, R/binary>>, _) -> {I, R};
dec(<<16#d3, I:64/signed, R/binary>>, _) -> {I, R};
dec(<<16#ca, F:4/binary, R/binary>>, _) -> {float32(F), R};
dec(<<16#cb, F:8/binary, R/binary>>, _) -> {float64(F), R};
dec(<<T, R/binary>>, _) when T >= 16#a0, T =< 16#bf -> str(T band 16#1f, R);
dec(<<16#d9, N, R/binary>>, _) -> str(N, R);
dec(<<16#da, N:16, R/binary>>, _) -> str(N, R);
dec(<<16#db, N:32, R/binary>>, _) -> str(N, R);
dec(<<16#c4, N, B:N/binary, R/binary>>, _) -> {{bytes, B}, R};
dec(<<16#c5, N:16, B:N/binary, R/binary>>, _) -> {{bytes, B}, R};
dec(<<16#c6, N:32, B:N/binary, R/binary>>, _) -> {{bytes, B}, R};
dec(<<T, R/binary>>, D) when T >= 16#90, T =< 16#9f -> array(T band 16#0f, R, D);
dec(<<16#dc, N:16, R/binary>>, D) -> array(N, R, D);
dec(<<16#dd, N:32, R/binary>>, D) -> array(N, R, D);
dec(<<T, R/binary>>, D) when T >= 16#80, T =< 16#8f -> map_of(T band 16#0f, R, D);
dec(<<16#de, N:16, R/binary>>, D) -> map_of(N, R, D);
dec(<<16#df, N:32, R/binary>>, D) -> map_of(N, R, D);
dec(<<T, _/binary>>, _) when T >= 16#c7, T =< 16#c9; T >= 16#d4, T =< 16#d8 ->
    throw({corrupt, <<"a msgpack extension type (not part of the protocol)">>});
dec(<<16#c1, _/binary>>, _) -> throw({corrupt, <<"byte c1 is never used by msgpack">>});
dec(<<>>, _) -> throw({corrupt, <<"truncated">>}).

float32(<<F:32/float>>) -> F;
float32(<<S:1, 255:8, 0:23>>) -> inf(S);
float32(<<_:1, 255:8, _:23>>) -> nan.
float64(<<F:64/float>>) -> F;
float64(<<S:1, 2047:11, 0:52>>) -> inf(S);
float64(<<_:1, 2047:11, _:52>>) -> nan.
inf(0) -> infinity;
inf(1) -> neg_infinity.

str(N, R) ->
    case R of
        <<S:N/binary, Rest/binary>> ->
            valid_utf8(S) orelse throw({corrupt, <<"a str that is not UTF-8">>}),
            {S, Rest};
        _ -> throw({corrupt, <<"truncated">>})
    end.

nest(0) -> throw({corrupt, <<"nested deeper than the limit of arrays and maps">>});
nest(D) -> D - 1.

array(N, R, D) ->
    D1 = nest(D),
    %% Every item takes at least one byte: a count beyond the bytes left is a
    %% truncated message, refused before allocating for it.
    N =< byte_size(R) orelse throw({corrupt, <<"truncated">>}),
    items(N, R, D1, []).

items(0, R, _, Acc) -> {lists:reverse(Acc), R};
items(N, R, D, Acc) ->
    {V, R1} = dec(R, D),
    items(N - 1, R1, D, [V | Acc]).

map_of(N, R, D) ->
    D1 = nest(D),
    2 * N =< byte_size(R) orelse throw({corrupt, <<"truncated">>}),
    pairs(N, R, D1, []).

pairs(0, R, _, Acc) -> {maps:from_list(lists:reverse(Acc)), R};
pairs(N, R, D, Acc) ->
    {K, R1} = dec(R, D),
    {V, R2} = dec(R1, D),
    pairs(N - 1, R2, D, [{K, V} | Acc]).
