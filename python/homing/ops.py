"""Each homing operation as data: which script, which arguments, how to read the reply.

Sans-IO on purpose: the sync and asyncio clients (and the conformance runner)
execute the same ``Call`` objects, so their behaviour cannot drift. No queue
logic lives here, only argument shaping, input checks that need no Redis,
and reply parsing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from . import envelope
from .errors import HomingError, InvalidArgumentError, PayloadTooLargeError, error_for
from .manifest import LAYOUT, MAX_BATCH, POLICY_DEFAULTS, STATUS_NAMES, check_id, check_service
from .types import (
    DeadLetter,
    DeadPage,
    DistributeResult,
    Event,
    FailOutcome,
    PromoteResult,
    Status,
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]  # per field: default, min, max, whole


@dataclass(frozen=True)
class Call:
    """One script invocation: the clients turn ``service`` into the script's KEYS."""

    script: str
    service: str
    args: list[Any]
    parse: Callable[[Any], Any]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def new_id() -> str:
    """A random event id (UUID4 hex): unguessable and unique without coordination."""
    return uuid4().hex


def _batch(items: Sequence[Any], what: str) -> None:
    # A str is a Sequence too: "abc" must not become the ids "a", "b" and "c".
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise InvalidArgumentError(f"{what} takes a list, got {type(items).__name__}")
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidArgumentError(f"{what} takes 1..{MAX_BATCH} items, got {len(items)}")


def _fields(item: Any, n: int, what: str) -> Sequence[Any]:
    """One item of a batch, unpacked only once it is known to be ``n`` fields."""
    if not isinstance(item, (tuple, list)) or len(item) != n:
        raise InvalidArgumentError(f"{what}, got {item!r:.80}")
    return item


def whole(value: Any, what: str, lo: int, hi: int = 2**53 - 1) -> int:
    """A count, offset or limit: a whole number in [lo, hi] (a whole float is taken)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidArgumentError(f"{what} must be a whole number in [{lo}, {hi}], got {value!r}")
    return value


def seconds(value: Any, what: str) -> float:
    """A wait in seconds (a timeout, an interval): a finite number >= 0.

    NaN passes every comparison, so a NaN timeout would wait for ever and a NaN
    interval make Event.wait raise deep in a thread; refused here instead.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{what} must be a finite number of seconds >= 0, "
                                   f"got {value!r}")
    return float(value)


def worker_options(concurrency: Any, prefetch: Any, lease_ms: Any, grace: Any,
                   poll_max: Any, handler_timeout: Any) -> None:
    """Refuse Worker settings that would only fail later, in a thread, retried for ever.

    A NaN lease or a text concurrency used to be accepted and then fail every
    dequeue as a logged warning; here they are an InvalidArgumentError from
    the constructor. (Counts keep their clamping: prefetch to 1..1000.)
    """
    whole(concurrency, "concurrency", -_MAX_WHOLE)
    whole(prefetch, "prefetch", -_MAX_WHOLE)
    if lease_ms is not None:
        whole(lease_ms, "lease_ms", int(POLICY["lease_ms"]["min"]), int(POLICY["lease_ms"]["max"]))
    seconds(grace, "grace")
    seconds(poll_max, "poll_max")
    if handler_timeout is not None and seconds(handler_timeout, "handler_timeout") > 86400:
        raise InvalidArgumentError(f"handler_timeout must be in [0, 86400] s, "
                                   f"got {handler_timeout!r}")


def _key(value: Any) -> str:
    """An idempotency key: text (an int or bytes key would meet "5" or b"5" as the same key)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"an idempotency key is text, got {type(value).__name__}")
    return value


def _encoded(payload: Any, max_payload: int) -> bytes:
    data = envelope.encode(payload)
    if len(data) > max_payload:
        raise PayloadTooLargeError(
            f"encoded payload is {len(data)} bytes, over the limit of {max_payload}; "
            "nothing was written"
        )
    return data


_MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly


def _ms(value: float | int, what: str) -> int:
    # NaN passes every comparison and int(inf) raises OverflowError: refuse
    # both here, typed, before anything is sent.
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= _MAX_WHOLE):
        raise InvalidArgumentError(
            f"{what} must be a finite number in [0, 2^53 - 1], got {value!r}")
    return int(value)


def _token(value: Any) -> int:
    """A fencing token as the scripts compare it: a whole number in [0, 2^53 - 1]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_WHOLE:
        raise InvalidArgumentError(f"a lease token is a whole number >= 0, got {value!r}")
    return value


def _per_item(r: list[Any], items: Sequence[Any]) -> list[Any]:
    """Per item a number, or the item's error code made an exception."""
    out: list[Any] = []
    for item, v in zip(items, r, strict=True):
        if isinstance(v, int):
            out.append(v)
        else:
            cls = type(error_for(_s(v), ""))
            out.append(cls(f"{_s(v)}: event {item[0]} (token {item[1]}): {_doc(cls)}"))
    return out


