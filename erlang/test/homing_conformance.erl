%% @doc The conformance runner of the Erlang port (conformance/README.md, "Adding a
%% runner for a new language"), over the converted copies in priv/conformance/.
%%
%% Per vector: a fresh service under a run prefix of its own, `given' written,
%% the service's test clock frozen, the steps run in order until the first
%% mismatch, then exactly that service's keys, registry entries and the daemon
%% beats it wrote deleted. Client calls go through queue_client and the
%% generic call layer (homing_call), raw script steps through homing_conn.
-module(homing_conformance).
-export([vectors/0, envelopes/0, run_vector/3, run_envelope/1, new_prefix/0, to_value/1, args/1]).

-define(CLOCK, <<"test_clock">>).

%% -- loading ------------------------------------------------------------------------

dir() -> filename:join(homing_manifest:priv_dir(), "conformance").

%% @doc Every vector as {Operation, Vector}, files in name order.
vectors() ->
    Files = lists:sort(filelib:wildcard(filename:join([dir(), "vectors", "*.eterm"]))),
    lists:append([begin
                      {ok, [{obj, F}]} = file:consult(File),
                      Op = filename:basename(File, ".eterm"),
                      [{Op, V} || V <- get(<<"vectors">>, F)]
                  end || File <- Files]).

envelopes() ->
    {ok, [{obj, F}]} = file:consult(filename:join(dir(), "envelopes.eterm")),
    get(<<"vectors">>, F).

get(K, {obj, L}) -> get(K, L);
get(K, L) -> proplists:get_value(K, L).

get(K, L, D) ->
    case lists:keyfind(K, 1, unobj(L)) of
        {_, V} -> V;
        false -> D
    end.

unobj({obj, L}) -> L;
unobj(L) -> L.

has(K, L) -> lists:keymember(K, 1, unobj(L)).

new_prefix() ->
    <<"homing-conformance-", (binary:encode_hex(crypto:strong_rand_bytes(4)))/binary>>.

%% -- value conventions ------------------------------------------------------------

%% @doc A JSON value with conventions as the Erlang value a client sends or returns
%% (objects as {map, Pairs}, which keep the file's order when encoded).
to_value({obj, [{<<"$hex">>, H}]}) -> {bytes, binary:decode_hex(H)};
to_value({obj, [{<<"$bytes">>, T}]}) -> {bytes, T};
to_value({obj, [{<<"$int">>, I}]}) -> binary_to_integer(I);
to_value({obj, [{<<"$float">>, F}]}) -> float(F);
to_value({obj, [{<<"$envelope">>, V}]}) ->
    {ok, B} = homing_envelope:encode(to_value(V)),
    B;
%% The data value of an event enqueued ready and never delivered
%% (lua/include/fresh.lua): "#created_ms#" then the envelope.
to_value({obj, [{<<"$fresh">>, [C, V]}]}) when is_integer(C) ->
    {ok, B} = homing_envelope:encode(to_value(V)),
    <<"#", (integer_to_binary(C))/binary, "#", B/binary>>;
to_value({obj, Pairs}) -> {map, [{K, to_value(V)} || {K, V} <- Pairs]};
to_value(L) when is_list(L) -> [to_value(X) || X <- L];
to_value(V) -> V.

%% A JSON value as the bytes Redis stores.
to_wire(B) when is_binary(B) -> B;
to_wire(I) when is_integer(I) -> integer_to_binary(I);
to_wire(F) when is_float(F) -> float_to_binary(F, [short]);
to_wire(J) ->
    case to_value(J) of
        {bytes, B} -> B;
        B when is_binary(B) -> B;
        I when is_integer(I) -> integer_to_binary(I);
        Other -> error({not_a_redis_value, Other})
    end.

%% -- comparison ---------------------------------------------------------------------

%% Differences between an expectation (converted JSON) and an actual value; Mode is
%% value (client results), raw (a script's reply) or state (stored strings).
compare({obj, [{<<"$subset">>, {obj, Sub}}]}, Act, Path, Mode) ->
    case is_map(Act) of
        false -> [fmt("~s: expected an object, got ~0tP", [Path, Act, 8])];
        true -> lists:append([case maps:find(K, Act) of
                                  {ok, A} -> compare(V, A, [Path, ".", K], Mode);
                                  error -> [fmt("~s.~s: missing", [Path, K])]
                              end || {K, V} <- Sub])
    end;
compare({obj, [{<<"$error">>, Code}]}, Act, Path, _) ->
    case Act of
        #{<<"$error">> := Code} -> [];
        _ -> [fmt("~s: expected error ~s, got ~0tP", [Path, Code, Act, 8])]
    end;
compare({obj, [{<<"$", _/binary>>, _}]} = Conv, Act, Path, Mode) ->
    compare_scalar(to_value(Conv), Act, Path, Mode);
compare({obj, Pairs}, Act, Path, Mode) ->
    case is_map(Act) of
        false -> [fmt("~s: expected an object, got ~0tP", [Path, Act, 8])];
        true ->
            Keys = [K || {K, _} <- Pairs],
            [fmt("~s.~0tp: unexpected", [Path, K]) || K <- maps:keys(Act), not lists:member(K, Keys)]
                ++ lists:append([case maps:find(K, Act) of
                                     {ok, A} -> compare(V, A, [Path, ".", K], Mode);
                                     error -> [fmt("~s.~s: missing", [Path, K])]
                                 end || {K, V} <- Pairs])
    end;
compare(Exp, Act, Path, Mode) when is_list(Exp) ->
    case is_list(Act) of
        false -> [fmt("~s: expected a list, got ~0tP", [Path, Act, 8])];
        true when length(Exp) =/= length(Act) ->
            [fmt("~s: expected ~B items, got ~B: ~0tP", [Path, length(Exp), length(Act), Act, 10])];
        true ->
            lists:append([compare(E, A, [Path, "[", integer_to_list(I), "]"], Mode)
                          || {I, E, A} <- lists:zip3(lists:seq(0, length(Exp) - 1), Exp, Act)])
    end;
compare(Exp, Act, Path, Mode) -> compare_scalar(Exp, Act, Path, Mode).

compare_scalar(Exp, Act, Path, Mode) ->
    Same = if
               Mode =:= state, is_binary(Act), Exp =/= null -> to_wire(Exp) =:= Act;
               is_number(Exp), is_number(Act) -> Exp == Act;
               true -> Exp =:= Act
           end,
    case Same of
        true -> [];
        false -> [fmt("~s: expected ~0tP, got ~0tP", [Path, Exp, 8, Act, 8])]
    end.

fmt(F, A) -> iolist_to_binary(io_lib:format(F, A)).

%% -- the neutral form of each call -------------------------------------------------

neutral(M) when is_map(M) ->
    maps:from_list([{key(K), neutral(V)} || {K, V} <- maps:to_list(M)]);
neutral(L) when is_list(L) -> [neutral(X) || X <- L];
neutral({error, {Code, _}}) -> #{<<"$error">> => homing_errors:code(Code)};
neutral(ok) -> null;
neutral(V) -> V.

key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) -> K.

payload_of(Raw) ->
    case homing_envelope:decode(Raw) of
        {ok, V} -> V;
        {error, {Code, _}} -> {error, {Code, x}}
    end.

event(E) ->
    maps:remove(raw, E#{payload => payload_of(maps:get(raw, E))}).

%% The call's result in the neutral form of calls.json, through the public API.
call(C, S, <<"dequeue">>, A) ->
    then(queue_client:dequeue(C, S, A), fun(Es) -> [event(E) || E <- Es] end);
call(C, S, <<"dequeue_batch">>, A) ->
    then(queue_client:dequeue_batch(C, S, A),
         fun(#{events := Es} = B) -> B#{events => [event(E) || E <- Es]} end);
call(C, S, <<"status">>, #{id := Id}) ->
    then(queue_client:status(C, S, Id), fun(#{result := {error, {Code, _}}} = St) ->
                                                St#{result => {error, {Code, x}}};
                                           (St) -> St
                                        end);
call(C, S, <<"result">>, #{id := Id}) -> queue_client:result(C, S, Id, 0);
call(C, S, <<"enqueue_group">>, A) ->
    queue_client:enqueue_group(C, S, maps:get(payloads, A), maps:with([ids, priorities], A));
call(C, S, <<"group_result">>, #{group := G}) -> queue_client:group_result(C, S, G);
call(C, S, <<"dead_list">>, A) ->
    then(queue_client:dead_list(C, S, maps:get(offset, A, 0), maps:get(count, A, 100)),
         fun(#{letters := Ls} = P) -> P#{letters => [event(L) || L <- Ls]} end);
call(C, S, <<"dead_requeue">>, A) -> pair(queue_client:dead_requeue(C, S, dead_which(A)));
call(C, S, <<"dead_purge">>, A) -> pair(queue_client:dead_purge(C, S, dead_which(A)));
call(C, _, <<"beat">>, #{name := N}) -> queue_client:beat(C, N);
call(C, _, <<"worker_beat">>, A) -> queue_client:call(C, worker_beat, none, A);
call(C, S, <<"configure">>, #{policy := P}) -> queue_client:configure(C, S, P);
call(C, S, Name, A) -> queue_client:call(C, binary_to_atom(Name, utf8), S, A).

dead_which(#{ids := Ids}) when is_list(Ids) -> Ids;
dead_which(A) -> {oldest, maps:get(count, A, 100)}.

pair({ok, {A, B}}) -> {ok, [A, B]};
pair(E) -> E.

then({ok, V}, F) -> {ok, F(V)};
then(E, _) -> E.

%% Step args: names as atoms, values with conventions decoded; items as maps.
args(undefined) -> #{};
args({obj, Pairs}) ->
    maps:from_list([{binary_to_atom(K, utf8), arg(K, V)} || {K, V} <- Pairs]).

arg(<<"items">>, L) when is_list(L) -> [args(I) || I <- L];
arg(<<"policy">>, {obj, Pairs}) -> [{K, to_value(V)} || {K, V} <- Pairs];
arg(_, V) -> to_value(V).

%% -- the runner ---------------------------------------------------------------------

key_types() ->
    maps:map(fun(_, #{<<"type">> := T}) -> T end,
             homing_manifest:layout(<<"service_keys">>)).

skey(#{prefix := P}, S, Name) -> homing_manifest:service_key(P, S, Name).
gkey(#{prefix := P}, Name) -> homing_manifest:global_key(P, Name).

q(C, Cmd) ->
    {ok, V} = homing_conn:q(C, Cmd),
    V.

%% The services a raw due_settle names: claim, count, then service, due pairs.
settled([_, _ | Pairs]) -> every_other(Pairs);
settled(_) -> [].

every_other([A, _ | Rest]) -> [A | every_other(Rest)];
every_other(_) -> [].

due_pairs([]) -> [];
due_pairs([M, Score | Rest]) ->
    N = binary_to_integer(hd(binary:split(Score, <<".">>))),
    [{M, case N >= 1 bsl 50 of true -> <<"claimed">>; false -> N end} | due_pairs(Rest)].

%% @doc Run one vector with client C (its prefix is the run's); ok or {fail, Detail}.
run_vector(C0, Op, {obj, V}) ->
    Service = <<(list_to_binary(Op))/binary, ".", (binary:encode_hex(crypto:strong_rand_bytes(4)))/binary>>,
    C = case get(<<"client">>, V) of
            undefined -> C0;
            Cl -> C0#{max_payload => get(<<"max_payload">>, Cl, maps:get(max_payload, C0))}
        end,
    put(homing_overrides, []),
    put(homing_daemons, []),
    put(homing_workers, []),
    put(homing_due, []),
    try
        write(C, Service, get(<<"given">>, V, {obj, []})),
        q(C, [<<"HSET">>, skey(C, Service, <<"config">>), ?CLOCK, get(<<"clock">>, V, 1000000)]),
        steps(C, Service, get(<<"steps">>, V), 1)
    after
        [cleanup(C, S) || S <- [Service | get(homing_overrides)]],
        [case get(Names) of
             [] -> ok;
             Ns -> q(C, [<<"HDEL">>, gkey(C, Key) | Ns])
         end || {Names, Key} <- [{homing_daemons, <<"daemons">>}, {homing_workers, <<"workers">>}]],
        %% The due-time index: the service's entry and those a raw due_settle wrote.
        q(C, [<<"ZREM">>, gkey(C, <<"due">>), Service | get(homing_due)])
    end.

steps(_, _, [], _) -> ok;
steps(C, S, [{obj, Step} | Rest], I) ->
    Problems = try step(C, S, Step)
               catch Class:Why:St -> [fmt("raised ~p:~0tP ~0tP", [Class, Why, 10, St, 12])]
               end,
    case Problems of
        [] -> steps(C, S, Rest, I + 1);
        _ ->
            What = case {get(<<"call">>, Step), get(<<"script">>, Step)} of
                       {undefined, undefined} -> element(1, hd(Step));
                       {undefined, Sc} -> Sc;
                       {Call, _} -> Call
                   end,
            {fail, fmt("step ~B (~s): ~s", [I, What, lists:join("; ", Problems)])}
    end.

cleanup(C, S) ->
    q(C, [<<"DEL">> | [skey(C, S, K) || K <- maps:keys(key_types())]]),
    q(C, [<<"SREM">>, gkey(C, <<"services">>), S]),
    q(C, [<<"SREM">>, gkey(C, <<"hints">>), S]).

typed(_, {obj, [{<<"$type">>, T} | Rest]}) -> {T, get(<<"value">>, Rest, null)};
typed(Name, V) -> {maps:get(Name, key_types()), V}.

write(C, S, {obj, Values}) ->
    lists:foreach(
      fun({Name, V0}) ->
              Key = skey(C, S, Name),
              {Kind, V} = typed(Name, V0),
              q(C, [<<"DEL">>, Key]),
              case {Kind, V} of
                  {_, null} -> ok;
                  {<<"string">>, _} -> q(C, [<<"SET">>, Key, to_wire(V)]);
                  {_, []} -> ok;
                  {_, {obj, []}} -> ok;
                  {<<"list">>, _} -> q(C, [<<"RPUSH">>, Key | [to_wire(X) || X <- V]]);
                  {<<"set">>, _} -> q(C, [<<"SADD">>, Key | [to_wire(X) || X <- V]]);
                  {<<"hash">>, {obj, Ps}} ->
                      q(C, [<<"HSET">>, Key | lists:append([[F, to_wire(X)] || {F, X} <- Ps])]);
                  {<<"zset">>, {obj, Ps}} ->
                      q(C, [<<"ZADD">>, Key | lists:append([[score(X), M] || {M, X} <- Ps])])
              end
      end, Values).

score(X) ->
    case to_value(X) of
        I when is_integer(I) -> integer_to_binary(I);
        F when is_float(F) -> float_to_binary(F, [short])
    end.

read(C, Key) ->
    case q(C, [<<"TYPE">>, Key]) of
        <<"list">> -> {<<"list">>, q(C, [<<"LRANGE">>, Key, 0, -1])};
        <<"hash">> -> {<<"hash">>, maps:from_list(pairs(q(C, [<<"HGETALL">>, Key])))};
        <<"zset">> ->
            {<<"zset">>, maps:from_list([{M, homing_call:num(Sc)}
                                          || {M, Sc} <- pairs(q(C, [<<"ZRANGE">>, Key, 0, -1,
                                                                    <<"WITHSCORES">>]))])};
        <<"string">> -> {<<"string">>, q(C, [<<"GET">>, Key])};
        <<"set">> -> {<<"set">>, lists:sort(q(C, [<<"SMEMBERS">>, Key]))};
        _ -> {<<"none">>, null}
    end.

pairs([A, B | R]) -> [{A, B} | pairs(R)];
pairs([]) -> [].

check_state(C, S, {obj, Expected}) ->
    lists:append([check(C, S, Name, Exp) || {Name, Exp} <- Expected]).

check(C, S, <<"$keys">>, Exp) ->
    Have = lists:sort([K || K <- maps:keys(key_types()),
                            q(C, [<<"EXISTS">>, skey(C, S, K)]) =:= <<"1">>]),
    case lists:sort(Exp) of
        Have -> [];
        E -> [fmt("state.$keys: expected ~0tp, got ~0tp", [E, Have])]
    end;
check(C, S, <<"$registered">>, Exp) ->
    Member = q(C, [<<"SISMEMBER">>, gkey(C, <<"services">>), S]) =:= <<"1">>,
    case Member of
        Exp -> [];
        _ -> [fmt("state.$registered: expected ~p, got ~p", [Exp, Member])]
    end;
check(C, _, <<"$due">>, {obj, Exp}) ->
    %% service -> its due time, or "claimed" for a scheduler's claim (2^50 + its now).
    Flat = q(C, [<<"ZRANGE">>, gkey(C, <<"due">>), <<"0">>, <<"-1">>, <<"WITHSCORES">>]),
    Have = lists:sort(due_pairs(Flat)),
    case lists:sort(Exp) of
        Have -> [];
        E -> [fmt("state.$due: expected ~0tp, got ~0tp", [E, Have])]
    end;
check(C, _, <<"$", Global/binary>>, Exp) when Global =:= <<"daemons">>; Global =:= <<"workers">> ->
    Have = lists:sort(q(C, [<<"HKEYS">>, gkey(C, Global)])),
    case lists:sort(Exp) of
        Have -> [];
        E -> [fmt("state.$~s: expected ~0tp, got ~0tp", [Global, E, Have])]
    end;
check(C, S, Name, Exp0) when Name =/= <<"$due">> ->
    {Kind, Exp} = typed(Name, Exp0),
    {HaveKind, Act} = read(C, skey(C, S, Name)),
    if
        Exp =:= null, HaveKind =:= <<"none">> -> [];
        Exp =:= null -> [fmt("state.~s: expected no key, got a ~s ~0tP", [Name, HaveKind, Act, 8])];
        HaveKind =/= Kind -> [fmt("state.~s: expected a ~s, got ~s", [Name, Kind, HaveKind])];
        Kind =:= <<"set">> ->
            compare(lists:sort(fun(A, B) -> to_wire(A) =< to_wire(B) end, Exp), Act,
                    ["state.", Name], state);
        true -> compare(Exp, Act, ["state.", Name], state)
    end.

step(C, S, Step) ->
    case Step of
        [{<<"clock">>, null} | _] -> q(C, [<<"HDEL">>, skey(C, S, <<"config">>), ?CLOCK]), [];
        [{<<"clock">>, Ms} | _] -> q(C, [<<"HSET">>, skey(C, S, <<"config">>), ?CLOCK, Ms]), [];
        [{<<"advance_ms">>, Ms} | _] ->
            q(C, [<<"HINCRBY">>, skey(C, S, <<"config">>), ?CLOCK, Ms]), [];
        _ -> step1(C, S, Step)
    end.

step1(C, S, Step) ->
    IsCall = has(<<"call">>, Step),
    case {has(<<"write">>, Step), has(<<"state">>, Step), IsCall, has(<<"script">>, Step)} of
        {true, _, _, _} -> write(C, S, get(<<"write">>, Step)), [];
        {_, true, _, _} -> check_state(C, S, get(<<"state">>, Step));
        {_, _, true, _} -> expect(call_step(C, S, Step), Step, value);
        {_, _, _, true} -> expect(script_step(C, S, Step), Step, raw);
        _ -> % a step of notes only
            case [K || {K, _} <- Step, K =/= <<"note">>] of
                [] -> [];
                Ks -> [fmt("unknown step ~0tp", [Ks])]
            end
    end.

call_step(C0, S0, Step) ->
    Name = get(<<"call">>, Step),
    A = args(get(<<"args">>, Step)),
    S = case get(<<"service">>, Step) of
            undefined -> S0;
            Override -> put(homing_overrides, [Override | get(homing_overrides)]), Override
        end,
    C = case get(<<"connection">>, Step) of
            <<"refused">> ->
                {ok, Pid} = homing_conn:start(#{port => homing_test_redis:closed_port(),
                                                prefix => maps:get(prefix, C0)}),
                homing_conn:client(Pid);
            _ -> C0
        end,
    %% Before the call: a half-done beat is cleaned up too.
    [put(Names, [maps:get(name, A) | get(Names)])
     || {Call, Names} <- [{<<"beat">>, homing_daemons}, {<<"worker_beat">>, homing_workers}],
        Name =:= Call, is_binary(maps:get(name, A, undefined))],
    try call(C, S, Name, A)
    after C =/= C0 andalso homing_conn:stop(C)
    end.

script_step(C, S, Step) ->
    Name = get(<<"script">>, Step),
    Script = homing_manifest:script(Name),
    Global = homing_manifest:layout(<<"global_keys">>),
    Keys = [case maps:is_key(K, Global) of
                true -> gkey(C, K);
                false -> skey(C, S, K)
            end || K <- get(<<"keys">>, Step, maps:get(<<"keys">>, Script))],
    Args = [to_wire(X) || X <- get(<<"args">>, Step, [])],
    Name =:= <<"due_settle">> andalso put(homing_due, settled(Args) ++ get(homing_due)),
    [put(Names, [hd(Args) | get(Names)])
     || {Call, Names} <- [{<<"beat">>, homing_daemons}, {<<"worker_beat">>, homing_workers}],
        Name =:= Call, Args =/= []],
    %% Through a RESP connection that keeps integer replies apart from bulk strings.
    Raw = fun(Cmd, Head) ->
                  homing_test_resp:command(maps:get(host, C), maps:get(port, C),
                                           [Cmd, Head, integer_to_binary(length(Keys)) | Keys ++ Args])
          end,
    Reply = case Raw(<<"EVALSHA">>, maps:get(<<"sha1">>, Script)) of
                {error, <<"NOSCRIPT", _/binary>>} -> Raw(<<"EVAL">>, maps:get(<<"source">>, Script));
                R -> R
            end,
    case Reply of
        {error, Text} -> {error, homing_conn:translate(Text, undefined)};
        V -> {ok, V}
    end.

expect(Got, Step, Mode) ->
    case {Got, has(<<"error">>, Step)} of
        {{error, {Code, Why}}, true} ->
            case homing_errors:code(Code) =:= get(<<"error">>, Step) of
                true -> [];
                false -> [fmt("expected error ~s, got ~s: ~s", [get(<<"error">>, Step),
                                                               homing_errors:code(Code), Why])]
            end;
        {{error, {Code, Why}}, false} ->
            [fmt("unexpected error ~s: ~s", [homing_errors:code(Code), Why])];
        {{ok, V}, true} -> [fmt("expected error ~s, got a reply: ~0tP", [get(<<"error">>, Step), V, 12])];
        {ok, true} -> [fmt("expected error ~s, got ok", [get(<<"error">>, Step)])];
        {Ok, false} ->
            V = case Ok of {ok, X} -> X; ok -> ok end,
            case has(<<"returns">>, Step) of
                true -> compare(get(<<"returns">>, Step), neutral(V), "returns", Mode);
                false -> []
            end
    end.

%% -- envelopes ----------------------------------------------------------------------

%% @doc One golden wire vector through homing_envelope, byte for byte; ok or {fail, Why}.
run_envelope({obj, Case}) ->
    Hex = get(<<"hex">>, Case),
    Problems =
        case {has(<<"error">>, Case), has(<<"payload">>, Case)} of
            {true, true} ->
                case homing_envelope:encode(to_value(get(<<"payload">>, Case))) of
                    {error, {Code, _}} -> code_is(Code, Case, "encode");
                    {ok, _} -> [fmt("encode: expected error ~s, got bytes", [get(<<"error">>, Case)])]
                end;
            {true, false} ->
                case homing_envelope:decode(binary:decode_hex(Hex)) of
                    {error, {Code, _}} -> code_is(Code, Case, "decode");
                    {ok, V} -> [fmt("decode: expected error ~s, got ~0tP", [get(<<"error">>, Case), V, 8])]
                end;
            _ ->
                %% A vector with "trace" (revision 1.1) encodes with exactly that trace.
                Trace = case get(<<"trace">>, Case, null) of
                            {obj, Ps} -> maps:from_list(Ps);
                            null -> null
                        end,
                Enc = case get(<<"decode_only">>, Case, false) of
                          true -> [];
                          false ->
                              {ok, B} = homing_envelope:encode(to_value(get(<<"payload">>, Case)),
                                                               Trace),
                              case string:lowercase(binary:encode_hex(B)) of
                                  Hex -> [];
                                  GotHex -> [fmt("encode: expected ~s, got ~s", [Hex, GotHex])]
                              end
                      end,
                {ok, D} = homing_envelope:decode(binary:decode_hex(Hex)),
                Traced = case has(<<"trace">>, Case) of
                             false -> [];
                             true ->
                                 case homing_envelope:trace_of(binary:decode_hex(Hex)) of
                                     {ok, Trace} -> [];
                                     {ok, Other} -> [fmt("trace: expected ~0tp, got ~0tp",
                                                         [Trace, Other])]
                                 end
                         end,
                Enc ++ Traced ++ compare(get(<<"payload">>, Case), D, "decode", value)
        end,
    case Problems of
        [] -> ok;
        _ -> {fail, iolist_to_binary(lists:join("; ", Problems))}
    end.

code_is(Code, Case, What) ->
    case homing_errors:code(Code) =:= get(<<"error">>, Case) of
        true -> [];
        false -> [fmt("~s: expected error ~s, got ~s", [What, get(<<"error">>, Case),
                                                       homing_errors:code(Code)])]
    end.
