"""Loading the conformance files and turning their JSON into the values a client handles.

The files are language-neutral data (see ``conformance/README.md``); this
module is the Python side of the runner contract: find the files, check them
against ``schema.json``, lint what a schema cannot say (an unknown ``$``
convention, a time-dependent call on an unfrozen clock, a service override
that could reach a real service), and decode the value conventions:

- ``{"$hex": "00ff"}`` bytes, ``{"$bytes": "text"}`` the UTF-8 bytes of text;
- ``{"$int": "18446744073709551615"}`` an integer of any size;
- ``{"$float": 1.0}`` a float even when the number is whole;
- ``{"$envelope": v}`` the msgpack envelope bytes of payload ``v``;
- in expectations: ``{"$error": "CODE"}`` an item that failed with CODE,
  ``{"$subset": {...}}`` an object holding at least these entries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .. import envelope
from ..manifest import LAYOUT, MANIFEST

# Conventions allowed inside values, with the JSON type of their argument.
VALUE_CONVENTIONS = {"$hex": str, "$bytes": str, "$int": str, "$float": (int, float),
                     "$envelope": object}
EXPECT_CONVENTIONS = {"$error": str, "$subset": dict}
SERVICE_RE = re.compile(LAYOUT["service_pattern"])
DEFAULT_CLOCK = 1_000_000
# The test clock: this field of the service's config hash, read by every script
# that reads "now" (lua/include/clock.lua). Production never sets it.
TEST_CLOCK = "test_clock"


class VectorFileError(Exception):
    """A conformance file is malformed: the suite refuses to run rather than guess."""


@dataclass
class Vector:
    """One vector: a fresh service, a frozen clock, steps run in order."""

    operation: str
    name: str
    doc: str
    steps: list[dict[str, Any]]
    clock: int = DEFAULT_CLOCK
    given: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def title(self) -> str:
        return f"{self.operation}: {self.name}"


@dataclass
class Suite:
    """Every file of the suite, loaded and checked."""

    root: Path
    vectors: list[Vector]
    envelopes: list[dict[str, Any]]
    calls: dict[str, dict[str, Any]]
    # Error codes no vector can produce, with why (coverage.json): the coverage rule
    # exempts exactly these.
    untestable: dict[str, str] = field(default_factory=dict)

    def operations(self) -> list[str]:
        seen: list[str] = []
        for v in self.vectors:
            if v.operation not in seen:
                seen.append(v.operation)
        return seen


def data_dir() -> Path:
    """The copy of ``conformance/`` shipped in the package (written by conformance/build.py)."""
    return Path(str(resources.files(__package__).joinpath("data")))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VectorFileError(f"{path}: {exc}") from exc


# -- a small JSON Schema validator ----------------------------------------------
# Only the keywords schema.json uses; an unknown keyword is an error so that the
# schema cannot silently say more than is checked. No dependency to install.

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_IGNORED = {"$schema", "$id", "$comment", "title", "description", "examples", "default"}


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


_KEYWORDS = {"$ref", "$defs", "type", "const", "enum", "pattern", "minimum", "minItems", "items",
             "required", "properties", "additionalProperties", "oneOf"}


# -- value conventions ----------------------------------------------------------------

def _convention(obj: dict[str, Any], allowed: dict[str, Any], where: str) -> str | None:
    """The ``$`` convention an object spells, None for a plain object; refuse typos."""
    marks = [k for k in obj if k.startswith("$")]
    if not marks:
        return None
    if len(obj) != 1 or marks[0] not in allowed:
        raise VectorFileError(f"{where}: unknown value convention {sorted(obj)} "
                              f"(known: {', '.join(allowed)})")
    if not isinstance(obj[marks[0]], allowed[marks[0]]):
        raise VectorFileError(f"{where}: bad argument for {marks[0]}: {obj[marks[0]]!r:.60}")
    return marks[0]


def to_value(j: Any, where: str = "value") -> Any:
    """A JSON value with conventions as the Python value a client sends or returns."""
    if isinstance(j, list):
        return [to_value(x, where) for x in j]
    if not isinstance(j, dict):
        return j
    conv = _convention(j, VALUE_CONVENTIONS, where)
    if conv is None:
        return {k: to_value(v, where) for k, v in j.items()}
    arg = j[conv]
    try:
        if conv == "$hex":
            return bytes.fromhex(arg)
        if conv == "$bytes":
            return arg.encode("utf-8")
        if conv == "$int":
            return int(arg)
        if conv == "$float":
            return float(arg)
    except ValueError as exc:
        raise VectorFileError(f"{where}: bad {conv} {arg!r}: {exc}") from exc
    return envelope.encode(to_value(arg, where))  # $envelope


def to_wire(j: Any, where: str = "value") -> bytes:
    """A JSON value as the bytes Redis stores: text as UTF-8, integers in decimal."""
    if isinstance(j, str):
        return j.encode("utf-8")
    if isinstance(j, bool) or j is None:
        raise VectorFileError(f"{where}: {j!r} is not a Redis value")
    if isinstance(j, int):
        return str(j).encode()
    if isinstance(j, float):
        return repr(j).encode()
    v = to_value(j, where)
    if isinstance(v, bytes):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v).encode()
    raise VectorFileError(f"{where}: {j!r:.60} is not a Redis value")


def check_conventions(j: Any, where: str, expect: bool) -> None:
    """Walk a value and refuse unknown or malformed ``$`` conventions at load time."""
    if isinstance(j, list):
        for i, x in enumerate(j):
            check_conventions(x, f"{where}[{i}]", expect)
        return
    if not isinstance(j, dict):
        return
    allowed = {**VALUE_CONVENTIONS, **(EXPECT_CONVENTIONS if expect else {})}
    conv = _convention(j, allowed, where)
    if conv is None:
        for k, v in j.items():
            check_conventions(v, f"{where}.{k}", expect)
    elif conv in ("$subset", "$envelope"):
        check_conventions(j[conv], f"{where}.{conv}", expect and conv == "$subset")
    elif conv in VALUE_CONVENTIONS:
        to_value(j, where)  # decodes now, so a bad $hex or $int fails at load time


# -- loading --------------------------------------------------------------------------

_CODES = {e["code"] for e in MANIFEST["errors"]}
REDIS_TYPES = ("string", "list", "hash", "zset", "set")


def _reads_clock(source: str) -> bool:
    """Whether a script calls now_ms (lua/include/clock.lua), outside comments."""
    code = re.sub(r"--[^\n]*", "", re.sub(r"--\[\[.*?\]\]", "", source, flags=re.DOTALL))
    return re.search(r"(?<!function )\bnow_ms\(", code) is not None


_TIME_SCRIPTS = {name for name, s in MANIFEST["scripts"].items() if _reads_clock(s["source"])}


def _freezes(config: Any) -> bool:
    """Whether a written config value leaves the clock frozen: a hash with test_clock."""
    return isinstance(config, dict) and "$type" not in config and TEST_CLOCK in config


def _lint(vec: Vector, calls: dict[str, dict[str, Any]]) -> None:
    """What schema.json cannot say; each rule keeps a vector deterministic or harmless."""
    frozen = True
    for i, step in enumerate(vec.steps):
        where = f"{vec.source}: {vec.name!r} step {i + 1}"
        if "clock" in step:
            frozen = step["clock"] is not None
        elif "advance_ms" in step and not frozen:
            raise VectorFileError(f"{where}: advance_ms on an unfrozen clock")
        elif "config" in step.get("write", {}):
            # A write replaces the whole hash, the runner's test clock with it.
            frozen = _freezes(step["write"]["config"])
        script = None
        if "call" in step:
            spec = calls.get(step["call"])
            if spec is None:
                raise VectorFileError(f"{where}: unknown call {step['call']!r}")
            script = spec["script"]
            args = step.get("args", {})
            for name in args:
                if name not in spec["args"]:
                    raise VectorFileError(f"{where}: {step['call']} takes no argument {name!r}")
            for name, how in spec["args"].items():
                if how == "required" and name not in args:
                    raise VectorFileError(f"{where}: {step['call']} needs argument {name!r}")
            check_conventions(args, f"{where} args", expect=False)
            if "service" in step and (step.get("error") != "INVALID_NAME"
                                      or SERVICE_RE.fullmatch(step["service"])):
                # An override that names a valid service could write to a real one.
                raise VectorFileError(f"{where}: a service override must be an invalid name "
                                      "and the step must expect INVALID_NAME")
        elif "script" in step:
            script = step["script"]
            if script not in MANIFEST["scripts"]:
                raise VectorFileError(f"{where}: unknown script {script!r}")
            check_conventions(step.get("args", []), f"{where} args", expect=False)
            for k in step.get("keys", []):
                if k not in LAYOUT["service_keys"]:
                    raise VectorFileError(f"{where}: unknown key name {k!r}")
        if script in _TIME_SCRIPTS and not frozen and not step.get("connection"):
            raise VectorFileError(f"{where}: {script} reads the clock, which is not frozen here")
        if "returns" in step:
            check_conventions(step["returns"], f"{where} returns", expect=True)
        if "returns" in step and "error" in step:
            raise VectorFileError(f"{where}: give returns or error, not both")
        if "error" in step and step["error"] not in _CODES:
            raise VectorFileError(f"{where}: {step['error']} is not a code of errors.json")
        for kind in ("state", "write"):
            if kind in step:
                check_key_values(step[kind], f"{where} {kind}", expect=kind == "state")


def _check_given_config(vec: Vector) -> None:
    """The runner adds the frozen clock to given's config: it must be a hash without one."""
    if "config" not in vec.given:
        return
    config = vec.given["config"]
    where = f"{vec.source}: {vec.name!r} given.config"
    if not isinstance(config, dict) or "$type" in config:
        raise VectorFileError(f"{where}: the runner sets the test clock in config after "
                              "given, so given's config is a hash (write another type in a step)")
    if TEST_CLOCK in config:
        raise VectorFileError(f"{where}: the runner sets {TEST_CLOCK} after given; give the "
                              "vector's clock, or write config in a step")


