"""The synchronous client: producer, consumer and admin operations of homing.

Every method is one script call (see ``ops``), so each is atomic in Redis.
Producers need only a service name: the first write to a service creates it
and adds it to the registry that the scheduler and distributor sweep.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

from . import due, durability, ops, scripting, tracing
from .clientbase import (
    DEFAULT_URL,
    DEFAULT_WAIT_TIMEOUT_MS,
    ClientBase,
    ResultWait,
    _given,
    per_item,
    raise_first,
    wait_option,
    wait_refusal,  # noqa: F401 - DEFAULT_URL, ClientBase... are imported from here too
)
from .connection import REDIS_ERRORS, SOCKET_TIMEOUT, connect, drop_idle, translate
from .daemoncalls import DaemonCalls
from .errors import HomingError, RedisFullError
from .groups import GroupCalls
from .handling import HandlingCalls
from .limits import LimitCalls
from .manifest import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PREFIX,
    global_key,
)
from .types import (
    DeadPage,
    Event,
    FailOutcome,
    RecurringPage,
    Status,
)


class Client(ClientBase, HandlingCalls, DaemonCalls, GroupCalls, LimitCalls):
    """A connection to homing on one Redis (standalone or Cluster).

    ``prefix`` namespaces every key (default ``homing``); ``max_payload`` is
    the largest encoded envelope accepted, in bytes (default 1 MiB).
    """

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, *, cluster: bool | None = None,
                 prefix: str = DEFAULT_PREFIX, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 require_durable: bool = False, wait_replicas: int = 0,
                 wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
                 **redis_kwargs: Any) -> Client:
        """Connect to url; a Redis Cluster is detected unless ``cluster`` says.

        ``url`` may also be ``redis+sentinel://`` (the primary a set of sentinels
        names, followed across failovers) or list several Cluster seeds
        (``redis://h1:p1,h2:p2/0``): see docs/failover.md. The server's
        durability settings are read right away (with ``cluster`` given, which
        connects to nothing, on the first call instead) and warned about once;
        ``require_durable`` raises NotDurableError here for a server that may
        lose acknowledged events. ``wait_replicas``: after each write a
        producer or an acknowledgement makes, ``WAIT wait_replicas
        wait_timeout_ms``, and NotReplicatedError when fewer replicas confirmed.
        """
        socket_timeout = redis_kwargs.get("socket_timeout", SOCKET_TIMEOUT)
        wait_option(wait_replicas, wait_timeout_ms, socket_timeout)  # before connecting
        client = cls(connect(url, cluster=cluster, **redis_kwargs), prefix=prefix,
                     max_payload=max_payload, require_durable=require_durable,
                     wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms)
        try:
            if cluster is None or require_durable:
                client.check_durability()
            if client.wait is not None:
                client._check_wait()
        except BaseException:
            client.close()
            raise
        return client

    def _check_wait(self) -> None:
        """``WAIT 0 0`` (answers at once): a user the ACL denies WAIT is refused here, before
        a write that would go through with its WAIT then refused."""
        try:
            self.redis.execute_command("WAIT", 0, 0)
        except REDIS_ERRORS as exc:
            err = wait_refusal(exc)
            if err is not None:
                raise err from exc

    def check_durability(self, require: bool | None = None) -> list[durability.NodeDurability]:
        """The server's durability settings, per server (each master on a Cluster).

        Read once per client (before its first call at the latest), warned about
        once per process and server on logger ``homing``. With ``require`` (by
        default the client's ``require_durable``) raises NotDurableError unless
        every server is shown to keep what it acknowledged.
        """
        reports = self._durability
        if reports is None:
            try:
                reports = durability.read(self.redis)
            except REDIS_ERRORS as exc:
                raise translate(exc) from exc
        return self._durability_known(reports, require)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- execution -----------------------------------------------------------

    def run(self, call: ops.Call) -> Any:
        """Execute one operation: EVALSHA, once more with EVAL on NOSCRIPT.

        A write that may create a service checks the registry first and adds
        the service only once the script succeeded (see ``_CREATING``).
        """
        return self._run(call, None)

    def _run(self, call: ops.Call, hints: list[tuple[str, int]] | None) -> Any:
        """``run``; with ``hints``, the due-time index's hint this reply calls for
        (service, due ms) is appended there for the caller to send (``hint_due``),
        instead of being sent before returning (the worker hands its events to the
        handlers first: a round trip less between a ready event and its handler)."""
        script, keys, register = self._prepare(call)
        if self._durability is None:
            self.check_durability()
        known = not register or self._is_registered(call.service)
        try:
            reply, acked = scripting.call(self.redis, script, keys, call.args,
                                          self._wait_for(call.script),
                                          self._touch_for(script, keys))
        except Exception as exc:
            err = self._failed(exc)
            if self._reconnect_after(err):
                drop_idle(self.redis)
            if err is exc:
                raise
            raise err from exc
        if not known:
            try:
                self.register(call.service)
            except HomingError as exc:
                self._unregistered(call.service, exc)
        if hints is None:
            self._index(call, reply)
        else:
            at = due.due_of(call.script, reply)
            if at is not None:
                hints.append((call.service, at))
        return self._settled(call, reply, acked)

    def _index(self, call: ops.Call, reply: Any) -> None:
        """Lower the service's entry in the due-time index to the due time this
        reply added, and wake the schedulers if it did lower it (see ``due``).

        After the script, like the registry's SADD: a hint only, so a failure is
        warned about and the backstop sweep makes up for it; never raised, since
        the script's write is in Redis already."""
        at = due.due_of(call.script, reply)
        if at is not None:
            self.hint_due(call.service, at)

    def hint_due(self, service: str, at: int) -> None:
        """Lower service's entry in the due-time index to ``at`` (ms, Redis clock;
        0: look now) and wake the schedulers if that lowered it. A hint: never raised."""
        key = global_key(self.prefix, "due")
        try:
            if self.redis.zadd(key, {service: at}, lt=True, ch=True):
                self.redis.publish(due.channel(self.prefix), service)
        except REDIS_ERRORS as exc:
            self._hint_failed(service, translate(exc, key))

    def _is_registered(self, service: str) -> bool:
        key = self._registry_key(service)
        try:
            return self._seen(service, self.redis.sismember(key, service))
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc

    def call(self, name: str, service: str, /, **args: Any) -> Any:
        """Any call of the manifest's call table by name, its arguments by the table's names.

        Returns what the table's reply shape gives (this port's value type
        where it names one). A new script with its header and calls.json entry
        is callable here with no code of its own; the methods below are such
        calls with their arguments named.
        """
        return self.run(self.op(name, service, **args))

    # -- producer ------------------------------------------------------------

    def enqueue(self, service: str, payload: Any, *, key: str | None = None,
                id: str | None = None, priority: int = 0) -> str:  # noqa: A002
        """Add one event to service; returns its id.

        With ``key`` (an idempotency key), a second enqueue with the same key
        within the service's ``idem_ttl_ms`` returns the first event's id and
        adds nothing: safe to retry after a timeout. ``priority`` is its level,
        0..9: ready events of a higher level are delivered first, FIFO within
        a level (0, the default, is the lowest).
        """
        given = {"payload": payload, "key": key, "id": id, "priority": priority}
        if tracing.quiet():  # no span to make: the lean path (see homing.hotpath)
            return self.run(self.hot("enqueue", service, given))
        with tracing.producing(service, "enqueue", 1, carry=id is None) as span:
            event_id = self.run(self.hot("enqueue", service, given))
            tracing.sent(span, [event_id])
        return event_id

    def enqueue_many(self, service: str, payloads: Iterable[Any], *,
                     keys: Sequence[str | None] | None = None,
                     ids: Sequence[str] | None = None,
                     priority: int | Sequence[int] | None = None) -> list[str]:
        """Add up to 1000 events in one atomic call; returns their ids in order.

        ``priority``: one level (0..9) for all of them, or a list of one per payload.
        """
        payloads, levels = per_item(priority, payloads)
        # len() only of what has one: the call checks the argument itself (a str is refused).
        count = len(payloads) if isinstance(payloads, (list, tuple)) else 0
        with tracing.producing(service, "enqueue", count, carry=ids is None):
            return self.run(self.op("enqueue_many", service, payloads=payloads, keys=keys,
                                    ids=ids, priorities=levels))

    def create_timer(self, service: str, payload: Any, *, delay_ms: float | None = None,
                     at: dt.datetime | float | None = None, key: str | None = None,
                     id: str | None = None, priority: int = 0) -> str:  # noqa: A002
        """Schedule an event to become ready after ``delay_ms`` or at ``at``; returns its id.

        Due times are judged by the Redis server's clock, so a timer never
        fires early because a producer's clock is ahead. It fires into its
        ``priority`` level (0..9, as for ``enqueue``).
        """
        with tracing.producing(service, "create_timer", 1, carry=id is None) as span:
            timer_id = self.run(self.op("create_timer", service, payload=payload,
                                        delay_ms=delay_ms,
                                        at_ms=None if at is None else ops.at_ms(at), key=key,
                                        priority=priority, **_given(id=id)))
            tracing.sent(span, [timer_id])
        return timer_id

    def cancel_timer(self, service: str, timer_id: str) -> bool:
        """Cancel a pending timer. False if it already fired or never existed.

        A timer created with an idempotency key keeps that key answering with
        the cancelled id until ``idem_ttl_ms`` ends: to reschedule, use a new
        key (e.g. with a version suffix).
        """
        return self.run(self.op("cancel_timer", service, id=timer_id))

    def cancel(self, service: str, event_id: str) -> tuple[bool, str]:
        """Cancel a queued event: ready, waiting out a retry, or a pending timer.

        Returns ``(True, state it left)`` or ``(False, why not)``: a leased or
        reserved event is left to its holder, a dead letter to ``dead_purge``, a
        recurring timer to ``recurring_remove``; ``"unknown"`` for no such event.
        O(1) whatever the queue's length: a ready event's id stays in the ready
        list as a dead copy that dequeue skips (docs/architecture.md).
        """
        return self.run(self.op("cancel", service, id=event_id))

    def status(self, service: str, event_id: str) -> Status:
        """Where an event stands right now (done, dead, pending or unknown)."""
        return self.run(self.op("status", service, id=event_id))

    def result(self, service: str, event_id: str, timeout: float | None = None) -> Any:
        """Wait for the consumer's result of an event (the producer's feedback).

        Raises EventDeadError if the event was dead-lettered, ResultTimeoutError
        after ``timeout`` seconds, UnknownEventError if homing has no trace of it
        (never enqueued, its result outlived ``result_ttl_ms``, or it completed
        without a result: that leaves no trace unless the service sets
        ``done_ttl_ms``).
        """
        wait = ResultWait(service, event_id, timeout)
        while True:
            settled, value = wait.check(self.status(service, event_id))
            if settled:
                return value
            time.sleep(value)

    # -- consumer ------------------------------------------------------------

    def dequeue(self, service: str, count: int = 1, *, lease_ms: int | None = None,
                reserve: bool = False) -> list[Event]:
        """Lease up to count ready events (empty list if none are ready).

        Each delivery counts as an attempt at once. With ``reserve`` (what the
        Worker uses for its prefetch) it counts only once the handler is known
        to have started (``start``, or ``fail``): a lease that runs out
        unstarted, because this process died, returns the event uncharged.
        Honour ``Event.must_start``: call ``start`` before running such an event.
        """
        return self.run(self.op("dequeue", service, count=count, **_given(lease_ms=lease_ms),
                                  reserve=reserve))

    def start(self, service: str, items: Sequence[tuple[str, int]]) -> list[int | HomingError]:
        """Mark reserved events as started; per item the attempt now charged, or its error."""
        return self.run(self.op("start", service, items=items))

    def complete(self, service: str, event_id: str, token: int, result: Any = None) -> None:
        """Acknowledge an event; raises StaleLeaseError if the lease was reclaimed."""
        raise_first(self.complete_many(service, [(event_id, token, result)]))

    def complete_many(self, service: str,
                      items: Sequence[tuple[str, int, Any]]) -> list[HomingError | None]:
        """Acknowledge up to 1000 (id, token, result) items; per item None or its error."""
        return self.run(self.op("complete_many", service, items=items))

    def extend_lease(self, service: str, event_id: str, token: int,
                     lease_ms: int | None = None) -> int:
        """Push an event's lease deadline to now + lease_ms; returns the deadline (ms)."""
        out = self.extend_many(service, [(event_id, token)], lease_ms)[0]
        if isinstance(out, HomingError):
            raise out
        return out

    def extend_many(self, service: str, items: Sequence[tuple[str, int]],
                    lease_ms: int | None = None) -> list[int | HomingError]:
        """Extend several leases in one call; per item the new deadline or its error."""
        return self.run(self.op("extend_many", service, items=items, **_given(lease_ms=lease_ms)))

    def fail(self, service: str, event_id: str, token: int, reason: str = "", *,
             dead: bool = False, delay_ms: int | None = None) -> FailOutcome:
        """Give up on a leased event: retry after backoff (or delay_ms), or dead-letter it."""
        return self.run(self.op("fail", service, id=event_id, token=token, reason=reason,
                               dead=dead, delay_ms=delay_ms))

    def release(self, service: str, items: Sequence[tuple[str, int]]) -> list[HomingError | None]:
        """Hand leased events back unprocessed; they go next and no attempt is counted."""
        return self.run(self.op("release", service, items=items))

    # -- recurring timers ----------------------------------------------------

    def recurring_put(self, service: str, name: str, payload: Any, *,
                      every_ms: int | None = None, cron: str | None = None,
                      catch_up: bool = True, priority: int = 0) -> int:
        """Register the recurring timer ``name``: every ``every_ms`` or by ``cron`` (UTC).

        Each tick fires the event ``<name>.<tick_ms>`` carrying ``payload``,
        once however many daemons run, never before its time by the Redis
        clock. The same name again is the same schedule (unchanged: it keeps
        its next tick). ``catch_up``: after downtime one event stands for the
        missed ticks (True) or they fire nothing (False). Each occurrence
        fires into the ``priority`` level (0..9, as for ``enqueue``); the same
        schedule again with another level keeps its next tick. Returns the
        next tick, ms since the epoch.
        """
        return self.run(self.op("recurring_put", service, name=name, payload=payload,
                                every_ms=every_ms, cron=cron or "", catch_up=catch_up,
                                priority=priority))

    def recurring_remove(self, service: str, name: str) -> bool:
        """Remove the recurring timer ``name``; False if there was none."""
        return self.run(self.op("recurring_remove", service, name=name))

    def recurring_list(self, service: str, offset: int = 0, count: int = 100) -> RecurringPage:
        """A page of the service's recurring timers, by name."""
        return self.run(self.op("recurring_list", service, offset=offset, count=count))

    # -- admin and daemons ---------------------------------------------------

    def services(self) -> list[str]:
        """Every service in the registry, sorted."""
        key = global_key(self.prefix, "services")
        try:
            members = self.redis.smembers(key)
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    def stats(self, service: str) -> dict[str, Any]:
        """Queue lengths, running totals and effective policy of a service."""
        return self.run(self.op("stats", service))

    def configure(self, service: str, **policy: float | None) -> dict[str, float]:
        """Override policy fields (None removes an override); returns the effective policy."""
        return self.run(self.op("configure", service, policy=policy))

    def pause(self, service: str) -> None:
        """Pause a service: ``dequeue`` hands out nothing until ``resume``.

        Producers still enqueue, timers still fire, and leases already out run to
        completion (the policy field ``paused``, shown by ``stats``).
        """
        self.configure(service, paused=1)

    def resume(self, service: str) -> None:
        """Resume a paused service."""
        self.configure(service, paused=None)

    def dead_list(self, service: str, offset: int = 0, count: int = 100) -> DeadPage:
        """A page of dead letters, oldest first."""
        return self.run(self.op("dead_list", service, offset=offset, count=count))

    def dead_requeue(self, service: str, ids: Sequence[str] | None = None,
                     count: int = 100) -> tuple[int, int]:
        """Requeue the named dead letters, or the oldest count; returns (moved, remaining)."""
        return self.run(self.op("dead_requeue", service, ids=ids, count=count))

    def dead_purge(self, service: str, ids: Sequence[str] | None = None,
                   count: int = 100) -> tuple[int, int]:
        """Delete the named dead letters, or the oldest count; returns (purged, remaining)."""
        return self.run(self.op("dead_purge", service, ids=ids, count=count))

    def register(self, service: str) -> None:
        """Add service to the registry the daemons sweep (idempotent).

        Producers do it by themselves; workers call it on start and with each
        heartbeat so that the leases they hold are reclaimable even if the
        registry was lost.
        """
        key = self._registry_key(service)
        try:
            try:
                self.redis.sadd(key, service)
            except REDIS_ERRORS as exc:
                # A full Redis refuses the SADD even when there is nothing to add;
                # a worker draining it must still start. Already a member: done.
                if not (isinstance(translate(exc), RedisFullError)
                        and self.redis.sismember(key, service)):
                    raise
        except REDIS_ERRORS as exc:
            err = self._failed(exc, key)
            if self._reconnect_after(err):
                drop_idle(self.redis)
            raise err from exc
        self._readonly_since = None
        self._registered[service] = time.monotonic()
