"""lua/build.py keeps of the includes only what each flattened script uses.

Why: Redis builds every top-level local of a script again on each call, so the
build drops the include functions and generated tables a script never reaches
(lua/deadcode.py). Dropping one it does reach would make the script call nil
at run time, on whatever rare path uses it; these tests hold every manifest
script to both directions on its real source, and the pruning rules to the
cases where a mistake would be silent. No Redis needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from homing.manifest import MANIFEST

LUA = Path(__file__).resolve().parents[2] / "lua"
sys.path.insert(0, str(LUA))
import deadcode  # noqa: E402 - lua/ is on the path from here on

INCLUDE_FUNCS = {m.group(1) for p in (LUA / "include").glob("*.lua")
                 for m in re.finditer(r"^local function (\w+)", p.read_text(), re.MULTILINE)}


def top_level_functions(tokens: list[deadcode.Token]) -> dict[str, tuple[int, int]]:
    """Each top-level ``local function``: its token span."""
    out, depth, i = {}, 0, 0
    while i < len(tokens):
        t = tokens[i]
        if depth == 0 and t.text == "local" and tokens[i + 1].text == "function":
            d = deadcode.declaration_at(tokens, i)
            assert d is not None, f"unreadable function at line {t.line}"
            out[d.names[0]] = (d.first, d.last)
            i = d.last + 1
            continue
        if t.kind == "keyword" and t.text in deadcode.OPENERS:
            depth += 1
        elif t.kind == "keyword" and t.text in deadcode.CLOSERS:
            depth -= 1
        i += 1
    return out


def called(tokens: list[deadcode.Token]) -> set[str]:
    """Names called as NAME(...), NAME'...' or NAME{...} (not fields)."""
    out = set()
    for i, t in enumerate(tokens[:-1]):
        if t.kind == "name" and (i == 0 or tokens[i - 1].text not in (".", ":")) and (
                tokens[i + 1].text in ("(", "{") or tokens[i + 1].kind == "string"):
            out.add(t.text)
    return out


def lua_of(source: str) -> str:
    return source.split("\n", 1)[1] if source.startswith("#!") else source


@pytest.mark.parametrize("name", sorted(MANIFEST["scripts"]))
def test_flattened_script_has_what_it_calls_and_nothing_it_never_calls(name: str) -> None:
    tokens = deadcode.tokenize(lua_of(MANIFEST["scripts"][name]["source"]))
    funcs = top_level_functions(tokens)
    # Every include function the script calls is defined in it.
    missing = (called(tokens) & INCLUDE_FUNCS) - set(funcs)
    assert not missing, f"{name} calls {sorted(missing)} but its source lacks them"
    # And every include function it defines is used outside its own body.
    for fn, (first, last) in funcs.items():
        if fn not in INCLUDE_FUNCS:
            continue
        outside = tokens[:first] + tokens[last + 1:]
        assert fn in deadcode.referenced(outside), f"{name} defines {fn} but never uses it"


def test_generated_tables_only_where_used() -> None:
    for name, entry in MANIFEST["scripts"].items():
        tokens = deadcode.tokenize(lua_of(entry["source"]))
        texts = [t.text for t in tokens]
        for table in ("DEFAULTS", "POLICY_FIELDS", "LIMITS", "STATUS_LETTERS", "K",
                      "expected_type", "policy_ranges", "E"):
            names = [i for i, t in enumerate(tokens) if t.text == table and t.kind == "name"
                     and not (i and texts[i - 1] in (".", ":"))]
            defined = [i for i in names if texts[i - 1] == "local" or texts[i - 2:i] == [
                "local", "function"]]
            assert len(defined) <= 1, (name, table)
            assert bool(defined) == (len(names) > len(defined)), (name, table)


def prune(*pieces: tuple[bool, str]) -> str:
    return deadcode.prune(list(pieces))[0]


def test_unused_functions_and_tables_go_transitively() -> None:
    lib = ("local A = {x = 1}\n"
           "local function f() return A.x end\n"
           "local function g() return f() end\n"
           "local function h() return 2 end\n"
           "local B = setmetatable({}, {__index = function(_, k) return k end})\n")
    out = prune((True, lib), (False, "return g()\n"))
    assert "local function g" in out and "local function f" in out and "local A" in out
    assert "local function h" not in out and "local B" not in out
    out = prune((True, lib), (False, "return 1\n"))
    assert "local" not in out


def test_a_field_name_is_no_use_but_a_recursive_call_is_no_keep() -> None:
    lib = "local function s() return 1 end\nlocal function r(n) return r(n - 1) end\n"
    out = prune((True, lib), (False, "local m = {}\nreturn m.s, m:r()\n"))
    assert "local function" not in out


def test_what_runs_something_is_kept_even_unused() -> None:
    lib = ("local X = redis.call('GET', KEYS[1])\n"
           "local Y = tostring(1)\n"
           "count('x', 1)\n"
           "local function count(f, n) return n end\n")
    out = prune((True, lib), (False, "return 1\n"))
    assert "local X" in out and "local Y" in out and "count('x', 1)" in out
    # The top-level call above uses count only as a global (it comes first), but the
    # analysis goes by name and keeps the later local too: keeping is the safe error.
    assert "local function count" in out


def test_the_scripts_own_body_is_never_pruned() -> None:
    body = "local function unused() return 1 end\nlocal T = {}\nreturn 1\n"
    assert prune((True, ""), (False, body)) == body


def test_a_multi_line_value_is_cut_whole() -> None:
    lib = ("local P = 'a' ..\n  'b'\n  .. 'c'\n"
           "local Q = {\n  1,\n  2,\n}\n"
           "local R = 3\n")
    out = prune((True, lib), (False, "return R\n"))
    assert out.strip() == "local R = 3\nreturn R"


def test_a_shared_name_keeps_every_declaration_of_it() -> None:
    lib = "local function fmt() return 1 end\nlocal function fmt() return 2 end\n"
    assert prune((True, lib), (False, "return fmt()\n")).count("local function fmt") == 2


def test_strings_and_comments_hold_no_names() -> None:
    lib = "local function f() return 1 end\nlocal function g() return 2 end\n"
    out = prune((True, lib), (False, "-- f()\nlocal s = 'f()' .. [[g()]]\nreturn s\n"))
    assert "local function" not in out


def test_fold_reads_generated_constants_in_place() -> None:
    consts = {"K": {"ready": "KEYS[1]"}, "LIMITS": {"batch": "(1000)"}}
    out = deadcode.fold("local n = LIMITS.batch .. 'K.ready'\nreturn K.ready, x.K.ready, K.other\n",
                        consts)
    assert out == "local n = (1000) .. 'K.ready'\nreturn KEYS[1], x.K.ready, K.other\n"
    with pytest.raises(deadcode.LuaSyntaxError, match="not assignable"):
        deadcode.fold("K.ready = 1\n", consts)
