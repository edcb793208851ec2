"""The packaged manifest and exception module against their sources in lua/.

The clients only ever read ``manifest.json`` and ``errors.py``; these tests
make sure they are what ``lua/build.py`` makes of the scripts right now, and
hold the scripts to the rules every script must keep (header contract, hash
tags, no unbounded or expiring commands, every Lua error code reachable).
These need no Redis.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from redis.crc import key_slot
from redis.exceptions import ResponseError

import homing
from homing import errors as homing_errors
from homing.connection import KeyCache, translate
from homing.manifest import (
    ERROR_REPLY_RE,
    LAYOUT,
    MANIFEST,
    MAX_BATCH,
    MAX_REASON,
    SCRIPTS,
    STATUS_NAMES,
    STATUSES,
    check_prefix,
)

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "lua"
PACKAGE = ROOT / "python" / "homing"
SCRIPT_FILES = sorted((LUA / "scripts").glob("*.lua"))
INCLUDE_FILES = sorted((LUA / "include").glob("*.lua"))
HEADER_RE = re.compile(r"^--\[\[\n(.*?)\n\]\]\n", re.DOTALL)
CALL_RE = re.compile(r"(?:redis\.p?call|\bon)\(\s*(['\"])(\w+)\1", re.IGNORECASE)
# The one call that does not name its command: on() in base.lua, which sends
# the command its callers name literally (as on('HMGET', ...)).
GENERIC_CALL = "redis.pcall(cmd, key, ...)"
# Commands no script may run: KEYS/SCAN walk the keyspace (unbounded, and
# wrong on Cluster), LREM is O(n) per call on a long queue, and expiry is lazy
# and cannot expire one field of a hash (retention is explicit, see prune.lua).
FORBIDDEN = {"KEYS", "SCAN", "LREM", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "SETEX",
             "PSETEX", "GETEX"}
# No exception: cancel_event used to remove a ready event with LREM (O(queue
# length)); it now leaves a dead copy counted in void (lua/include/void.lua).
ALLOWED: dict[str, set[str]] = {}


def build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LUA / "build.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def header_tags(path: Path) -> dict[str, list[str]]:
    """The @tags of a script's opening header, each with its first word."""
    m = HEADER_RE.match(path.read_text(encoding="utf-8"))
    assert m, f"{path.name} does not open with a --[[ ... ]] header"
    tags: dict[str, list[str]] = {}
    for line in m.group(1).splitlines():
        tm = re.match(r"^@(\w+)\s*(\S*)", line.strip())
        if tm:
            tags.setdefault(tm.group(1), []).append(tm.group(2))
    return tags


def test_packaged_manifest_is_fresh() -> None:
    res = build("--check", str(PACKAGE / "manifest.json"))
    assert res.returncode == 0, res.stderr


def test_packaged_errors_module_is_fresh(tmp_path: Path) -> None:
    out = tmp_path / "errors.py"
    res = build("--python-errors", str(out), "--out", str(tmp_path / "manifest.json"))
    assert res.returncode == 0, res.stderr
    assert (PACKAGE / "errors.py").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_every_error_code_has_its_class() -> None:
    table = json.loads((LUA / "errors.json").read_text(encoding="utf-8"))["errors"]
    for e in table:
        cls = getattr(homing, e["class"])
        assert cls.code == e["code"]
        assert issubclass(cls, homing.HomingError)
        assert homing_errors.BY_CODE[e["code"]] is cls
        if e.get("python_base"):
            assert issubclass(cls, getattr(builtins, e["python_base"]))


