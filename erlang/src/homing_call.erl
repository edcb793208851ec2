%% @doc The generic call layer: every client call built and parsed from the manifest's
%% call table (the `calls' key that lua/build.py writes from the scripts' typed headers
%% and conformance/calls.json; docs/protocol.md, "The call table").
%%
%% Nothing here knows a particular call: the table says which script a call
%% runs, the type and order of each ARGV slot, where each value comes from
%% (a client argument, a default, a client setting, the length of a list),
%% and the shape of the reply. A new call in the table is a new call here.
%% What follows from the table (a default, a batch's zipping, a reply's shape) the
%% build writes into it, and this module only reads it, as the other ports do.
%% Values are checked before Redis is touched; a bad one is
%% {error, {invalid_argument | invalid_name | payload_too_large | payload_not_encodable, Why}}
%% and nothing is sent.
-module(homing_call).
-export([run/4, build/4, parse/2, table/0, spec/1, new_id/0, decode_payload/1, num/1]).

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
    case build(Client, Name, Service0, Args) of
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
%% Each ARGV slot carries what the build worked out for it (docs/protocol.md, "Worked
%% out by the build"): its default, and for a list where its items come from. So this
%% port only reads them, as Python's ops.py and JavaScript's calls.js do.

%% @doc The checked service name and ARGV of call Name, or the error that stops it.
-spec build(homing_conn:client(), atom() | binary(), unicode:chardata() | none, map()) ->
    {ok, binary(), [binary() | integer()]} | {error, {atom(), binary()}}.
build(Client, Name, Service0, Args) ->
    Spec = spec(Name),
    try
        Service = service(Service0, Spec),
        known(Name, Args, Spec),
        Argv = lists:flatmap(fun(A) -> slot(A, Args, Client#{call => name(Name)}) end,
                             maps:get(<<"args">>, Spec)),
        {ok, Service, Argv}
    catch throw:{refused, Code, Why} -> {error, {Code, Why}}
    end.

%% A script of global keys only (beat) takes no service; every other call needs one.
service(none, #{<<"global">> := true}) -> <<>>;
service(S0, _) ->
    S = case S0 of none -> <<>>; _ -> text(S0, <<"service">>) end,
    case homing_manifest:check_service(S) of
        ok -> S;
        {error, {C, W}} -> throw({refused, C, W})
    end.

atom(Name) -> binary_to_atom(Name, utf8).

%% An argument name the table does not list for the call is refused, as Python and
%% JavaScript refuse it: ignored, a typo (prority) would quietly send the default.
known(Name, Args, Spec) ->
    Accepts = maps:get(<<"accepts">>, Spec),
    case lists:sort([K || K <- [key_text(K0) || K0 <- maps:keys(Args)],
                          not lists:member(K, Accepts)]) of
        [] -> ok;
        Unknown ->
            throw({refused, invalid_argument, homing_manifest:refusal(
                                                <<"unknown">>, #{<<"what">> => name(Name),
                                                                 <<"names">> => lists:join(<<", ">>, Unknown)})})
    end.

key_text(K) when is_atom(K) -> atom_to_binary(K, utf8);
key_text(K) when is_binary(K) -> K;
key_text(K) -> iolist_to_binary(io_lib:format("~0tP", [K, 5])).

name(Name) when is_atom(Name) -> atom_to_binary(Name, utf8);
name(Name) -> Name.

%% One ARGV slot (or several, for a list or the rest) from its typed spec.
slot(#{<<"type">> := <<"config">>}, _, #{max_payload := Max}) -> [Max];
slot(#{<<"type">> := <<"count">>}, _, _) -> []; % its list, right after it, sends the count
%% A list (and its items) is refused by the call's name, as in Python and JavaScript.
slot(#{<<"type">> := <<"list">>, <<"fields">> := Fields} = A, Args, #{call := What} = C) ->
    Items = items(A, Args),
    is_list(Items) andalso in(length(Items), A) orelse refused(<<"list">>, What, Items, A),
    [length(Items) | lists:flatmap(
                       fun(Item) ->
                               is_map(Item) orelse refused(<<"item">>, What, Item, A#{
                                   <<"names">> => lists:join(<<", ">>, [maps:get(<<"name">>, F)
                                                                      || F <- Fields])}),
                               [value(F, given(F, Item), C) || F <- Fields]
                       end, Items)];
slot(#{<<"type">> := <<"rest">>, <<"name">> := Name, <<"item">> := Item} = A, Args, C) ->
    case maps:get(atom(Name), Args, undefined) of
        V when V =:= undefined; V =:= null -> [];
        L when is_list(L) ->
            in(length(L), A) orelse refused(<<"rest">>, Name, L, A),
            [value(Item#{<<"name">> => Name}, X, C) || X <- L];
        V -> refused(<<"rest">>, Name, V, A)
    end;
slot(#{<<"type">> := <<"pairs">>, <<"name">> := Name}, Args, _) ->
    pairs(Name, maps:get(atom(Name), Args, undefined));
slot(A, Args, C) -> [value(A, given(A, Args), C)].

%% A slot's or a field's value: the client's, else the table's default for it.
given(#{<<"name">> := Name} = A, Values) ->
    case maps:get(atom(Name), Values, undefined) of
        undefined -> maps:get(<<"default">>, A, undefined);
        V -> V
    end.

in(N, #{<<"min">> := Lo, <<"max">> := Hi}) -> N >= Lo andalso N =< Hi.

%% A list's items: the client's own list; the call's own arguments as its one item
%% (one: a batch_of call); or zipped from per-field client lists (lead: the one with
%% no default, enqueue_many's payloads, sets the length; the others may be left out).
items(#{<<"name">> := Name} = A, Args) when not is_map_key(<<"from">>, A) ->
    maps:get(atom(Name), Args, undefined);
items(#{<<"from">> := From, <<"fields">> := Fields} = A, Args) ->
    Cols = [{atom(maps:get(<<"name">>, F)), S, maps:get(atom(S), Args, undefined)}
            || {F, S} <- lists:zip(Fields, From)],
    case A of
        #{<<"one">> := true} -> [maps:from_list([{F, V} || {F, _, V} <- Cols])];
        #{<<"lead">> := Lead} ->
            [N] = [column(Lead, V) || {_, S, V} <- Cols, S =:= Lead],
            Given = [{F, S, V} || {F, S, V} <- Cols, S =:= Lead orelse (V =/= undefined andalso
                                                                       V =/= null)],
            [column(S, V) =:= N orelse refused(<<"length">>, S, V, #{<<"lead">> => Lead,
                                                                 <<"count">> => N})
             || {_, S, V} <- Given],
            Tuples = [{F, list_to_tuple(V)} || {F, _, V} <- Given],
            [maps:from_list([{F, element(I, T)} || {F, T} <- Tuples]) || I <- lists:seq(1, N)]
    end.

%% The length of a per-field list, or the refusal of what is no list.
column(_, V) when is_list(V) -> length(V);
column(What, V) -> refused(<<"column">>, What, V, #{}).

%% A refusal in the table's words (the manifest's refusals, the texts the Python and
%% JavaScript ports use too): {what} is the argument, {value} the value refused, the
%% other names the slot's (min, max, ...) or Vars'.
refused(Kind, What, Value, Vars) ->
    All = Vars#{<<"what">> => What, <<"value">> => shown(Value), <<"known">> => known()},
    throw({refused, invalid_argument, homing_manifest:refusal(Kind, All)}).

%% A refused value as a message shows it: a list by its length (as the other ports do),
%% text and other terms printed, cut.
shown(V) when is_list(V) ->
    case V =/= [] andalso io_lib:printable_unicode_list(V) of
        true -> io_lib:format("~0tP", [V, 5]);
        false -> io_lib:format("a list of ~B", [length(V)])
    end;
shown(V) -> io_lib:format("~0tP", [V, 5]).

known() ->
    lists:join(<<", ">>, lists:sort(maps:keys(homing_manifest:layout(<<"policy">>)))).

refuse(Why) -> throw({refused, invalid_argument, Why}).

%% A typed value as its ARGV text. Optional slots (the table's optional: true) send ''.
value(#{<<"optional">> := true}, V, _) when V =:= undefined; V =:= null -> <<>>;
value(#{<<"type">> := T, <<"name">> := Name} = A, V, C) -> typed(T, A, Name, V, C).

%% ms: a finite number in [min, max], its fraction dropped (truncated, as Python's
%% int() and JavaScript's Math.trunc: 1.5 sends 1); docs/protocol.md, "ARGV types".
typed(<<"ms">>, A, Name, V, _) when is_float(V) ->
    in(V, A) orelse refused(<<"ms">>, Name, V, A),
    trunc(V);
%% token: an integer only, as dequeue hands one out (conv/2's int); a float, even a
%% whole one (5.0), is refused as in Python (docs/protocol.md, "Numbers, one rule").
typed(<<"token">>, A, Name, V, _) ->
    is_integer(V) andalso in(V, A) orelse refused(<<"token">>, Name, V, A),
    V;
typed(T, A, Name, V, _) when T =:= <<"whole">>; T =:= <<"ms">> ->
    case whole(V, A) of
        false -> refused(T, Name, V, A);
        N -> N
    end;
typed(<<"id">>, _, _, <<"$new_id">>, _) -> new_id();
typed(<<"id">>, _, _, V, _) ->
    %% A missing id (or no text) is refused by the id pattern, INVALID_NAME, as in the
    %% other ports ("invalid event id undefined: use ...").
    Id = case as_text(V) of
             false -> V;
             B -> B
         end,
    case homing_manifest:check_id(Id) of
        ok -> Id;
        {error, {C, W}} -> throw({refused, C, W})
    end;
typed(<<"key">>, _, _, V, _) when V =:= undefined; V =:= null -> <<>>;
typed(<<"key">>, A, Name, V, _) ->
    is_binary(V) orelse is_list(V) orelse refused(<<"key">>, Name, V, A),
    text(V, Name);
typed(<<"envelope">>, _, _, V, C) -> envelope(V, C);
typed(<<"result">>, _, _, V, _) when V =:= undefined; V =:= null -> <<>>;
typed(<<"result">>, _, _, V, C) -> envelope(V, C);
typed(<<"bool">>, _, _, true, _) -> 1;
typed(<<"bool">>, _, _, false, _) -> 0;
typed(<<"bool">>, _, Name, V, _) ->
    refuse(iolist_to_binary(io_lib:format("~s is true or false, got ~0tP", [Name, V, 5])));
%% Text with no default that is missing, or given as null, is refused (never sent as
%% ''), as in Python and JavaScript; a default ('' for fail's reason) fills a missing one.
typed(<<"text">>, _, Name, V, _) -> text(V, Name);
typed(<<"name">>, A, Name, V, _) ->
    B = as_text(V),
    is_binary(B) andalso byte_size(B) >= 1 andalso byte_size(B) =< maps:get(<<"max">>, A)
        orelse refused(<<"name">>, Name, V, A),
    B;
typed(T, _, Name, _, _) -> refused(<<"type">>, Name, T, #{}).

%% A whole number in the slot's [min, max], as the integer sent (a whole float is taken).
whole(V, A) when is_float(V), V == trunc(V) -> whole(trunc(V), A);
whole(V, A) when is_integer(V) -> in(V, A) andalso V;
whole(_, _) -> false.

text(V, Name) ->
    case as_text(V) of
        false -> refused(<<"text">>, Name, V, #{});
        B -> B
    end.

%% Text as a binary (a binary, a chardata list or an atom other than undefined, null,
%% true and false), else false.
as_text(V) when is_binary(V); is_list(V) ->
    try unicode:characters_to_binary(V) of
        B when is_binary(B) -> B;
        _ -> false
    catch error:badarg -> false % a list that is no text ([1.5])
    end;
as_text(V) when is_atom(V), V =/= undefined, V =/= null, V =/= true, V =/= false ->
    atom_to_binary(V, utf8);
as_text(_) -> false.

envelope(V, #{max_payload := Max}) ->
    case homing_envelope:encode(V) of
        {ok, B} when byte_size(B) =< Max -> B;
        {ok, B} ->
            throw({refused, payload_too_large,
                   homing_manifest:refusal(<<"payload">>, #{<<"size">> => byte_size(B), <<"max">> => Max})});
        {error, {C, W}} -> throw({refused, C, W})
    end.

%% Policy overrides: field => number, or null to remove the override; each field
%% refused by its own name.
pairs(Name, P) when is_map(P) -> pairs(Name, maps:to_list(P));
pairs(Name, {obj, L}) -> pairs(Name, L);
pairs(Name, L) when is_list(L) ->
    Known = homing_manifest:layout(<<"policy">>),
    lists:flatmap(
      fun({K0, V}) ->
              K = text(K0, <<"policy field">>),
              maps:is_key(K, Known) andalso policy_value(V) =/= false orelse
                  refused(<<"policy">>, K, V, #{}),
              [K, policy_value(V)];
         (X) -> refused(<<"pairs">>, Name, X, #{})
      end, L);
pairs(Name, P) -> refused(<<"pairs">>, Name, P, #{}).

policy_value(null) -> <<>>;
policy_value(V) when is_integer(V) -> V;
policy_value(V) when is_float(V) -> float_to_binary(V, [short]);
policy_value(_) -> false.

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
    try shape(maps:get(<<"shape">>, Spec), reply(maps:get(<<"reply">>, Spec), Reply))
    catch error:_ -> {error, {script, iolist_to_binary(io_lib:format(
                          "a reply the call table does not describe: ~0tP", [Reply, 10]))}}
    end.

reply(#{<<"kind">> := <<"value">>, <<"type">> := T}, R) -> conv(T, R);
reply(#{<<"kind">> := <<"tuple">>, <<"fields">> := Fs}, R) -> fields(Fs, R);
reply(#{<<"kind">> := <<"records">>, <<"head">> := H, <<"each">> := E}, R) ->
    {Head, Rest} = lists:split(length(H), R),
    (fields(H, Head))#{records => [fields(E, Rec) || Rec <- chunks(length(E), Rest)]};
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

%% The table's shape (docs/protocol.md, "Worked out by the build"), in its order: merge
%% the head fields named into each record; rows: the value is the list of records, else
%% the value itself; pick one field or make the record (of each, with rows); one: the
%% first item of a batch_of call, its error returned.
shape(Sh, Value) -> one(Sh, rows(Sh, merge(Sh, Value))).

merge(#{<<"merge">> := Names}, #{records := Recs} = Value) ->
    Head = maps:with([atom(N) || N <- Names], Value),
    Value#{records := [maps:merge(R, Head) || R <- Recs]};
merge(_, Value) -> Value.

rows(#{<<"rows">> := true} = Sh, #{records := Recs}) -> [each(Sh, R) || R <- Recs];
rows(Sh, Value) -> each(Sh, Value).

one(#{<<"one">> := true}, [{error, _} = E | _]) -> E;
one(#{<<"one">> := true}, [First | _]) -> {ok, First};
one(_, Value) -> {ok, Value}.

each(#{<<"pick">> := Field}, Value) -> maps:get(atom(Field), Value);
each(#{<<"record">> := Name}, Value) -> record(maps:get(Name, records()), Value);
each(_, Value) -> Value.

%% This port's value types are maps of the table's records (records.R.fields): the
%% reply's own fields (the build refuses a record that drops one), but a record that
%% holds the records (Batch, DeadPage) takes them under its field and only its fields.
record(#{<<"fields">> := Fields, <<"items">> := #{<<"field">> := Field}}, Value) ->
    maps:with([atom(F) || F <- Fields], Value#{atom(Field) => maps:get(records, Value)});
record(_, Value) -> Value.

records() -> maps:get(<<"records">>, homing_manifest:manifest()).

%% @doc A stored envelope's payload, or {error, {corrupt_envelope, _}}.
-spec decode_payload(binary()) -> {ok, term()} | {error, {corrupt_envelope, binary()}}.
decode_payload(Raw) -> homing_envelope:decode(Raw).
