"""The conformance suite (conformance/), run by the Python client, and the rules around it.

- every vector passes on a private standalone Redis and a private 3-master Cluster;
- the golden wire vectors match homing.envelope byte for byte;
- conformance/build.py, the one checker of the files for every runner: the repository's
  files pass it, it refuses a malformed vector, and its coverage rule (every Lua script
  and every error code in at least one vector) holds and can fail;
- the copy of the files shipped in the package is current;
- ``homing conformance`` exits 0 on a good server, 1 on a failing vector, 2 when it
  cannot run, and never touches a key outside its own prefix.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from homing.conformance import runner as conf_runner
from homing.conformance.calls import CALLS
from homing.conformance.command import conformance
from homing.conformance.loader import data_dir, load_suite
from homing.connection import connect

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "conformance"
SUITE = load_suite(SOURCE)  # at import: the vectors parametrize the tests below


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location("conformance_build", SOURCE / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BUILD = _build_module()
MANIFEST = BUILD.lua_manifest()


def _keys(url: str) -> set[bytes]:
    """Every key on the server (all nodes of a Cluster)."""
    r = connect(url)
    try:
        return set(r.scan_iter(count=1000))
    finally:
        r.close()


# -- the vectors ---------------------------------------------------------------------

@pytest.mark.parametrize("operation", SUITE.operations())
def test_vectors_pass(redis_url: str, prefix: str, operation: str) -> None:
    report = conf_runner.run_suite(redis_url, SUITE, prefix=prefix, operations=(operation,))
    failures = [f"{r.name}: {r.detail}" for r in report.results if not r.passed]
    assert failures == []
    assert len(report.results) == sum(1 for v in SUITE.vectors if v.operation == operation)


@pytest.mark.parametrize("case", SUITE.envelopes, ids=[c["name"] for c in SUITE.envelopes])
def test_envelope_golden_vectors(case: dict[str, Any]) -> None:
    result = conf_runner.run_envelope_case(case)
    assert result.passed, result.detail


# -- conformance/build.py: the check and the coverage rule -----------------------------

def test_the_files_pass_the_check_and_the_coverage_rule() -> None:
    files = BUILD.check(SOURCE, MANIFEST)
    assert BUILD.coverage(files, MANIFEST) == []
    # The manifest it checks against is lua/ itself, not a copy: a new script without
    # vectors fails here even before a rebuild.
    assert set(MANIFEST["scripts"]) == {p.stem for p in (REPO / "lua" / "scripts").glob("*.lua")}


def test_the_untestable_list_is_short() -> None:
    """The exemptions of coverage.json (a full Redis, a server's settings), each with why."""
    untestable = BUILD.check(SOURCE, MANIFEST)["coverage"]["untestable"]
    assert set(untestable) == {"REDIS_FULL", "NOT_DURABLE", "NO_PERMISSION", "READ_ONLY",
                               "NOT_REPLICATED"}
    assert all(e["why"].strip() for e in untestable.values())


def test_an_unknown_untestable_code_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    shutil.copytree(SOURCE, root)
    path = root / "coverage.json"
    doc = json.loads(path.read_text())
    doc["untestable"]["NO_SUCH_CODE"] = {"why": "x", "tested_by": "y"}
    path.write_text(json.dumps(doc))
    with pytest.raises(BUILD.VectorFileError, match="NO_SUCH_CODE"):
        BUILD.check(root, MANIFEST)


def test_the_coverage_rule_can_fail(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    shutil.copytree(SOURCE, root)
    for p in (root / "vectors").glob("*.json"):
        if p.name != "stats.json":
            p.unlink()
    files = BUILD.check(root, MANIFEST)
    got = BUILD.exercised(files)
    assert "stats" in got["scripts"] and "cancel" not in got["scripts"]
    assert "SCHEMA_MISMATCH" in got["codes"] and "DUPLICATE_ID" not in got["codes"]
    gaps = BUILD.coverage(files, MANIFEST)
    assert "script cancel has no conformance vector" in gaps
    assert any(g.startswith("error code DUPLICATE_ID is in no conformance vector") for g in gaps)
    # A stale exemption: a vector now produces REDIS_FULL.
    doc = json.loads((root / "vectors" / "stats.json").read_text())
    doc["vectors"][0]["steps"].append({"call": "stats", "args": {}, "error": "REDIS_FULL"})
    (root / "vectors" / "stats.json").write_text(json.dumps(doc))
    assert ("coverage.json exempts REDIS_FULL, which a vector produces: drop the exemption"
            in BUILD.coverage(BUILD.check(root, MANIFEST), MANIFEST))


def test_every_call_of_the_vocabulary_is_implemented() -> None:
    assert set(SUITE.calls) == set(CALLS)
    scripts = {p.stem for p in (REPO / "lua" / "scripts").glob("*.lua")}
    assert {c["script"] for c in SUITE.calls.values()} <= scripts


def test_every_operation_file_is_reported() -> None:
    files = {p.stem for p in (SOURCE / "vectors").glob("*.json")}
    assert set(SUITE.operations()) == files
    assert len(SUITE.vectors) >= 150


# -- the packaged copy ---------------------------------------------------------------

def test_packaged_copy_is_current() -> None:
    problems = BUILD.stale(data_dir())
    assert problems == [], "run `python3 conformance/build.py`"


def test_build_check_detects_an_edit(tmp_path: Path) -> None:
    build = BUILD
    build.sync(tmp_path / "data")
    assert build.stale(tmp_path / "data") == []
    (tmp_path / "data" / "vectors" / "enqueue.json").write_text("{}")
    (tmp_path / "data" / "vectors" / "extra.json").write_text("{}")
    assert build.stale(tmp_path / "data") == ["extra vectors/extra.json",
                                              "changed vectors/enqueue.json"]


def test_packaged_suite_loads() -> None:
    packaged = load_suite()
    assert [v.title for v in packaged.vectors] == [v.title for v in SUITE.vectors]


# -- conformance/build.py refuses what would make a vector lie ------------------------

def _copy_with(tmp_path: Path, vector: dict[str, Any]) -> Path:
    root = tmp_path / "suite"
    shutil.copytree(SOURCE, root, ignore=shutil.ignore_patterns("*.py", "*.md"))
    for p in (root / "vectors").glob("*.json"):
        p.unlink()
    doc = {"operation": "probe", "doc": "test", "vectors": [vector]}
    (root / "vectors" / "probe.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize("vector, why", [
    ({"name": "x", "steps": [{"clock": None}, {"call": "dequeue", "args": {}}]},
     "reads the clock"),
    # A write of config replaces the hash, the runner's test clock with it.
    ({"name": "x", "steps": [{"write": {"config": {"schema": 2}}},
                             {"call": "dequeue", "args": {}}]}, "reads the clock"),
    ({"name": "x", "given": {"config": {"test_clock": 5}}, "steps": [{"state": {}}]},
     "sets test_clock after given"),
    ({"name": "x", "given": {"config": {"$type": "string", "value": "x"}},
      "steps": [{"state": {}}]}, "given's config is a hash"),
    ({"name": "x", "steps": [{"call": "enqueue", "service": "other", "args": {"payload": 1,
                                                                             "id": "e1"}}]},
     "service override"),
    ({"name": "x", "steps": [{"call": "enqueue", "args": {"payload": 1}}]}, "needs argument"),
    ({"name": "x", "steps": [{"call": "enqueue", "args": {"payload": 1, "id": "e", "ttl": 1}}]},
     "takes no argument"),
    ({"name": "x", "steps": [{"call": "enqueue", "args": {"payload": {"$hexx": "00"},
                                                          "id": "e"}}]}, "convention"),
    ({"name": "x", "steps": [{"call": "stats", "args": {}, "error": "NOPE"}]}, "errors.json"),
    ({"name": "x", "steps": [{"state": {"reddy": []}}]}, "unknown key name"),
    ({"name": "x", "steps": [{"call": "stats", "args": {}, "typo": 1}]}, "matches no form"),
    ({"name": "x", "steps": [{"script": "nope", "args": []}]}, "unknown script"),
    ({"name": "x", "steps": [{"script": "stats", "args": [{"$hex": "0"}]}]}, "bad argument for"),
    ({"name": "x", "steps": [{"script": "stats", "args": [{"$int": "1_0"}]}]},
     "bad argument for"),
    ({"name": "x", "steps": [{"call": "stats", "args": {}, "returns": {"$error": "X"},
                             "error": "SCRIPT"}]}, "returns or error"),
])
def test_the_check_refuses(tmp_path: Path, vector: dict[str, Any], why: str) -> None:
    root = _copy_with(tmp_path, vector)
    with pytest.raises(BUILD.VectorFileError, match=why):
        BUILD.check(root, MANIFEST)
    # From the command line: exit 1, the reason on stderr, and nothing copied.
    out = tmp_path / "copy"
    done = subprocess.run([sys.executable, str(SOURCE / "build.py"), "--root", str(root),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and re.search(why, done.stderr), done.stderr
    assert not out.exists()


# -- the command ---------------------------------------------------------------------

def test_cli_passes(redis_url: str) -> None:
    from homing.cli import main  # the real entry point: checks that cli.py registers it

    result = CliRunner().invoke(main, ["conformance", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    assert f"PASS: all {len(SUITE.vectors) + len(SUITE.envelopes)} vectors passed" in result.output
    for op in SUITE.operations():
        assert any(line.startswith(op + " ") and line.endswith("PASS")
                   for line in result.output.splitlines()), op


def test_cli_fails_on_a_broken_vector(standalone_server: Any, tmp_path: Path) -> None:
    root = tmp_path / "suite"
    shutil.copytree(SOURCE, root)
    path = root / "vectors" / "dequeue.json"
    doc = json.loads(path.read_text())
    doc["vectors"][0]["steps"][2]["returns"][0]["token"] = 2  # the Lua issues 1000000001
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(conformance, ["--redis-url", standalone_server.url,
                                              "--vectors", str(root)])
    assert result.exit_code == 1, result.output
    assert "FAIL dequeue: the oldest ready event is leased" in result.output
    assert "returns[0].token: expected 2, got 1000000001\n" in result.output
    assert "FAIL: 1 of" in result.output


def test_cli_cannot_run(standalone_server: Any) -> None:
    refused = f"redis://127.0.0.1:{conf_runner.closed_port()}/0"
    result = CliRunner().invoke(conformance, ["--redis-url", refused])
    assert result.exit_code == 2
    assert "CONNECTION" in result.output
    result = CliRunner().invoke(conformance, ["--redis-url", standalone_server.url,
                                              "--filter", "nope"])
    assert result.exit_code == 2
    assert "unknown operation nope" in result.output


def test_cli_refuses_a_prefix_in_use(standalone_server: Any, prefix: str) -> None:
    with redis.Redis.from_url(standalone_server.url) as r:
        r.sadd(f"{prefix}:services", "live")
        result = CliRunner().invoke(conformance, ["--redis-url", standalone_server.url,
                                                  "--prefix", prefix, "--filter", "stats"])
        assert result.exit_code == 2
        assert "in use" in result.output
        assert r.smembers(f"{prefix}:services") == {b"live"}
        r.delete(f"{prefix}:services")


def test_runner_touches_no_other_key(redis_url: str, prefix: str) -> None:
    """Sentinels next to the run's keys survive, and the run leaves no key behind."""
    r = connect(redis_url)
    sentinels = {
        f"{prefix}-other:{{svc}}:ready": "list",        # a look-alike prefix
        f"{prefix}.x:services": "set",
        "homing:{stats.0}:ready": "list",                # the default prefix
        "sentinel-plain": "string",
    }
    try:
        for key, kind in sentinels.items():
            r.delete(key)
            {"list": lambda k: r.rpush(k, "keep"), "set": lambda k: r.sadd(k, "keep"),
             "string": lambda k: r.set(k, "keep")}[kind](key)
        before = _keys(redis_url)
        report = conf_runner.run_suite(redis_url, SUITE, prefix=prefix)
        assert report.passed
        after = _keys(redis_url)
        assert after == before, after ^ before
        assert r.lrange(f"{prefix}-other:{{svc}}:ready", 0, -1) == [b"keep"]
        assert r.smembers(f"{prefix}.x:services") == {b"keep"}
        assert r.lrange("homing:{stats.0}:ready", 0, -1) == [b"keep"]
        assert r.get("sentinel-plain") == b"keep"
    finally:
        for key in sentinels:
            r.delete(key)
        r.close()
