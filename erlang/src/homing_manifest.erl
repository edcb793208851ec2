%% @doc The shared manifest (priv/manifest.eterm, converted from python/homing/manifest.json
%% by tools/manifest_terms.py): scripts, key layout, limits, policy and error table.
%%
%% Read once and kept in a persistent_term: every call needs a script's sha1
%% and keys, and the manifest never changes while the node runs.
-module(homing_manifest).
-export([manifest/0, script/1, layout/1, layout_all/0, limit/1, priv_dir/0, service_key/3, global_key/2,
         check_service/1, check_id/1, status_name/1, refusal/2]).

-define(KEY, {?MODULE, manifest}).

%% @doc The whole manifest as a map with binary keys.
-spec manifest() -> map().
manifest() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            {ok, [M]} = file:consult(filename:join(priv_dir(), "manifest.eterm")),
            Patterns = #{service => compile(maps:get(<<"service_pattern">>, maps:get(<<"layout">>, M))),
                         id => compile(maps:get(<<"id_pattern">>, maps:get(<<"layout">>, M)))},
            M1 = M#{patterns => Patterns},
            persistent_term:put(?KEY, M1),
            M1;
        M -> M
    end.

compile(Pattern) ->
    {ok, Re} = re:compile(Pattern, [dollar_endonly]),
    Re.

%% @doc The priv directory, found beside ebin/ whatever the checkout's directory is called.
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(homing) of
        {error, _} -> filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir -> Dir
    end.

%% @doc One script of the manifest (sha1, source, keys, numkeys, ...), by name.
-spec script(binary()) -> map().
script(Name) -> maps:get(Name, maps:get(<<"scripts">>, manifest())).

-spec layout_all() -> map().
layout_all() -> maps:get(<<"layout">>, manifest()).

-spec layout(binary()) -> term().
layout(Field) -> maps:get(Field, maps:get(<<"layout">>, manifest())).

-spec limit(binary()) -> integer().
limit(Name) -> maps:get(Name, layout(<<"limits">>)).

%% @doc <prefix>:{<service>}:<name>: every key of a service shares one hash tag (one slot).
-spec service_key(binary(), binary(), binary()) -> binary().
service_key(Prefix, Service, Name) -> <<Prefix/binary, ":{", Service/binary, "}:", Name/binary>>.

-spec global_key(binary(), binary()) -> binary().
global_key(Prefix, Name) -> <<Prefix/binary, ":", Name/binary>>.

%% @doc Service names and ids are refused before Redis when they do not match the
%% layout's pattern ('{', '}' or ':' would change the key structure).
-spec check_service(term()) -> ok | {error, {invalid_name, binary()}}.
check_service(S) -> check(service, S).

-spec check_id(term()) -> ok | {error, {invalid_name, binary()}}.
check_id(S) -> check(id, S).

check(What, S) when is_binary(S) ->
    Re = maps:get(What, maps:get(patterns, manifest())),
    case re:run(S, Re, [{capture, none}]) of
        match -> ok;
        nomatch -> invalid(What, S)
    end;
check(What, S) -> invalid(What, S).

invalid(What, S) ->
    Shown = case is_binary(S) of
                true -> io_lib:format("'~ts'", [S]);
                false -> io_lib:format("~0tP", [S, 8])
            end,
    Pattern = layout(<<(atom_to_binary(What, utf8))/binary, "_pattern">>),
    {error, {invalid_name, refusal(<<"pattern">>, #{<<"what">> => what(What), <<"value">> => Shown,
                                                    <<"pattern">> => Pattern})}}.

what(service) -> <<"service name">>;
what(id) -> <<"event id">>.

%% @doc The text of a refusal of the manifest's refusals (the words every port uses),
%% its {names} filled from Vars (integers, or text as a binary or iodata); a name Vars
%% lacks stays as it is.
-spec refusal(binary(), #{binary() => integer() | iodata()}) -> binary().
refusal(Kind, Vars) ->
    Text = maps:get(Kind, maps:get(<<"refusals">>, manifest())),
    iolist_to_binary([fill(Part, Vars) || Part <- re:split(Text, <<"(\\{\\w+\\})">>, [trim])]).

fill(<<"{", _/binary>> = Part, Vars) ->
    case maps:get(binary:part(Part, 1, byte_size(Part) - 2), Vars, undefined) of
        V when is_integer(V) -> integer_to_binary(V);
        V when is_binary(V); is_list(V) -> V;
        _ -> Part
    end;
fill(Part, _) -> Part.

%% @doc The name of a status letter of the layout (<<"v">> -> <<"reserved">>).
-spec status_name(binary()) -> binary().
status_name(Letter) ->
    case [N || {N, L} <- maps:to_list(layout(<<"statuses">>)), L =:= Letter] of
        [Name] -> Name;
        [] -> Letter
    end.
