"""The Python side of the Erlang interop tests (erlang/test/interop_tests.erl).

The EUnit suite runs this with the worktree's .venv against its private Redis:
``interop.py URL PREFIX COMMAND SERVICE [ARG...]``. Each command checks what it
reads itself and exits 1 with a message on a mismatch, so both languages hold
the same expectations: PAYLOADS here are the terms of interop_tests:payloads().
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from homing import Client, Consumer, Worker
from homing.daemons import run_daemons

PAYLOADS: list[Any] = [
    None, True, False, 0, 42, -7, 2**64 - 1, -(2**63), 1.5, "",
    "h\u00e9llo \u2713 \U0001f600", b"\x00\xff", b"", [], {}, [1, "two", None, [True]],
    {"city": "Oslo", "temp_c": -3, "tags": ["cold", "dark"], "raw": b"\x01\x02"},
    {1: "int key"},
]


def fail(msg: str) -> None:
    print(f"interop.py: {msg}", file=sys.stderr)
    sys.exit(1)


def same(a: Any, b: Any) -> bool:
    """Equal with types: True is not 1, 1.0 is not 1, bytes are not text."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def produce(c: Client, service: str) -> None:
    """Python -> Erlang: every payload, ids py-0.., for Erlang to check and echo."""
    ids = c.enqueue_many(service, PAYLOADS, ids=[f"py-{i}" for i in range(len(PAYLOADS))])
    assert ids == [f"py-{i}" for i in range(len(PAYLOADS))]


def check_results(c: Client, service: str) -> None:
    """Erlang -> Python feedback: Erlang completed py-i with the payload as result."""
    for i, p in enumerate(PAYLOADS):
        got = c.result(service, f"py-{i}", timeout=10)
        if not same(got, p):
            fail(f"result of py-{i}: expected {p!r}, got {got!r}")


def consume(c: Client, service: str) -> None:
    """Erlang -> Python: the payloads Erlang enqueued as er-i, completed with an echo."""
    seen = 0
    deadline = time.monotonic() + 10
    while seen < len(PAYLOADS) and time.monotonic() < deadline:
        for e in c.dequeue(service, 100):
            i = int(e.id.split("-")[1])
            if not same(e.payload, PAYLOADS[i]):
                fail(f"{e.id}: expected {PAYLOADS[i]!r}, got {e.payload!r}")
            c.complete(service, e.id, e.token, result=e.payload)
            seen += 1
    if seen != len(PAYLOADS):
        fail(f"consumed {seen} of {len(PAYLOADS)} events")


def take(c: Client, service: str, event_id: str, payload: str, attempt: str,
         then: str = "complete") -> None:
    """Promote what is due, dequeue event_id, check it; complete it, or fail it (dead/retry)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c.promote(service)
        events = c.dequeue(service)
        if events:
            e = events[0]
            if e.id != event_id or e.payload != payload or e.attempt != int(attempt):
                fail(f"expected {event_id} {payload!r} attempt {attempt}, got {e!r} "
                     f"{e.payload!r}")
            if then == "dead":
                c.fail(service, e.id, e.token, "python gave up", dead=True)
            elif then == "retry":
                c.fail(service, e.id, e.token, "python says again", delay_ms=0)
            else:
                c.complete(service, e.id, e.token, result={"by": "python", "attempt": e.attempt})
            return
        time.sleep(0.02)
    fail(f"{event_id} never came")


def timer(c: Client, service: str, event_id: str, delay_ms: str) -> None:
    c.create_timer(service, {"kind": "timer", "from": "python"}, delay_ms=int(delay_ms),
                   id=event_id)


class Finisher(Consumer):
    """Completes whatever it gets with a result saying so."""

    def handle_event(self, event: Any, state: Any) -> Any:
        self.complete(event.service, event.id, {"finished_by": "python",
                                                "attempt": event.attempt,
                                                "must_start": event.must_start})
        return state


def finish(c: Client, service: str, event_id: str) -> None:
    """A Python worker (with the daemons) until event_id is done: the event an Erlang
    worker held when it was killed comes back when its lease runs out."""
    stop = threading.Event()
    daemons = threading.Thread(target=run_daemons, args=(c, stop), daemon=True)
    daemons.start()
    worker = Worker(c, service, Finisher, lease_ms=2000, grace=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        result = c.result(service, event_id, timeout=30)
    finally:
        worker.stop()
        stop.set()
        thread.join(10)
    if not isinstance(result, dict) or result.get("finished_by") != "python":
        fail(f"unexpected result {result!r}")


COMMANDS = {"produce": produce, "check-results": check_results, "consume": consume,
            "take": take, "timer": timer, "finish": finish}


def main() -> None:
    url, prefix, command, service, *rest = sys.argv[1:]
    c = Client.from_url(url, prefix=prefix)
    COMMANDS[command](c, service, *rest)
    print("ok")


if __name__ == "__main__":
    main()