def check_key_values(values: dict[str, Any], where: str, expect: bool) -> None:
    """Key names must be those of keys.json; typed values must name a Redis type."""
    for k, v in values.items():
        if k == "$daemons" and expect:
            if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise VectorFileError(f"{where}.{k}: a list of daemon names, got {v!r:.60}")
            continue
        if k in ("$keys", "$registered") and expect:
            ok = isinstance(v, bool) if k == "$registered" else (
                isinstance(v, list) and all(x in LAYOUT["service_keys"] for x in v))
            if not ok:
                raise VectorFileError(f"{where}.{k}: bad value {v!r:.60}")
            continue
        if k not in LAYOUT["service_keys"]:
            raise VectorFileError(f"{where}: unknown key name {k!r}")
        if isinstance(v, dict) and "$type" in v:
            if set(v) != {"$type", "value"} or v["$type"] not in REDIS_TYPES:
                raise VectorFileError(f"{where}.{k}: a typed value is "
                                      f'{{"$type": one of {REDIS_TYPES}, "value": ...}}')
            v = v["value"]
        check_conventions(v, f"{where}.{k}", expect)


def load_suite(root: Path | None = None) -> Suite:
    """Load and check every file under root (default: the packaged copy)."""
    root = Path(root) if root is not None else data_dir()
    schema = read_json(root / "schema.json")
    calls = read_json(root / "calls.json")
    validate(calls, schema["$defs"]["calls_file"], schema, "calls.json")
    envelopes = read_json(root / "envelopes.json")
    validate(envelopes, schema["$defs"]["envelopes_file"], schema, "envelopes.json")
    cov = read_json(root / "coverage.json")
    validate(cov, schema["$defs"]["coverage_file"], schema, "coverage.json")
    for code in cov["untestable"]:
        if code not in _CODES:
            raise VectorFileError(f"coverage.json: {code} is not a code of errors.json")
    for case in envelopes["vectors"]:
        if "payload" in case:
            check_conventions(case["payload"], f"envelopes.json {case['name']!r}", expect=False)
    files = sorted((root / "vectors").glob("*.json"))
    if not files:
        raise VectorFileError(f"no vector files in {root / 'vectors'}")
    vectors: list[Vector] = []
    for path in files:
        doc = read_json(path)
        validate(doc, schema, schema, path.name)
        if doc["operation"] != path.stem:
            raise VectorFileError(f"{path.name}: operation {doc['operation']!r} must match "
                                  "the file name")
        names = set()
        for v in doc["vectors"]:
            if v["name"] in names:
                raise VectorFileError(f"{path.name}: two vectors named {v['name']!r}")
            names.add(v["name"])
            vec = Vector(doc["operation"], v["name"], v.get("doc", ""), v["steps"],
                         v.get("clock", DEFAULT_CLOCK), v.get("given", {}), v.get("client", {}),
                         path.name)
            _lint(vec, calls["calls"])
            check_key_values(vec.given, f"{path.name}: {vec.name!r} given", expect=False)
            _check_given_config(vec)
            vectors.append(vec)
    return Suite(root, vectors, envelopes["vectors"], calls["calls"],
                 {code: e["why"] for code, e in cov["untestable"].items()})


