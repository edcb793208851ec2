"""The argument types of the call table: each checked and encoded before anything is sent.

``ENCODE`` has one entry per ARGV type of lua/calltable.py: what the type
accepts and what ARGV then takes. A refused value is a typed error here, in
the caller's thread, and nothing is written: NaN, infinities, a text count or
a str where a list belongs used to reach Lua and fail there, or worse, half
way through. The bounds, defaults and refusal texts come from the table, the
texts shared with the other ports (the manifest's ``refusals``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

from . import envelope
from .errors import InvalidArgumentError, PayloadTooLargeError
from .manifest import LAYOUT, MANIFEST, check_id

MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]  # per field: default, min, max, whole
REFUSALS: dict[str, str] = MANIFEST["refusals"]  # refusal -> its text, with {what} and {value}


def new_id() -> str:
    """A random event id (UUID4 hex): unguessable and unique without coordination."""
    return uuid4().hex


def show(value: Any) -> str:
    """A refused value as a message shows it: a list by its length (not its items), a repr cut."""
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refuse(ok: bool, refusal: str, what: str, value: Any, **fields: Any) -> None:
    """Refuse unless ok, by the table's text (made only then: a payload's repr is not cheap)."""
    if not ok:
        raise InvalidArgumentError(REFUSALS[refusal].format(
            what=what, value=show(value), known=", ".join(POLICY), **fields))


def _number(v: Any, lo: float, hi: float, *, whole: bool) -> bool:
    """An int or finite float in [lo, hi] (whole: with no fraction); a bool is no number here."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return (isinstance(v, int) or (math.isfinite(v) and (v.is_integer() or not whole))) \
        and lo <= v <= hi


def whole(value: Any, what: str, lo: int, hi: int = MAX_WHOLE) -> int:
    """A count, offset or limit: a whole number in [lo, hi] (a whole float is taken)."""
    refuse(_number(value, lo, hi, whole=True), "whole", what, value, min=lo, max=hi)
    return int(value)


def ms(value: Any, what: str) -> int:
    """Whole ms in [0, 2^53 - 1]; a fraction is dropped (a float delay is fine)."""
    refuse(_number(value, 0, MAX_WHOLE, whole=False), "ms", what, value)
    return int(value)


def encoded(payload: Any, max_payload: int) -> bytes:
    """The payload's envelope, refused (nothing written) over the client's max_payload."""
    data = envelope.encode(payload)
    if len(data) > max_payload:
        raise PayloadTooLargeError(REFUSALS["payload"].format(size=len(data), max=max_payload))
    return data


def _sized(s: dict[str, Any], v: Any) -> bool:
    """min..max items; a str is a Sequence too, but "abc" must not become "a", "b" and "c"."""
    return isinstance(v, Sequence) and not isinstance(v, (str, bytes)) \
        and s["min"] <= len(v) <= s["max"]


def _items(s: dict[str, Any], rows: Sequence[Any], what: str, mp: int) -> list[list[Any]]:
    """Each item encoded, in field order; a field left out or None takes its default."""
    encs = _encoders(s)
    n, need = len(encs), s["need"]
    out = []
    for item in rows:
        if not (isinstance(item, (tuple, list)) and need <= len(item) <= n):
            fields = s["fields"]
            refuse(False, "item", what, item, names=", ".join(f["name"] for f in fields),
                   need=need)
        if len(item) < n:
            item = [*item, *[None] * (n - len(item))]
        out.append([enc(v, mp) for enc, v in zip(encs, item, strict=True)])
    return out


# id(list spec) -> (the spec, its fields' encoders): made once per spec of the table.
_ENCODERS: dict[int, tuple[dict[str, Any], list[Callable[[Any, int], Any]]]] = {}


def _encoders(s: dict[str, Any]) -> list[Callable[[Any, int], Any]]:
    got = _ENCODERS.get(id(s))
    if got is None or got[0] is not s:
        got = _ENCODERS[id(s)] = (s, [_field(f) for f in s["fields"]])
    return got[1]


