%% @doc The envelope of payloads and results: the msgpack map {"v": 1, "p": Payload},
%% "v" first (docs/protocol.md section 4), byte for byte what the Python and JavaScript
%% ports write (conformance/envelopes.json holds the golden vectors).
-module(homing_envelope).
-export([encode/1, decode/1, max_nesting/0]).

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
