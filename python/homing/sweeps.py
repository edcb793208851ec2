"""The scheduler's helpers that are not promoting: its clock, its sleep, its backstop.

``RedisClock`` is its estimate of the Redis clock, which says when to send a
promote; ``Waker`` is how the scheduler sleeps until the next due time and
wakes at once on a client's PUBLISH (the due-time index's wake channel);
``Backstop`` is the bounded sweep of the registry that puts back into the
index what a lost hint left out. Apart from ``homing.daemons`` so that each
stays small; see docs/architecture.md, section 7, for the design.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any

from . import due
from .client import Client
from .errors import HomingError
from .manifest import SCRIPTS, global_key

log = logging.getLogger("homing.daemons")


# The scheduler reads the Redis clock (TIME, the best of CLOCK_READS) this often (s).
CLOCK_EVERY = 10.0
CLOCK_READS = 3
# How far ahead of the Redis clock the scheduler's estimate runs (ms): about how long
# a call takes to reach Redis, so that a promote is sent as its timer falls due there.
LEAD_MS = 0.25


class RedisClock:
    """The scheduler's estimate of the Redis clock: monotonic time plus an offset.

    Read with TIME (to the us) against the midpoint of the round trip, the best
    of CLOCK_READS (the shortest round trip), every CLOCK_EVERY s (0.3 commands
    a second), plus LEAD_MS. The scheduler then sends a promote as its timer
    falls due in Redis: neither a round trip early (found not due, sent again)
    nor up to a ms late, as with a due_take's reading alone (whole ms, so it runs
    behind by its fraction). Where TIME is refused, or its reply is not one
    server's, the due_takes' readings serve instead (``taken``). Either way only
    when to send depends on it: the scripts judge what is due by TIME itself.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.offset = -time.monotonic() * 1000  # Redis ms - monotonic ms
        self.read_at = float("-inf")  # when TIME was last read (monotonic s)
        self.timed = False  # whether that read succeeded

    def now(self) -> int:
        """The Redis clock (whole ms) a call sent now runs at, by the estimate."""
        return math.floor(time.monotonic() * 1000 + self.offset)

    def until(self, at: int) -> float:
        """Seconds until ``now()`` reaches ``at`` (0 if it has)."""
        return max(0.0, (at - time.monotonic() * 1000 - self.offset) / 1000 + 0.00002)

    def refresh(self) -> None:
        """Read TIME again if the last reading is CLOCK_EVERY s old."""
        if time.monotonic() - self.read_at < CLOCK_EVERY:
            return
        best: tuple[float, float] | None = None
        try:
            for _ in range(CLOCK_READS):
                t0 = time.monotonic()
                sec, usec = self.client.redis.time()
                t1 = time.monotonic()
                if best is None or t1 - t0 < best[0]:
                    best = (t1 - t0, int(sec) * 1000 + int(usec) / 1000 - (t0 + t1) * 500)
        except Exception as exc:  # noqa: BLE001 - any failure: the due_takes' readings
            log.debug("scheduler: no TIME (%s): the due-time index's readings serve", exc)
            best = None
        self.read_at = time.monotonic()
        self.timed = best is not None
        if best is not None:
            self.offset = best[1] + LEAD_MS

    def taken(self, now: int, sent: float) -> None:
        """A due_take's reading (``now``, whole ms, read by Redis after ``sent``).

        The estimate while TIME is not read (it runs ahead by the call's way
        there, behind by the fraction of a ms). Else a bound: Redis read less
        than now + 1 after ``sent``, so an estimate further ahead than that (and
        LEAD_MS) is taken back to it; the scheduler would otherwise read the index
        again and again, each time too early, until Redis caught up."""
        bound = now + 1 - sent * 1000
        if not self.timed:
            self.offset = now - sent * 1000
        elif self.offset > bound + LEAD_MS:
            self.offset = bound + LEAD_MS


class Waker:
    """The scheduler's sleep: a subscription to the prefix's wake channel, read
    with a local timeout, so it wakes on the ms it chose (Redis rounds the
    timeout of a blocking command up to its 100 ms tick) and at once on a
    client's PUBLISH, and costs Redis nothing while it sleeps.

    Subscribed before the index is read, so a wake-up published after that read
    is never missed. Without a subscription (a lost connection, an ACL without
    the channel) it sleeps at most ``fallback`` seconds: the index is read again
    that often instead.
    """

    def __init__(self, client: Client, fallback: float) -> None:
        self.client, self.fallback = client, fallback
        self._sub: Any = None
        self._told = False
        self.woken = 0  # wake-ups by a message, for tests and the bench
        self.rung = False  # a message arrived since the scheduler last looked

    def arm(self) -> bool:
        """Subscribe if not subscribed; True if it just did (the index must be read)."""
        if self._sub is not None:
            return False
        try:
            sub = self.client.redis.pubsub(ignore_subscribe_messages=True)
            sub.subscribe(due.channel(self.client.prefix))
        except Exception as exc:  # noqa: BLE001 - any failure: poll instead
            if not self._told:
                log.warning("scheduler: cannot subscribe to %s (%s): reading the due-time "
                            "index every %.3g s instead", due.channel(self.client.prefix), exc,
                            self.fallback)
                self._told = True
            return True
        self._sub = sub
        return True

    def wait(self, seconds: float, stop: threading.Event) -> None:
        end = time.monotonic() + seconds
        if self._sub is None:
            stop.wait(min(seconds, self.fallback))
            return
        try:
            while not stop.is_set():
                left = end - time.monotonic()
                if left <= 0:
                    return
                if left <= 0.0015:
                    # The socket wait rounds its timeout up to whole ms (poll): the last
                    # stretch is slept precisely instead (a message then waits <= 1.5 ms).
                    time.sleep(left)
                    return
                if self._sub.get_message(timeout=min(left - 0.001, 0.1)) is not None:
                    self.woken += 1
                    self.rung = True
                    while self._sub.get_message(timeout=0) is not None:
                        pass  # one look at the index answers every message so far
                    return
        except Exception as exc:  # noqa: BLE001 - a lost connection: subscribe again
            log.debug("scheduler: wake channel lost: %s", exc)
            self.close()

    def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                sub.close()


