"""The ARGV Python's call layer builds for every call step of the conformance vectors.

Run by erlang/test/argv_tests.erl, which builds the same steps with the Erlang
layer (homing_call) and compares: the ports read one call table, so for the same
arguments they must send the same bytes, or refuse with the same code and the same
words (the manifest's refusals). Prints one line per call step, in file and step
order: ``argv HEX...`` or ``error CODE HEX``, HEX the message's words (``words``).
With ``--cases``, the same for ``CASES`` (what no vector can hold), each line led by
the case as Erlang text.
(The same walk as javascript/test/fixtures/argv.py, in a form Erlang reads without
a JSON parser.)
"""

from __future__ import annotations

import copy
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


# Call-layer cases the vectors cannot hold (their lint refuses an unknown argument
# name and a missing required one): (call, args), args as the vectors spell them
# (None: given as none, Erlang's null; left out: absent, Erlang's undefined). Each
# port must build the same ARGV or refuse with the same code and words.
CASES: list[tuple[str, dict[str, Any]]] = [
    # an argument name the table does not list: refused, never ignored
    ("dequeue", {"bogus": 1}),
    ("dequeue", {"count": 1, "colour": "red", "bogus": 1}),
    ("enqueue", {"payload": 1, "prority": 3}),
    # ms: a fraction dropped, a negative or huge one refused; whole: a fraction refused
    ("create_timer", {"payload": 1, "id": "t1", "delay_ms": 1.5}),
    ("create_timer", {"payload": 1, "id": "t1", "delay_ms": 0.999}),
    ("create_timer", {"payload": 1, "id": "t1", "at_ms": 1500.7}),
    ("create_timer", {"payload": 1, "id": "t1", "delay_ms": -0.5}),
    ("create_timer", {"payload": 1, "id": "t1", "delay_ms": 1e300}),
    ("worker_beat", {"name": "w", "service": "s", "host": "h", "pid": 1, "concurrency": 1,
                     "held": 0, "every_ms": 1000.7, "forget_ms": 2.5}),
    ("due_settle", {"claim": 2**50, "items": [{"service": "s", "next_due": 1500.5}]}),
    ("snooze", {"id": "e1", "token": 1, "delay_ms": 1.5}),
    ("dequeue", {"lease_ms": 1500.7}),
    # text (and a name, an id) missing or given as none: refused, never sent as ''
    ("worker_beat", {"name": "w", "service": "s", "pid": 1, "concurrency": 1, "held": 0,
                     "every_ms": 1000}),
    ("worker_beat", {"name": "w", "service": "s", "host": None, "pid": 1, "concurrency": 1,
                     "held": 0, "every_ms": 1000}),
    ("fail", {"id": "e1", "token": 1, "reason": None}),
    ("fail", {"id": "e1", "token": 1}),
    ("recurring_put", {"name": "r", "payload": 1, "cron": None}),
    ("beat", {}),
    ("beat", {"name": None}),
    ("cancel", {}),
    # a lease token: an integer only, as dequeue hands one out; a float (even a whole
    # one, which no vector can hold: JavaScript reads 5.0 as 5), a bool or text refused
    ("complete", {"id": "e1", "token": 5.0}),
    ("complete", {"id": "e1", "token": -0.0}),
    ("complete", {"id": "e1", "token": 2**53 - 1}),
    ("complete", {"id": "e1", "token": 2**53}),
    ("complete", {"id": "e1", "token": True}),
    ("complete", {"id": "e1", "token": "5"}),
    ("start", {"items": [{"id": "e1", "token": 7.0}]}),
    ("snooze", {"id": "e1", "token": 5.0, "delay_ms": 1000}),
]


def erlang(v: Any) -> str:
    """A case's value as an Erlang term (text ASCII only: read by erl_parse:parse_term)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        return text if "." in text else text.replace("e", ".0e")
    if isinstance(v, str):
        return '<<"' + v.replace("\\", "\\\\").replace('"', '\\"') + '">>'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(erlang, v)) + "]"
    return "#{" + ", ".join(f"'{k}' => {erlang(x)}" for k, x in v.items()) + "}"


def outcome(name: str, service: str, args: dict[str, Any], max_payload: int) -> str:
    """``argv HEX...`` (the ARGV Python builds) or ``error CODE HEX`` (HEX: the words)."""
    try:
        call = ops.call(name, service, max_payload, **_items(name, args))
        return " ".join(["argv", *(_hex(a) or "-" for a in call.args)])
    except HomingError as exc:
        return f"error {exc.code} {_hex(words(exc.code, str(exc)))}"


def cases() -> None:
    """One line per case: ``case HEX OUTCOME``, HEX the case {Call, Args} as Erlang text."""
    for name, args in CASES:
        term = "{" + name + ", " + erlang(args) + "}"
        result = outcome(name, "svc", copy.deepcopy(args), DEFAULT_MAX_PAYLOAD)
        print(f"case {_hex(term)} {result}")


def main() -> None:
    if sys.argv[1] == "--cases":
        cases()
        return
    for vector in load_suite(Path(sys.argv[1])).vectors:
        max_payload = vector.client.get("max_payload", DEFAULT_MAX_PAYLOAD)
        for step in vector.steps:
            if "call" not in step:
                continue
            print(outcome(step["call"], step.get("service", "svc"),
                          to_value(step.get("args", {})), max_payload))


if __name__ == "__main__":
    main()