def _field(f: dict[str, Any]) -> Callable[[Any, int], Any]:
    """``encode_arg`` of one field of a list's items (its default for None), made once.

    Why: a batch of 100 (complete_many, enqueue_many) cost ~12 us of CPU per item
    through ``encode_arg``'s lookups, the keyword arguments it builds per check and
    the nested calls, in every client's and worker's hot loop. The values a hot
    type takes as they are (an exact int in range, an id's text, no result) are
    taken here at once; any other value goes through ``encode_arg`` itself, so
    what is accepted, converted and refused stays exactly the table's.
    """
    t, name, default = f["type"], f["name"], f.get("default")

    def table(v: Any, mp: int) -> Any:
        return encode_arg(f, default if v is None else v, name, mp)

    if t in ("token", "whole", "ms"):  # int(v) of an int in range is v itself
        lo, hi = f["min"], f["max"]
        return lambda v, mp: v if type(v) is int and lo <= v <= hi else table(v, mp)
    if t == "id":
        return lambda v, mp: check_id(v) if type(v) is str and v != "$new_id" else table(v, mp)
    if t == "result" and default is None and not f.get("optional"):
        return lambda v, mp: b"" if v is None else table(v, mp)
    return table


def _policy(value: dict[str, Any]) -> list[Any]:
    """Field, value pairs; each field refused by its own name."""
    out: list[Any] = []
    for k, v in value.items():
        refuse(k in POLICY and (v is None or _number(v, -math.inf, math.inf, whole=False)),
               "policy", k, v)
        out += [k, "" if v is None else repr(v) if isinstance(v, float) else v]
    return out


def _yes(s: dict[str, Any], v: Any) -> bool:
    return True  # checked by its conversion (an id's pattern, an envelope's size) or none


# type -> (accepts(spec, value), converts(spec, value, what, max_payload) to what ARGV
# takes); a value it does not accept is refused with REFUSALS[type].
ENCODE: dict[str, tuple[Callable[[dict[str, Any], Any], bool],
                        Callable[[dict[str, Any], Any, str, int], Any]]] = {
    "whole": (lambda s, v: _number(v, s["min"], s["max"], whole=True), lambda s, v, w, mp: int(v)),
    "ms": (lambda s, v: _number(v, s["min"], s["max"], whole=False), lambda s, v, w, mp: int(v)),
    # An int only (no bool, no float: 5.0 is refused), as dequeue hands tokens out and
    # as Erlang takes them; int(): an IntEnum would be sent as its repr "<E.A: 5>".
    "token": (lambda s, v: isinstance(v, int) and _number(v, s["min"], s["max"], whole=True),
              lambda s, v, w, mp: int(v)),
    "id": (_yes, lambda s, v, w, mp: new_id() if v == "$new_id" else check_id(v)),
    # An int or bytes key would meet "5" or b"5" as the same key.
    "key": (lambda s, v: v is None or isinstance(v, str), lambda s, v, w, mp: v or ""),
    "envelope": (_yes, lambda s, v, w, mp: encoded(v, mp)),
    "result": (_yes, lambda s, v, w, mp: b"" if v is None else encoded(v, mp)),
    "bool": (_yes, lambda s, v, w, mp: 1 if v else 0),
    # text: the script keeps at most its max bytes, cut on a character
    "text": (lambda s, v: isinstance(v, str), lambda s, v, w, mp: v),
    "name": (lambda s, v: isinstance(v, str) and 1 <= len(v.encode()) <= s["max"],
             lambda s, v, w, mp: v),
    "pairs": (lambda s, v: isinstance(v, dict), lambda s, v, w, mp: _policy(v)),
    "config": (_yes, lambda s, v, w, mp: mp),  # the client's setting, no argument
    "count": (_yes, lambda s, v, w, mp: []),  # nothing: its list, right after, sends it
    "list": (_sized, _items),
    "rest": (lambda s, v: v is None or _sized(s, v), lambda s, v, w, mp: [
        encode_arg(s["item"], x, w, mp) for x in v or ()]),
}


def encode_arg(spec: dict[str, Any], value: Any, what: str, max_payload: int) -> Any:
    """One argument as ARGV takes it, checked against its table type (a list's: its items)."""
    t = spec["type"]
    if value is None and spec.get("optional"):
        return ""
    refuse(t in ENCODE, "type", what, t)
    accepts, convert = ENCODE[t]
    refuse(accepts(spec, value), t, what, value, **spec)
    return convert(spec, value, what, max_payload)
