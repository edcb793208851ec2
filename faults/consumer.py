"""The consumer every worker of the fault suite runs: it records each delivery outside Redis.

``homing worker faults.consumer:Recorder --service S`` (cwd: the repository)
appends one JSON line per handler start and per handler end to
``$FAULTS_LOG_DIR/deliveries-<pid>.jsonl``, flushed per line (no fsync: the
harness reads the file after the process died, and the kernel keeps what was
written). The checker rebuilds every delivery from these lines, so nothing it
judges comes from homing's own keys.

The payload says how to behave, so one consumer serves every scenario:
``w`` milliseconds of work, ``k`` = ``"poison"`` (``os._exit`` in the handler:
the process dies), ``"hang"`` (sleep far past any handler timeout), ``f`` =
raise while the attempt is at most f. With ``FAULTS_ACK=sync`` the handler
completes its event itself with ``[pid, token]`` as the result and records
whether the completion was accepted; otherwise the worker's batched
acknowledgements do it, as in production.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from homing import Consumer, Event
from homing.errors import HomingError, StaleLeaseError

HANG_S = float(os.environ.get("FAULTS_HANG_S", "300"))
POISON_EXIT = 17

_lock = threading.Lock()
_out: TextIO | None = None


def _log() -> TextIO:
    global _out
    if _out is None:
        folder = Path(os.environ.get("FAULTS_LOG_DIR", "."))
        _out = open(folder / f"deliveries-{os.getpid()}.jsonl", "a", buffering=1)  # noqa: SIM115
    return _out


def record(**fields: Any) -> None:
    """Append one line; a lock keeps concurrent slots' lines whole."""
    line = json.dumps(fields, separators=(",", ":")) + "\n"
    with _lock:
        out = _log()
        out.write(line)
        out.flush()


class PlannedFailureError(Exception):
    """What a handler raises for an event whose payload asks to fail."""


class Recorder(Consumer):
    """Record, behave as the payload says, and (sync mode) complete with proof of who did."""

    def __init__(self) -> None:
        self.sync = os.environ.get("FAULTS_ACK", "batch") == "sync"
        self.pid = os.getpid()

    def handle_event(self, event: Event, state: Any) -> Any:
        start = time.time()
        try:
            payload = event.payload
        except HomingError as exc:  # a corrupt envelope: recorded, and the runner fails it
            record(e="start", id=event.id, tok=event.token, att=event.attempt, pid=self.pid,
                   t=start, dl=event.deadline_ms, corrupt=str(exc)[:200])
            raise
        record(e="start", id=event.id, tok=event.token, att=event.attempt, pid=self.pid,
               t=start, dl=event.deadline_ms)
        spec = payload if isinstance(payload, dict) else {}
        kind = spec.get("k", "")
        if kind == "poison":
            os._exit(POISON_EXIT)  # the crash the poison scenario is about: no cleanup at all
        if kind == "hang":
            time.sleep(HANG_S)
        if event.attempt <= int(spec.get("f", 0)):
            record(e="end", id=event.id, tok=event.token, pid=self.pid, t=time.time(),
                   ok=False)
            raise PlannedFailureError(f"asked to fail attempt {event.attempt}")
        time.sleep(float(spec.get("w", 0)) / 1000)
        ack = None
        sent = time.time()
        if self.sync:
            ack = self._complete(event)
        record(e="end", id=event.id, tok=event.token, pid=self.pid, t=time.time(), ok=True,
               ack=ack, ts=sent)
        return state

    def _complete(self, event: Event) -> str:
        """Complete now; 'ok', 'stale' or the error code. Errors are recorded, not raised:
        the runner would otherwise fail an event whose handler succeeded."""
        try:
            self.complete(event.service, event.id, result=[self.pid, event.token])
            return "ok"
        except StaleLeaseError:
            return "stale"
        except HomingError as exc:
            return exc.code
