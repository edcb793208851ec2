"""lua/cold.py builds the functions marked --@cold on first use, not on every call.

Why: every top-level function of a flattened script is a closure Redis builds
again on each call; those a script calls only on rare paths are built by one
builder the first time one of them runs. A rewrite that missed a call site
would call nil on that rare path, and one that rewrote a value use or a
shadowing local would change what the script means; these tests hold every
manifest script and the rewrite's refusals to that. No Redis needed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from homing.manifest import MANIFEST

LUA = Path(__file__).resolve().parents[2] / "lua"
sys.path.insert(0, str(LUA))
import cold  # noqa: E402 - lua/ is on the path from here on

MARKED = {m.group(1) for p in [*(LUA / "include").glob("*.lua"), *(LUA / "scripts").glob("*.lua")]
          for m in re.finditer(r"^--@cold\b.*\nlocal function (\w+)", p.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("name", sorted(MANIFEST["scripts"]))
def test_each_cold_call_has_its_function_in_the_builder(name: str) -> None:
    source = MANIFEST["scripts"][name]["source"]
    calls = set(re.findall(r"\bcold\(\)\.(\w+)\(", source))
    built = set(re.findall(r"^function C\.(\w+)\(", source, re.MULTILINE))
    assert calls <= built, f"{name} calls {sorted(calls - built)} that its builder lacks"
    assert built <= calls, f"{name} builds {sorted(built - calls)} that it never calls"
    assert built <= MARKED | {"expected_type"}
    for fn in built:
        assert not re.search(rf"^local function {fn}\(", source, re.MULTILINE), (name, fn)
        assert not re.search(rf"(?<![.\w]){fn}\(", source.replace(f"C.{fn}(", "")), (name, fn)
    assert "--@cold" not in source


def test_cold_functions_move_into_the_builder_and_calls_go_through_it() -> None:
    code = ("local A = 1\n"
            "--@cold\n"
            "local function f(x) return x + A end\n"
            "local function g(y) return f(y) end\n"
            "-- why h is rare\n"
            "--@cold\n"
            "local function h() return f(2) end\n"
            "return g(1) + h()\n")
    out, names = cold.defer(code)
    assert names == ["f", "h"]
    assert out.startswith("local cold ")
    assert "local function f" not in out and "local function h" not in out
    assert "return cold().f(y)" in out and "return g(1) + cold().h()" in out
    assert "function C.f(x) return x + A end" in out
    assert "-- why h is rare\nfunction C.h() return cold().f(2) end" in out
    assert "--@cold" not in out
    # The builder stands where h stood: after every local a body captures.
    assert out.index("local function g") < out.index("cold = function()")


def test_a_script_without_cold_functions_is_left_as_it_is() -> None:
    code = "local function f() return 1 end\nreturn f()\n"
    assert cold.defer(code) == (code, [])


USES = ["local t = {f}\nreturn t", "return pcall(f)", "local f = 2\nreturn f",
        "local function k(f) return f end\nreturn k(1)", "return f'x'"]


@pytest.mark.parametrize("use", USES)
def test_a_cold_function_used_other_than_by_a_call_is_refused(use: str) -> None:
    with pytest.raises(cold.ColdError):
        cold.defer("--@cold\nlocal function f(x) return x end\n" + use + "\n")


def test_a_local_declared_twice_above_the_builder_is_refused() -> None:
    code = ("local A = 1\nlocal A = 2\n--@cold\nlocal function f() return A end\nreturn f()\n")
    with pytest.raises(cold.ColdError):
        cold.defer(code)


def test_a_call_above_the_builder_outside_any_function_is_refused() -> None:
    """cold is nil above the builder (the last --@cold declaration): a call there,
    at the top level or in an if, would fail at run time, on its rare path only."""
    for above in ("if X then f(1) end\n", "f(1)\n"):
        code = ("--@cold\nlocal function f(x) return x end\n" + above +
                "--@cold\nlocal function g() return f(2) end\nreturn g()\n")
        with pytest.raises(cold.ColdError, match="above the last --@cold declaration"):
            cold.defer(code)
    # Inside a function declared above the builder it is fine: called after it.
    ok = ("--@cold\nlocal function f(x) return x end\nlocal function k() return f(1) end\n"
          "--@cold\nlocal function g() return f(2) end\nreturn k() + g()\n")
    assert "return cold().f(1)" in cold.defer(ok)[0]
