"""The argument types of the call table: each checked and encoded before anything is sent.

``ENCODE`` has one entry per ARGV type of lua/calltable.py. A refused value is
a typed error here, in the caller's thread, and nothing is written: NaN,
infinities, a text count or a str where a list belongs used to reach Lua and
fail there, or worse, half way through. The bounds come from the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

from . import envelope
from .errors import InvalidArgumentError, PayloadTooLargeError
from .manifest import LAYOUT, check_id

MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]  # per field: default, min, max, whole


def new_id() -> str:
    """A random event id (UUID4 hex): unguessable and unique without coordination."""
    return uuid4().hex


def _bad(ok: bool, message: str, *args: Any) -> None:
    """Refuse unless ok; the message is formatted only then (a payload's repr is not cheap)."""
    if not ok:
        raise InvalidArgumentError(message.format(*args))


def _real(v: Any) -> bool:
    """A finite int or float (a bool is no number here: True must not become 1)."""
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def whole(value: Any, what: str, lo: int, hi: int = MAX_WHOLE) -> int:
    """A count, offset or limit: a whole number in [lo, hi] (a whole float is taken)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    _bad(not isinstance(value, bool) and isinstance(value, int) and lo <= value <= hi,
         "{} must be a whole number in [{}, {}], got {!r}", what, lo, hi, value)
    return value


def ms(value: Any, what: str) -> int:
    """Whole ms in [0, 2^53 - 1]; a fraction is dropped (a float delay is fine)."""
    _bad(_real(value) and 0 <= value <= MAX_WHOLE,
         "{} must be a finite number in [0, 2^53 - 1], got {!r}", what, value)
    return int(value)


def encoded(payload: Any, max_payload: int) -> bytes:
    """The payload's envelope, refused (nothing written) over the client's max_payload."""
    data = envelope.encode(payload)
    if len(data) > max_payload:
        raise PayloadTooLargeError(f"encoded payload is {len(data)} bytes, over the limit of "
                                   f"{max_payload}; nothing was written")
    return data


def batch(items: Any, what: str, lo: int, hi: int) -> Sequence[Any]:
    """lo..hi items; a str is a Sequence too, but "abc" must not become "a", "b" and "c"."""
    _bad(isinstance(items, Sequence) and not isinstance(items, (str, bytes)),
         "{} takes a list, got {}", what, type(items).__name__)
    _bad(lo <= len(items) <= hi, "{} takes {}..{} items, got {}", what, lo, hi, len(items))
    return items


def _token(v: Any) -> int:
    _bad(not isinstance(v, bool) and isinstance(v, int) and 0 <= v <= MAX_WHOLE,
         "a lease token is a whole number >= 0, got {!r}", v)
    return v


def _key(v: Any) -> str:
    # An int or bytes key would meet "5" or b"5" as the same key.
    _bad(v is None or isinstance(v, str), "an idempotency key is text, got {}", type(v).__name__)
    return v or ""


def _text(v: Any, what: str) -> str:
    _bad(isinstance(v, str), "{} must be text, got {}", what, type(v).__name__)
    return v  # the script keeps at most its max bytes, cut on a character


def _name(v: Any, what: str, hi: int) -> str:
    _bad(isinstance(v, str) and 1 <= len(v.encode()) <= hi,
         "{} must be 1..{} bytes of text, got {!r:.80}", what, hi, v)
    return v


def _policy(value: Any) -> list[Any]:
    _bad(isinstance(value, dict), "policy is a mapping of field to number, got {!r:.80}", value)
    out: list[Any] = []
    for name, v in value.items():
        _bad(name in POLICY, "unknown policy field {!r}; known: {}", name, ", ".join(POLICY))
        _bad(v is None or _real(v), "{} must be a finite number, got {!r}", name, v)
        out += [name, "" if v is None else repr(v) if isinstance(v, float) else v]
    return out


def _list(spec: dict[str, Any], rows: Any, what: str, mp: int, defaults: dict[str, Any]) -> list:
    """The items flattened, each a tuple in field order (trailing defaults may be left out)."""
    fields = spec["fields"]
    names = [f["name"] for f in fields]
    need = len(fields)
    while need > 0 and names[need - 1] in defaults:
        need -= 1
    out: list[Any] = []
    for item in batch(rows, what, spec["min"], spec["max"]):
        _bad(isinstance(item, (tuple, list)) and need <= len(item) <= len(fields),
             "{} items are ({}), got {!r:.80}", what, ", ".join(names), item)
        for f, v in zip(fields, [*item, *[None] * (len(fields) - len(item))], strict=True):
            out.append(encode_arg(f, defaults.get(f["name"]) if v is None else v, f["name"],
                                  mp, defaults))
    return out


# type -> (spec, value, what, max_payload, defaults) -> what ARGV takes
ENCODE: dict[str, Callable[[dict[str, Any], Any, str, int, dict[str, Any]], Any]] = {
    "whole": lambda s, v, w, mp, d: whole(v, w, s["min"], s["max"]),
    "ms": lambda s, v, w, mp, d: ms(v, w),
    "token": lambda s, v, w, mp, d: _token(v),
    "id": lambda s, v, w, mp, d: check_id(v),
    "key": lambda s, v, w, mp, d: _key(v),
    "envelope": lambda s, v, w, mp, d: encoded(v, mp),
    "result": lambda s, v, w, mp, d: b"" if v is None else encoded(v, mp),
    "bool": lambda s, v, w, mp, d: 1 if v else 0,
    "text": lambda s, v, w, mp, d: _text(v, w),
    "name": lambda s, v, w, mp, d: _name(v, w, s["max"]),
    "pairs": lambda s, v, w, mp, d: _policy(v),
    "list": _list,
    # rest: absent is nothing; given, 1..max values (a purge of [] must not purge the oldest).
    "rest": lambda s, v, w, mp, d: [] if v is None else [
        encode_arg(s["item"], x, w, mp, d) for x in batch(v, w, 1, s["max"])],
}


def encode_arg(spec: dict[str, Any], value: Any, what: str, max_payload: int,
               defaults: dict[str, Any]) -> Any:
    """One argument as ARGV takes it, checked against its table type."""
    t = spec["type"]
    if t == "id" and value == "$new_id":
        return new_id()
    if value is None and spec.get("optional"):
        return ""
    _bad(t in ENCODE, "{}: the call table has no type {!r}", what, t)
    return ENCODE[t](spec, value, what, max_payload, defaults)
