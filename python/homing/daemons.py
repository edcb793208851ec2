"""The retry scheduler and the retry distributor, after the original system's.

The **scheduler** sweeps every registered service with the ``promote``
script: due timers and due retries move to the ready queue; expired leases
are reclaimed onto the service's expired list (their tokens die, so a late
``complete`` is refused) and the service is hinted to the distributors.

The **distributor** takes each reclaimed event with the ``distribute``
script and routes it back to its service's queue after a backoff, or to the
dead letters once its attempts are used up. It serves hinted services first
and sweeps every service each ``sweep_every`` seconds, so a lost hint only
delays an event, never strands it.

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

from . import ops
from .client import Client
from .errors import ConnectionLostError, HomingError, NotDurableError, ReadOnlyError

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
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        """Step until stop is set; sleep ``interval`` when there was nothing to do."""
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
                busy = self.step()
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
                stop.wait(self.interval)
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


class Scheduler(_Daemon):
    """Promotes due timers and retries; reclaims expired leases."""

    name = "scheduler"

    def promote(self, service: str) -> int:
        moved = 0
        while True:
            r = self.client.promote(service, self.limit)
            moved += r.timers + r.retries + r.expired
            if r.expired > r.returned:  # returned ones went back to ready themselves
                try:
                    self.client.hint_expired(service)
                except HomingError as exc:
                    # Only a hint (a full Redis refuses its SADD): the distributor's
                    # sweep finds the expired events anyway.
                    log.debug("scheduler: no hint for %s: %s", service, exc)
            if not r.more:
                return moved

    def step(self) -> int:
        return self._each(self.services(), self.promote)


class Distributor(_Daemon):
    """Routes reclaimed events to their service's retry backoff or dead letters."""

    name = "distributor"

    def __init__(self, client: Client, *, sweep_every: float = 2.0, **kw: Any) -> None:
        super().__init__(client, **kw)
        self.sweep_every = ops.seconds(sweep_every, "sweep_every")
        self._swept_at = float("-inf")

    def distribute(self, service: str) -> int:
        moved = 0
        while True:
            r = self.client.distribute(service, self.limit)
            moved += r.retried + r.dead
            if not r.more:
                return moved

    def step(self) -> int:
        hinted = self.client.take_hints(1000)
        now = time.monotonic()
        if now - self._swept_at >= self.sweep_every:
            self._swept_at = now
            hinted = sorted(set(hinted) | set(self.services()))
        return self._each(hinted, self.distribute)


def run_daemons(client: Client, stop: threading.Event, *, scheduler: bool = True,
                distributor: bool = True, interval: float = 0.05,
                require_durable: bool = False, readonly_give_up: float = 60.0) -> None:
    """Run a scheduler and/or a distributor in threads until stop is set.

    The daemons survive every HomingError by themselves; if one still dies
    (a bug), this sets stop and raises instead of waiting on a dead thread.
    With ``require_durable`` a Redis that may lose acknowledged events is
    refused here (NotDurableError), before any thread starts. A daemon that
    gave up on READONLY (``readonly_give_up``) stops both and ReadOnlyError
    is raised here.
    """
    if require_durable:
        client.check_durability(require=True)
    threads, daemons = [], []
    for enabled, cls in ((scheduler, Scheduler), (distributor, Distributor)):
        if enabled:
            d = cls(client, interval=interval, require_durable=require_durable,
                    readonly_give_up=readonly_give_up)
            t = threading.Thread(target=d.serve, args=(stop,), name=f"homing-{d.name}",
                                 daemon=True)
            t.start()
            threads.append(t)
            daemons.append(d)
    while not stop.wait(0.5):
        dead = [t.name for t in threads if not t.is_alive()]
        if dead and not stop.is_set():  # a give-up sets stop before its thread ends
            stop.set()
            raise RuntimeError(f"{', '.join(dead)} stopped unexpectedly (see the log)")
    for t in threads:
        t.join()
    for d in daemons:
        if d.gave_up is not None:
            raise d.gave_up
