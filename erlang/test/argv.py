"""The ARGV Python's call layer builds for every call step of the conformance vectors.

Run by erlang/test/argv_tests.erl, which builds the same steps with the Erlang
layer (homing_call) and compares: the ports read one call table, so for the same
arguments they must send the same bytes, or refuse with the same code. Prints one
line per call step, in file and step order: ``argv HEX...`` or ``error CODE``.
(The same walk as javascript/test/fixtures/argv.py, in a form Erlang reads without
a JSON parser.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from homing import ops
from homing.conformance.loader import load_suite, to_value
from homing.errors import HomingError
from homing.manifest import DEFAULT_MAX_PAYLOAD


def _items(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Items given as objects (as the vectors spell them) as tuples in field order."""
    entry = ops.CALLS.get(name, {})
    target = ops.CALLS.get(entry.get("batch_of", name), entry)
    for spec in target.get("args", []):
        if spec["type"] == "list" and isinstance(args.get(spec["name"]), list):
            names = [f["name"] for f in spec["fields"]]
            args[spec["name"]] = [tuple(i.get(n) for n in names) if isinstance(i, dict) else i
                                  for i in args[spec["name"]]]
    return args


def _hex(v: Any) -> str:
    return v.hex() if isinstance(v, bytes) else str(v).encode().hex()


def main() -> None:
    for vector in load_suite(Path(sys.argv[1])).vectors:
        max_payload = vector.client.get("max_payload", DEFAULT_MAX_PAYLOAD)
        for step in vector.steps:
            if "call" not in step:
                continue
            args = _items(step["call"], to_value(step.get("args", {})))
            try:
                call = ops.call(step["call"], step.get("service", "svc"), max_payload, **args)
                print(" ".join(["argv", *(_hex(a) or "-" for a in call.args)]))
            except HomingError as exc:
                print(f"error {exc.code}")


if __name__ == "__main__":
    main()
