#!/usr/bin/env python3
"""Check the conformance files, then copy them into the Python package.

Why here, once: every runner (Python, JavaScript, and the Erlang one to come)
reads these files, and each used to carry its own JSON Schema validator and
its own lint of what a schema cannot say. Two copies of a checker drift like
two copies of anything else, so the check lives in this one stdlib script:
``make build`` runs it, a file it refuses is not copied, and the runners only
load and decode the files (a runner handed a file this script never saw runs
it as it is; a vector that cannot be decoded fails as a vector).

The check: every file against ``schema.json`` (a small validator of only the
keywords that schema uses); the lint (an unknown or malformed ``$``
convention, a call or argument not in ``calls.json``, a script, key name or
error code not in the manifest, a time-dependent script on an unfrozen
clock, a service override that could name a real service, a ``given`` config
the runner's test clock would clash with, two vectors of one name); and the
coverage rule (every Lua script and every error code in at least one vector,
or exempted with why in ``coverage.json``).

Why a copy: ``homing conformance`` must run from a plain ``pip install``, where
the repository's ``conformance/`` directory does not exist, so the package
ships the same files under ``homing/conformance/data/``. This directory stays
the one source; ``--check`` (run by the tests) also fails when the copy is
stale.

Standard library only, like lua/build.py, whose build() gives the manifest
(scripts, key layout, error codes) the vectors are checked against.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "python" / "homing" / "conformance" / "data"
LUA_BUILD = HERE.parent / "lua" / "build.py"
# The test clock: this field of the service's config hash, read by every script
# that reads "now" (lua/include/clock.lua). The runner sets it after `given`.
TEST_CLOCK = "test_clock"
REDIS_TYPES = ("string", "list", "hash", "zset", "set")
# Conventions allowed inside values, each with a check of its argument.
VALUE_CONVENTIONS = {
    "$hex": lambda a: isinstance(a, str) and re.fullmatch(r"(?:[0-9a-fA-F]{2})*", a),
    "$bytes": lambda a: isinstance(a, str),
    "$int": lambda a: isinstance(a, str) and re.fullmatch(r"[+-]?[0-9]+", a),
    "$float": lambda a: isinstance(a, (int, float)) and not isinstance(a, bool),
    "$envelope": lambda a: True,
    "$fresh": lambda a: (isinstance(a, list) and len(a) == 2 and isinstance(a[0], int)
                         and not isinstance(a[0], bool) and a[0] >= 0),
}
EXPECT_CONVENTIONS = {"$error": lambda a: isinstance(a, str),
                      "$subset": lambda a: isinstance(a, dict)}


class VectorFileError(Exception):
    """A conformance file is malformed: it is refused rather than guessed at."""


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VectorFileError(f"{path}: {exc}") from exc


def lua_manifest() -> dict[str, Any]:
    """The manifest lua/build.py makes from lua/ now (not a copy that may be stale)."""
    spec = importlib.util.spec_from_file_location("homing_lua_build", LUA_BUILD)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return mod.build()
    except mod.BuildError as exc:
        raise VectorFileError(f"lua/build.py refused the scripts: {exc}") from exc


# -- a small JSON Schema validator ------------------------------------------------------
# Only the keywords schema.json uses; an unknown keyword is an error so that the
# schema cannot silently say more than is checked.

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_IGNORED = {"$schema", "$id", "$comment", "title", "description", "examples", "default"}
_KEYWORDS = {"$ref", "$defs", "type", "const", "enum", "pattern", "minimum", "minItems", "items",
             "required", "properties", "additionalProperties", "oneOf"}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> None:
    """Raise VectorFileError at the first place value breaks schema."""
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise VectorFileError(f"schema: unsupported $ref {ref}")
        validate(value, root["$defs"][ref[len("#/$defs/"):]], root, path)
    for kw in schema:
        if kw not in _IGNORED and kw not in _KEYWORDS:
            raise VectorFileError(f"schema: unsupported keyword {kw}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            raise VectorFileError(f"{path}: expected {' or '.join(types)}, got {value!r:.60}")
    if "const" in schema and value != schema["const"]:
        raise VectorFileError(f"{path}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise VectorFileError(f"{path}: must be one of {schema['enum']}, got {value!r:.60}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        raise VectorFileError(f"{path}: {value!r:.60} does not match {schema['pattern']}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        raise VectorFileError(f"{path}: must be >= {schema['minimum']}")
    if "minItems" in schema and isinstance(value, list) and len(value) < schema["minItems"]:
        raise VectorFileError(f"{path}: needs at least {schema['minItems']} items")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise VectorFileError(f"{path}: missing {name!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                validate(v, props[k], root, f"{path}.{k}")
            elif extra is False:
                raise VectorFileError(f"{path}: unexpected {k!r} (allowed: {', '.join(props)})")
            elif isinstance(extra, dict):
                validate(v, extra, root, f"{path}.{k}")
    if "oneOf" in schema:
        errors = []
        for i, alt in enumerate(schema["oneOf"]):
            try:
                validate(value, alt, root, path)
            except VectorFileError as exc:
                errors.append(f"  option {i + 1}: {exc}")
        if len(errors) != len(schema["oneOf"]) - 1:
            why = "no" if len(errors) == len(schema["oneOf"]) else "more than one"
            raise VectorFileError(f"{path}: matches {why} form:\n" + "\n".join(errors))


# -- the lint: what schema.json cannot say ----------------------------------------------

def check_conventions(j: Any, where: str, expect: bool) -> None:
    """Refuse unknown or malformed ``$`` conventions (expectations may use $error, $subset)."""
    if isinstance(j, list):
        for i, x in enumerate(j):
            check_conventions(x, f"{where}[{i}]", expect)
        return
    if not isinstance(j, dict):
        return
    allowed = {**VALUE_CONVENTIONS, **(EXPECT_CONVENTIONS if expect else {})}
    marks = [k for k in j if k.startswith("$")]
    if not marks:
        for k, v in j.items():
            check_conventions(v, f"{where}.{k}", expect)
        return
    conv = marks[0]
    if len(j) != 1 or conv not in allowed:
        raise VectorFileError(f"{where}: unknown value convention {sorted(j)} "
                              f"(known: {', '.join(allowed)})")
    if not allowed[conv](j[conv]):
        raise VectorFileError(f"{where}: bad argument for {conv}: {j[conv]!r:.60}")
    if conv in ("$subset", "$envelope"):
        check_conventions(j[conv], f"{where}.{conv}", expect and conv == "$subset")
    elif conv == "$fresh":
        check_conventions(j[conv][1], f"{where}.{conv}", False)


def _reads_clock(source: str) -> bool:
    """Whether a script calls now_ms (lua/include/clock.lua), outside comments."""
    code = re.sub(r"--[^\n]*", "", re.sub(r"--\[\[.*?\]\]", "", source, flags=re.DOTALL))
    return re.search(r"(?<!function )\bnow_ms\(", code) is not None


class Linter:
    """The rules that keep a vector deterministic and harmless, against one manifest."""

    def __init__(self, manifest: dict[str, Any], calls: dict[str, Any]) -> None:
        self.layout = manifest["layout"]
        self.scripts = manifest["scripts"]
        self.codes = {e["code"] for e in manifest["errors"]}
        self.calls = calls
        self.service_re = re.compile(self.layout["service_pattern"])
        self.time_scripts = {n for n, s in self.scripts.items() if _reads_clock(s["source"])}

    def key_values(self, values: dict[str, Any], where: str, expect: bool) -> None:
        """Key names must be those of keys.json; typed values must name a Redis type."""
        service_keys = self.layout["service_keys"]
        for k, v in values.items():
            if k in ("$daemons", "$workers") and expect:
                if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                    raise VectorFileError(f"{where}.{k}: a list of {k[1:-1]} names, "
                                          f"got {v!r:.60}")
                continue
            if k == "$due" and expect:  # the due-time index: service -> ms, or "claimed"
                if not (isinstance(v, dict) and all(
                        x == "claimed" or (isinstance(x, int) and not isinstance(x, bool))
                        for x in v.values())):
                    raise VectorFileError(f"{where}.{k}: service -> due ms or \"claimed\", "
                                          f"got {v!r:.60}")
                continue
            if k in ("$keys", "$registered") and expect:
                ok = isinstance(v, bool) if k == "$registered" else (
                    isinstance(v, list) and all(x in service_keys for x in v))
                if not ok:
                    raise VectorFileError(f"{where}.{k}: bad value {v!r:.60}")
                continue
            if k not in service_keys:
                raise VectorFileError(f"{where}: unknown key name {k!r}")
            if isinstance(v, dict) and "$type" in v:
                if set(v) != {"$type", "value"} or v["$type"] not in REDIS_TYPES:
                    raise VectorFileError(f"{where}.{k}: a typed value is "
                                          f'{{"$type": one of {REDIS_TYPES}, "value": ...}}')
                v = v["value"]
            check_conventions(v, f"{where}.{k}", expect)

    def given(self, given: dict[str, Any], where: str) -> None:
        """The runner adds the frozen clock to given's config: a hash without one."""
        self.key_values(given, f"{where} given", expect=False)
        if "config" not in given:
            return
        config = given["config"]
        if not isinstance(config, dict) or "$type" in config:
            raise VectorFileError(f"{where} given.config: the runner sets the test clock in "
                                  "config after given, so given's config is a hash (write "
                                  "another type in a step)")
        if TEST_CLOCK in config:
            raise VectorFileError(f"{where} given.config: the runner sets {TEST_CLOCK} after "
                                  "given; give the vector's clock, or write config in a step")

    def steps(self, steps: list[dict[str, Any]], where: str) -> None:
        frozen = True
        for i, step in enumerate(steps):
            at = f"{where} step {i + 1}"
            if "clock" in step:
                frozen = step["clock"] is not None
            elif "advance_ms" in step and not frozen:
                raise VectorFileError(f"{at}: advance_ms on an unfrozen clock")
            elif "config" in step.get("write", {}):
                # A write replaces the whole hash, the runner's test clock with it.
                config = step["write"]["config"]
                frozen = isinstance(config, dict) and "$type" not in config and TEST_CLOCK in config
            script = self._call(step, at) if "call" in step else self._script(step, at)
            if script in self.time_scripts and not frozen and not step.get("connection"):
                raise VectorFileError(f"{at}: {script} reads the clock, which is not frozen here")
            if "returns" in step:
                check_conventions(step["returns"], f"{at} returns", expect=True)
            if "returns" in step and "error" in step:
                raise VectorFileError(f"{at}: give returns or error, not both")
            if "error" in step and step["error"] not in self.codes:
                raise VectorFileError(f"{at}: {step['error']} is not a code of errors.json")
            for kind in ("state", "write"):
                if kind in step:
                    self.key_values(step[kind], f"{at} {kind}", expect=kind == "state")

    def _call(self, step: dict[str, Any], at: str) -> str:
        spec = self.calls.get(step["call"])
        if spec is None:
            raise VectorFileError(f"{at}: unknown call {step['call']!r}")
        args = step.get("args", {})
        for name in args:
            if name not in spec["args"]:
                raise VectorFileError(f"{at}: {step['call']} takes no argument {name!r}")
        for name, how in spec["args"].items():
            if how == "required" and name not in args:
                raise VectorFileError(f"{at}: {step['call']} needs argument {name!r}")
        check_conventions(args, f"{at} args", expect=False)
        if "service" in step and (step.get("error") != "INVALID_NAME"
                                  or self.service_re.fullmatch(step["service"])):
            # An override that names a valid service could write to a real one.
            raise VectorFileError(f"{at}: a service override must be an invalid name and "
                                  "the step must expect INVALID_NAME")
        return spec["script"]

    def _script(self, step: dict[str, Any], at: str) -> str | None:
        if "script" not in step:
            return None
        if step["script"] not in self.scripts:
            raise VectorFileError(f"{at}: unknown script {step['script']!r}")
        check_conventions(step.get("args", []), f"{at} args", expect=False)
        for k in step.get("keys", []):
            if k not in self.layout["service_keys"]:
                raise VectorFileError(f"{at}: unknown key name {k!r}")
        return step["script"]