def enqueue_many(
    service: str,
    payloads: Iterable[Any],
    max_payload: int,
    keys: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
) -> Call:
    check_service(service)
    if isinstance(payloads, (str, bytes, dict)) or not isinstance(payloads, Iterable):
        raise InvalidArgumentError(
            f"enqueue_many takes a list of payloads, got {type(payloads).__name__}")
    payloads = list(payloads)
    _batch(payloads, "enqueue_many")
    if keys is not None:
        _batch(keys, "keys")
    if ids is not None:
        _batch(ids, "ids")
    if keys is not None and len(keys) != len(payloads):
        raise InvalidArgumentError("keys must be as many as payloads")
    if ids is not None and len(ids) != len(payloads):
        raise InvalidArgumentError("ids must be as many as payloads")
    args: list[Any] = [max_payload, len(payloads)]
    for i, payload in enumerate(payloads):
        args += [
            check_id(ids[i]) if ids is not None else new_id(),
            _encoded(payload, max_payload),
            _key(keys[i]) if keys is not None else "",
        ]
    return Call("enqueue", service, args, lambda r: [_s(r[i]) for i in range(0, len(r), 2)])


def create_timer(
    service: str,
    payload: Any,
    max_payload: int,
    *,
    delay_ms: float | None = None,
    at: dt.datetime | float | None = None,
    key: str | None = None,
    id: str | None = None,  # noqa: A002 - mirrors the public API
) -> Call:
    """A timer fires at ``delay_ms`` from now by the Redis clock, or at ``at``.

    ``at`` is a timezone-aware datetime or seconds since the epoch; it is
    compared with the Redis server's clock, never the producer's.
    """
    check_service(service)
    if (delay_ms is None) == (at is None):
        raise InvalidArgumentError("give exactly one of delay_ms or at")
    if delay_ms is not None:
        mode, value = "in", _ms(delay_ms, "delay_ms")
    elif isinstance(at, dt.datetime):
        if at.tzinfo is None:
            raise InvalidArgumentError("at must be timezone-aware (naive datetimes are ambiguous)")
        # Whole milliseconds by integer arithmetic: timestamp() * 1000 is a float
        # product that can land just below the intended millisecond.
        mode, value = "at", _ms((at - _EPOCH) // dt.timedelta(milliseconds=1),
                                "at (ms since the epoch)")
    else:
        _ms(at, "at")  # validates; its int() would drop the fraction of a second
        mode, value = "at", _ms(round(at * 1000), "at (ms since the epoch)")
    event_id = check_id(id) if id is not None else new_id()
    args = [max_payload, event_id, _encoded(payload, max_payload), _key(key), mode, value]
    return Call("schedule", service, args, lambda r: _s(r[0]))


def cancel_timer(service: str, timer_id: str) -> Call:
    check_service(service)
    return Call("cancel", service, [check_id(timer_id)], lambda r: r == 1)


def dequeue(service: str, count: int, lease_ms: int | None, reserve: bool = False) -> Call:
    """``reserve``: charge the attempt only once the event is known to have started."""
    check_service(service)
    whole(count, "count", 1, MAX_BATCH)

    def parse(r: list[Any]) -> list[Event]:
        # On the hot path: ids are always bytes and integers already ints here.
        deadline = r[0]
        return [
            Event(service, r[i].decode(), r[i + 1], r[i + 2], deadline, r[i + 3], r[i + 4] == 1)
            for i in range(1, len(r), 5)
        ]

    mode = "reserve" if reserve else "charge"
    return Call("dequeue", service, [int(count), _ms(lease_ms or 0, "lease_ms"), mode], parse)


def _leases(items: Sequence[tuple[str, int]], what: str) -> list[Any]:
    """The (id, token) items of a lease call, checked and flattened for ARGV."""
    _batch(items, what)
    args: list[Any] = []
    for item in items:
        event_id, token = _fields(item, 2, f"{what} items are (id, token)")
        args += [check_id(event_id), _token(token)]
    return args


def start_many(service: str, items: Sequence[tuple[str, int]]) -> Call:
    """Mark reserved events started; per item the attempt now charged, or its error."""
    check_service(service)
    leases = _leases(items, "start")  # checked first: items may not even be a list
    args = [len(items), *leases]
    return Call("start", service, args, lambda r: _per_item(r, items))


def _doc(err: Any) -> str:
    """An error class's description on one line (docstrings are wrapped)."""
    return " ".join((err.__doc__ or "").split())


def _codes(r: list[Any]) -> list[HomingError | None]:
    if all(c == b"OK" for c in r):  # the usual case, on the hot path
        return [None] * len(r)
    return [None if _s(c) == "OK" else error_for(_s(c), f"item {i}: {_s(c)}")
            for i, c in enumerate(r)]


def complete_many(
    service: str, items: Sequence[tuple[str, int, Any]], max_payload: int
) -> Call:
    """Items are (id, token, result); a result of None is stored as 'no result'."""
    check_service(service)
    _batch(items, "complete_many")
    args: list[Any] = [max_payload, len(items)]
    for item in items:
        event_id, token, result = _fields(item, 3, "complete_many items are (id, token, result)")
        raw = b"" if result is None else _encoded(result, max_payload)
        args += [check_id(event_id), _token(token), raw]
    return Call("complete", service, args, lambda r: _with_ids(_codes(r), items))


