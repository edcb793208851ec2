"""The ARGV Python's call layer builds for every call step of the conformance vectors.

Run by erlang/test/argv_tests.erl, which builds the same steps with the Erlang
layer (homing_call) and compares: the ports read one call table, so for the same
arguments they must send the same bytes, or refuse with the same code and the same
words (the manifest's refusals). Prints one line per call step, in file and step
order: ``argv HEX...`` or ``error CODE HEX``, HEX the message's words (``words``).
(The same walk as javascript/test/fixtures/argv.py, in a form Erlang reads without
a JSON parser.)
"""

from __future__ import annotations

import re
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


def words(code: str, message: str) -> str:
    """What of a refusal's message every port words alike: the value refused is shown
    each port its own way (a repr, an Erlang term), so it is cut out; "-" for a code
    whose text is the port's own (an envelope the encoder refuses)."""
    if code == "INVALID_NAME":
        return re.sub(r"^(invalid \w+ \w+) .*?(: use .*)$", r"\1\2", message, flags=re.S)
    if code in ("INVALID_ARGUMENT", "PAYLOAD_TOO_LARGE"):
        return message.rsplit(", got ", 1)[0]
    return "-"


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
                print(f"error {exc.code} {_hex(words(exc.code, str(exc)))}")


if __name__ == "__main__":
    main()
