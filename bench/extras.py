"""Figures that are not a rate per round: memory per event and flatness with a backlog.

Run once per bench run, after the rounds (they need a large backlog, which the
rounds must not pay for). Each returns a Figure: a value, its unit, and what
it is held against.

- **memory per queued event**: Redis ``used_memory`` before and after
  enqueue_many of n events into a fresh service, per event (the payload is the
  bench's 21-23-byte envelope, ids are homing's 32-character default ids).
- **memory per completed event**: the same service after every event was
  dequeued and completed without a result: what a completion keeps behind.
- **flatness**: the bare drain loop (dequeue 100 + complete_many) and
  enqueue_many x100 with 10^3 and with ``--flat-backlog`` (default 10^6) events
  already queued in the same service; the figure is the rate with the small
  backlog over the rate with the large one (the goal: at most 1.2).

Timer lateness, worker wake-up and idle-daemon cost are latencies, measured by
``timers.py`` against private servers of its own; ``run.py`` adds them as
Figures (``--no-timers`` skips them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from homing.envelope import encode


@dataclass
class Figure:
    """One figure of the run: a value, its unit, and its goal as text."""

    name: str
    label: str
    value: float | None
    unit: str
    goal: str = ""
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _used(raw: Any) -> int:
    return int(raw.info("memory")["used_memory"])


def _fill(ctx: Any, svc: str, n: int, batch: int = 1000) -> None:
    for start in range(0, n, batch):
        ctx.client.enqueue_many(svc, [{"n": i, "kind": "bench"}
                                      for i in range(start, min(n, start + batch))])


def _drain(ctx: Any, svc: str, n: int) -> None:
    done = 0
    while done < n:
        events = ctx.client.dequeue(svc, 100)
        if not events:
            raise RuntimeError(f"drain: queue empty after {done} of {n}")
        errors = ctx.client.complete_many(svc, [(e.id, e.token, None) for e in events])
        if any(errors):
            raise RuntimeError(f"drain: completions refused: {errors[:3]}")
        done += len(events)


def memory(ctx: Any, n: int) -> list[Figure]:
    """Bytes of Redis memory per queued event, and per completed event without a result."""
    svc = ctx.service("mem")
    ctx.client.enqueue(svc, {"n": -1, "kind": "bench"})  # service created: config, counters
    [first] = ctx.client.dequeue(svc)
    ctx.client.complete(svc, first.id, first.token)
    before = _used(ctx.raw)
    _fill(ctx, svc, n)
    queued = (_used(ctx.raw) - before) / n
    _drain(ctx, svc, n)
    completed = (_used(ctx.raw) - before) / n
    ctx.cleanup()
    return [
        Figure("mem_queued", f"memory per queued event ({n:,} queued)", queued, "B",
               "<= 300 B", queued <= 300),
        Figure("mem_completed", "memory per completed event, no result, done_ttl_ms 0",
               completed, "B", "~0 B (nothing kept)", completed <= 5),
    ]


def _rates(ctx: Any, svc: str, n: int) -> tuple[float, float]:
    """(enqueue_many x100 events/s, drain loop events/s) for n events on top of svc's backlog."""
    t0 = time.perf_counter()
    _fill(ctx, svc, n, batch=100)
    enq = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    _drain(ctx, svc, n)
    return enq, n / (time.perf_counter() - t0)


def flatness(ctx: Any, n: int, small: int, large: int) -> list[Figure]:
    """Enqueue and drain rates with a small and a large backlog already queued."""
    out: dict[int, tuple[float, float]] = {}
    mem_large = None
    for backlog in (small, large):
        svc = ctx.service(f"flat{backlog}")
        before = _used(ctx.raw)
        _fill(ctx, svc, backlog)
        if backlog == large:
            mem_large = (_used(ctx.raw) - before) / backlog
        # Best of two: one burst of load elsewhere must not decide the figure.
        runs = [_rates(ctx, svc, n) for _ in range(2)]
        out[backlog] = (max(r[0] for r in runs), max(r[1] for r in runs))
        ctx.cleanup()
    enq = out[small][0] / out[large][0]
    drain = out[small][1] / out[large][1]
    figs = [
        Figure("flat_enqueue", f"enqueue_many x100: rate at 10^{len(str(small)) - 1} / rate at "
               f"{large:,} queued", enq, "x", "<= 1.2", enq <= 1.2),
        Figure("flat_drain", f"drain loop: rate at 10^{len(str(small)) - 1} / rate at "
               f"{large:,} queued", drain, "x", "<= 1.2", drain <= 1.2),
    ]
    if mem_large is not None:
        figs.append(Figure("mem_queued_large", f"memory per queued event ({large:,} queued)",
                           mem_large, "B", "<= 300 B", mem_large <= 300))
    return figs


def payload_bytes() -> int:
    return len(encode({"n": 1, "kind": "bench"}))
