"""Recovery times for faults of a whole deployment (failovers, slot moves, seeds down).

The checker's own rule (``faults.check``) measures from Redis being back to
the first completion. Around a failover that is not enough: completions the
old primary accepted after the switch are wiped with it. So these rules count
only completions that *survived*: in sync-ack runs each handler completes its
event with ``[pid, token]`` as the result, and the event's final result names
the delivery whose completion the surviving primary kept.
"""

from __future__ import annotations

import bisect
import collections
from typing import Any

from .check import Fault
from .record import Delivery


def _survived(deliveries: list[Delivery], results: dict[str, Any]) -> list[float]:
    """End times of the completions that are the final word on their events, sorted."""
    return sorted(d.end for d in deliveries if d.end is not None and d.ok and d.ack == "ok"
                  and results.get(d.id) == [d.pid, d.tok])


def durable_recovery(deliveries: list[Delivery], results: dict[str, Any],
                     faults: list[Fault]) -> float | None:
    """The worst fault's time from its start to the first surviving completion made after
    its end (for a failover: after the new primary was seen in charge)."""
    ends = _survived(deliveries, results)
    worst: float | None = None
    for f in faults:
        i = bisect.bisect_right(ends, f.end)
        if i < len(ends):
            took = ends[i] - f.start
            worst = took if worst is None else max(worst, took)
    return None if worst is None else round(worst, 3)


def longest_stall(deliveries: list[Delivery], faults: list[Fault]) -> float | None:
    """The longest pause between accepted completions that overlaps a fault's window
    (a slot moving: how long the service stood still)."""
    ends = sorted(d.end for d in deliveries if d.end is not None and d.ok
                  and d.ack in (None, "ok"))
    worst: float | None = None
    for f in faults:
        for a, b in zip(ends, ends[1:], strict=False):
            if b >= f.start and a <= f.end:
                worst = b - a if worst is None else max(worst, b - a)
    return None if worst is None else round(worst, 3)


def split_tokens(deliveries: list[Delivery]) -> tuple[int, int]:
    """Token reuse on a deployment: (tokens seen on two deliveries of one event, tokens
    seen on two different events). Around a failover two primaries issue tokens at
    once, each ``max(seq + 1, now_ms * 1000)``, so two events may share one; fencing
    checks an event's id and token together, so only the first count breaks it."""
    per_event = collections.Counter((d.id, d.tok) for d in deliveries)
    events = collections.defaultdict(set)
    for d in deliveries:
        events[d.tok].add(d.id)
    return (sum(1 for n in per_event.values() if n > 1),
            sum(1 for ids in events.values() if len(ids) > 1))
