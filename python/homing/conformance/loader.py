"""Loading the conformance files and turning their JSON into the values a client handles.

The files are language-neutral data (see ``conformance/README.md``); this
module is the Python side of the runner contract: find the files and decode
the value conventions. It does not check them: conformance/build.py does,
once for every runner (the JSON Schema, the lint of what a schema cannot say,
the coverage rule), before ``make build`` copies them into this package. A
directory given with ``--vectors`` runs as it is (check it with ``python3
conformance/build.py --root DIR --check``); a value that cannot be decoded
fails its vector. The conventions:

- ``{"$hex": "00ff"}`` bytes, ``{"$bytes": "text"}`` the UTF-8 bytes of text;
- ``{"$int": "18446744073709551615"}`` an integer of any size;
- ``{"$float": 1.0}`` a float even when the number is whole;
- ``{"$envelope": v}`` the msgpack envelope bytes of payload ``v``;
- ``{"$fresh": [created_ms, v]}`` the data value of an event enqueued ready and
  never delivered: ``#created_ms#`` then the envelope of ``v`` (lua/include/fresh.lua);
- in expectations: ``{"$error": "CODE"}`` an item that failed with CODE,
  ``{"$subset": {...}}`` an object holding at least these entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .. import envelope

# Conventions allowed inside values, with the JSON type of their argument.
VALUE_CONVENTIONS = {"$hex": str, "$bytes": str, "$int": str, "$float": (int, float),
                     "$envelope": object, "$fresh": list}
DEFAULT_CLOCK = 1_000_000
# The test clock: this field of the service's config hash, read by every script
# that reads "now" (lua/include/clock.lua). Production never sets it.
TEST_CLOCK = "test_clock"


class VectorFileError(Exception):
    """A conformance file cannot be read or decoded: the suite refuses to run on it."""


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
    """Every file of the suite, loaded."""

    root: Path
    vectors: list[Vector]
    envelopes: list[dict[str, Any]]
    calls: dict[str, dict[str, Any]]

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
    if conv == "$fresh":
        if len(arg) != 2 or not isinstance(arg[0], int) or isinstance(arg[0], bool):
            raise VectorFileError(f"{where}: $fresh takes [created_ms, payload], got {arg!r:.60}")
        return b"#%d#" % arg[0] + envelope.encode(to_value(arg[1], where))
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



# -- loading --------------------------------------------------------------------------

def load_suite(root: Path | None = None) -> Suite:
    """Load every file under root (default: the packaged copy), as checked by
    conformance/build.py: this only reads (see the module's docstring)."""
    root = Path(root) if root is not None else data_dir()
    calls = read_json(root / "calls.json")["calls"]
    envelopes = read_json(root / "envelopes.json")["vectors"]
    files = sorted((root / "vectors").glob("*.json"))
    if not files:
        raise VectorFileError(f"no vector files in {root / 'vectors'}")
    vectors: list[Vector] = []
    for path in files:
        doc = read_json(path)
        try:
            vectors += [Vector(doc["operation"], v["name"], v.get("doc", ""), v["steps"],
                               v.get("clock", DEFAULT_CLOCK), v.get("given", {}),
                               v.get("client", {}), path.name) for v in doc["vectors"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise VectorFileError(f"{path.name}: not a vector file ({exc!r}); check it with "
                                  "conformance/build.py") from exc
    return Suite(root, vectors, envelopes, calls)
