"""The floors homing's rows are held against, measured in the same run.

- **EVALSHA floor**: redis-py's own ``evalsha`` of a trivial script with the
  arguments of one enqueue (KEYS and ARGV of the same sizes), one round trip per
  call: what any single-call producer from this Python library costs at least.
- **The minimal leased design**: a queue with leases and nothing else, in three
  short scripts written from its description (issue 10): enqueue_many = HSET
  body + RPUSH id; dequeue = LPOP n, ZADD deadline from TIME, HMGET bodies;
  complete = ZREM + HDEL. No idempotency, no fencing tokens, no attempts, no
  dead letters, no counters, no type checks: the Redis work a leased queue
  cannot do without. Sent through homing's own lean send path (homing.lane), so
  the difference to homing's rows is the scripts' work, not the client's.

Every case checks its own result against Redis, like the homing cases.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from homing.envelope import encode
from homing.lane import BUSY, lane_for

from measure import Sample, measured

# The leased design's scripts, one file each in bench/leased/ (the JS bench,
# bench/js/run.mjs, sends the same files from node-redis).
LEASED = Path(__file__).resolve().parent / "leased"
LEASED_ENQUEUE, LEASED_DEQUEUE, LEASED_COMPLETE = (
    (LEASED / f"{op}.lua").read_text() for op in ("enqueue", "dequeue", "complete"))
TRIVIAL = "return {ARGV[3], 1}"
SCRIPT_COMMANDS = ("evalsha", "eval")


class Leased:
    """The minimal leased design on one queue (three keys under the bench prefix)."""

    def __init__(self, raw: Any, prefix: str, name: str) -> None:
        self.raw = raw
        self.lane = lane_for(raw)
        self.bodies, self.queue, self.leases = (f"{prefix}:{{{name}}}:{k}"
                                                for k in ("bodies", "queue", "leases"))
        self.sha = {n: raw.script_load(src) for n, src in
                    (("enq", LEASED_ENQUEUE), ("deq", LEASED_DEQUEUE), ("ack", LEASED_COMPLETE))}

    def _call(self, *args: Any) -> Any:
        reply = self.lane.call("EVALSHA", *args) if self.lane is not None else BUSY
        return self.raw.evalsha(*args) if reply is BUSY else reply

    def enqueue_many(self, bodies: list[bytes]) -> None:
        args: list[Any] = []
        for body in bodies:
            args += [uuid.uuid4().hex, body]
        self._call(self.sha["enq"], 2, self.bodies, self.queue, *args)

    def dequeue(self, n: int, lease_ms: int = 30000) -> list[tuple[bytes, bytes]]:
        r = self._call(self.sha["deq"], 3, self.bodies, self.queue, self.leases, n, lease_ms)
        return list(zip(r[0::2], r[1::2], strict=True))

    def complete(self, ids: list[bytes]) -> None:
        self._call(self.sha["ack"], 2, self.leases, self.bodies, *ids)


def _bodies(start: int, n: int) -> list[bytes]:
    return [encode({"n": i, "kind": "bench"}) for i in range(start, start + n)]


def evalsha_floor(ctx: Any, n: int) -> Sample:
    """redis-py ``evalsha`` of a trivial script, enqueue-sized arguments, one call per event."""
    sha = ctx.raw.script_load(TRIVIAL)
    keys = [f"{ctx.prefix}:{{floor}}:{k}" for k in range(7)]
    got = 0
    with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
        for i in range(n):
            body = encode({"n": i, "kind": "bench"})
            got += ctx.raw.evalsha(sha, len(keys), *keys, 1048576, 1, uuid.uuid4().hex, body, "")[1]
    if got != n:
        raise RuntimeError(f"evalsha floor: {got} of {n} replies")
    return sample


def leased_enqueue(batch: int) -> Any:
    def case(ctx: Any, n: int) -> Sample:
        q = Leased(ctx.raw, ctx.prefix, ctx.service(f"lq{batch}"))
        with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
            for start in range(0, n, batch):
                q.enqueue_many(_bodies(start, min(batch, n - start)))
        if ctx.raw.llen(q.queue) != n or ctx.raw.hlen(q.bodies) != n:
            raise RuntimeError("leased enqueue: not every event is queued")
        ctx.cleanup()
        return sample
    case.__doc__ = f"The minimal leased design's enqueue_many, batches of {batch}."
    return case


def leased_drain(ctx: Any, n: int, batch: int = 100) -> Sample:
    """The minimal leased design end to end: n queued (untimed), then drained.

    Its drain is LPOP+ZADD+HMGET, then ZREM+HDEL, 100 at a time."""
    q = Leased(ctx.raw, ctx.prefix, ctx.service("ld"))
    for start in range(0, n, 1000):
        q.enqueue_many(_bodies(start, min(1000, n - start)))
    done = 0
    with measured(ctx.raw, n, SCRIPT_COMMANDS) as sample:
        while done < n:
            got = q.dequeue(batch)
            if not got:
                raise RuntimeError(f"leased drain: queue empty after {done} of {n}")
            q.complete([i for i, _ in got])
            done += len(got)
    if ctx.raw.exists(q.queue, q.bodies, q.leases):
        raise RuntimeError("leased drain: events left over")
    ctx.cleanup()
    return sample
