%% @doc The generic call layer: every client call built and parsed from the manifest's
%% call table (the `calls' key that lua/build.py writes from the scripts' typed headers
%% and conformance/calls.json; docs/protocol.md, "The call table").
%%
%% Nothing here knows a particular call: the table says which script a call
%% runs, the type and order of each ARGV slot, where each value comes from
%% (a client argument, a default, a client setting, the length of a list),
%% and the shape of the reply. A new call in the table is a new call here.
%% Values are checked before Redis is touched; a bad one is
%% {error, {invalid_argument | invalid_name | payload_too_large | payload_not_encodable, Why}}
%% and nothing is sent.
-module(homing_call).
-export([run/4, build/4, parse/2, table/0, spec/1, new_id/0, decode_payload/1, num/1]).

-define(MAX_WHOLE, 9007199254740991).

%% @doc The call table, name => spec (binary keys, as converted from the manifest).
-spec table() -> map().
table() -> maps:get(<<"calls">>, homing_manifest:manifest()).

-spec spec(atom() | binary()) -> map().
spec(Name) when is_atom(Name) -> spec(atom_to_binary(Name, utf8));
spec(Name) -> maps:get(Name, table()).

%% @doc Run call Name for Service with the client arguments Args (a map, atom keys
%% named as in the table's client_args), and return its parsed reply.
-spec run(homing_conn:client(), atom(), unicode:chardata() | none, map()) ->
    {ok, term()} | {error, {atom(), binary()}}.
run(Client, Name, Service0, Args) ->
    Spec = spec(Name),
    case build(Client, Spec, Service0, Args) of
        {ok, Service, Argv} ->
            Script = maps:get(<<"script">>, Spec),
            Creates = maps:get(<<"creates">>, Spec, false),
            case before(Client, Service, Creates) of
                {ok, Known} ->
                    Keys = keys(Client, Script, Service),
                    case homing_conn:script(Client, Script, Keys, Argv) of
                        {ok, Reply} ->
                            Creates andalso not Known andalso register_service(Client, Service),
                            parse(Spec, Reply);
                        {error, {not_replicated, {Reply, Acked}}} ->
                            %% Written on the primary, confirmed by fewer replicas than
                            %% asked: the outcome goes with the error (a producer may
                            %% resend with the same id; an acknowledgement is done).
                            Creates andalso not Known andalso register_service(Client, Service),
                            {error, {not_replicated, #{
                                message => iolist_to_binary(io_lib:format(
                                    "~B replica(s) acknowledged the write within the timeout, "
                                    "fewer than asked; it happened on the primary", [Acked])),
                                acked => Acked, result => parse(Spec, Reply)}}};
                        {error, _} = E -> E
                    end;
                {error, _} = E -> E
            end;
        {error, _} = E -> E
    end.

%% The registry rule (docs/protocol.md section 2): a call that may create a service
%% checks SISMEMBER first (a wrong-typed registry refuses before anything is
%% written) and SADDs only after the call succeeded, at most every 10 s.
before(_, _, false) -> {ok, true};
before(Client, Service, true) ->
    case homing_conn:registered(Client, Service) of
        true -> {ok, true};
        false ->
            Key = registry(Client),
            case homing_conn:q(Client, [<<"SISMEMBER">>, Key, Service], Key) of
                {ok, <<"1">>} -> homing_conn:seen(Client, Service), {ok, true};
                {ok, _} -> {ok, false};
                {error, _} = E -> E
            end
    end.

registry(#{prefix := P}) -> homing_manifest:global_key(P, <<"services">>).

register_service(Client, Service) ->
    Key = registry(Client),
    case homing_conn:q(Client, [<<"SADD">>, Key, Service], Key) of
        {ok, _} -> homing_conn:seen(Client, Service);
        {error, Why} ->
            %% The call itself succeeded; the next call (or a worker's start) registers.
            logger:warning("homing: could not register service ~ts: ~p", [Service, Why])
    end,
    true.

keys(#{prefix := P}, Script, Service) ->
    Global = maps:get(<<"global_keys">>, homing_manifest:layout_all()),
    [case maps:is_key(K, Global) of
         true -> homing_manifest:global_key(P, K);
         false -> homing_manifest:service_key(P, Service, K)
     end || K <- maps:get(<<"keys">>, homing_manifest:script(Script))].

%% -- building ------------------------------------------------------------------------

%% @doc The checked service name and ARGV of a call, or the error that stops it.
-spec build(homing_conn:client(), map(), unicode:chardata() | none, map()) ->
    {ok, binary(), [binary() | integer()]} | {error, {atom(), binary()}}.
build(Client, Spec, Service0, Args0) ->
    try
        Service = service(Service0, Spec),
        Defaults = defaults(Spec),
        Args = items_of(Spec, Args0, Defaults),
        Argv = lists:flatmap(fun(A) -> slot(A, Args, Defaults, Client) end,
                             maps:get(<<"args">>, Spec)),
        {ok, Service, Argv}
    catch throw:{refused, Code, Why} -> {error, {Code, Why}}
    end.

service(none, _) -> <<>>;
service(S0, _) ->
    S = text(S0, <<"service">>),
    case homing_manifest:check_service(S) of
        ok -> S;
        {error, {C, W}} -> throw({refused, C, W})
    end.

%% A call that is the single form of a batch call takes that call's defaults too.
defaults(Spec) ->
    Own = maps:get(<<"defaults">>, Spec, #{}),
    case maps:get(<<"batch_of">>, Spec, undefined) of
        undefined -> Own;
        Batch -> maps:merge(maps:get(<<"defaults">>, spec(Batch), #{}), Own)
    end.

%% The items of a list argument: a batch_of call's own arguments are its one item;
%% items_from zips the client's lists (ids, payloads, keys) into items.
items_of(Spec, Args, Defaults) ->
    case [A || A <- maps:get(<<"args">>, Spec), maps:get(<<"type">>, A) =:= <<"list">>] of
        [] -> Args;
        [List] ->
            Name = binary_to_atom(maps:get(<<"name">>, List), utf8),
            Items = case {maps:get(<<"batch_of">>, Spec, undefined),
                          maps:get(<<"items_from">>, Spec, undefined)} of
                        {undefined, undefined} -> maps:get(Name, Args, undefined);
                        {_Batch, undefined} -> [Args];
                        {_, From} -> zip(From, Args, Defaults)
                    end,
            Args#{Name => Items}
    end.

zip(From, Args, _Defaults) ->
    Lists = [{binary_to_atom(Field, utf8), maps:get(binary_to_atom(Client, utf8), Args, undefined)}
             || {Client, Field} <- maps:to_list(From)],
    Given = [{F, L} || {F, L} <- Lists, L =/= undefined, L =/= null],
    Lens = lists:usort([len(L) || {_, L} <- Given]),
    case Lens of
        [N] when N >= 1 -> [maps:from_list([{F, lists:nth(I, L)} || {F, L} <- Given])
                            || I <- lists:seq(1, N)];
        [0] -> throw({refused, invalid_argument, <<"a batch takes 1 or more items">>});
        [] -> throw({refused, invalid_argument, <<"a batch call without items">>});
        _ -> throw({refused, invalid_argument, <<"the lists of a batch must be as long as "
                                                  "each other">>})
    end.

len(L) when is_list(L) -> length(L);
len(_) -> throw({refused, invalid_argument, <<"a batch takes a list">>}).

%% One ARGV slot (or several, for a list or the rest) from its typed spec.
slot(#{<<"type">> := <<"config">>, <<"setting">> := <<"max_payload">>}, _, _, C) ->
    [maps:get(max_payload, C)];
slot(#{<<"type">> := <<"count">>, <<"of">> := Of}, Args, _, _) ->
    case maps:get(binary_to_atom(Of, utf8), Args, undefined) of
        L when is_list(L) -> [length(L)];
        _ -> refuse(<<Of/binary, " takes a list">>)
    end;
slot(#{<<"type">> := <<"list">>, <<"name">> := Name, <<"fields">> := Fields} = A, Args, D, C) ->
    Items = maps:get(binary_to_atom(Name, utf8), Args, undefined),
    is_list(Items) orelse refuse(<<Name/binary, " takes a list">>),
    bounds(length(Items), A, Name),
    lists:flatmap(fun(Item) ->
                      is_map(Item) orelse refuse(<<"an item of ", Name/binary, " is a map">>),
                      [value(F, field(F, Item, D), C) || F <- Fields]
                  end, Items);
slot(#{<<"type">> := <<"rest">>, <<"name">> := Name, <<"item">> := Item} = A, Args, _, C) ->
    case maps:get(binary_to_atom(Name, utf8), Args, undefined) of
        V when V =:= undefined; V =:= null -> [];
        L when is_list(L) ->
            bounds(length(L), A#{<<"min">> => max(1, maps:get(<<"min">>, A, 0))}, Name),
            [value(Item#{<<"name">> => Name}, X, C) || X <- L];
        _ -> refuse(<<Name/binary, " takes a list">>)
    end;
slot(#{<<"type">> := <<"pairs">>, <<"name">> := Name}, Args, _, _) ->
    pairs(maps:get(binary_to_atom(Name, utf8), Args, undefined));
slot(#{<<"name">> := _} = A, Args, D, C) ->
    [value(A, field(A, Args, D), C)].

field(#{<<"name">> := Name}, Values, Defaults) ->
    case maps:get(binary_to_atom(Name, utf8), Values, undefined) of
        undefined -> maps:get(Name, Defaults, undefined);
        V -> V
    end.

bounds(N, #{<<"type">> := Kind} = A, Name) ->
    Lo = maps:get(<<"min">>, A, 0),
    Hi = maps:get(<<"max">>, A, ?MAX_WHOLE),
    N >= Lo andalso N =< Hi orelse
        refused(Kind, Name, io_lib:format("a list of ~B", [N]), #{<<"min">> => Lo, <<"max">> => Hi}).

refuse(Why) -> throw({refused, invalid_argument, Why}).

%% A refusal in the table's words (the manifest's refusals, the texts the Python and
%% JavaScript ports use too): {what} is the argument, {value} the value refused
%% (Shown: already text), the other names Fields'.
refused(Kind, What, Shown, Fields) ->
    Text = maps:get(Kind, maps:get(<<"refusals">>, homing_manifest:manifest())),
    Vars = Fields#{<<"what">> => What, <<"value">> => Shown},
    refuse(maps:fold(fun(K, V, T) ->
                             Bin = iolist_to_binary(if is_integer(V) -> integer_to_list(V);
                                                       true -> V end),
                             binary:replace(T, <<"{", K/binary, "}">>, Bin, [global])
                     end, Text, Vars)).

shown(V) -> io_lib:format("~0tP", [V, 5]).

%% A typed value as its ARGV text. Optional slots (the table's optional: true) send ''.
value(#{<<"optional">> := true}, V, _) when V =:= undefined; V =:= null -> <<>>;
value(#{<<"type">> := T, <<"name">> := Name} = A, V, C) -> typed(T, A, Name, V, C).

typed(T, A, Name, V, _) when T =:= <<"whole">>; T =:= <<"ms">>; T =:= <<"token">> ->
    whole(V, Name, maps:get(<<"min">>, A, 0), maps:get(<<"max">>, A, ?MAX_WHOLE));
typed(<<"id">>, _, _, <<"$new_id">>, _) -> new_id();
typed(<<"id">>, _, Name, V, _) ->
    V =:= undefined andalso refuse(<<Name/binary, " is required">>),
    Id = text(V, Name),
    case homing_manifest:check_id(Id) of
        ok -> Id;
        {error, {C, W}} -> throw({refused, C, W})
    end;
typed(<<"key">>, _, _, V, _) when V =:= undefined; V =:= null -> <<>>;
typed(<<"key">>, _, Name, V, _) ->
    is_binary(V) orelse is_list(V) orelse refuse(<<"an idempotency key is text">>),
    text(V, Name);
typed(<<"envelope">>, _, _, V, C) -> envelope(V, C);
typed(<<"result">>, _, _, V, _) when V =:= undefined; V =:= null -> <<>>;
typed(<<"result">>, _, _, V, C) -> envelope(V, C);
typed(<<"bool">>, _, _, true, _) -> 1;
typed(<<"bool">>, _, _, false, _) -> 0;
typed(<<"bool">>, _, Name, V, _) ->
    refuse(iolist_to_binary(io_lib:format("~s is true or false, got ~0tP", [Name, V, 5])));
typed(<<"text">>, _, _, V, _) when V =:= undefined; V =:= null -> <<>>;
typed(<<"text">>, _, Name, V, _) -> text(V, Name);
typed(<<"name">>, A, Name, V, _) ->
    B = text(V, Name),
    Max = maps:get(<<"max">>, A, 256),
    byte_size(B) >= 1 andalso byte_size(B) =< Max orelse
        refused(<<"name">>, Name, shown(B), #{<<"max">> => Max}),
    B;
typed(T, _, Name, _, _) ->
    refuse(<<"the call table names an unknown type ", T/binary, " for ", Name/binary>>).

whole(V, Name, Lo, Hi) when is_float(V) ->
    case V == trunc(V) of
        true -> whole(trunc(V), Name, Lo, Hi);
        false -> bad_whole(V, Name, Lo, Hi)
    end;
whole(V, _, Lo, Hi) when is_integer(V), V >= Lo, V =< Hi -> V;
whole(V, Name, Lo, Hi) -> bad_whole(V, Name, Lo, Hi).

%% ms and token too: this port takes whole ms only (no fraction to drop).
bad_whole(V, Name, Lo, Hi) ->
    refused(<<"whole">>, Name, shown(V), #{<<"min">> => Lo, <<"max">> => Hi}).

text(V, Name) when is_binary(V); is_list(V) ->
    case unicode:characters_to_binary(V) of
        B when is_binary(B) -> B;
        _ -> refuse(<<Name/binary, " must be UTF-8 text">>)
    end;
text(V, Name) when is_atom(V), V =/= undefined, V =/= null, V =/= true, V =/= false ->
    text(atom_to_binary(V, utf8), Name);
text(V, Name) -> refused(<<"text">>, Name, shown(V), #{}).

envelope(V, #{max_payload := Max}) ->
    case homing_envelope:encode(V) of
        {ok, B} when byte_size(B) =< Max -> B;
        {ok, B} ->
            throw({refused, payload_too_large, iolist_to_binary(io_lib:format(
                "encoded payload is ~B bytes, over the limit of ~B; nothing was written",
                [byte_size(B), Max]))});
        {error, {C, W}} -> throw({refused, C, W})
    end.

%% Policy overrides: name => number, or null to remove the override.
pairs(P) when is_map(P) -> pairs(maps:to_list(P));
pairs({obj, L}) -> pairs(L);
pairs(L) when is_list(L) ->
    Known = maps:get(<<"policy_defaults">>, homing_manifest:layout_all()),
    lists:flatmap(
      fun({K0, V}) ->
              K = text(K0, <<"policy field">>),
              maps:is_key(K, Known) orelse refuse(<<"unknown policy field ", K/binary>>),
              [K, policy_value(K, V)];
         (_) -> refuse(<<"policy takes name, value pairs">>)
      end, L);
pairs(_) -> refuse(<<"policy takes a map of field to number">>).

policy_value(_, null) -> <<>>;
policy_value(_, V) when is_integer(V) -> V;
policy_value(_, V) when is_float(V) -> float_to_binary(V, [short]);
policy_value(K, V) ->
    refuse(iolist_to_binary(io_lib:format("~s must be a finite number, got ~0tP", [K, V, 5]))).

%% @doc A random event id: 32 lowercase hex characters of a UUID4.
-spec new_id() -> binary().
new_id() ->
    <<A:48, _:4, B:12, _:2, C:62>> = crypto:strong_rand_bytes(16),
    << <<(hex(N))>> || <<N:4>> <= <<A:48, 4:4, B:12, 2:2, C:62>> >>.

hex(N) when N < 10 -> $0 + N;
hex(N) -> $a + N - 10.

%% -- parsing -------------------------------------------------------------------------

%% @doc The reply of a call as the table describes it (eredis gives every integer reply
%% as its decimal text, so the declared field types decide what is a number).
-spec parse(map(), term()) -> {ok, term()} | {error, {atom(), binary()}}.
parse(Spec, Reply) ->
    try shape(Spec, reply(maps:get(<<"reply">>, Spec), Reply))
    catch error:_ -> {error, {script, iolist_to_binary(io_lib:format(
                          "a reply the call table does not describe: ~0tP", [Reply, 10]))}}
    end.

reply(#{<<"kind">> := <<"value">>, <<"type">> := T}, R) -> conv(T, R);
reply(#{<<"kind">> := <<"tuple">>, <<"fields">> := Fs}, R) -> fields(Fs, R);
reply(#{<<"kind">> := <<"records">>, <<"head">> := H, <<"each">> := E}, R) ->
    {Head, Rest} = lists:split(length(H), R),
    {fields(H, Head), [fields(E, Rec) || Rec <- chunks(length(E), Rest)]};
reply(#{<<"kind">> := <<"items">>, <<"ok">> := Ok}, R) -> [item(Ok, X) || X <- R];
reply(#{<<"kind">> := <<"union">>, <<"cases">> := Cases}, [Tag | R]) ->
    (fields(maps:get(Tag, Cases), R))#{state => Tag};
reply(#{<<"kind">> := <<"map">>, <<"value">> := T}, R) ->
    maps:from_list([{K, conv(T, V)} || [K, V] <- chunks(2, R)]).

fields(Fs, Values) ->
    length(Fs) =:= length(Values) orelse error(shape),
    maps:from_list([{binary_to_atom(maps:get(<<"name">>, F), utf8), conv(maps:get(<<"type">>, F), V)}
                    || {F, V} <- lists:zip(Fs, Values)]).

chunks(_, []) -> [];
chunks(N, L) -> {C, R} = lists:split(N, L), [C | chunks(N, R)].

conv(<<"int">>, V) -> int(V);
conv(<<"bool">>, V) -> int(V) =:= 1;
conv(<<"str">>, V) when is_binary(V) -> V;
conv(<<"bytes">>, V) when is_binary(V) -> V;
conv(<<"num">>, V) -> num(V);
conv(<<"status">>, V) -> homing_manifest:status_name(V).

int(V) when is_integer(V) -> V;
int(V) when is_binary(V) -> binary_to_integer(V).

%% Per item 'OK' (ok), a number (int), or the item's error code.
item(<<"ok">>, <<"OK">>) -> ok;
item(<<"int">>, V) ->
    try binary_to_integer(V) catch error:badarg -> code(V) end;
item(_, V) -> code(V).

code(V) ->
    case homing_errors:atom(V) of
        undefined -> error({unknown_code, V});
        A -> {error, {A, <<V/binary, ": ", (homing_errors:message(A))/binary>>}}
    end.

%% @doc A number as Redis sends it: an integer, or text (Lua's tostring of a float).
-spec num(binary() | integer()) -> number().
num(V) when is_integer(V) -> V;
num(V) ->
    try binary_to_integer(V)
    catch error:badarg ->
            F = float_of(binary_to_list(V)),
            case F == trunc(F) of
                true -> trunc(F);
                false -> F
            end
    end.

float_of(S) ->
    case string:to_float(S) of
        {F, ""} -> F;
        _ ->
            %% "5e-05" or "1e+20": Erlang wants a fraction before the exponent.
            [M, E] = string:split(string:lowercase(S), "e"),
            list_to_float(M ++ ".0e" ++ E)
    end.

%% Shaping by the table: pick one field, merge the head into each record, take the
%% first item of a batch_of call (its error returned), name a record's parts.
shape(#{<<"batch_of">> := Batch}, Parsed) ->
    case shape(spec(Batch), Parsed) of
        {ok, [{error, _} = E | _]} -> E;
        {ok, [First | _]} -> {ok, First};
        Other -> Other
    end;
shape(#{<<"pick">> := Field} = S, {_Head, Recs}) ->
    shape(maps:remove(<<"pick">>, S), [maps:get(binary_to_atom(Field, utf8), R) || R <- Recs]);
shape(#{<<"pick">> := Field}, Tuple) when is_map(Tuple) ->
    {ok, maps:get(binary_to_atom(Field, utf8), Tuple)};
%% dequeue_batch: a record that holds the records: the events (merge_head: each with
%% the lease deadline) and the reply's wait_ms.
shape(#{<<"record">> := <<"Batch">>}, {#{deadline_ms := D, wait_ms := W}, Recs}) ->
    {ok, #{wait_ms => W, events => [R#{deadline_ms => D} || R <- Recs]}};
shape(#{<<"merge_head">> := Names}, {Head, Recs}) ->
    Merged = maps:with([binary_to_atom(N, utf8) || N <- Names], Head),
    {ok, [maps:merge(R, Merged) || R <- Recs]};
shape(Spec, {Head, Recs}) -> {ok, Head#{rows(maps:get(<<"record">>, Spec, undefined)) => Recs}};
shape(_, Value) -> {ok, Value}.

%% This port's value types (the table's `record'): the name a page's rows take, as
%% in the neutral forms of conformance/calls.json.
rows(<<"DeadPage">>) -> letters;
rows(<<"RecurringPage">>) -> schedules;
rows(_) -> records.

%% @doc A stored envelope's payload, or {error, {corrupt_envelope, _}}.
-spec decode_payload(binary()) -> {ok, term()} | {error, {corrupt_envelope, binary()}}.
decode_payload(Raw) -> homing_envelope:decode(Raw).
