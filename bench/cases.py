"""The benchmark cases: each runs ``n`` events once and returns a timed Sample.

Every case works on a service (or key) of its own, checks that all ``n``
events really went through, and deletes its keys afterwards, so that each
repetition starts from the same empty state and a fast but wrong run can
never look like a result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homing import Client, Consumer, Event, Worker
from homing.envelope import encode

from measure import Sample, measured

BATCH = 100
PREFETCH = 100
# Homing's top-level commands (EVAL only if a script had to be reloaded).
SCRIPT_COMMANDS = ("evalsha", "eval")


def payload(i: int) -> dict[str, Any]:
    """A small message, like a typical notification."""
    return {"n": i, "kind": "bench"}


@dataclass
class Context:
    """What every case needs: the two connections and a unique key prefix."""

    raw: Any  # a plain redis-py client, for the baseline and for INFO
    client: Client
    prefix: str
    counter: int = 0

    def service(self, case: str) -> str:
        """A fresh service name: no case ever sees another's leftovers."""
        self.counter += 1
        return f"{case}-{self.counter}"

    def cleanup(self) -> None:
        """Delete every key under this run's prefix (and only those)."""
        batch = []
        for key in self.raw.scan_iter(match=f"{self.prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.raw.unlink(*batch)
                batch = []
        if batch:
            self.raw.unlink(*batch)


def baseline(ctx: Context, n: int) -> Sample:
    """Raw redis-py: pipelined LPUSH of n messages, then pipelined RPOP, batches of 100.

    An event is one push plus one pop, so this is the floor of what any queue
    on this Redis, from this Python, can do per event.
    """
    key = f"{ctx.prefix}:raw"
    message = encode(payload(0))
    popped = 0
    with measured(ctx.raw, n, ("lpush", "rpop")) as sample:
        for start in range(0, n, BATCH):
            pipe = ctx.raw.pipeline(transaction=False)
            for _ in range(min(BATCH, n - start)):
                pipe.lpush(key, message)
            pipe.execute()
        for start in range(0, n, BATCH):
            pipe = ctx.raw.pipeline(transaction=False)
            for _ in range(min(BATCH, n - start)):
                pipe.rpop(key)
            popped += sum(1 for m in pipe.execute() if m is not None)
    _expect(popped, n, "baseline pops")
    ctx.cleanup()
    return sample


def enqueue_one(ctx: Context, n: int) -> Sample:
    """``Client.enqueue`` one event per call: one round trip and one script run each."""
    svc = ctx.service("enq1")
    with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
        for i in range(n):
            ctx.client.enqueue(svc, payload(i))
    _check_totals(ctx, svc, enqueued=n)
    return sample


def enqueue_many(batch: int) -> Callable[[Context, int], Sample]:
    """``Client.enqueue_many`` in batches of ``batch``."""

    def case(ctx: Context, n: int) -> Sample:
        svc = ctx.service(f"enq{batch}")
        with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
            for start in range(0, n, batch):
                ctx.client.enqueue_many(svc, [payload(i)
                                              for i in range(start, min(n, start + batch))])
        _check_totals(ctx, svc, enqueued=n)
        return sample

    case.__doc__ = f"``Client.enqueue_many`` in batches of {batch}."
    return case


def _prefill(ctx: Context, svc: str, n: int) -> None:
    for start in range(0, n, BATCH):
        ctx.client.enqueue_many(svc, [payload(i) for i in range(start, min(n, start + BATCH))])


class NoOp(Consumer):
    """Does nothing, so the figure is homing's cost alone; the runner completes it."""

    def handle_event(self, event: Event, state: Any) -> Any:
        return state


def worker(concurrency: int) -> Callable[[Context, int], Sample]:
    """End to end under ``homing.Worker``: n events pre-enqueued, timed until all completed."""

    def case(ctx: Context, n: int) -> Sample:
        svc = ctx.service(f"w{concurrency}")
        _prefill(ctx, svc, n)
        w = Worker(ctx.client, svc, NoOp, concurrency=concurrency, prefetch=PREFETCH)
        deadline = time.monotonic() + 60 + n / 500
        with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
            w.start()
            # Completions are counted by the acker after complete_many returns,
            # so this ends when Redis has acknowledged every event.
            while w.stats.completed < n:
                if time.monotonic() > deadline:
                    w.shutdown()
                    raise RuntimeError(f"worker c={concurrency}: only {w.stats.completed} of "
                                       f"{n} completed before the deadline")
                time.sleep(0.001)
        w.shutdown()
        _check_totals(ctx, svc, enqueued=n, completed=n)
        return sample

    case.__doc__ = worker.__doc__
    return case


def client_loop(ctx: Context, n: int) -> Sample:
    """End to end with the bare client: dequeue 100, complete_many 100, repeat.

    No threads, no runner bookkeeping: the difference to the Worker rows is
    what the runner costs.
    """
    svc = ctx.service("loop")
    _prefill(ctx, svc, n)
    done = 0
    with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
        while done < n:
            events = ctx.client.dequeue(svc, BATCH)
            if not events:
                raise RuntimeError(f"client loop: queue empty after {done} of {n} events")
            errors = ctx.client.complete_many(svc, [(ev.id, ev.token, None) for ev in events])
            if any(errors):
                raise RuntimeError(f"client loop: completions refused: {errors[:3]}")
            done += len(events)
    _check_totals(ctx, svc, enqueued=n, completed=n)
    return sample


def _expect(got: int, want: int, what: str) -> None:
    if got != want:
        raise RuntimeError(f"{what}: expected {want}, got {got}")


def _check_totals(ctx: Context, svc: str, *, enqueued: int, completed: int = 0) -> None:
    """Redis's own counters must agree with what the case believes it did; then clean up."""
    stats = ctx.client.stats(svc)
    _expect(stats.get("total.enqueued", 0), enqueued, f"{svc} enqueued")
    _expect(stats.get("total.completed", 0), completed, f"{svc} completed")
    if completed:
        _expect(stats["ready"] + stats["in_flight"], 0, f"{svc} events left over")
    ctx.cleanup()
