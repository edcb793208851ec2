"""The synchronous client: producer, consumer and admin operations of homing.

Every method is one script call (see ``ops``), so each is atomic in Redis.
Producers need only a service name: the first write to a service creates it
and adds it to the registry that the scheduler and distributor sweep.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from . import durability, ops
from .connection import REDIS_ERRORS, KeyCache, connect, translate
from .errors import (
    EventDeadError,
    HomingError,
    RedisFullError,
    ResultTimeoutError,
    UnknownEventError,
)
from .manifest import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PREFIX,
    SCRIPTS,
    Script,
    check_prefix,
    check_service,
    global_key,
)
from .types import DeadPage, DistributeResult, Event, FailOutcome, PromoteResult, Status

DEFAULT_URL = "redis://127.0.0.1:6379/0"
log = logging.getLogger("homing")
# Writes that may create a service. The registry is read (SISMEMBER) before
# the script and written (SADD) only after it succeeded: a refused call (a bad
# policy value, a schema mismatch, a wrong-typed key) must leave the registry
# as it was, and a wrong-typed registry is refused before anything is written.
# The price: a producer that dies between the script and the SADD leaves its
# service unregistered until its next call or a worker's start (see
# docs/architecture.md).
_CREATING = frozenset({"enqueue", "schedule", "configure"})
# The registry is checked at most this often per service and client, not once
# per process: a Redis that lost its data (no persistence, a failover) would
# otherwise never learn of a long-running producer's service again.
REGISTER_EVERY = 10.0


def raise_first(errors: Sequence[HomingError | None]) -> None:
    for err in errors:
        if err is not None:
            raise err


class ClientBase:
    """What the sync and asyncio clients share: settings, and preparing a call.

    Only the I/O differs between them; everything decided before it is here.
    """

    def __init__(self, redis_client: Any, *, prefix: str = DEFAULT_PREFIX,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, require_durable: bool = False) -> None:
        self.redis = redis_client
        self.prefix = check_prefix(prefix)
        self.max_payload = ops.whole(max_payload, "max_payload (bytes)", 1)
        self.require_durable = bool(require_durable)
        self._keys = KeyCache(prefix)
        self._registered: dict[str, float] = {}  # service -> when it was last seen registered
        # The server's durability settings, read once (see homing.durability).
        self._durability: list[durability.NodeDurability] | None = None

    def _prepare(self, call: ops.Call) -> tuple[Script, list[str], bool]:
        """The script, its KEYS, and whether the registry must be checked around it.

        Due for writes that may create a service, at most every REGISTER_EVERY
        seconds; the time is recorded only once the service was seen in the
        registry (or added to it), so a failed check is repeated with the next
        such call, never skipped.
        """
        script = SCRIPTS[call.script]
        register = (call.script in _CREATING and time.monotonic()
                    - self._registered.get(call.service, float("-inf")) >= REGISTER_EVERY)
        return script, self._keys.keys(script, call.service), register

    def _registry_key(self, service: str) -> str:
        check_service(service)
        return global_key(self.prefix, "services")

    def _seen(self, service: str, member: Any) -> bool:
        if member:
            self._registered[service] = time.monotonic()
        return bool(member)

    def _unregistered(self, service: str, exc: HomingError) -> None:
        # The script's write is in Redis: raising now would make the producer send
        # the event again. The check is repeated with the next call, and a worker
        # registers its service when it starts.
        log.warning("service %s was written but could not be added to the registry the "
                    "daemons sweep (%s); retried with the next call", service, exc)

    def _durability_known(self, reports: list[durability.NodeDurability],
                          require: bool | None) -> list[durability.NodeDurability]:
        if self._durability is None:
            durability.warn_once(reports)
            self._durability = reports
        if self.require_durable if require is None else require:
            durability.require(self._durability)
        return self._durability


class Client(ClientBase):
    """A connection to homing on one Redis (standalone or Cluster).

    ``prefix`` namespaces every key (default ``homing``); ``max_payload`` is
    the largest encoded envelope accepted, in bytes (default 1 MiB).
    """

    @classmethod
    def from_url(cls, url: str = DEFAULT_URL, *, cluster: bool | None = None,
                 prefix: str = DEFAULT_PREFIX, max_payload: int = DEFAULT_MAX_PAYLOAD,
                 require_durable: bool = False, **redis_kwargs: Any) -> Client:
        """Connect to url; a Redis Cluster is detected unless ``cluster`` says.

        The server's durability settings are read right away (with ``cluster``
        given, which connects to nothing, on the first call instead) and
        warned about once; ``require_durable`` raises NotDurableError here for
        a server that may lose acknowledged events.
        """
        client = cls(connect(url, cluster=cluster, **redis_kwargs), prefix=prefix,
                     max_payload=max_payload, require_durable=require_durable)
        if cluster is None or require_durable:
            try:
                client.check_durability()
            except BaseException:
                client.close()
                raise
        return client

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
        script, keys, register = self._prepare(call)
        if self._durability is None:
            self.check_durability()
        known = not register or self._is_registered(call.service)
        try:
            try:
                reply = self.redis.evalsha(script.sha1, len(keys), *keys, *call.args)
            except NoScriptError:
                reply = self.redis.eval(script.source, len(keys), *keys, *call.args)
        except HomingError:
            raise
        except Exception as exc:
            raise translate(exc) from exc
        if not known:
            try:
                self.register(call.service)
            except HomingError as exc:
                self._unregistered(call.service, exc)
        return call.parse(reply)

    def _is_registered(self, service: str) -> bool:
        key = self._registry_key(service)
        try:
            return self._seen(service, self.redis.sismember(key, service))
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc

    # -- producer ------------------------------------------------------------

    def enqueue(self, service: str, payload: Any, *, key: str | None = None,
                id: str | None = None) -> str:  # noqa: A002
        """Add one event to service; returns its id.

        With ``key`` (an idempotency key), a second enqueue with the same key
        within the service's ``idem_ttl_ms`` returns the first event's id and
        adds nothing: safe to retry after a timeout.
        """
        return self.run(ops.enqueue_many(service, [payload], self.max_payload, [key],
                                         None if id is None else [id]))[0]

    def enqueue_many(self, service: str, payloads: Iterable[Any], *,
                     keys: Sequence[str | None] | None = None,
                     ids: Sequence[str] | None = None) -> list[str]:
        """Add up to 1000 events in one atomic call; returns their ids in order."""
        return self.run(ops.enqueue_many(service, payloads, self.max_payload, keys, ids))

    def create_timer(self, service: str, payload: Any, *, delay_ms: float | None = None,
                     at: dt.datetime | float | None = None, key: str | None = None,
                     id: str | None = None) -> str:  # noqa: A002
        """Schedule an event to become ready after ``delay_ms`` or at ``at``; returns its id.

        Due times are judged by the Redis server's clock, so a timer never
        fires early because a producer's clock is ahead.
        """
        return self.run(ops.create_timer(service, payload, self.max_payload, delay_ms=delay_ms,
                                         at=at, key=key, id=id))

    def cancel_timer(self, service: str, timer_id: str) -> bool:
        """Cancel a pending timer. False if it already fired or never existed.

        A timer created with an idempotency key keeps that key answering with
        the cancelled id until ``idem_ttl_ms`` ends: to reschedule, use a new
        key (e.g. with a version suffix).
        """
        return self.run(ops.cancel_timer(service, timer_id))

    def status(self, service: str, event_id: str) -> Status:
        """Where an event stands right now (done, dead, pending or unknown)."""
        return self.run(ops.status(service, event_id))

    def result(self, service: str, event_id: str, timeout: float | None = None) -> Any:
        """Wait for the consumer's result of an event (the producer's feedback).

        Raises EventDeadError if the event was dead-lettered, ResultTimeoutError
        after ``timeout`` seconds, UnknownEventError if homing has no trace of it
        (never enqueued, or its result outlived ``result_ttl_ms``).
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
        return self.run(ops.dequeue(service, count, lease_ms, reserve))

    def start(self, service: str, items: Sequence[tuple[str, int]]) -> list[int | HomingError]:
        """Mark reserved events as started; per item the attempt now charged, or its error."""
        return self.run(ops.start_many(service, items))

    def complete(self, service: str, event_id: str, token: int, result: Any = None) -> None:
        """Acknowledge an event; raises StaleLeaseError if the lease was reclaimed."""
        raise_first(self.complete_many(service, [(event_id, token, result)]))

    def complete_many(self, service: str,
                      items: Sequence[tuple[str, int, Any]]) -> list[HomingError | None]:
        """Acknowledge up to 1000 (id, token, result) items; per item None or its error."""
        return self.run(ops.complete_many(service, items, self.max_payload))

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
        return self.run(ops.extend_many(service, items, lease_ms))

    def fail(self, service: str, event_id: str, token: int, reason: str = "", *,
             dead: bool = False, delay_ms: int | None = None) -> FailOutcome:
        """Give up on a leased event: retry after backoff (or delay_ms), or dead-letter it."""
        return self.run(ops.fail(service, event_id, token, reason, dead, delay_ms))

    def release(self, service: str, items: Sequence[tuple[str, int]]) -> list[HomingError | None]:
        """Hand leased events back unprocessed; they go next and no attempt is counted."""
        return self.run(ops.release_many(service, items))

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
        return self.run(ops.stats(service))

    def configure(self, service: str, **policy: float | None) -> dict[str, float]:
        """Override policy fields (None removes an override); returns the effective policy."""
        return self.run(ops.configure(service, policy))

    def dead_list(self, service: str, offset: int = 0, count: int = 100) -> DeadPage:
        """A page of dead letters, oldest first."""
        return self.run(ops.dead_list(service, offset, count))

    def dead_requeue(self, service: str, ids: Sequence[str] | None = None,
                     count: int = 100) -> tuple[int, int]:
        """Requeue the named dead letters, or the oldest count; returns (moved, remaining)."""
        return self.run(ops.dead_requeue(service, ids, count))

    def dead_purge(self, service: str, ids: Sequence[str] | None = None,
                   count: int = 100) -> tuple[int, int]:
        """Delete the named dead letters, or the oldest count; returns (purged, remaining)."""
        return self.run(ops.dead_purge(service, ids, count))

    def promote(self, service: str, limit: int = 1000) -> PromoteResult:
        """One scheduler step for a service (see homing.daemons)."""
        return self.run(ops.promote(service, limit))

    def distribute(self, service: str, limit: int = 1000) -> DistributeResult:
        """One distributor step for a service (see homing.daemons)."""
        return self.run(ops.distribute(service, limit))

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
            raise translate(exc, key) from exc
        self._registered[service] = time.monotonic()

    def beat(self, name: str) -> None:
        """Record that daemon ``name`` is alive, by the Redis clock (see ``daemons()``).

        A script (``beat``) that runs on a full Redis too: a daemon draining a
        full Redis must not look dead to ``homing stats``.
        """
        self.run(ops.beat(name))

    def daemons(self, forget_after: float = 3600.0) -> dict[str, float]:
        """Seconds since each daemon's last beat; beats older than forget_after are dropped.

        Lets ``homing stats`` warn when no scheduler or distributor runs:
        without them timers, retries and expired leases wait.
        """
        ops.seconds(forget_after, "forget_after")
        key = global_key(self.prefix, "daemons")
        try:
            sec, usec = self.redis.time()
            beats = self.redis.hgetall(key)
            now = sec * 1000 + usec // 1000
            ages = {(k.decode() if isinstance(k, bytes) else k): (now - int(v)) / 1000
                    for k, v in beats.items()}
            stale = [k for k, age in ages.items() if age > forget_after]
            if stale:
                self.redis.hdel(key, *stale)
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc
        return {k: age for k, age in ages.items() if age <= forget_after}

    def hint_expired(self, service: str) -> None:
        """Tell the distributors that service has expired leases waiting (a hint only)."""
        check_service(service)
        key = global_key(self.prefix, "hints")
        # Translated like every call: the daemons' loops retry on ConnectionLostError
        # only, so a raw redis error here would end a scheduler thread on a restart.
        try:
            self.redis.sadd(key, service)
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc

    def take_hints(self, count: int = 100) -> list[str]:
        """Pop services hinted by schedulers."""
        key = global_key(self.prefix, "hints")
        try:
            got = self.redis.spop(key, ops.whole(count, "count", 0)) or []
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc
        return [g.decode() if isinstance(g, bytes) else g for g in got]


