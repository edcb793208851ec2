"""The call table: the build refuses what it cannot describe, and a new script needs no code.

The rules live in lua/calltable.py (run by lua/build.py); these tests build
copies of lua/ and conformance/ with one thing broken each, and one with a new
script, which the Python port then calls through the table alone against a
real Redis.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import homing
from homing import manifest, ops

ROOT = Path(__file__).resolve().parents[2]

ECHO = """--[[
@script echo
@version 1
@memory grows
@summary A test script: count calls and hand back what it was given.
@key counters
@arg times whole(1..5) how many times to repeat the word
@arg word name(20) the word
@arg loud bool 1: upper case
@return tuple(said:str,calls:int) the words, and how many echo calls there were
@error INVALID_ARGUMENT
]]
--@include base
argc(3)
local n = int_arg(1, 'times', 1, 5)
local w = ARGV[2]
if ARGV[3] == '1' then w = string.upper(w) end
local words = {}
for i = 1, n do words[i] = w end
local said = table.concat(words, ' ')
return {said, redis.call('HINCRBY', K.counters, 'echoes', 1)}
"""

ECHO_CALL = {"script": "echo", "args": {"times": "optional", "word": "required",
                                        "loud": "optional"},
             "returns": "the words and the call count", "defaults": {"times": 1, "loud": False},
             "pick": None}


def _tree(tmp_path: Path) -> Path:
    """A copy of lua/ and conformance/ to break or extend."""
    shutil.copytree(ROOT / "lua", tmp_path / "lua")
    shutil.copytree(ROOT / "conformance", tmp_path / "conformance")
    return tmp_path


def _build(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "lua" / "build.py")],
                          capture_output=True, text=True)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _add_call(root: Path, name: str, entry: dict) -> None:
    p = root / "conformance" / "calls.json"
    calls = json.loads(p.read_text())
    calls["calls"][name] = {k: v for k, v in entry.items() if v is not None}
    p.write_text(json.dumps(calls))


@pytest.mark.parametrize("what, edit, message", [
    ("an unknown type", ("dequeue.lua", "@arg reserve bool", "@arg reserve boolean"),
     "unknown type boolean"),
    ("bounds that are not numbers", ("dequeue.lua", "whole(1..batch)", "whole(1..lots)"),
     "bound 'lots'"),
    ("argc that disagrees with the header", ("cancel.lua", "argc(1)", "argc(2)"),
     "header declares 1 arguments"),
    ("a reply kind it does not know", ("cancel.lua", "@return value(bool)", "@return flag(bool)"),
     "unknown reply kind flag"),
    ("a list without its count", ("release.lua", "@arg count count(items) number of items\n", ""),
     "needs a count(items)"),
    ("a list that is not last", ("release.lua", "@arg items list(id:id,token:token)",
                                 "@arg items list(id:id,token:token)\n@arg extra id"),
     "must be the last argument"),
])
def test_build_refuses_a_header_it_cannot_describe(tmp_path: Path, what: str,
                                                    edit: tuple[str, str, str],
                                                    message: str) -> None:
    root = _tree(tmp_path)
    _edit(root / "lua" / "scripts" / edit[0], edit[1], edit[2])
    r = _build(root)
    assert r.returncode == 1, what
    assert message in r.stderr, r.stderr


def test_build_refuses_a_call_that_leaves_an_argument_unfilled(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    p = root / "conformance" / "calls.json"
    calls = json.loads(p.read_text())
    del calls["calls"]["cancel_timer"]["args"]["id"]
    p.write_text(json.dumps(calls))
    r = _build(root)
    assert r.returncode == 1 and "nothing fills the script's argument id" in r.stderr


def test_build_refuses_a_client_argument_no_slot_takes(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    p = root / "conformance" / "calls.json"
    calls = json.loads(p.read_text())
    calls["calls"]["cancel_timer"]["args"]["colour"] = "optional"
    p.write_text(json.dumps(calls))
    r = _build(root)
    assert r.returncode == 1 and "['colour'] fill no script argument" in r.stderr


def test_build_refuses_a_script_without_a_client_call(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "lua" / "scripts" / "echo.lua").write_text(ECHO)
    r = _build(root)
    assert r.returncode == 1 and "scripts ['echo'] have no client call" in r.stderr


@pytest.fixture
def echo_manifest(tmp_path: Path) -> dict:
    """The manifest of a tree with one new script and its calls.json entry: no port code."""
    root = _tree(tmp_path)
    (root / "lua" / "scripts" / "echo.lua").write_text(ECHO)
    _add_call(root, "echo", ECHO_CALL)
    r = _build(root)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_new_script_is_a_call_with_no_code(echo_manifest: dict, redis_url: str, prefix: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Built with its header and calls.json entry, echo runs through the generic layer:
    arguments checked and encoded, the reply parsed, by the table alone."""
    entry = echo_manifest["calls"]["echo"]
    assert [a["name"] for a in entry["args"]] == ["times", "word", "loud"]
    assert entry["reply"] == {"kind": "tuple", "doc": "the words, and how many echo calls there "
                              "were", "fields": [{"name": "said", "type": "str"},
                                                 {"name": "calls", "type": "int"}]}
    s = echo_manifest["scripts"]["echo"]
    monkeypatch.setitem(ops.CALLS, "echo", entry)
    monkeypatch.setitem(manifest.SCRIPTS, "echo", manifest.Script(
        "echo", s["version"], s["sha1"], s["source"], tuple(s["keys"]), s["memory"]))
    with homing.Client.from_url(redis_url, prefix=prefix) as client:
        assert client.run(client.op("echo", "svc", word="hi")) == ("hi", 1)
        assert client.run(client.op("echo", "svc", word="hi", times=3, loud=True)) == \
            ("HI HI HI", 2)
        # The checks come from the header's types, before anything is sent.
        with pytest.raises(homing.InvalidArgumentError, match="times must be a whole number"):
            client.run(client.op("echo", "svc", word="hi", times=6))
        with pytest.raises(homing.InvalidArgumentError, match="word must be 1..20 bytes"):
            client.run(client.op("echo", "svc", word=""))
        with pytest.raises(homing.InvalidArgumentError, match="takes no argument colour"):
            client.op("echo", "svc", word="hi", colour="red")
        assert client.redis.hget(f"{prefix}:{{svc}}:counters", "echoes") == b"2"


def test_every_script_has_a_typed_signature() -> None:
    """The shipped manifest: every ARGV slot typed, every reply a known kind."""
    kinds = {"value", "tuple", "records", "items", "union", "map"}
    for name, s in manifest.MANIFEST["scripts"].items():
        assert all("type" in a for a in s["argv"]), name
        assert s["reply"]["kind"] in kinds, name
    scripts = {c["script"] for c in ops.CALLS.values()}
    assert scripts == set(manifest.MANIFEST["scripts"])
