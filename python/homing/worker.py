"""The worker runner: leases events for one service and feeds them to consumers.

Threads, each with one job:

- the fetcher (``fetching``) leases batches (``prefetch``) whenever slots
  are free, so a consumer rarely waits on a round trip, and sleeps what the
  service's limits or pause say (``wait_ms``) while they hold events back;
- ``concurrency`` handler threads, each with its own consumer instance and
  state (like one gen_server per slot), run ``handle_event``;
- the acker sends completions in batches with ``complete_many``;
- the heartbeat extends every held lease each ``lease_ms / 3``, so a slow
  handler keeps its event (the original system redelivered any event slower
  than the retry interval);
- the watchdog fails an event whose handler runs past the handler timeout
  (see ``watchdog``), and stops the worker when every slot is hung.

Events are leased in reserve mode: a prefetched event is charged an attempt
only once it is known to have started, so a worker that dies charges only
what it ran (see docs/worker.md). An event that came back unstarted before
(``must_start``) is marked started in Redis before it runs and acknowledged
at once, so a poison event that kills its worker still reaches the dead
letters after ``max_attempts``. An event whose lease the worker knows has run
out (by its own monotonic clock) is never started.

Lost connections (a Redis restart) are retried with backoff in every loop;
scripts reload by themselves. READONLY (the server became a replica: a
failover) is retried too, the client reconnecting meanwhile (through
Sentinel, to the new primary), but not for ever: after ``readonly_give_up``
seconds of nothing but READONLY the worker stops and ``run()`` raises
ReadOnlyError, so a worker pointed at a demoted node by a plain URL exits
instead of looping silently. With ``wait_replicas``, an acknowledgement
fewer replicas confirmed is still done (the write happened on the primary):
counted as ``unreplicated`` and warned about once a minute.

On SIGTERM/SIGINT the fetcher stops, prefetched events that no handler
started are released (they go next, no attempt counted), and handlers get
``grace`` seconds to finish. Whatever still runs after that is left to its
lease, not released under a handler that may still act on it: it is
redelivered when the lease expires.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import observe, ops
from .client import Client, raise_first
from .consumer import Consumer
from .errors import HomingError, RedisFullError, StaleLeaseError
from .fetching import fetch_loop
from .holding import Held, Inbox, WorkerStats
from .latency import collect_now, quicker_switches
from .manifest import MAX_BATCH, check_service
from .outcomes import HandlerTimeoutError, Outcomes
from .presence import Presence
from .readywait import ReadyWait
from .slots import ack_handled, slot_loop
from .watchdog import Watchdog

log = logging.getLogger("homing.worker")


class Worker(Outcomes):
    """Run ``consumer_factory`` instances against one service until ``stop()``."""

    def __init__(
        self,
        client: Client,
        service: str,
        consumer_factory: Callable[[], Consumer],
        *,
        concurrency: int = 1,
        prefetch: int = 100,
        lease_ms: int | None = None,
        grace: float = 30.0,
        poll_max: float = 0.05,
        handler_timeout: float | None = None,
        require_durable: bool = False,
        readonly_give_up: float = 60.0,
    ) -> None:
        """``handler_timeout`` (seconds; 0 for none) overrides the service's
        ``handler_timeout_ms`` policy for this worker. ``require_durable``: start()
        refuses (NotDurableError) a Redis that may lose acknowledged events.
        ``readonly_give_up``: seconds of nothing but READONLY before the worker
        stops (``gave_up`` is set and ``run()`` raises it)."""
        ops.worker_options(concurrency, prefetch, lease_ms, grace, poll_max, handler_timeout)
        self.readonly_give_up = ops.seconds(readonly_give_up, "readonly_give_up")
        self.gave_up: HomingError | None = None
        self._unreplicated_told = float("-inf")
        self.require_durable = require_durable
        self.client = client
        self.service = check_service(service)
        self.factory = consumer_factory
        self.concurrency = max(1, concurrency)
        self.prefetch = max(1, min(prefetch, MAX_BATCH))
        self.lease_ms = lease_ms
        self.grace = grace
        self.poll_max = poll_max
        if handler_timeout is not None and not 0 <= handler_timeout <= 86400:
            raise ValueError(f"handler_timeout must be in [0, 86400] s, got {handler_timeout!r}")
        self.handler_timeout = handler_timeout
        self.hung = False  # set when every slot was hung and the worker stopped itself
        self.stats = WorkerStats()
        # Context managers around each handler run: traces, metrics (homing.observe).
        self.instruments: list[observe.Instrument] = observe.defaults()
        self._watch = Watchdog()
        self._lease_s = 30.0  # effective lease length, s (its own, or the policy's)
        self._timeout_s = 0.0  # effective handler timeout, s (0: none)
        self._held = Held()
        self._todo = Inbox()
        # Slot thread id -> slot: complete_for finds the event its slot runs (the
        # watchdog's entry) without a thread-local store per event.
        self._slot_of: dict[int, int] = {}
        # Set when room may have opened in the fetcher's window (handled events
        # handed to the acker, acks done, leases dropped): it looks again at once.
        self._room = threading.Event()
        self._parked = False  # the fetcher waits on _room (fetching.kick_acker)
        self._kick = False  # acks queued while it waited: it wakes the acker
        self._acks: collections.deque[tuple[str, int, Any]] = collections.deque()
        self._ack_cv = threading.Condition()
        self._stop = threading.Event()
        self._handlers_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._slots: list[threading.Thread] = []
        self._beat_every = 1.0
        self._presence = Presence(client, self.service, self.concurrency)  # dashboard
        # Handled events whose completion is queued or in flight: they need no
        # slot any more, so the next batch is leased while they are acked.
        self._acking = 0
        # An idle fetcher blocks until the ready queue has something (readywait).
        self._ready = ReadyWait(client, self.service, self._stop)
        # Per slot: handled events whose acks are not queued yet (see slots.slot_loop).
        self._pending: list[list[tuple[str, int]]] = []

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start all threads and return.

        ``run()`` is start + wait + ``shutdown()``. Code that calls ``start()``
        itself must end with ``shutdown()``: ``stop()`` alone only stops
        fetching, and the heartbeat keeps held leases alive until shutdown.

        Lowers the process's GIL switch interval to 1 ms if it is still
        CPython's default (``homing.latency``): the threads a ready event waits
        on would otherwise wait up to 5 ms for the GIL.
        """
        # Read (and warned about) once per client; a required durability is refused here.
        self.client.check_durability(require=True if self.require_durable else None)
        specs: list[tuple[str, Callable[[], None]]] = [
            ("fetch", self._fetch_loop), ("ack", self._ack_loop), ("heartbeat", self._beat_loop),
            ("watchdog", self._watch_loop)]
        # Consumers are built here, not in their threads, so that a failing
        # factory or init() fails start() instead of leaving a dead slot.
        slots = []
        for _ in range(self.concurrency):
            consumer = self.factory()
            consumer._acker = self
            # An async consumer gets an event loop of its own, made here so that
            # an async init() runs (and fails) in start() too.
            is_async = (inspect.iscoroutinefunction(consumer.handle_event)
                        or inspect.iscoroutinefunction(consumer.init))
            loop = asyncio.new_event_loop() if is_async else None
            state = consumer.init()
            if inspect.isawaitable(state):
                assert loop is not None
                state = loop.run_until_complete(state)
            slots.append((consumer, state, loop))
        # Registered only once every init() succeeded: a worker that cannot start
        # leaves nothing behind, not even a registry entry.
        self.client.register(self.service)
        quicker_switches()  # a 1 ms GIL switch interval, unless the process chose one
        collect_now()  # the first full GC at start, not on a due timer later
        self._pace_heartbeat()
        self._presence.beat([], self._beat_every)
        for name, target in specs:
            t = threading.Thread(target=target, name=f"homing-{self.service}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        self._pending = [[] for _ in slots]
        for i, args in enumerate(slots):
            t = threading.Thread(target=self._slot_loop, args=(i, *args),
                                 name=f"homing-{self.service}-slot-{i}", daemon=True)
            t.start()
            self._threads.append(t)
            self._slots.append(t)

    def stop(self) -> None:
        """Ask the worker to shut down gracefully (safe from a signal handler)."""
        self._stop.set()

    def release_held(self, timeout: float = 5.0) -> None:
        """Give up on the running handlers now: release every event not settled yet.

        For an impatient stop (``homing worker`` on a second signal, just before the
        process exits; not from a signal handler): fetching stops, events not started
        and events whose handler is still running go back to the front of the ready
        queue at once instead of waiting for their leases to expire, and completions
        already queued are sent (for at most ``timeout`` s). A handler that finishes
        later finds its lease gone: nothing it reports is acknowledged.
        """
        self._stop.set()
        for t in self._threads:
            if t.name.endswith("-fetch"):
                t.join(timeout)
        self._release_unstarted()
        for handled in self._pending:  # handled, not yet queued: acked, not released
            if handled:
                self._ack_handled(handled)
        self._release(self._held.unsettled())
        with self._ack_cv:
            self._handlers_done.set()
            self._ack_cv.notify_all()
        for t in self._threads:
            if t.name.endswith("-ack"):
                t.join(timeout)

    def run(self) -> WorkerStats:
        """Start, block until ``stop()``, shut down gracefully; returns the counts.

        Raises ReadOnlyError, after the shutdown, if the worker gave up on a
        server that answered only READONLY for ``readonly_give_up`` seconds.
        """
        self.start()
        try:
            while not self._stop.wait(0.2):
                pass
        finally:
            self.shutdown()
        if self.gave_up is not None:
            raise self.gave_up
        return self.stats

    def shutdown(self) -> None:
        """Release unstarted events and let handlers finish for ``grace`` s.

        Events whose handlers are still running after that are not released
        (the handler may still act on them): their leases expire and they are
        redelivered then, which keeps "duplicates only after a lease expired".
        """
        self._stop.set()
        # Let a dequeue in flight land first: events it brings back after the
        # releases below would stay leased until their leases expire.
        for t in self._threads:
            if t.name.endswith("-fetch"):
                t.join(10)
        self._release_unstarted()
        end = time.monotonic() + (0.0 if self.hung else self.grace)
        for t in self._slots:
            t.join(max(0.0, end - time.monotonic()))
        self._release_unstarted()  # a slot may have been between get() and start
        with self._ack_cv:
            self._handlers_done.set()
            self._ack_cv.notify_all()
        for t in self._threads:
            if t.name.endswith("-ack"):
                t.join(10)
        leftover = self._held.unsettled()
        if leftover:
            # Not released: their handlers may still be running, and releasing
            # would hand the same events to another consumer at once. The
            # heartbeat has stopped, so the leases expire and the events come
            # back then, with the attempt counted (a handler that hangs on an
            # event thus reaches the dead letters in the end).
            log.warning("%d events still running after the %.0f s grace are left to their "
                        "leases: they are redelivered when the leases expire", len(leftover),
                        self.grace)
        self._presence.beat(leftover, self._beat_every, stopped=True)

    # -- called by consumers ------------------------------------------------------

    def complete_for(self, service: str, event_id: str, result: Any) -> None:
        """``Consumer.complete``: acknowledge now, with the token this worker holds."""
        slot = self._slot_of.get(threading.get_ident())
        ev = None if slot is None else self._watch.current(slot)
        if service != self.service:
            token = None
        elif ev is not None and ev.id == event_id:
            token = ev.token  # the event this slot is handling, even if redelivered here
        else:
            token = self._held.token_of(event_id)
        if token is None or not self._held.settle((event_id, token)):
            raise StaleLeaseError(f"this worker holds no open lease on {service}/{event_id}")
        try:
            raise_first(self._replicated_or_not(self.client.complete_many,
                                                service, [(event_id, token, result)]))
        except RedisFullError:
            # Its result would grow a full Redis: the acker sends it again (with the
            # result) while the heartbeat keeps the lease; the handler goes on.
            self._held.resend([(event_id, token)])
            with self._ack_cv:
                self._acks.append((event_id, token, result))
                self._acking += 1
                self._ack_cv.notify()
            return
        except HomingError as exc:
            # Gone because another worker completed it after this lease was lost:
            # to this consumer that is a lost lease, as documented.
            if exc.code != "UNKNOWN_EVENT":
                raise
            raise StaleLeaseError(f"the lease on {service}/{event_id} was lost: the event was "
                                  "completed elsewhere") from exc
        self.stats.add("completed")

    # -- loops ---------------------------------------------------------------------

    def _fetch_loop(self) -> None:
        fetch_loop(self)  # homing/fetching.py: the window rule, the limits' waits

    def _slot_loop(self, slot: int, consumer: Consumer, state: Any,
                   loop: asyncio.AbstractEventLoop | None) -> None:
        slot_loop(self, slot, consumer, state, loop)  # homing/slots.py: the per-event path

    def _ack_handled(self, handled: list[tuple[str, int]]) -> None:
        ack_handled(self, handled)

    def _pace_heartbeat(self) -> None:
        """Beat three times per lease. With no lease_ms of its own, the worker follows
        the service's policy, re-read with every beat: a lease_ms lowered by
        ``configure`` while the worker runs must not let its leases run out between
        beats. The handler timeout is read the same way."""
        lease, timeout = self.lease_ms, self.handler_timeout
        if lease is None or timeout is None:
            policy = self.client.stats(self.service)
            if lease is None:
                lease = int(policy["policy.lease_ms"])
            if timeout is None:
                timeout = policy["policy.handler_timeout_ms"] / 1000
        self._lease_s = lease / 1000
        self._beat_every = lease / 3000
        self._timeout_s = timeout

    def _beat_loop(self) -> None:
        pause = [0.05]
        # Beat until the handlers are done, not until stop(): a handler finishing
        # within the shutdown grace must keep its lease, or it would be redelivered.
        while not self._handlers_done.wait(self._beat_every):
            # Keep the service registered, so the scheduler can reclaim these
            # leases even after the registry was lost.
            self._retrying("register", lambda: self.client.register(self.service), pause)
            if self.lease_ms is None or self.handler_timeout is None:
                self._retrying("read the policy", self._pace_heartbeat, pause)
            held = self._held.unsettled()
            for i in range(0, len(held), MAX_BATCH):
                chunk = held[i:i + MAX_BATCH]
                sent = time.monotonic()
                out = self._retrying(
                    "extend", lambda c=chunk: self.client.extend_many(self.service, c,
                                                                      self.lease_ms), pause)
                self._held.renew([lease for lease, r in zip(chunk, out or [], strict=False)
                                  if not isinstance(r, HomingError)], sent + self._lease_s)
                for (event_id, token), r in zip(chunk, out or [], strict=False):
                    # settle() makes this the event's one outcome: counted once, and
                    # its handler's completion is not sent to be refused again.
                    if (isinstance(r, HomingError) and self._held.is_open((event_id, token))
                            and self._held.settle((event_id, token))):
                        log.warning("lease of %s/%s lost: %s", self.service, event_id, r)
                        self.stats.add("lost")
            self._presence.beat(held, self._beat_every)  # after the extends: never before them

    def _watch_loop(self) -> None:
        """Fail events whose handlers overran the timeout; stop when every slot hangs."""
        while not self._handlers_done.wait(min(max(self._timeout_s / 10, 0.02), 0.5)):
            if not self._timeout_s:
                continue
            for ev in self._watch.overdue(self._timeout_s):
                self._failed(ev, HandlerTimeoutError(self._timeout_s))
            if self._watch.hung() >= self.concurrency and not self.hung:
                self.hung = True
                log.error("all %d slots are hung in handlers past the %.3g s timeout: "
                          "stopping this worker so that its supervisor restarts it",
                          self.concurrency, self._timeout_s)
                self.stop()