# The backstop's reads per service: five zsets' earliest score and the expired list.
_BACKSTOP_ZSETS = ("timers", "retry", "leases", "results_at", "idem_at")
BACKSTOP_COST = len(_BACKSTOP_ZSETS) + 1


class Backstop:
    """The scheduler's safety net for lost hints: walks the registry (SSCAN) at
    ``rate`` Redis commands a second, reads each service's earliest due times
    and puts them back into the due-time index (ZADD LT, so it never raises an
    entry), and hints services with expired events to the distributors.

    The first pass after a start runs at full speed (a daemon started over
    services written before the index existed, or after a crash, finds their
    work at once); later passes take ``BACKSTOP_COST * services / rate`` s.
    Results and idempotency keys due for pruning are found the same way.
    """

    CHUNK = 20  # services per SSCAN and pipeline

    def __init__(self, client: Client, rate: float) -> None:
        self.client, self.rate = client, rate
        self.cursor = 0
        self.first = True
        self.passes = 0
        self.tokens = 0.0
        self.at = time.monotonic()
        self.local: dict[str, int] = {}  # found due but not indexed (a full Redis)
        self.found: int | None = None  # the earliest due time put back since last asked
        script = SCRIPTS["promote"]
        self._names = script.keys
        self._script = script

    def due_in(self) -> float:
        """Seconds until the next chunk may run."""
        if self.first:
            return 0.0
        need = 1 + self.CHUNK * BACKSTOP_COST
        if self.rate <= 0:
            return 3600.0
        have = self.tokens + (time.monotonic() - self.at) * self.rate  # refilled since
        return max(0.0, (need - have) / self.rate)

    def step(self) -> bool:
        """Run what the budget allows; True while the first pass is under way."""
        now = time.monotonic()
        cap = 2 * (1 + self.CHUNK * BACKSTOP_COST)
        self.tokens = min(cap, self.tokens + (now - self.at) * self.rate)
        self.at = now
        for _ in range(5 if self.first else 100):
            if not self.first and self.tokens < 1 + self.CHUNK * BACKSTOP_COST:
                break
            self._chunk()
            if self.cursor == 0:
                self.passes += 1
                if self.first:  # the full-speed pass owes the budget nothing
                    self.tokens = 0.0
                self.first = False
                break
        return self.first

    def _chunk(self) -> None:
        r = self.client.redis
        registry = global_key(self.client.prefix, "services")
        try:
            cursor, members = r.sscan(registry, self.cursor, count=self.CHUNK)
            services = sorted({m.decode() if isinstance(m, bytes) else m for m in members})
            self.tokens -= 1 + len(services) * BACKSTOP_COST
            found: dict[str, int] = {}
            expired: list[str] = []
            if services:
                pipe = r.pipeline(transaction=False)
                for service in services:
                    keys = dict(zip(self._names, self.client._keys.keys(self._script, service),
                                    strict=True))
                    for name in _BACKSTOP_ZSETS:
                        pipe.zrange(keys[name], 0, 0, withscores=True)
                    pipe.llen(keys["expired"])
                out = pipe.execute(raise_on_error=False)
                for i, service in enumerate(services):
                    part = out[i * BACKSTOP_COST:(i + 1) * BACKSTOP_COST]
                    scores = [int(z[0][1]) for z in part[:-1] if isinstance(z, list) and z]
                    if scores:
                        found[service] = min(scores)
                    if isinstance(part[-1], int) and part[-1] > 0:
                        expired.append(service)
        except Exception as exc:
            raise self.client._failed(exc) from exc
        self.cursor = int(cursor)
        if found:
            low = min(found.values())
            self.found = low if self.found is None else min(self.found, low)
            try:
                r.zadd(global_key(self.client.prefix, "due"), found, lt=True)
            except Exception as exc:  # noqa: BLE001 - a full Redis: keep them here instead
                log.debug("scheduler: backstop could not index %d services: %s", len(found), exc)
                self.local.update(found)
        for service in expired:
            try:
                self.client.hint_expired(service)
            except HomingError as exc:
                log.debug("scheduler: no hint for %s: %s", service, exc)
