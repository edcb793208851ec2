"""What the sync and asyncio clients share: settings, preparing a call, reading its outcome.

Split from ``client`` so that the asyncio client (``aio``) shares it without
the sync I/O. Nothing here talks to Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from . import durability, hotpath, ops, scripting
from .connection import SOCKET_TIMEOUT, KeyCache, translate
from .due import Warned
from .errors import (
    ConnectionLostError,
    EventDeadError,
    HomingError,
    InvalidArgumentError,
    NotReplicatedError,
    PermissionDeniedError,
    ReadOnlyError,
    ResultTimeoutError,
    UnknownEventError,
)
from .manifest import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PREFIX,
    MANIFEST,
    SCRIPTS,
    Script,
    check_prefix,
    check_service,
    global_key,
)
from .types import Status

DEFAULT_URL = "redis://127.0.0.1:6379/0"
log = logging.getLogger("homing")
# Writes that may create a service. The registry is read (SISMEMBER) before
# the script and written (SADD) only after it succeeded: a refused call (a bad
# policy value, a schema mismatch, a wrong-typed key) must leave the registry
# as it was, and a wrong-typed registry is refused before anything is written.
# The price: a producer that dies between the script and the SADD leaves its
# service unregistered until its next call or a worker's start (see
# docs/architecture.md).
# Which scripts those are is the call table's "creates" (conformance/calls.json).
_CREATING = frozenset(c["script"] for c in MANIFEST["calls"].values() if c["creates"])
# The registry is checked at most this often per service and client, not once
# per process: a Redis that lost its data (no persistence, a failover) would
# otherwise never learn of a long-running producer's service again.
REGISTER_EVERY = 10.0
# Writes followed by WAIT when ``wait_replicas`` is set: what a producer or an
# acknowledgement needs to survive a failover. (A lost lease, extension or
# release only makes an event come back: a duplicate, never a loss.)
# The scripts' headers say which (@wait).
WAITED = frozenset(n for n, s in MANIFEST["scripts"].items() if s["wait"])
# Scripts that write nothing: they succeed on a replica too, so they say nothing
# about whether this client can still write (see ``read_only_for``).
# (@memory none in their headers.)
READS = frozenset(n for n, s in MANIFEST["scripts"].items() if s["memory"] == "none")
DEFAULT_WAIT_TIMEOUT_MS = 1000
# Scripts that answer a repeat (same id or idempotency key) without writing, and the
# counter each increments on a real write (touched by 0 after a repeat: scripting.Touch).
# (@repeats COUNTER in their headers.)
REPEATS = {n: s["repeats"] for n, s in MANIFEST["scripts"].items() if s["repeats"]}


def _given(**args: Any) -> dict[str, Any]:
    """The arguments that are not None: None in these public parameters means "the default"."""
    return {k: v for k, v in args.items() if v is not None}


def per_item(priority: Any, payloads: Any) -> tuple[Any, Any]:
    """enqueue_many's ``priority``: one level for every payload, or a list of one per payload.

    The call table takes a level per item (``priorities``); a single level is
    spread over the batch here, the only thing the port adds. A bad value is
    left to the table's check (INVALID_ARGUMENT, nothing sent).
    """
    if priority is None or isinstance(priority, (list, tuple)):
        return payloads, priority
    if not isinstance(payloads, (list, tuple, str, bytes, dict)):
        try:
            payloads = list(payloads)
        except TypeError:
            return payloads, None  # the table refuses payloads that are no list
    n = len(payloads) if isinstance(payloads, (list, tuple)) else 0
    return payloads, [priority] * n


def wait_option(replicas: Any, timeout_ms: Any,
                socket_timeout: float | None = SOCKET_TIMEOUT) -> scripting.Wait | None:
    """The WAIT settings, checked: 0 replicas is off; the timeout must end before the socket's.

    WAIT 0 (wait for ever) is refused: with a socket timeout it would end as
    a lost connection, without one it could hang a producer for ever.
    """
    replicas = ops.whole(replicas, "wait_replicas", 0, 1000)
    timeout_ms = ops.whole(timeout_ms, "wait_timeout_ms", 1, 86_400_000)
    if socket_timeout is not None and timeout_ms >= socket_timeout * 1000:
        raise InvalidArgumentError(
            f"wait_timeout_ms ({timeout_ms}) must be below the socket timeout "
            f"({socket_timeout * 1000:g} ms), or every WAIT that times out would look like a "
            "lost connection")
    return scripting.Wait(replicas, timeout_ms) if replicas else None


def wait_refusal(exc: Exception) -> HomingError | None:
    """What a refused ``WAIT 0 0`` probe means (both clients): None for a replica
    (a stale sentinel's answer: the writes will find out), else the error to raise."""
    err = translate(exc)
    if isinstance(err, ReadOnlyError):
        return None
    if isinstance(err, PermissionDeniedError):
        return PermissionDeniedError(f"wait_replicas needs the Redis user to be allowed "
                                     f"WAIT (+wait, docs/security.md): {exc}")
    return err


def raise_first(errors: Sequence[HomingError | None]) -> None:
    for err in errors:
        if err is not None:
            raise err


class ClientBase:
    """What the sync and asyncio clients share: settings, and preparing a call.

    Only the I/O differs between them; everything decided before it is here.
    """

    def __init__(self, redis_client: Any, *, prefix: str = DEFAULT_PREFIX,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, require_durable: bool = False,
                 wait_replicas: int = 0,
                 wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS) -> None:
        self.redis = redis_client
        self.prefix = check_prefix(prefix)
        self.max_payload = ops.whole(max_payload, "max_payload (bytes)", 1)
        self.require_durable = bool(require_durable)
        self.wait = wait_option(wait_replicas, wait_timeout_ms, socket_timeout_of(redis_client))
        # Since when every write met READONLY (None: the last write went through).
        self._readonly_since: float | None = None
        self._keys = KeyCache(prefix)
        self._registered: dict[str, float] = {}  # service -> when it was last seen registered
        # The server's durability settings, read once (see homing.durability).
        self._durability: list[durability.NodeDurability] | None = None
        self._hint_warned = Warned()  # the due-time index's failures, once a minute
        self._services = hotpath.Services()  # names already checked (see hotpath)

    def op(self, call: str, service: str, /, **args: Any) -> ops.Call:
        """The Call of client call ``call`` of the manifest's call table, checked and encoded.

        An unknown name is an InvalidArgumentError (``Client.call`` takes any
        name from its caller), not a KeyError from deep in the table.
        """
        if not isinstance(call, str) or call not in ops.CALLS:
            raise InvalidArgumentError(f"no call {call!r} in the call table; known: "
                                       f"{', '.join(sorted(ops.CALLS))}")
        return ops.call(call, service, self.max_payload, **args)

    def hot(self, call: str, service: str, given: dict[str, Any]) -> ops.Call:
        """``op`` for a call the client names itself, its work decided once per argument
        shape (see ``hotpath``): the same checks and encoding, each value checked."""
        return hotpath.call(call, service, self.max_payload, self._services, given)

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

    def _wait_for(self, script: str) -> scripting.Wait | None:
        return self.wait if script in WAITED else None

    def _touch_for(self, script: Script, keys: list[str]) -> scripting.Touch | None:
        """What makes WAIT vouch for the first send of an idempotent repeat (see scripting)."""
        field = REPEATS.get(script.name)
        if field is None or self.wait is None:
            return None
        return scripting.Touch(keys[script.keys.index("counters")], field)

    def read_only_for(self) -> float:
        """Seconds during which every write of this client was answered READONLY (0: none).

        The worker and daemons give up after ``readonly_give_up`` of it: a plain
        URL pointing at a demoted node would otherwise be retried for ever.
        """
        since = self._readonly_since
        return 0.0 if since is None else time.monotonic() - since

    def _failed(self, exc: Exception, key: str | None = None) -> HomingError:
        """The homing error for exc; READONLY starts the clock of ``read_only_for``."""
        err = exc if isinstance(exc, HomingError) else translate(exc, key)
        if isinstance(err, ReadOnlyError) and self._readonly_since is None:
            self._readonly_since = time.monotonic()
        return err

    @staticmethod
    def _reconnect_after(err: HomingError) -> bool:
        """Whether the pool's idle connections should go (see connection.drop_idle)."""
        return isinstance(err, (ReadOnlyError, ConnectionLostError))

    def _settled(self, call: ops.Call, reply: Any, acked: int | None) -> Any:
        """The parsed reply; NotReplicatedError if fewer replicas than asked acknowledged it.

        The error carries the parsed reply as ``result`` and the count as
        ``acked``: the write happened on the primary (a worker takes such an
        acknowledgement as done), it is only not yet known to survive a failover.
        """
        result = call.parse(reply)
        if call.script not in READS:
            self._readonly_since = None
        if acked is not None and self.wait is not None and acked < self.wait.replicas:
            hint = ""
            if call.script in REPEATS:
                ids = result if isinstance(result, list) else [result]
                shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
                hint = f" (event ids {shown}: resend with the same id or key, safely)"
            err = NotReplicatedError(
                f"{call.script} on {call.service or 'the global keys'} was written on the "
                f"primary, but only {acked} of the {self.wait.replicas} replicas asked for "
                f"acknowledged it within {self.wait.timeout_ms} ms: a failover now may lose "
                f"it{hint}")
            err.result = result  # type: ignore[attr-defined]
            err.acked = acked  # type: ignore[attr-defined]
            raise err
        return result

    def _hint_failed(self, service: str, exc: HomingError) -> None:
        self._hint_warned(service, exc)

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


def socket_timeout_of(r: Any) -> float | None:
    """The socket timeout of a redis-py client's connections, where it shows (None: unknown)."""
    pool = getattr(r, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if kwargs is None and hasattr(r, "get_connection_kwargs"):  # the asyncio RedisCluster
        kwargs = r.get_connection_kwargs()
    if kwargs is None:
        nodes = getattr(r, "nodes_manager", None)
        kwargs = getattr(nodes, "connection_kwargs", None)
    return (kwargs or {}).get("socket_timeout")


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
            # Plain about the likeliest cause: by default a completion without
            # a result keeps nothing (done_ttl_ms 0), so it reads as unknown.
            raise UnknownEventError(
                f"no event {self.event_id} in service {self.service}: never enqueued, "
                "or completed and no longer kept (an event completed without a result "
                "leaves no trace unless the service sets done_ttl_ms; a result is kept "
                "for result_ttl_ms)")
        left = None if self.end is None else self.end - time.monotonic()
        if left is not None and left <= 0:
            raise ResultTimeoutError(
                f"no result for {self.service}/{self.event_id} within {self.timeout} s "
                f"(it is {st.detail}, attempt {st.attempt})")
        pause = self.pause if left is None else min(self.pause, left)
        self.pause = min(self.pause * 2, 0.1)
        return False, pause
