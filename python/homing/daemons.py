"""The retry scheduler and the retry distributor, after the original system's.

The **scheduler** runs the ``promote`` script on each service that has work
due: due timers and due retries move to the ready queue; expired leases are
reclaimed onto the service's expired list (their tokens die, so a late
``complete`` is refused) and the service is hinted to the distributors. It
finds that work in the due-time index (``homing.due``): it claims the due
entries, promotes those services, puts back each one's next due time, and
sleeps until the earliest entry by the Redis clock, woken at once by the
clients' PUBLISH when they add earlier work. So its cost follows what is
due, not how many services exist. A backstop sweep walks the registry at a
bounded rate (``backstop_rate`` Redis commands a second) and puts back into
the index what a lost hint left out; that bounds how late a lost hint makes
anything: one pass, ``6 * services / backstop_rate`` seconds.

The **distributor** takes each reclaimed event with the ``distribute``
script and routes it back to its service's queue after a backoff, or to the
dead letters once its attempts are used up. It serves the services the
schedulers hinted (the scheduler's backstop hints every service with expired
events again, so a lost hint only delays an event, never strands it).

Every move is one atomic script on one service's slot, so any number of
schedulers and distributors may run at once: an event is promoted or routed
exactly once. When none runs, events wait in Redis; nothing is lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import due, ops
from .client import Client
from .errors import (
    ConnectionLostError,
    HomingError,
    InvalidArgumentError,
    NotDurableError,
    ReadOnlyError,
)
from .latency import collect_now, quicker_switches
from .sweeps import BACKSTOP_COST, Backstop, RedisClock, Waker  # noqa: F401 - BACKSTOP_COST

log = logging.getLogger("homing.daemons")


class _Daemon:
    """A loop over services that survives Redis restarts and bad services."""

    name = "daemon"

    def __init__(self, client: Client, *, interval: float = 0.05, limit: int = 1000,
                 services_every: float = 1.0, require_durable: bool = False,
                 readonly_give_up: float = 60.0) -> None:
        """``require_durable``: run() refuses (NotDurableError) a Redis that may lose
        acknowledged events, instead of only warning about it once.
        ``readonly_give_up``: seconds of nothing but READONLY (a replica: a plain URL
        on a demoted node) before run() gives up, setting ``stop`` and raising
        ReadOnlyError, instead of retrying for ever."""
        self.client = client
        self.readonly_give_up = ops.seconds(readonly_give_up, "readonly_give_up")
        self.gave_up: ReadOnlyError | None = None
        # Checked here: a NaN interval would otherwise end the loop's thread in
        # Event.wait, and a bad limit fail every step as a logged error.
        self.interval = ops.seconds(interval, "interval")
        self.limit = ops.whole(limit, "limit", 1)
        self.services_every = ops.seconds(services_every, "services_every")
        self.require_durable = require_durable
        self.moved = 0
        # When the last beat was written (monotonic): the health probe's "beating".
        self.beat_at = time.monotonic()
        self._services: list[str] = []
        self._services_at = float("-inf")

    def services(self) -> list[str]:
        """The registry, re-read at most every ``services_every`` seconds."""
        now = time.monotonic()
        if now - self._services_at >= self.services_every:
            self._services = self.client.services()
            self._services_at = now
        return self._services

    def _each(self, services: Iterable[str], step: Callable[[str], int]) -> int:
        total = 0
        for service in services:
            try:
                total += step(service)
            except (ConnectionLostError, ReadOnlyError):
                raise  # the server's trouble, not this service's: run() backs off
            except HomingError as exc:  # one broken service must not stall the others
                log.error("%s: service %s: %s", self.name, service, exc)
        self.moved += total
        return total

    def step(self) -> int:
        """One pass over every registered service (what tests and scripts call)."""
        raise NotImplementedError

    def cycle(self) -> int:
        """What run() does each time round; by default a step()."""
        return self.step()

    def idle(self, stop: threading.Event) -> None:
        """Wait after a cycle that found nothing to do."""
        stop.wait(self.interval)

    def close(self) -> None:
        """Release what run() held (a subscription)."""

    def run(self, stop: threading.Event) -> None:
        """Cycle until stop is set, waiting (``idle``) when there was nothing to do."""
        pause = 0.05
        beat_at = float("-inf")  # a first beat at once; self.beat_at is for the probes
        me = f"{self.name}:{socket.gethostname()}:{os.getpid()}"
        log.info("%s started", self.name)
        checked = False
        while not stop.is_set():
            try:
                if not checked:  # in the loop: a daemon may start before its Redis does
                    self.client.check_durability(require=True if self.require_durable else None)
                    checked = True
                if time.monotonic() - beat_at >= 1.0:  # seen by `homing stats`
                    self.client.beat(me)
                    beat_at = self.beat_at = time.monotonic()
                busy = self.cycle()
                pause = 0.05
            except NotDurableError:
                raise  # required, so not retried: the thread ends and run_daemons says so
            except HomingError as exc:  # a lost connection, OOM, READONLY after a failover...
                log.warning("%s: %s; retrying in %.2f s", self.name, exc, pause)
                if isinstance(exc, ReadOnlyError):
                    self._read_only(exc, stop)
                stop.wait(pause)
                pause = min(pause * 2, 2.0)
                continue
            if not busy:
                self.idle(stop)
        self.close()
        log.info("%s stopped after moving %d events", self.name, self.moved)

    def _read_only(self, exc: ReadOnlyError, stop: threading.Event) -> None:
        """Give up after ``readonly_give_up`` s of nothing but READONLY (as the Worker does)."""
        lasted = self.client.read_only_for()
        if lasted < self.readonly_give_up:
            return
        self.gave_up = ReadOnlyError(
            f"every write for {lasted:.0f} s was answered READONLY (readonly_give_up "
            f"{self.readonly_give_up:g} s): the Redis this {self.name} uses is a replica now. "
            "Point it at the primary, or use a redis+sentinel:// URL to follow failovers "
            f"(docs/failover.md); last reply: {exc}")
        log.error("%s: %s", self.name, self.gave_up)
        stop.set()
        raise self.gave_up

    def serve(self, stop: threading.Event) -> None:
        """run() for a thread: a READONLY give-up ends it quietly (logged, in ``gave_up``,
        ``stop`` set) instead of as an uncaught exception's traceback."""
        try:
            self.run(stop)
        except ReadOnlyError:
            if self.gave_up is None:
                raise


