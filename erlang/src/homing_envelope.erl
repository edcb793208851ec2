%% @doc The envelope of payloads and results: the msgpack map {"v": 1, "p": Payload},
%% "v" first (docs/protocol.md section 4), byte for byte what the Python and JavaScript
%% ports write (conformance/envelopes.json holds the golden vectors).
-module(homing_envelope).
-export([encode/1, encode/2, decode/1, trace_of/1, max_nesting/0]).

%% The header every envelope starts with: a map of 2, "v" => 1, "p" =>.
-define(HEAD, <<16#82, 16#a1, $v, 1, 16#a1, $p>>).

-spec max_nesting() -> pos_integer().
max_nesting() -> homing_manifest:limit(<<"nesting">>).

%% @doc The envelope bytes of Payload (see homing_msgpack for the term mapping).
-spec encode(homing_msgpack:value()) -> {ok, binary()} | {error, {payload_not_encodable, binary()}}.
encode(Payload) ->
    case homing_msgpack:encode(Payload, max_nesting()) of
        {ok, Bin} -> {ok, <<?HEAD/binary, Bin/binary>>};
        {error, Why} -> {error, {payload_not_encodable, Why}}
    end.

%% @doc Envelope revision 1.1: with the W3C Trace Context of the producer's span as
%% field t after p, a map traceparent then (when non-empty) tracestate. Only a valid
%% traceparent travels; without one this is encode/1's revision 1.0 map, byte for byte.
-spec encode(homing_msgpack:value(), map() | undefined | null) ->
    {ok, binary()} | {error, {payload_not_encodable, binary()}}.
encode(Payload, Trace) ->
    case trace_field(Trace) of
        null -> encode(Payload);
        T ->
            case homing_msgpack:encode(Payload, max_nesting()) of
                {ok, Bin} ->
                    {ok, TBin} = homing_msgpack:encode({map, T}, 1),
                    {ok, <<16#83, 16#a1, $v, 1, 16#a1, $p, Bin/binary, 16#a1, $t, TBin/binary>>};
                {error, Why} -> {error, {payload_not_encodable, Why}}
            end
    end.

%% @doc The trace context an envelope carries (#{<<"traceparent">>, <<"tracestate">>}),
%% or null: for revision 1.0, and for a malformed one (a trace context is advice, never
%% a reason to refuse an event). An error only when the bytes are not an envelope.
-spec trace_of(binary()) -> {ok, map() | null} | {error, {corrupt_envelope, binary()}}.
trace_of(Bin) ->
    case decode(Bin) of
        {ok, _} ->
            {ok, Env} = homing_msgpack:decode(Bin, max_nesting() + 1),
            case maps:get(<<"t">>, Env, null) of
                T when is_map(T) ->
                    case trace_field(T) of
                        null -> {ok, null};
                        Pairs -> {ok, maps:from_list(Pairs)}
                    end;
                _ -> {ok, null}
            end;
        E -> E
    end.

%% The t field's pairs, in order: only a traceparent of W3C's version-format travels.
trace_field(T) when is_map(T) ->
    TP = maps:get(<<"traceparent">>, T, undefined),
    Valid = is_binary(TP) andalso
        re:run(TP, <<"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$">>,
               [{capture, none}]) =:= match,
    case Valid of
        false -> null;
        true ->
            State = maps:get(<<"tracestate">>, T, <<>>),
            [{<<"traceparent">>, TP} |
             [{<<"tracestate">>, State} || is_binary(State), State =/= <<>>,
                                           string:length(State) =< 512]]
    end;
trace_field(_) -> null.

%% @doc The payload of stored envelope bytes; anything but a map with v =:= 1 (an
%% integer, not true or 1.0) and a p key is corrupt. Unknown keys are ignored.
-spec decode(binary()) -> {ok, homing_msgpack:value()} | {error, {corrupt_envelope, binary()}}.
decode(Bin) when is_binary(Bin) ->
    %% The envelope map is one level more than its payload.
    case homing_msgpack:decode(Bin, max_nesting() + 1) of
        {ok, #{<<"v">> := V, <<"p">> := P}} when V =:= 1 -> {ok, P};
        {ok, Other} ->
            {error, {corrupt_envelope, iolist_to_binary(io_lib:format(
                "not a version 1 homing envelope: ~0tP", [Other, 6]))}};
        {error, Why} ->
            {error, {corrupt_envelope, iolist_to_binary(io_lib:format(
                "not msgpack (~B bytes): ~s", [byte_size(Bin), Why]))}}
    end;
decode(Other) ->
    {error, {corrupt_envelope, iolist_to_binary(io_lib:format("not bytes: ~0tP", [Other, 6]))}}.
