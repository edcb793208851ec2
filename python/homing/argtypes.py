"""The argument types of the call table: each checked and encoded before anything is sent.

``ENCODE`` has one entry per ARGV type of lua/calltable.py, which makes the
encoder of an argument spec: what the type accepts and what ARGV then takes.
Each spec's encoder is made once, on first use, and serves the argument and,
for a list, each item's field alike (one path: a batch of 100 is the hot loop
of every worker). A refused value is a typed error here, in
the caller's thread, and nothing is written: NaN, infinities, a text count or
a str where a list belongs used to reach Lua and fail there, or worse, half
way through. The bounds, defaults and refusal texts come from the table, the
texts shared with the other ports (the manifest's ``refusals``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from . import envelope
from .errors import HomingError, InvalidArgumentError, PayloadTooLargeError
from .manifest import LAYOUT, MANIFEST, check_id

MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly
POLICY: dict[str, dict[str, Any]] = LAYOUT["policy"]  # per field: default, min, max, whole
REFUSALS: dict[str, str] = MANIFEST["refusals"]  # refusal -> its text, with {what} and {value}
Encoder = Callable[[Any, str, int], Any]  # (value, its name, max_payload) -> what ARGV takes


def new_id() -> str:
    """A random event id (UUID4 hex): unguessable and unique without coordination.

    Made from ``os.urandom`` with the version (4) and variant (RFC 4122) bits set,
    without ``uuid.UUID``'s constructor: ``uuid4().hex`` cost ~2 us per event here,
    most of it the constructor checking the bytes it was just given, and a bulk
    enqueue makes one per event.
    """
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    return f"{n:032x}"


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


def _list(s: dict[str, Any]) -> Encoder:
    """A list of min..max items, each encoded in field order; a field left out or None
    takes its default."""
    fields = [(_encoder(f), f.get("default"), f["name"]) for f in s["fields"]]
    n, need = len(fields), s["need"]

    columns = column_encoders(s)

    def by_columns(rows: Any, mp: int) -> list[list[Any]] | None:
        """The rows encoded a field at a time (one comprehension per column), or None
        for any item that is not a full tuple or list, or any refusal: the row loop
        below then refuses with the first bad item's error, as every port does.
        Why: per item, a zip and a comprehension over four encoders cost more client
        time than the script's work (complete_many in every consumer's loop)."""
        for item in rows:
            if type(item) not in (tuple, list) or len(item) != n:
                return None
        try:
            cols = [column(list(col), len(rows), mp)
                    for column, col in zip(columns, zip(*rows, strict=True), strict=True)]
        except HomingError:
            return None
        return [list(r) for r in zip(*cols, strict=True)]

    def encode(rows: Any, what: str, mp: int) -> list[list[Any]]:
        if not _sized(s, rows):
            refuse(False, "list", what, rows, **s)
        fast = by_columns(rows, mp)
        if fast is not None:
            return fast
        out = []
        for item in rows:
            if not (isinstance(item, (tuple, list)) and need <= len(item) <= n):
                refuse(False, "item", what, item, names=", ".join(f["name"] for f in s["fields"]),
                       need=need)
            if len(item) < n:
                item = [*item, *[None] * (n - len(item))]
            out.append([enc(d if v is None else v, name, mp)
                        for (enc, d, name), v in zip(fields, item, strict=True)])
        return out
    return encode


Column = Callable[[Any, int, int], list[Any]]  # (values or None, count, max_payload) -> ARGV
_COLUMNS: dict[int, list[Column]] = {}


def column_encoders(s: dict[str, Any]) -> list[Column]:
    """Per field of list spec ``s``, the encoder of a whole column of it (ops._zipped):
    a column left out (None) is the field's default n times (new ids for an id), a
    given one each value through the field's encoder, a None in it the default. Made
    once per spec."""
    cached = _COLUMNS.get(id(s))
    if cached is not None:
        return cached
    out: list[Column] = []
    for f in s["fields"]:
        enc, d, name = _encoder(f), f.get("default"), f["name"]
        if d == "$new_id":
            out.append(lambda col, n, mp, enc=enc, name=name:
                       [new_id() for _ in range(n)] if col is None else
                       [new_id() if v is None else enc(v, name, mp) for v in col])
        else:
            out.append(lambda col, n, mp, enc=enc, d=d, name=name:
                       [enc(d, name, mp)] * n if col is None else
                       [enc(d if v is None else v, name, mp) for v in col])
    _COLUMNS[id(s)] = out
    return out


def _rest(s: dict[str, Any]) -> Encoder:
    """None or a list of min..max values of one type (dead_purge's ids)."""
    item = _encoder(s["item"])
    return _checked(lambda s, v: v is None or _sized(s, v),
                    lambda s, v, w, mp: [item(x, w, mp) for x in v or ()])(s)


def _bounded(s: dict[str, Any]) -> Encoder:
    """A whole, ms or token: an exact int in range is taken as it is (int(v) is v), at
    once: a batch of 100 (complete_many) paid ~12 us of CPU per item for the general
    checks in every client's and worker's hot loop. Any other value meets the rule."""
    t, lo, hi = s["type"], s["min"], s["max"]

    def encode(v: Any, what: str, mp: int) -> Any:
        if type(v) is int and lo <= v <= hi:
            return v
        # A token is an int only (no float: 5.0 is refused), as dequeue hands tokens out
        # and as Erlang takes them; int(): an IntEnum would be sent as its repr "<E.A: 5>".
        ok = _number(v, lo, hi, whole=t != "ms") and (t != "token" or isinstance(v, int))
        refuse(ok, t, what, v, **s)
        return int(v)  # ms: a fraction dropped (a float delay is fine)
    return encode


def _policy(value: dict[str, Any]) -> list[Any]:
    """Field, value pairs; each field refused by its own name."""
    out: list[Any] = []
    for k, v in value.items():
        refuse(k in POLICY and (v is None or _number(v, -math.inf, math.inf, whole=False)),
               "policy", k, v)
        out += [k, "" if v is None else repr(v) if isinstance(v, float) else v]
    return out


def _checked(accepts: Callable[[dict[str, Any], Any], bool],
             convert: Callable[[dict[str, Any], Any, str, int], Any]) -> Callable[..., Encoder]:
    """An encoder of a type that refuses what ``accepts`` does not take, then converts."""
    def make(s: dict[str, Any]) -> Encoder:
        def encode(v: Any, what: str, mp: int) -> Any:
            if not accepts(s, v):
                refuse(False, s["type"], what, v, **s)
            return convert(s, v, what, mp)
        return encode
    return make


def _plain(encode: Encoder) -> Callable[[dict[str, Any]], Encoder]:
    """A type any value of which is checked by its conversion (an id's pattern, an
    envelope's size) or by none: its encoder is the conversion itself."""
    return lambda s: encode


# type -> its encoder for an argument spec of the table (made once per spec, see
# _encoder); a value it does not accept is refused with REFUSALS[type].
ENCODE: dict[str, Callable[[dict[str, Any]], Encoder]] = {
    "whole": _bounded, "ms": _bounded, "token": _bounded,
    "id": _plain(lambda v, w, mp: new_id() if v == "$new_id" else check_id(v)),
    # An int or bytes key would meet "5" or b"5" as the same key.
    "key": _checked(lambda s, v: v is None or isinstance(v, str), lambda s, v, w, mp: v or ""),
    "envelope": _plain(lambda v, w, mp: encoded(v, mp)),
    "result": _plain(lambda v, w, mp: b"" if v is None else encoded(v, mp)),
    "bool": _plain(lambda v, w, mp: 1 if v else 0),
    # text: the script keeps at most its max bytes, cut on a character
    "text": _checked(lambda s, v: isinstance(v, str), lambda s, v, w, mp: v),
    "name": _checked(lambda s, v: isinstance(v, str) and 1 <= len(v.encode()) <= s["max"],
                     lambda s, v, w, mp: v),
    "pairs": _checked(lambda s, v: isinstance(v, dict), lambda s, v, w, mp: _policy(v)),
    "config": _plain(lambda v, w, mp: mp),  # the client's setting, no argument
    "count": _plain(lambda v, w, mp: []),  # nothing: its list, right after, sends it
    "list": _list, "rest": _rest,
}

# id(argument spec) -> (the spec, its encoder): made once per spec of the table.
_ENCODERS: dict[int, tuple[dict[str, Any], Encoder]] = {}


def _encoder(spec: dict[str, Any]) -> Encoder:
    """The encoder of one argument spec, made on its first use and kept."""
    got = _ENCODERS.get(id(spec))
    if got is None or got[0] is not spec:
        t = spec["type"]
        enc = ENCODE[t](spec) if t in ENCODE else \
            lambda v, what, mp: refuse(False, "type", what, t)
        if spec.get("optional"):
            enc = (lambda e: lambda v, what, mp: "" if v is None else e(v, what, mp))(enc)
        got = _ENCODERS[id(spec)] = (spec, enc)
    return got[1]


def encode_arg(spec: dict[str, Any], value: Any, what: str, max_payload: int) -> Any:
    """One argument as ARGV takes it, checked against its table type (a list's: its items)."""
    return _encoder(spec)(value, what, max_payload)
