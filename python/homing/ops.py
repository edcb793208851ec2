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
from .manifest import POLICY_DEFAULTS, check_id, check_service
from .types import (
    DeadLetter,
    DeadPage,
    DistributeResult,
    Event,
    FailOutcome,
    PromoteResult,
    Status,
)

MAX_BATCH = 1000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_STATES = {"r": "ready", "l": "leased", "t": "timer", "w": "waiting", "x": "expired"}


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
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidArgumentError(f"{what} takes 1..{MAX_BATCH} items, got {len(items)}")


def _encoded(payload: Any, max_payload: int) -> bytes:
    data = envelope.encode(payload)
    if len(data) > max_payload:
        raise PayloadTooLargeError(
            f"encoded payload is {len(data)} bytes, over the limit of {max_payload}; "
            "nothing was written"
        )
    return data


def _ms(value: float | int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidArgumentError(f"{what} must be a number >= 0, got {value!r}")
    return int(value)


def enqueue_many(
    service: str,
    payloads: Iterable[Any],
    max_payload: int,
    keys: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
) -> Call:
    check_service(service)
    payloads = list(payloads)
    _batch(payloads, "enqueue_many")
    if keys is not None and len(keys) != len(payloads):
        raise InvalidArgumentError("keys must be as many as payloads")
    if ids is not None and len(ids) != len(payloads):
        raise InvalidArgumentError("ids must be as many as payloads")
    args: list[Any] = [max_payload, len(payloads)]
    for i, payload in enumerate(payloads):
        args += [
            check_id(ids[i]) if ids is not None else new_id(),
            _encoded(payload, max_payload),
            (keys[i] or "") if keys is not None else "",
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
        mode, value = "at", (at - _EPOCH) // dt.timedelta(milliseconds=1)
    else:
        _ms(at, "at")  # validates; its int() would drop the fraction of a second
        mode, value = "at", round(at * 1000)
    event_id = check_id(id) if id is not None else new_id()
    args = [max_payload, event_id, _encoded(payload, max_payload), key or "", mode, value]
    return Call("schedule", service, args, lambda r: _s(r[0]))


def cancel_timer(service: str, timer_id: str) -> Call:
    check_service(service)
    return Call("cancel", service, [check_id(timer_id)], lambda r: r == 1)


def dequeue(service: str, count: int, lease_ms: int | None) -> Call:
    check_service(service)
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgumentError(f"count must be in 1..{MAX_BATCH}, got {count}")

    def parse(r: list[Any]) -> list[Event]:
        # On the hot path: ids are always bytes and integers already ints here.
        deadline = r[0]
        return [
            Event(service, r[i].decode(), r[i + 1], r[i + 2], deadline, r[i + 3])
            for i in range(1, len(r), 4)
        ]

    return Call("dequeue", service, [count, _ms(lease_ms or 0, "lease_ms")], parse)


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
    for event_id, token, result in items:
        raw = b"" if result is None else _encoded(result, max_payload)
        args += [check_id(event_id), int(token), raw]
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
    _batch(items, "extend_many")
    args: list[Any] = [_ms(lease_ms or 0, "lease_ms"), len(items)]
    for event_id, token in items:
        args += [check_id(event_id), int(token)]

    def parse(r: list[Any]) -> list[int | HomingError]:
        out: list[int | HomingError] = []
        for item, v in zip(items, r, strict=True):
            if isinstance(v, int):
                out.append(v)
            else:
                cls = type(error_for(_s(v), ""))
                out.append(cls(f"{_s(v)}: event {item[0]} (token {item[1]}): {_doc(cls)}"))
        return out

    return Call("extend", service, args, parse)


def fail(
    service: str, event_id: str, token: int, reason: str, dead: bool, delay_ms: int | None
) -> Call:
    check_service(service)
    delay = -1 if delay_ms is None else _ms(delay_ms, "delay_ms")
    args = [check_id(event_id), int(token), reason, "dead" if dead else "retry", delay]
    return Call("fail", service, args, lambda r: FailOutcome(_s(r[0]), int(r[1])))


def release_many(service: str, items: Sequence[tuple[str, int]]) -> Call:
    check_service(service)
    _batch(items, "release")
    args: list[Any] = [len(items)]
    for event_id, token in items:
        args += [check_id(event_id), int(token)]
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
            return Status("pending", _STATES.get(letter, letter), int(r[2]))
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

    return Call("dead_list", service, [int(offset), int(count)], parse)


def _dead_select(ids: Sequence[str] | None, count: int) -> list[Any]:
    if ids is None:
        return ["oldest", int(count)]
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
    return Call("promote", service, [int(limit)],
                lambda r: PromoteResult(r[0], r[1], r[2], bool(r[3]), r[4]))


def distribute(service: str, limit: int) -> Call:
    check_service(service)
    return Call("distribute", service, [int(limit)],
                lambda r: DistributeResult(r[0], r[1], bool(r[2])))