def _error_marks(j: Any) -> set[str]:
    """Codes of the ``{"$error": CODE}`` items inside an expected value."""
    if isinstance(j, list):
        return set().union(*(_error_marks(x) for x in j)) if j else set()
    if isinstance(j, dict):
        if set(j) == {"$error"}:
            return {j["$error"]}
        return set().union(*(_error_marks(x) for x in j.values())) if j else set()
    return set()


@dataclass
class Coverage:
    """Which scripts and error codes the vectors exercise (the coverage rule's input)."""

    scripts: set[str]
    codes: set[str]
    client_codes: set[str]  # codes expected from client-level calls, not only raw or wire


def coverage(suite: Suite) -> Coverage:
    """What the suite exercises: a script through a call of calls.json or a raw step; an
    error code as a step's error, an item's ``$error`` or an envelope vector's error."""
    cov = Coverage(set(), set(), set())
    for vec in suite.vectors:
        for step in vec.steps:
            codes = _error_marks(step.get("returns"))
            if "error" in step:
                codes.add(step["error"])
            if "call" in step:
                cov.scripts.add(suite.calls[step["call"]]["script"])
                cov.client_codes |= codes
            elif "script" in step:
                cov.scripts.add(step["script"])
            cov.codes |= codes
    cov.codes |= {case["error"] for case in suite.envelopes if "error" in case}
    return cov