# A claimed service due within this many ms stays claimed and is promoted directly.
HOT_MS = 1000
# A next due time this far behind the Redis clock, with nothing moved, is a test clock's.
TEST_CLOCK_MS = 1000


class Scheduler(_Daemon):
    """Promotes due timers and retries; reclaims expired leases.

    ``run()`` follows the due-time index (see the module's docstring);
    ``step()`` is one full pass over the registry, for tests and scripts.
    ``interval``: how often a service on a test clock (whose due times the Redis
    clock cannot judge) is looked at again, and how often the index is read
    when the wake channel cannot be subscribed. ``claim_ms``: how long another
    scheduler keeps off a service this one claimed (and died on).
    ``max_wait``: the longest sleep (the beat and the backstop need a look).
    """

    name = "scheduler"

    def __init__(self, client: Client, *, backstop_rate: float = 40.0, claim_ms: int = 5000,
                 max_wait: float = 1.0, **kw: Any) -> None:
        super().__init__(client, **kw)
        self.backstop_rate = ops.seconds(backstop_rate, "backstop_rate")
        self.claim_ms = ops.whole(claim_ms, "claim_ms", 1, 3_600_000)
        self.max_wait = ops.seconds(max_wait, "max_wait")
        self.backstop = Backstop(client, self.backstop_rate)
        self.waker = Waker(client, self.interval)
        self.on_hint: Callable[[], None] | None = None  # run_daemons: wake its distributor
        self._wait = 0.0
        self.promoted = 0  # services promoted by the index, for tests and the bench
        self._hot: dict[str, tuple[int, int]] = {}  # claimed, due soon: (next due, claim)
        self._take_at = -1  # when to read the index again (ms, Redis clock); -1: at once
        self.clock = RedisClock(client)
        self._early: set[str] = set()  # services whose last promote was sent early
        self.early = 0  # promotes sent before their due time by the Redis clock (wasted)

    def promote(self, service: str) -> int:
        return self._promote(service)[0]

    def _promote(self, service: str) -> tuple[int, int]:
        """Promote until nothing more is due; (events moved, next due ms or -1)."""
        moved = 0
        while True:
            r = self.client.promote(service, self.limit)
            moved += r.timers + r.retries + r.expired
            if r.expired > r.returned:  # returned ones went back to ready themselves
                try:
                    self.client.hint_expired(service)
                except HomingError as exc:
                    # Only a hint (a full Redis refuses its SADD): the backstop
                    # hints every service with expired events again.
                    log.debug("scheduler: no hint for %s: %s", service, exc)
                if self.on_hint is not None:
                    self.on_hint()
            if not r.more:
                return moved, r.next_due_ms

    def step(self) -> int:
        return self._each(self.services(), self.promote)

    def _now(self) -> int:
        """The Redis clock (whole ms) a call sent now runs at: see ``RedisClock``."""
        return self.clock.now()

    def cycle(self) -> int:
        """Promote what is due; set ``_wait``, the sleep until the next due time.

        A service whose next due time is near (``HOT_MS``) stays claimed between
        cycles and is promoted straight away when it is due: one round trip per
        wake-up instead of four (take, promote, settle, take), which is what keeps
        a stream of timers on time on a busy machine. Its claim is settled well
        before it could go stale, and a client that adds earlier work lowers the
        claim and PUBLISHes, which makes the next cycle read the index again.
        """
        fresh = self.waker.arm()  # before the index is read: no wake-up falls in between
        self.clock.refresh()
        rung, self.waker.rung = self.waker.rung, False
        moved = 0
        settle: list[tuple[str, int, int]] = []  # service, claim, next due
        est = self._now()
        for service, (at, claim) in list(self._hot.items()):
            if at <= est:
                n, at = self._promote_one(service, est)
                moved += n
                self._keep(service, at, claim, settle)
        taken: list[str] = []
        if fresh or rung or est >= self._take_at:
            sent = time.monotonic()
            now, next_due, next_claim, taken = self.client.due_take(100, self.claim_ms)
            self.clock.taken(now, sent)  # the estimate, where TIME is refused
            targets = [t for t in (next_due, next_claim) if t >= 0]
            # A full take leaves more due: read again at once.
            self._take_at = (-1 if len(taken) == 100 else min(targets) if targets
                             else now + int(self.max_wait * 1000))
            local = [s for s, at in self.backstop.local.items() if at <= now and s not in taken]
            for service in [*taken, *local]:
                n, at = self._promote_one(service, now)
                moved += n
                if service in self.backstop.local:
                    if at < 0:
                        del self.backstop.local[service]
                    else:
                        self.backstop.local[service] = at
                if service in taken:
                    self._hot.pop(service, None)  # claimed again: the new claim counts
                    self._keep(service, at, due.CLAIM + now, settle)
        self._settle(settle)
        self.moved += moved
        first_pass = False
        if self.backstop.due_in() <= 0:
            first_pass = self.backstop.step()
            if self.backstop.found is not None:  # put back into the index: read it then
                self._take_at = min(self._take_at, self.backstop.found)
                self.backstop.found = None
        est = self._now()
        if first_pass or self._take_at < est:
            self._wait = 0.0
            return max(moved, 1)  # look again at once
        targets = [self._take_at, *(at for at, _ in self._hot.values()),
                   *self.backstop.local.values()]
        wait = self.clock.until(min(targets))  # to the us: the estimate is floored to ms
        self._wait = max(0.0, min(wait, self.max_wait, self.backstop.due_in()))
        return moved

    def _promote_one(self, service: str, now: int) -> tuple[int, int]:
        """Promote one service; (moved, next due) with a broken or test-clock service's
        next look put off, so that neither loops."""
        try:
            n, at = self._promote(service)
        except (ConnectionLostError, ReadOnlyError):
            raise  # the claim goes stale after claim_ms and is taken again
        except HomingError as exc:  # one broken service must not stall the others
            log.error("scheduler: service %s: %s", service, exc)
            return 0, now + 60_000  # looked at again in a minute, not in a loop
        self.promoted += 1
        if n == 0 and 0 <= at <= now:
            # Long due by its own clock but nothing moved: a test clock the Redis clock
            # cannot judge, looked at again every interval. Just due: the estimated
            # clock ran ahead of Redis (by about LEAD_MS), so sent again at once,
            # and if that was early too, a ms later (no loop, whatever the clocks).
            if at < now - TEST_CLOCK_MS:
                at = now + max(1, int(self.interval * 1000))
            elif service in self._early:
                at = now + 1
            else:
                self._early.add(service)
                self.early += 1
                at = now
            return n, at
        self._early.discard(service)
        return n, at

    def _keep(self, service: str, at: int, claim: int,
              settle: list[tuple[str, int, int]]) -> None:
        """Keep a claimed service hot, or settle it (far or nothing due, claim aging)."""
        est = self._now()
        if 0 <= at <= est + HOT_MS and est - (claim - due.CLAIM) < self.claim_ms / 2:
            self._hot[service] = (at, claim)
        else:
            self._hot.pop(service, None)
            settle.append((service, claim, at))

    def _settle(self, settle: list[tuple[str, int, int]]) -> None:
        by_claim: dict[int, list[tuple[str, int]]] = {}
        for service, claim, at in settle:
            by_claim.setdefault(claim, []).append((service, at))
            if at >= 0:
                self._take_at = min(self._take_at, at)
        for claim, items in by_claim.items():
            for i in range(0, len(items), 1000):
                self.client.due_settle(claim, items[i:i + 1000])

    def idle(self, stop: threading.Event) -> None:
        self.waker.wait(self._wait, stop)

    def close(self) -> None:
        """Settle the services still claimed (best effort: else their claims go stale)."""
        hot, self._hot = self._hot, {}
        try:
            self._settle([(s, claim, at) for s, (at, claim) in hot.items()])
        except HomingError as exc:
            log.debug("scheduler: claims left to go stale: %s", exc)
        self.waker.close()


