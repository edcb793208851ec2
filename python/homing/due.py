"""The due-time index: what lets a scheduler sleep until the next due time.

One global zset per prefix, ``<prefix>:due``, maps each service to the
earliest due time (ms, Redis clock) of its timers, retries and leases. On
Redis Cluster every script touches one slot, so a per-service script cannot
write it: the clients keep it the way they keep the registry, beside the call,
after it succeeded (``ZADD LT``: idempotent, it only ever lowers an entry),
and PUBLISH ``<prefix>:wake`` when that lowered the entry, which wakes a
sleeping scheduler at once. The schedulers claim due entries (``due_take``),
promote those services, and put back each one's next due time
(``due_settle``), never raising an entry a client lowered meanwhile.

The index is a hint only. A lost one (a client that died between its script
and the ZADD, a full Redis refusing the ZADD) delays work by at most one pass
of the scheduler's backstop sweep, and any number of schedulers still promote
each event once: ``promote`` is atomic per service. See docs/architecture.md.

The call builders here are thin (the lead's call table will take them over);
``due_of`` says, per script, which due time a successful reply adds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from . import ops
from .manifest import check_service
from .ops import Call

log = logging.getLogger("homing")

CLAIM = 2**50  # a score at or above this is a scheduler's claim: 2^50 + its time (ms)
MAX_DUE = CLAIM - 1


def channel(prefix: str) -> str:
    """The pub/sub channel that wakes the schedulers of a prefix (not a key: no slot)."""
    return f"{prefix}:wake"


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def due_of(script: str, reply: Any) -> int | None:
    """The due time a successful reply of script added to its service, if any.

    ``distribute`` does not say when its retries are due: 0 ("look now") lets
    the scheduler's next promote find the exact time.
    """
    try:
        if script in ("schedule", "recurring_put"):  # due_ms / next_ms, the third field
            due = int(reply[2])
            return due if due >= 0 else None
        if script == "fail":
            return int(reply[1]) if _s(reply[0]) == "retry" else None
        if script == "snooze":
            return int(reply[1]) if _s(reply[0]) == "snoozed" else None
        if script == "dequeue":
            return int(reply[0]) if len(reply) > 2 else None  # deadline_ms, wait_ms, events
        if script == "distribute":
            return 0 if int(reply[0]) > 0 else None
    except (TypeError, ValueError, IndexError):
        return None  # the reply's own parse reports it
    return None


class Warned:
    """Warn about a failing hint once a minute, not once per call."""

    def __init__(self) -> None:
        self.at = float("-inf")

    def __call__(self, service: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.at >= 60:
            self.at = now
            log.warning("the due-time index was not updated for %s (%s): its timers, retries "
                        "and leases wait for the scheduler's backstop sweep", service, exc)


# -- calls -------------------------------------------------------------------


def take(limit: int, claim_ms: int) -> Call:
    """Claim the services due now (and stale claims); see lua/scripts/due_take.lua.

    Built and parsed by the call table; only the tuple the scheduler unpacks is
    shaped here.
    """
    inner = ops.call("due_take", "", 1, limit=limit, claim_ms=claim_ms)

    def parse(r: list[Any]) -> tuple[int, int, int, list[str]]:
        v = inner.parse(r)
        return v["now"], v["next_due"], v["next_claim"], [i["service"] for i in v["items"]]

    return Call(inner.script, "", inner.args, parse)


def settle(claim: int, items: Sequence[tuple[str, int]]) -> Call:
    """Put back each claimed service's next due time (-1: none); see due_settle.lua."""
    for service, _ in items:
        check_service(service)
    rows = [(service, None if due == -1 else due) for service, due in items]
    return ops.call("due_settle", "", 1, claim=claim, items=rows)


def forget(service: str) -> Call:
    """Delete an empty service's leftovers, or SERVICE_NOT_EMPTY; see forget.lua."""
    return ops.call("forget", service, 1)