def _with_ids(errors: list[HomingError | None], items: Sequence[Any]) -> list[HomingError | None]:
    out: list[HomingError | None] = []
    for err, item in zip(errors, items, strict=True):
        if err is not None:
            err = type(err)(f"{err.code}: event {item[0]} (token {item[1]}): {_doc(err)}")
        out.append(err)
    return out


def extend_many(service: str, items: Sequence[tuple[str, int]], lease_ms: int | None) -> Call:
    check_service(service)
    leases = _leases(items, "extend_many")
    args = [_ms(lease_ms or 0, "lease_ms"), len(items), *leases]
    return Call("extend", service, args, lambda r: _per_item(r, items))


def fail(
    service: str, event_id: str, token: int, reason: str, dead: bool, delay_ms: int | None
) -> Call:
    check_service(service)
    delay = -1 if delay_ms is None else _ms(delay_ms, "delay_ms")
    if not isinstance(reason, str):
        raise InvalidArgumentError(f"reason must be text, got {type(reason).__name__}")
    args = [check_id(event_id), _token(token), reason, "dead" if dead else "retry", delay]
    return Call("fail", service, args, lambda r: FailOutcome(_s(r[0]), int(r[1])))


def release_many(service: str, items: Sequence[tuple[str, int]]) -> Call:
    check_service(service)
    leases = _leases(items, "release")
    args = [len(items), *leases]
    return Call("release", service, args, lambda r: _with_ids(_codes(r), items))


def status(service: str, event_id: str) -> Call:
    check_service(service)

    def parse(r: list[Any]) -> Status:
        state = _s(r[0])
        if state == "done":
            return Status("done", raw_result=r[1])
        if state == "dead":
            return Status("dead", _s(r[1]), int(r[2]))
        if state == "pending":
            letter = _s(r[1])
            return Status("pending", STATUS_NAMES.get(letter, letter), int(r[2]))
        return Status("unknown")

    return Call("result", service, [check_id(event_id)], parse)


def stats(service: str) -> Call:
    check_service(service)

    def parse(r: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(0, len(r), 2):
            name, value = _s(r[i]), r[i + 1]
            if name.startswith("policy."):
                value = float(_s(value))
                value = int(value) if value.is_integer() else value
            out[name] = value
        return out

    return Call("stats", service, [], parse)


def configure(service: str, policy: dict[str, float | None]) -> Call:
    check_service(service)
    args: list[Any] = []
    for name, value in policy.items():
        if name not in POLICY_DEFAULTS:
            raise InvalidArgumentError(
                f"unknown policy field {name!r}; known: {', '.join(POLICY_DEFAULTS)}"
            )
        if value is None:
            args += [name, ""]
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}")
        args += [name, repr(value) if isinstance(value, float) else value]

    def parse(r: list[Any]) -> dict[str, float]:
        vals = {_s(r[i]): float(_s(r[i + 1])) for i in range(0, len(r), 2)}
        return {k: int(v) if v.is_integer() else v for k, v in vals.items()}

    return Call("configure", service, args, parse)


def dead_list(service: str, offset: int, count: int) -> Call:
    check_service(service)

    def parse(r: list[Any]) -> DeadPage:
        letters = [
            DeadLetter(_s(r[i]), int(r[i + 1]), int(r[i + 2]), _s(r[i + 3]), r[i + 4])
            for i in range(1, len(r), 5)
        ]
        return DeadPage(int(r[0]), letters)

    return Call("dead_list", service,
                [whole(offset, "offset", 0), whole(count, "count", 1, MAX_BATCH)], parse)


def _dead_select(ids: Sequence[str] | None, count: int) -> list[Any]:
    if ids is None:
        return ["oldest", whole(count, "count", 1, MAX_BATCH)]
    _batch(ids, "dead letter ids")
    return ["ids", *(check_id(i) for i in ids)]


def dead_requeue(service: str, ids: Sequence[str] | None, count: int) -> Call:
    check_service(service)
    return Call("dead_requeue", service, _dead_select(ids, count), lambda r: (r[0], r[1]))


def dead_purge(service: str, ids: Sequence[str] | None, count: int) -> Call:
    check_service(service)
    return Call("dead_purge", service, _dead_select(ids, count), lambda r: (r[0], r[1]))


def promote(service: str, limit: int) -> Call:
    check_service(service)
    return Call("promote", service, [whole(limit, "limit", 1)],
                lambda r: PromoteResult(r[0], r[1], r[2], bool(r[3]), r[4], r[5]))


def beat(name: str) -> Call:
    """A daemon's beat; the script takes the global daemons key, no service."""
    if not isinstance(name, str) or not 1 <= len(name.encode()) <= 256:
        raise InvalidArgumentError(f"daemon name must be 1..256 bytes of text, got {name!r}")
    return Call("beat", "", [name], int)


def distribute(service: str, limit: int) -> Call:
    check_service(service)
    return Call("distribute", service, [whole(limit, "limit", 1)],
                lambda r: DistributeResult(r[0], r[1], bool(r[2])))