class Distributor(_Daemon):
    """Routes reclaimed events to their service's retry backoff or dead letters.

    ``run()`` serves the hinted services, polling the hints every ``interval``
    (at once when the scheduler of the same ``run_daemons`` reclaimed leases).
    ``sweep_every`` (None by default) also sweeps every registered service that
    often; the scheduler's backstop makes that unnecessary. ``step()`` sweeps on
    its first call.
    """

    name = "distributor"

    def __init__(self, client: Client, *, sweep_every: float | None = None, **kw: Any) -> None:
        super().__init__(client, **kw)
        self.sweep_every = None if sweep_every is None else ops.seconds(sweep_every,
                                                                        "sweep_every")
        self._swept_at = float("-inf")
        self.kick = threading.Event()

    def distribute(self, service: str) -> int:
        moved = 0
        while True:
            r = self.client.distribute(service, self.limit)
            moved += r.retried + r.dead
            if not r.more:
                if r.retried:  # their due times: the scheduler looks at once
                    self.client.hint_due(service, 0)
                return moved

    def step(self) -> int:
        return self._round(sweep=self.sweep_every if self.sweep_every is not None else 3600.0)

    def cycle(self) -> int:
        return self._round(sweep=self.sweep_every)

    def _round(self, sweep: float | None) -> int:
        self.kick.clear()
        hinted = self.client.take_hints(1000)
        now = time.monotonic()
        if sweep is not None and now - self._swept_at >= sweep:
            self._swept_at = now
            hinted = sorted(set(hinted) | set(self.services()))
        return self._each(hinted, self.distribute)

    def idle(self, stop: threading.Event) -> None:
        end = time.monotonic() + self.interval
        while not stop.is_set() and not self.kick.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.kick.wait(min(left, 0.05))


