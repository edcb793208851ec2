"""Small helpers shared by the homing test files: the test clock and raw key access.

The test clock is the field ``test_clock`` of the service's config hash
(``<prefix>:{<service>}:config``): while it holds an integer, every script
reads "now" from it instead of Redis TIME, so due times, lease deadlines and
backoffs can be asserted exactly instead of by luck of timing. Setting it makes
the config key exist (a call that writes nothing leaves only that field). Raw
access goes through the client's own redis-py connection, which is a
RedisCluster on the cluster server, so the same helpers work on both kinds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import homing
from homing.manifest import LAYOUT, service_key

# A fixed, recognisable epoch (2023-11-14T22:13:20Z): far from the real clock,
# so a script that ignored the test clock would be caught by any due-time check.
T0 = 1_700_000_000_000
STATUS_LETTERS: dict[str, str] = LAYOUT["statuses"]
READY_MARKER = "~"  # the ready list's wake marker (lua/include/ready.lua), no event


def key(client: homing.Client, service: str, name: str) -> str:
    """The full name of one of a service's keys (``<prefix>:{<service>}:<name>``)."""
    return service_key(client.prefix, service, name)


TEST_CLOCK = "test_clock"  # the field of the config hash (lua/include/clock.lua)


class Clock:
    """The frozen test clock of one service: field ``test_clock`` of its config hash."""

    def __init__(self, client: homing.Client, service: str) -> None:
        self.redis = client.redis
        self.key = key(client, service, "config")
        self.now = 0

    def set(self, ms: int) -> int:
        self.now = int(ms)
        self.redis.hset(self.key, TEST_CLOCK, self.now)
        return self.now

    def advance(self, ms: int) -> int:
        return self.set(self.now + ms)

    def clear(self) -> None:
        """Back to the Redis clock."""
        self.redis.hdel(self.key, TEST_CLOCK)


def freeze(client: homing.Client, service: str, ms: int = T0) -> Clock:
    """Freeze service's clock at ms and return it for advancing."""
    clock = Clock(client, service)
    clock.set(ms)
    return clock


def s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def void(client: homing.Client, service: str) -> dict[str, int]:
    """The dead copies of cancelled events in the ready list (lua/include/void.lua):
    id -> how many, and '' -> their total; {} when there are none."""
    raw = client.redis.hgetall(key(client, service, "void"))
    return {s(f): int(v) for f, v in raw.items()}


def live_ready(ids: list[str], dead: dict[str, int]) -> list[str]:
    """A ready list (head first) without its wake marker and its dead copies: of an id
    with c dead copies, the first c met from the tail are the dead ones."""
    left = {i: c for i, c in dead.items() if i}
    out = []
    for i in reversed(ids):
        if i == READY_MARKER:
            continue
        if left.get(i, 0) > 0:
            left[i] -= 1
            continue
        out.append(i)
    assert not any(left.values()), f"void counts dead copies the list does not hold: {left}"
    return out[::-1]


def where(client: homing.Client, service: str) -> dict[str, list[str]]:
    """Every id in each per-event structure of a service, read straight from Redis.

    Lists keep duplicates, so a caller can check that no id sits in the ready
    queue twice. Ready is both ready structures (the prio zset and the list),
    without the list's wake marker (lua/include/ready.lua) and the dead copies
    cancelled events left in it (void).
    """
    r = client.redis

    def k(name: str) -> str:
        return key(client, service, name)

    raw = [s(x) for x in r.lrange(k("ready"), 0, -1)]
    return {
        "ready": [s(x) for x in r.zrange(k("prio"), 0, -1)] +
                 live_ready(raw, void(client, service)),
        "leased": [s(x) for x in r.zrange(k("leases"), 0, -1)],
        "timer": [s(x) for x in r.zrange(k("timers"), 0, -1)],
        "waiting": [s(x) for x in r.zrange(k("retry"), 0, -1)],
        "expired": [s(x) for x in r.lrange(k("expired"), 0, -1)],
        "dead": [s(x) for x in r.zrange(k("dead"), 0, -1)],
    }


def meta(client: homing.Client, service: str) -> dict[str, str]:
    """The bookkeeping records, id -> 'status|attempt|token|created|reason'."""
    raw = client.redis.hgetall(key(client, service, "meta"))
    return {s(k): s(v) for k, v in raw.items()}


def states(client: homing.Client, service: str) -> dict[str, str]:
    """id -> the one structure it is in; fails if an id is in two places or twice."""
    out: dict[str, str] = {}
    for state, ids in where(client, service).items():
        for event_id in ids:
            assert event_id not in out, f"{event_id} is in {out[event_id]} and {state}"
            out[event_id] = state
    return out


def written_keys(client: homing.Client, service: str) -> dict[str, bool]:
    """Which of the service's keys exist (EXISTS per key: no SCAN across cluster nodes)."""
    return {name: bool(client.redis.exists(key(client, service, name)))
            for name in LAYOUT["service_keys"]}


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, pause: float = 0.01) -> Any:
    """Poll cond until it returns something truthy; fail the test after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        out = cond()
        if out:
            return out
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s: {cond}")
        time.sleep(pause)


def counters(client: homing.Client, service: str) -> dict[str, int]:
    """The service's running totals, without the 'total.' prefix (missing ones are 0)."""
    st = client.stats(service)
    return {k[len("total."):]: int(v) for k, v in st.items() if k.startswith("total.")}


def backoff_bounds(policy: dict[str, float], attempt: int) -> tuple[int, int]:
    """The documented window of a retry delay: d*(1-jitter) < delay <= d, d capped at max."""
    d = min(policy["backoff_base_ms"] * 2 ** max(attempt - 1, 0), policy["backoff_max_ms"])
    return int(d * (1 - policy["backoff_jitter"])), int(d)


@contextlib.contextmanager
def running_daemons(client: homing.Client, interval: float = 0.01) -> Iterator[list[Any]]:
    """A Scheduler and a Distributor in threads, re-reading the registry often."""
    from homing.daemons import Distributor, Scheduler

    stop = threading.Event()
    daemons = [Scheduler(client, interval=interval, services_every=0.05),
               Distributor(client, interval=interval, services_every=0.05, sweep_every=0.05)]
    threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in daemons]
    for t in threads:
        t.start()
    try:
        yield daemons
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads), "a daemon did not stop"


@contextlib.contextmanager
def running(worker: homing.Worker) -> Iterator[homing.Worker]:
    """Start a Worker and shut it down gracefully on the way out."""
    worker.start()
    try:
        yield worker
    finally:
        worker.shutdown()