def check(root: Path = HERE, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every file under root; raise VectorFileError at the first fault.

    Returns the loaded files ({"calls", "envelopes", "coverage", "vectors": {file: doc}})
    for coverage().
    """
    manifest = manifest if manifest is not None else lua_manifest()
    schema = read_json(root / "schema.json")
    calls = read_json(root / "calls.json")
    validate(calls, schema["$defs"]["calls_file"], schema, "calls.json")
    envelopes = read_json(root / "envelopes.json")
    validate(envelopes, schema["$defs"]["envelopes_file"], schema, "envelopes.json")
    cov = read_json(root / "coverage.json")
    validate(cov, schema["$defs"]["coverage_file"], schema, "coverage.json")
    lint = Linter(manifest, calls["calls"])
    for code in cov["untestable"]:
        if code not in lint.codes:
            raise VectorFileError(f"coverage.json: {code} is not a code of errors.json")
    for case in envelopes["vectors"]:
        if "payload" in case:
            check_conventions(case["payload"], f"envelopes.json {case['name']!r}", expect=False)
    files = sorted((root / "vectors").glob("*.json"))
    if not files:
        raise VectorFileError(f"no vector files in {root / 'vectors'}")
    docs = {}
    for path in files:
        doc = read_json(path)
        validate(doc, schema, schema, path.name)
        if doc["operation"] != path.stem:
            raise VectorFileError(f"{path.name}: operation {doc['operation']!r} must match "
                                  "the file name")
        names: set[str] = set()
        for v in doc["vectors"]:
            if v["name"] in names:
                raise VectorFileError(f"{path.name}: two vectors named {v['name']!r}")
            names.add(v["name"])
            where = f"{path.name}: {v['name']!r}"
            lint.steps(v["steps"], where)
            lint.given(v.get("given", {}), where)
        docs[path.name] = doc
    return {"calls": calls["calls"], "envelopes": envelopes["vectors"],
            "coverage": cov, "vectors": docs}


# -- the coverage rule ---------------------------------------------------------------------

def _error_marks(j: Any) -> set[str]:
    """Codes of the ``{"$error": CODE}`` items inside an expected value."""
    if isinstance(j, list):
        return set().union(*(_error_marks(x) for x in j))
    if isinstance(j, dict):
        if set(j) == {"$error"}:
            return {j["$error"]}
        return set().union(*(_error_marks(x) for x in j.values()))
    return set()


def exercised(files: dict[str, Any]) -> dict[str, set[str]]:
    """Which scripts and error codes the vectors exercise: a script through a call of
    calls.json or a raw step; a code as a step's error, an item's ``$error`` or an
    envelope vector's error. ``client_codes``: those a client-level call expects."""
    out: dict[str, set[str]] = {"scripts": set(), "codes": set(), "client_codes": set()}
    for doc in files["vectors"].values():
        for v in doc["vectors"]:
            for step in v["steps"]:
                codes = _error_marks(step.get("returns"))
                if "error" in step:
                    codes.add(step["error"])
                if "call" in step:
                    out["scripts"].add(files["calls"][step["call"]]["script"])
                    out["client_codes"] |= codes
                elif "script" in step:
                    out["scripts"].add(step["script"])
                out["codes"] |= codes
    out["codes"] |= {case["error"] for case in files["envelopes"] if "error" in case}
    return out


def coverage(files: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What the coverage rule finds missing: every script and every error code in a
    vector, client-side codes from a client-level call, and coverage.json's exemptions
    neither missing nor stale (an exempted code that a vector produces)."""
    got = exercised(files)
    untestable = set(files["coverage"]["untestable"])
    problems = [f"script {s} has no conformance vector"
                for s in sorted(set(manifest["scripts"]) - got["scripts"])]
    errors = manifest["errors"]
    problems += [f"error code {c} is in no conformance vector (nor exempted in coverage.json)"
                 for c in sorted({e["code"] for e in errors} - got["codes"] - untestable)]
    # SCRIPT (a non-homing server error) cannot be provoked by a correct call without
    # corrupting state mid-script; raw steps with the wrong KEYS cover it.
    client = {e["code"] for e in errors if e["source"] == "client"} - {"SCRIPT"} - untestable
    problems += [f"client error code {c} comes from no client-level call"
                 for c in sorted(client - got["client_codes"])]
    problems += [f"coverage.json exempts {c}, which a vector produces: drop the exemption"
                 for c in sorted(untestable & got["codes"])]
    return problems


# -- the packaged copy ---------------------------------------------------------------------

def sources(root: Path = HERE) -> dict[str, Path]:
    """Relative path -> file, for every file the package carries."""
    files = [root / n for n in ("schema.json", "calls.json", "envelopes.json", "coverage.json")]
    files += sorted((root / "vectors").glob("*.json"))
    return {str(p.relative_to(root)): p for p in files}


def stale(out: Path, root: Path = HERE) -> list[str]:
    """What differs between root and the copy in out (missing, changed, extra)."""
    want = sources(root)
    have = {str(p.relative_to(out)) for p in out.rglob("*.json")} if out.exists() else set()
    problems = [f"extra {n}" for n in sorted(have - set(want))]
    for name, src in want.items():
        dst = out / name
        if not dst.exists():
            problems.append(f"missing {name}")
        elif dst.read_bytes() != src.read_bytes():
            problems.append(f"changed {name}")
    return problems


def sync(out: Path, root: Path = HERE) -> None:
    if out.exists():
        shutil.rmtree(out)
    for name, src in sources(root).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the packaged copy")
    ap.add_argument("--root", type=Path, default=HERE,
                    help="the conformance directory to check (default: this one)")
    ap.add_argument("--check", action="store_true",
                    help="copy nothing; fail on a coverage gap or a stale copy as well")
    ns = ap.parse_args(argv)
    me = "conformance/build.py"
    try:
        manifest = lua_manifest()
        files = check(ns.root, manifest)
    except VectorFileError as exc:
        print(f"{me}: {exc}", file=sys.stderr)
        return 1
    gaps = coverage(files, manifest)
    # A gap does not stop the copy (a script may land before its vectors), but the
    # tests run --check, where it fails.
    for gap in gaps:
        print(f"{me}: {'' if ns.check else 'warning: '}{gap}", file=sys.stderr)
    if not ns.check:
        sync(ns.out, ns.root)
        return 0
    problems = stale(ns.out, ns.root)
    for p in problems:
        print(f"{me}: {ns.out}: {p}; run 'python3 conformance/build.py'", file=sys.stderr)
    return 1 if problems or gaps else 0


if __name__ == "__main__":
    sys.exit(main())