def test_manifest_has_every_script_file() -> None:
    assert sorted(MANIFEST["scripts"]) == [p.stem for p in SCRIPT_FILES]
    assert len(SCRIPT_FILES) >= 16


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.stem)
def test_header_matches_manifest(path: Path) -> None:
    tags = header_tags(path)
    entry = MANIFEST["scripts"][path.stem]
    assert tags["script"] == [path.stem]
    assert len(tags["version"]) == 1 and tags["version"][0].isdigit()
    assert entry["version"] == int(tags["version"][0])
    assert entry["keys"] == tags.get("key", [])
    assert entry["numkeys"] == len(entry["keys"]) == len(SCRIPTS[path.stem].keys)
    assert tuple(entry["keys"]) == SCRIPTS[path.stem].keys
    assert [a["name"] for a in entry["argv"]] == tags.get("arg", [])
    assert "return" in tags and "summary" in tags
    # The sha1 the clients EVALSHA must be the sha1 of the source they EVAL on NOSCRIPT.
    assert entry["sha1"] == hashlib.sha1(entry["source"].encode()).hexdigest()
    assert SCRIPTS[path.stem].sha1 == entry["sha1"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_keys_are_hash_tagged_per_service(name: str) -> None:
    layout = MANIFEST["layout"]
    script = SCRIPTS[name]
    if set(script.keys) & set(layout["global_keys"]):
        # A global-key script (the daemons' beat) takes that one key alone.
        assert len(script.keys) == 1
        assert KeyCache("homing").keys(script, "") == [f"homing:{script.keys[0]}"]
        return
    for k in script.keys:
        assert k in layout["service_keys"], f"{name} takes {k}, which keys.json lacks"
    for service in ("weather", "a.b-c_d", "x" * 128):
        keys = KeyCache("homing").keys(script, service)
        assert all(k.startswith(f"homing:{{{service}}}:") for k in keys)
        # One slot for every key of a call: a script never crosses Cluster slots.
        assert len({key_slot(k.encode()) for k in keys}) == 1


def test_global_keys_stand_alone_in_a_script() -> None:
    # A script runs on one Cluster slot: a global key shares it with no other key.
    layout = MANIFEST["layout"]
    for script in SCRIPTS.values():
        if set(script.keys) & set(layout["global_keys"]):
            assert len(script.keys) == 1, script.name


def test_memory_classes_set_the_shebang() -> None:
    # What a full Redis may run is decided by these flags (lua/build.py MEMORY).
    flags = {"grows": "#!lua\n", "level": "#!lua flags=allow-oom\n",
             "none": "#!lua flags=no-writes\n"}
    for script in SCRIPTS.values():
        if script.memory == "checked":
            assert not script.source.startswith("#!"), script.name
        else:
            assert script.source.startswith(flags[script.memory]), script.name
    assert SCRIPTS["enqueue"].memory == "grows" and SCRIPTS["complete"].memory == "checked"


@pytest.mark.parametrize("path", SCRIPT_FILES + INCLUDE_FILES, ids=lambda p: p.stem)
def test_no_forbidden_commands(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    commands = [m.group(2).upper() for m in CALL_RE.finditer(code)]
    # Every call names its command literally, so this scan sees all of them.
    calls = len(re.findall(r"redis\.p?call\(", code)) - code.count(GENERIC_CALL)
    calls += len(re.findall(r"\bon\(", code)) - len(re.findall(r"function on\(", code))
    assert len(commands) == calls
    bad = FORBIDDEN & set(commands) - ALLOWED.get(path.stem, set())
    assert not bad, f"{path.name} runs {bad}"


def test_flattened_sources_keep_the_rules() -> None:
    """The same scan on what Redis really runs (includes inlined, prologue added)."""
    for name, entry in MANIFEST["scripts"].items():
        commands = {m.group(2).upper() for m in CALL_RE.finditer(entry["source"])}
        assert not FORBIDDEN & commands - ALLOWED.get(name, set()), name
        assert "--@include" not in entry["source"], f"{name} has an unresolved include"


def raised(source: str, codes: set[str]) -> set[str]:
    """The error codes a flattened script names: the build writes each E.X as 'X'."""
    named = set(re.findall(r"\bE\.(\w+)", source))
    return named | (set(re.findall(r"'([A-Z_]+)'", source)) & codes)


def test_every_lua_error_code_is_raised_by_some_script() -> None:
    table = json.loads((LUA / "errors.json").read_text(encoding="utf-8"))["errors"]
    used: set[str] = set()
    codes = {e["code"] for e in table}
    for entry in MANIFEST["scripts"].values():
        used |= raised(entry["source"], codes)
        # The generated type guard raises WRONG_TYPE as a literal.
        used |= set(re.findall(r"ERR_PREFIX \.\. ' (\w+) ", entry["source"]))
    lua_codes = {e["code"] for e in table if e["source"] == "lua"}
    assert lua_codes - used == set(), "codes no script raises"
    # And scripts only raise codes whose source is lua: a client-only code from
    # Lua would mean the table lies about who raises it.
    assert used - lua_codes == set()


def test_declared_errors_cover_what_each_script_raises() -> None:
    codes = {e["code"] for e in json.loads((LUA / "errors.json").read_text())["errors"]}
    for name, entry in MANIFEST["scripts"].items():
        assert raised(entry["source"], codes) <= set(entry["errors"]), name


# -- protocol facts: written once, in lua/keys.json -------------------------------------

@pytest.mark.parametrize("path", SCRIPT_FILES + INCLUDE_FILES, ids=lambda p: p.stem)
def test_records_only_through_record_lua(path: Path) -> None:
    """One parser and one writer of the meta record: include/record.lua."""
    if path.name == "record.lua":
        return
    code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    assert "K.meta" not in code, f"{path.name} touches the meta hash outside record.lua"
    assert "|(%d+)" not in code and "'|'" not in code, f"{path.name} spells the record format"


@pytest.mark.parametrize("path", SCRIPT_FILES + INCLUDE_FILES, ids=lambda p: p.stem)
def test_scripts_take_protocol_facts_from_the_prologue(path: Path) -> None:
    """The error-reply prefix, the batch limit and the policy fields are generated."""
    lines = path.read_text().split("]]", 1)[-1].splitlines()  # the body, not the header
    code = "\n".join(line.split("--", 1)[0] for line in lines)
    assert "HOMING" not in code, f"{path.name}: use ERR_PREFIX (keys.json error_reply)"
    assert not re.search(r"int_arg\([^)]*, 1000\)", code), f"{path.name}: use LIMITS.batch"
    # An argument may share a policy field's name (worker_beat's concurrency, the
    # worker's slots, is not the policy's limit across workers): its error message
    # names it, int_arg(i, 'concurrency', ...), which reads no policy.
    code = re.sub(r"int_arg\(\d+, '\w+'", "int_arg(", code)
    # A script may read the one policy field it uses: load_policy_one('f', DEFAULTS.f).
    code = re.sub(r"load_policy_one\('(\w+)', DEFAULTS\.\1\)", "load_policy()", code)
    for field in LAYOUT["policy"]:
        assert f"'{field}'" not in code or path.name in ("configure.lua", "dequeue.lua",
                                                         "extend.lua"), (path.name, field)


def test_the_error_reply_format_is_one_pattern() -> None:
    reply = LAYOUT["error_reply"]
    assert reply["pattern"].startswith(f"^{reply['prefix']} ")
    assert ERROR_REPLY_RE.pattern == reply["pattern"]
    for source in (s.source for s in SCRIPTS.values()):
        assert f"local ERR_PREFIX = '{reply['prefix']}'" in source
    # What Redis 7 sends for an error a script raised: the suffix is not part of the message.
    exc = translate(ResponseError("HOMING INVALID_ARGUMENT count must be a whole number in "
                                  "[1, 1000], got 0 script: 0f1e2d, on @user_script:57."))
    assert isinstance(exc, homing_errors.InvalidArgumentError)
    assert exc.message == "count must be a whole number in [1, 1000], got 0"
    exc = translate(ResponseError("HOMING STALE_LEASE two\nlines"))
    assert isinstance(exc, homing_errors.StaleLeaseError) and exc.message == "two\nlines"
    # Not a homing reply: a lower-case code, or another prefix.
    assert not ERROR_REPLY_RE.fullmatch("HOMINGX CODE message")
    assert not ERROR_REPLY_RE.fullmatch("ERR HOMING CODE message")


def test_names_statuses_and_limits_come_from_keys_json() -> None:
    keys = json.loads((LUA / "keys.json").read_text(encoding="utf-8"))
    assert keys["statuses"] == STATUSES and {v: k for k, v in STATUSES.items()} == STATUS_NAMES
    assert (keys["limits"]["batch"], keys["limits"]["reason_bytes"]) == (MAX_BATCH, MAX_REASON)
    letters = "".join(keys["statuses"].values())
    assert f"local STATUS_LETTERS = '{letters}'" in SCRIPTS["dequeue"].source
    assert check_prefix("a" * 64) == "a" * 64 and check_prefix("x.y-z_0") == "x.y-z_0"
    for bad in ("", "a" * 65, "a:b", "{a}", "a b"):
        with pytest.raises(homing_errors.InvalidNameError, match=re.escape(keys["prefix_pattern"])):
            check_prefix(bad)