def run_daemons(client: Client, stop: threading.Event, *, scheduler: bool = True,
                distributor: bool = True, interval: float = 0.05,
                require_durable: bool = False, readonly_give_up: float = 60.0,
                report: Callable[[_Daemon], None] | None = None,
                started: Callable[[list[_Daemon], list[threading.Thread]], None] | None = None,
                ) -> None:
    """Run a scheduler and/or a distributor in threads until stop is set.

    What ``homing daemon``, ``homing scheduler`` and ``homing distributor`` run.
    The daemons survive every HomingError by themselves; if one still dies
    (a bug), this sets stop and raises RuntimeError instead of waiting on a dead
    thread. With ``require_durable`` a Redis that may lose acknowledged events
    is refused here (NotDurableError), before any thread starts. A daemon that
    gave up on READONLY (``readonly_give_up``) stops both and ReadOnlyError is
    raised here. ``report`` is called with each daemon once all have stopped
    (before anything is raised), e.g. to print what each moved; ``started`` with
    the daemons and their threads once they run (the CLI's health probes).
    Lowers the process's GIL switch interval to 1 ms if it is still CPython's
    default (``homing.latency``): a scheduler waking for a due timer would
    otherwise wait up to 5 ms for the GIL.
    """
    if not (scheduler or distributor):
        raise InvalidArgumentError("run_daemons needs a scheduler, a distributor or both")
    if require_durable:
        client.check_durability(require=True)
    quicker_switches()  # a 1 ms GIL switch interval, unless the process chose one
    collect_now()  # the first full GC at start, not on a due timer later
    daemons: list[_Daemon] = []
    if scheduler:
        daemons.append(Scheduler(client, interval=interval, require_durable=require_durable,
                                 readonly_give_up=readonly_give_up))
    if distributor:
        d = Distributor(client, interval=interval, require_durable=require_durable,
                        readonly_give_up=readonly_give_up)
        if scheduler:
            daemons[0].on_hint = d.kick.set  # type: ignore[attr-defined]
        daemons.append(d)
    threads = [threading.Thread(target=d.serve, args=(stop,), name=f"homing-{d.name}",
                                daemon=True) for d in daemons]
    for t in threads:
        t.start()
    if started is not None:
        try:
            started(daemons, threads)
        except BaseException:  # e.g. a health port in use: nothing left running
            stop.set()
            for t in threads:
                t.join()
            raise
    crashed: list[str] = []
    while not stop.wait(0.2):
        crashed = [t.name for t in threads if not t.is_alive()]
        if crashed:
            break
    if stop.is_set():
        crashed = []  # a give-up sets stop before its thread ends
    stop.set()
    for t in threads:
        t.join()
    for d in daemons:
        if report is not None:
            report(d)
    for d in daemons:
        if d.gave_up is not None:
            raise d.gave_up
    if crashed:
        raise RuntimeError(f"{', '.join(crashed)} stopped unexpectedly (see the log)")
