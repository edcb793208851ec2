"""The daemons' and operators' side of the synchronous client.

Split from client.py, which keeps the producer and consumer calls: these are
the calls the scheduler, the distributor, the worker's presence beat and
``homing services forget`` make. A mixin of ``Client``: it relies on the
client's ``run``, ``op``, ``redis``, ``prefix``, ``_keys``, ``_registered``
and ``register``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from . import due, ops, presence
from .connection import REDIS_ERRORS, drop_idle, translate
from .errors import HomingError, ServiceNotEmptyError
from .manifest import SCRIPTS, check_service, global_key, service_key
from .types import DistributeResult, PromoteResult


class DaemonCalls:
    """Scheduler, distributor, presence and registry calls of ``Client``."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        redis: Any
        prefix: str
        _keys: Any
        _registered: dict[str, float]
        def run(self, call: ops.Call) -> Any: ...
        def _run(self, call: ops.Call, hints: list[tuple[str, int]] | None) -> Any: ...
        def _failed(self, exc: Exception, key: str | None = None) -> HomingError: ...
        def _settled(self, call: ops.Call, reply: Any, acked: int | None) -> Any: ...
        def _hint_failed(self, service: str, exc: HomingError) -> None: ...
        def hint_due(self, service: str, at: int) -> None: ...
        def check_durability(self, require: bool | None = None) -> Any: ...
        _durability: Any
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...
        def register(self, service: str) -> None: ...

    def promote(self, service: str, limit: int = 1000) -> PromoteResult:
        """One scheduler step for a service (see homing.daemons)."""
        return self.run(self.op("promote", service, limit=limit))

    def distribute(self, service: str, limit: int = 1000) -> DistributeResult:
        """One distributor step for a service (see homing.daemons)."""
        return self.run(self.op("distribute", service, limit=limit))

    def beat(self, name: str) -> None:
        """Record that daemon ``name`` is alive, by the Redis clock (see ``daemons()``).

        A script (``beat``) that runs on a full Redis too: a daemon draining a
        full Redis must not look dead to ``homing stats``.
        """
        self.run(self.op("beat", "", name=name))

    def worker_beat(self, name: str, service: str, host: str, pid: int, concurrency: int,
                    held: int, every_ms: int, stopped: bool = False,
                    ids: Sequence[str] = (), forget_ms: int = presence.FORGET_MS) -> int:
        """Record a worker's beat (the dashboard's view of it; see ``homing.presence``).

        The script's only key is the global ``<prefix>:workers``: ``service`` (the
        one the worker consumes) is data. Returns how many silent workers' fields
        this beat pruned.
        """
        return self.run(self.op("worker_beat", service, name=name, service=service, host=host,
                                pid=pid, concurrency=concurrency, held=held, every_ms=every_ms,
                                stopped=stopped, ids=list(ids) or None, forget_ms=forget_ms))

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

    # -- the due-time index, the ready wait and forgetting (see homing.due) ---

    def due_take(self, limit: int = 100, claim_ms: int = 5000) -> tuple[int, int, int, list[str]]:
        """Claim due services: (Redis now, next due, next stale claim, services)."""
        return self.run(due.take(limit, claim_ms))

    def due_settle(self, claim: int, items: Sequence[tuple[str, int]]) -> int:
        """Put back each claimed service's next due time (-1: none)."""
        return self.run(due.settle(claim, items))

    def wait_ready(self, service: str, timeout: float) -> bool:
        """Block until service's ready queue is not empty, for at most timeout s
        (Redis rounds it up to its own timer tick, 100 ms by default).

        ``BLMOVE ready ready RIGHT RIGHT``: it pops the next id and pushes it
        straight back where it was, so the queue is unchanged, but it returns the
        moment anything (an enqueue, a promote, a release) pushes an id. True if
        the queue had something. Costs no command while it waits.
        """
        key = self._keys.keys(SCRIPTS["dequeue"], service)[SCRIPTS["dequeue"].keys.index("ready")]
        try:
            return self.redis.blmove(key, key, max(timeout, 0.001), "RIGHT", "RIGHT") is not None
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc

    def dequeue_when_ready(self, service: str, timeout: float, call: ops.Call,
                           hints: list[tuple[str, int]]) -> tuple[bool | HomingError, Any]:
        """``wait_ready`` and then ``call`` (a dequeue of service) in one round trip.

        The two go out as one pipeline on one connection: Redis runs the dequeue
        the moment the BLMOVE returns, so an idle worker gets the event itself
        when it becomes ready, not a sign to ask for it (a round trip, and a
        thread wake-up on each side, sooner). Returns (what ``wait_ready``
        returns, or the HomingError that refused the BLMOVE; the call's parsed
        reply).

        ``hints`` holds due-time index hints (service, due ms) still to send (the
        last batch's lease deadline): they go out first, as ``ZADD LT CH`` in the
        same pipeline, and the PUBLISH that wakes the schedulers follows the
        pipeline's reply for each that lowered its entry (a lease deadline is
        seconds away: a wake-up BLOCK_S late changes nothing). Then ``hints``
        holds the call's own hint (see ``Client._run``).

        A RedisCluster (its routing), a Sentinel client (its demotion handling)
        and a call whose script reply was an error take the separate calls
        instead: the dequeue is sent again through ``run``, which is safe since
        a refused script wrote nothing.
        """
        key = self._keys.keys(SCRIPTS["dequeue"], service)[SCRIPTS["dequeue"].keys.index("ready")]
        if type(self.redis) is not redis.Redis:
            send_hints(self, hints)
            try:
                ready: bool | HomingError = self.wait_ready(service, timeout)
            except HomingError as exc:
                ready = exc
            return ready, self._run(call, hints)
        return self._pipelined(call, hints, (key, timeout))

    def run_hinted(self, call: ops.Call, hints: list[tuple[str, int]]) -> Any:
        """``_run(call, hints)``, the hints kept back in ``hints`` sent in the same
        round trip, before the call (``ZADD LT CH`` in one pipeline with it).

        For the worker's fetcher, whose every dequeue adds a lease deadline to
        hint: sent on their own, each batch's hint was a round trip of its own
        between two dequeues, and its reply a thread wake-up that the next
        dequeue waited behind. Riding the next dequeue, the hint goes out
        within a batch's time of being due, and costs no round trip. No hints,
        a RedisCluster or a Sentinel client: what ``dequeue_when_ready`` does.
        """
        if not hints:
            return self._run(call, hints)
        if type(self.redis) is not redis.Redis:
            send_hints(self, hints)
            return self._run(call, hints)
        return self._pipelined(call, hints, None)[1]

    def _pipelined(self, call: ops.Call, hints: list[tuple[str, int]],
                   wait: tuple[str, float] | None) -> tuple[bool | HomingError, Any]:
        """The hints, the ready wait (``wait``: its key and timeout; None: no wait)
        and the call in one pipeline: (the wait's answer, False without one; the
        call's parsed reply). See ``dequeue_when_ready``."""
        if self._durability is None:
            self.check_durability()
        script = SCRIPTS[call.script]
        keys = self._keys.keys(script, call.service)
        index = global_key(self.prefix, "due")
        sent, hints[:] = hints[:], []
        try:
            pipe = self.redis.pipeline(transaction=False)
            for hinted, at in sent:
                pipe.zadd(index, {hinted: at}, lt=True, ch=True)
            if wait is not None:
                pipe.blmove(wait[0], wait[0], max(wait[1], 0.001), "RIGHT", "RIGHT")
            pipe.evalsha(script.sha1, len(keys), *keys, *call.args)
            replies = pipe.execute(raise_on_error=False)
        except Exception as exc:
            err = self._failed(exc)
            drop_idle(self.redis)  # a lost connection: the others likely are too
            hints[:0] = sent  # perhaps not sent: again with the next call (ZADD LT: idempotent)
            raise err from exc
        lowered, reply = replies[:len(sent)], replies[-1]
        for (hinted, _), ch in zip(sent, lowered, strict=True):
            if isinstance(ch, Exception):
                self._hint_failed(hinted, translate(ch, index))
            elif ch:
                try:
                    self.redis.publish(due.channel(self.prefix), hinted)
                except REDIS_ERRORS as exc:
                    self._hint_failed(hinted, translate(exc, index))
        ready: bool | HomingError = False
        if wait is not None:
            moved = replies[len(sent)]
            ready = translate(moved, wait[0]) if isinstance(moved, Exception) \
                else moved is not None
        if isinstance(reply, Exception):  # NOSCRIPT, or a refusal: run() says which
            return ready, self._run(call, hints)
        at = due.due_of(call.script, reply)
        if at is not None:
            hints.append((call.service, at))
        return ready, self._settled(call, reply, None)

    def forget(self, service: str) -> int:
        """Forget an empty service: its leftovers, its registry and index entries.

        Raises ServiceNotEmptyError (nothing written) while it holds anything.
        The registry entry goes only once the script found it empty; a producer
        that wrote to it at that very moment finds it added back (the script is
        run again after the SREM), so no event is left unregistered.
        """
        deleted = self.run(due.forget(service))
        registry, index = global_key(self.prefix, "services"), global_key(self.prefix, "due")
        try:
            self.redis.srem(registry, service)
            self.redis.zrem(index, service)
        except REDIS_ERRORS as exc:
            raise translate(exc, registry) from exc
        self._registered.pop(service, None)
        script = SCRIPTS["forget"]
        # What the script checked, and the records (the script leaves meta to record.lua's
        # scripts: every event has its data beside its record).
        held = [k for k, name in zip(self._keys.keys(script, service), script.keys, strict=True)
                if name not in ("seq", "config", "counters")]
        held.append(service_key(self.prefix, service, "meta"))
        try:
            written = self.redis.exists(*held)
        except REDIS_ERRORS as exc:
            raise translate(exc, held[0]) from exc
        if written:  # a producer wrote to it meanwhile: keep it registered and swept
            self.register(service)
            raise ServiceNotEmptyError(f"{service} was written to while it was being "
                                       "forgotten; it stays registered")
        return deleted

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


def send_hints(client: Any, hints: list[tuple[str, int]]) -> None:
    """Send the due-time index hints (service, due ms) a caller kept back, and forget them."""
    sent, hints[:] = hints[:], []
    for service, at in sent:
        client.hint_due(service, at)