class ResultWait:
    """The producer's wait for feedback, without I/O (shared by both clients).

    Feed it each status; it says whether the event settled (and its result),
    or how long to sleep before asking again: from 2 ms, doubling to 100 ms,
    so a fast consumer's result arrives quickly and a slow one costs few calls.
    """

    def __init__(self, service: str, event_id: str, timeout: float | None) -> None:
        if timeout is not None:
            ops.seconds(timeout, "timeout")
        self.service, self.event_id, self.timeout = service, event_id, timeout
        self.end = None if timeout is None else time.monotonic() + timeout
        self.pause = 0.002

    def check(self, st: Status) -> tuple[bool, Any]:
        """(True, result) once done; (False, seconds to sleep) while pending.

        Raises EventDeadError, UnknownEventError, or ResultTimeoutError.
        """
        if st.state == "done":
            return True, st.result
        if st.state == "dead":
            raise EventDeadError(
                f"event {self.service}/{self.event_id} was dead-lettered: {st.detail}")
        if st.state == "unknown":
            raise UnknownEventError(f"no event {self.event_id} in service {self.service}")
        left = None if self.end is None else self.end - time.monotonic()
        if left is not None and left <= 0:
            raise ResultTimeoutError(
                f"no result for {self.service}/{self.event_id} within {self.timeout} s "
                f"(it is {st.detail}, attempt {st.attempt})")
        pause = self.pause if left is None else min(self.pause, left)
        self.pause = min(self.pause * 2, 0.1)
        return False, pause
