"""The argument types of the call table: each checked and encoded before anything is sent.

One function per type of lua/calltable.py (``whole``, ``ms``, ``token``, ``id``,
``key``, ``envelope``, ``result``, ``text``, ``name``, ``bool``, ``list``,
``rest``, ``pairs``). A refused value is a typed error here, in the caller's
thread, and nothing is written: NaN, infinities, a text count or a str where a
list belongs used to reach Lua and fail there, or worse, half way through.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from . import envelope
from .errors import InvalidArgumentError, PayloadTooLargeError
from .manifest import LAYOUT, check_id

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]  # per field: default, min, max, whole


def new_id() -> str:
    """A random event id (UUID4 hex): unguessable and unique without coordination."""
    return uuid4().hex


def whole(value: Any, what: str, lo: int, hi: int = _MAX_WHOLE) -> int:
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


def ms(value: Any, what: str) -> int:
    """Whole ms in [0, 2^53 - 1]; a fraction is dropped (a float delay is fine)."""
    # NaN passes every comparison and int(inf) raises OverflowError: refuse
    # both here, typed, before anything is sent.
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 <= value <= _MAX_WHOLE):
        raise InvalidArgumentError(
            f"{what} must be a finite number in [0, 2^53 - 1], got {value!r}")
    return int(value)


def at_ms(at: dt.datetime | float) -> int:
    """A due time as ms since the epoch: a timezone-aware datetime, or seconds since the epoch."""
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            raise InvalidArgumentError("at must be timezone-aware (naive datetimes are ambiguous)")
        # Whole milliseconds by integer arithmetic: timestamp() * 1000 is a float
        # product that can land just below the intended millisecond.
        return ms((at - _EPOCH) // dt.timedelta(milliseconds=1), "at (ms since the epoch)")
    ms(at, "at")  # validates; its int() would drop the fraction of a second
    return ms(round(at * 1000), "at (ms since the epoch)")


def token(value: Any) -> int:
    """A fencing token as the scripts compare it: a whole number in [0, 2^53 - 1]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_WHOLE:
        raise InvalidArgumentError(f"a lease token is a whole number >= 0, got {value!r}")
    return value


def idem_key(value: Any) -> str:
    """An idempotency key: text (an int or bytes key would meet "5" or b"5" as the same key)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"an idempotency key is text, got {type(value).__name__}")
    return value


def encoded(payload: Any, max_payload: int) -> bytes:
    data = envelope.encode(payload)
    if len(data) > max_payload:
        raise PayloadTooLargeError(
            f"encoded payload is {len(data)} bytes, over the limit of {max_payload}; "
            "nothing was written"
        )
    return data


def _text(value: Any, what: str, lo: int, hi: int) -> str:
    if not isinstance(value, str) or not lo <= len(value.encode()) <= hi:
        raise InvalidArgumentError(f"{what} must be {lo}..{hi} bytes of text, got {value!r:.80}")
    return value


def batch(items: Any, what: str, lo: int, hi: int) -> Sequence[Any]:
    # A str is a Sequence too: "abc" must not become the ids "a", "b" and "c".
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise InvalidArgumentError(f"{what} takes a list, got {type(items).__name__}")
    if not lo <= len(items) <= hi:
        raise InvalidArgumentError(f"{what} takes {lo}..{hi} items, got {len(items)}")
    return items


def _policy(value: Any) -> list[Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"policy is a mapping of field to number, got {value!r:.80}")
    out: list[Any] = []
    for name, v in value.items():
        if name not in POLICY:
            raise InvalidArgumentError(
                f"unknown policy field {name!r}; known: {', '.join(POLICY)}")
        if v is None:
            out += [name, ""]
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidArgumentError(f"{name} must be a finite number, got {v!r}")
        out += [name, repr(v) if isinstance(v, float) else v]
    return out


def _item(spec: dict[str, Any], item: Any, what: str, max_payload: int,
          defaults: dict[str, Any]) -> list[Any]:
    """One item of a list argument: a tuple in field order (trailing defaults may be left out)."""
    fields = spec["fields"]
    names = [f["name"] for f in fields]
    need = len(fields)
    while need > 0 and names[need - 1] in defaults:
        need -= 1
    if not isinstance(item, (tuple, list)) or not need <= len(item) <= len(fields):
        raise InvalidArgumentError(f"{what} items are ({', '.join(names)}), got {item!r:.80}")
    out: list[Any] = []
    for i, f in enumerate(fields):
        v = item[i] if i < len(item) else None
        if v is None:
            v = defaults.get(f["name"])
        out.append(encode_arg(f, v, f["name"], max_payload, defaults))
    return out


def encode_arg(spec: dict[str, Any], value: Any, what: str, max_payload: int,
               defaults: dict[str, Any]) -> Any:
    """One argument as ARGV takes it, checked against its table type."""
    t = spec["type"]
    if value == "$new_id" and t == "id":
        return new_id()
    if value is None and spec.get("optional"):
        return ""
    if t == "whole":
        return whole(value, what, spec["min"], spec["max"])
    if t == "ms":
        return ms(value, what)
    if t == "token":
        return token(value)
    if t == "id":
        return check_id(value)
    if t == "key":
        return idem_key(value)
    if t == "envelope":
        return encoded(value, max_payload)
    if t == "result":
        return b"" if value is None else encoded(value, max_payload)
    if t == "bool":
        return 1 if value else 0
    if t == "text":
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{what} must be text, got {type(value).__name__}")
        return value  # the script keeps at most spec["max"] bytes, cut on a character
    if t == "name":
        return _text(value, what, 1, spec["max"])
    if t == "pairs":
        return _policy(value)
    if t == "list":
        rows = batch(value, what, spec["min"], spec["max"])
        return [v for row in rows for v in _item(spec, row, what, max_payload, defaults)]
    if t == "rest":
        if value is None:
            return []
        # Given, it names 1..max values: an empty selection is refused, never read
        # as "none given" (a purge of [] must not purge the oldest instead).
        rows = batch(value, what, 1, spec["max"])
        return [encode_arg(spec["item"], v, what, max_payload, defaults) for v in rows]
    raise InvalidArgumentError(f"{what}: the call table has no type {t!r}")
