"""Each homing call as data, built from the manifest's call table.

Sans-IO on purpose: the sync and asyncio clients (and the conformance runner)
execute the same ``Call`` objects, so their behaviour cannot drift. Nothing
here is written per call: ``lua/build.py`` joins each script's typed header
with conformance/calls.json into the manifest's ``calls`` (ARGV order, types
and bounds, reply shape) and ``records`` (each value type's fields), and
``call()`` encodes arguments and parses replies by that table alone. A new
script with its header gives this port the call with no code here. The
argument types are ``homing.argtypes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from . import types
from .argtypes import column_encoders, encode_arg, new_id, refuse, whole  # noqa: F401 - imported from here too
from .checks import at_ms, seconds, worker_options  # noqa: F401 - imported from here too
from .errors import HomingError, error_for
from .manifest import MANIFEST, STATUS_NAMES, check_service

CALLS: dict[str, dict[str, Any]] = MANIFEST["calls"]
_RECORDS: dict[str, dict[str, Any]] = MANIFEST["records"]


@dataclass(frozen=True)
class Call:
    """One script invocation: the clients turn ``service`` into the script's KEYS."""

    script: str
    service: str
    args: list[Any]
    parse: Callable[[Any], Any]


def _make(name: str, service: str, f: dict[str, Any]) -> Any:
    """The value type ``name`` of homing.types from a reply's fields, by the table's names."""
    spec = _RECORDS[name]
    if "items" in spec:
        each = spec["items"]["record"]
        f = {**f, spec["items"]["field"]: [_make(each, service, x) for x in f["items"]]}
    f = {"service": service, **f}
    return getattr(types, name)(**{k: f[k] for k in spec["fields"] if k in f})


# The port's value type for each record name of the table (calls.json "records").
RECORDS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    n: (lambda service, f, n=n: _make(n, service, f)) for n in _RECORDS}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _num(v: Any) -> int | float | str:
    """A number (text numbers parsed); text that is none stays text.

    A stats field written by someone else (a test clock of 'tomorrow') must show
    as what it is, not make ``stats`` fail for the whole service.
    """
    if isinstance(v, int):
        return v
    try:
        x = float(_s(v))
    except ValueError:
        return _s(v)
    return int(x) if x.is_integer() else x


# Reply field types -> converters (int and bytes arrive as they are).
def _same(v: Any) -> Any:
    return v


FIELD: dict[str, Callable[[Any], Any]] = {
    "int": int, "str": _s, "bool": lambda v: v == 1, "bytes": _same, "num": _num,
    "status": lambda v: STATUS_NAMES.get(_s(v), _s(v)),
}


def _item_error(code: Any, item: Sequence[Any]) -> HomingError:
    cls = type(error_for(_s(code), ""))
    doc = " ".join((cls.__doc__ or "").split())  # the class's description on one line
    return cls(f"{_s(code)}: event {item[0]} (token {item[1]}): {doc}")


def _fields(specs: list[dict[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    return {f["name"]: FIELD[f["type"]](v) for f, v in zip(specs, values, strict=True)}


def parse_reply(spec: dict[str, Any], r: Any, items: list[Sequence[Any]]) -> Any:
    """A raw reply as the table's neutral value (dicts, lists and scalars); a
    ``records`` reply has its own parse, compiled per call (``_records``)."""
    kind = spec["kind"]
    if kind == "value":
        return FIELD[spec["type"]](r)
    if kind == "tuple":
        return _fields(spec["fields"], r)
    if kind == "items":
        ok = (lambda v: isinstance(v, int)) if spec["ok"] == "int" else (lambda v: v == b"OK")
        return [(v if spec["ok"] == "int" else None) if ok(v) else _item_error(v, item)
                for v, item in zip(r, items, strict=True)]
    if kind == "union":
        tag = _s(r[0])
        if tag not in spec["cases"]:
            raise HomingError(f"reply tag {tag!r} is not one of {sorted(spec['cases'])}")
        return {"state": tag, **_fields(spec["cases"][tag], r[1:])}
    if kind == "map":
        return {_s(r[i]): _num(r[i + 1]) for i in range(0, len(r), 2)}
    raise HomingError(f"unknown reply kind {kind}")


def _shape(entry: dict[str, Any], service: str, value: Any) -> Any:
    """The neutral value as this port's, by the table's ``shape`` (docs/protocol.md):
    a field picked, a record type, a tuple as a tuple; ``one``: a batch's one item."""
    shape, kind = entry["shape"], entry["reply"]["kind"]
    if "pick" in shape:
        value = value[shape["pick"]]
    elif "record" in shape:
        value = _make(shape["record"], service, value)
    elif kind == "tuple":
        value = tuple(value.values())
    if shape.get("one"):  # the single form of a batch call: its one item, its error raised
        value = value[0]
        if isinstance(value, HomingError):
            raise value
    return value


def _column(value: Any, what: str) -> list[Any]:
    """A column of a zipped list: any iterable but text or a mapping ("abc" is no 3 payloads)."""
    refuse(isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)), "column",
           what, value)
    return list(value)


def _rows(spec: dict[str, Any], given: dict[str, Any]) -> Any:
    """A list argument: the client's own, the call's arguments as its one item (``one``), or
    zipped from per-field arguments (``from``: enqueue_many's payloads, keys, ids)."""
    src = spec.get("from")
    if src is None or spec.get("one"):
        return given.get(spec["name"]) if src is None else [[given.get(s) for s in src]]
    cols, n = _columns(spec, given)
    return [[None if col is None else col[i] for col in cols] for i in range(n)]


def _columns(spec: dict[str, Any], given: dict[str, Any]) -> tuple[list[Any], int]:
    """The per-field arguments of a ``from`` list (None: left out) and their length."""
    src, lead = spec["from"], spec["lead"]  # the column with no default (payloads) sets n
    cols = [None if given.get(s) is None and s != lead else _column(given.get(s), s) for s in src]
    n = len(cols[src.index(lead)])
    for s, col in zip(src, cols, strict=True):
        refuse(col is None or len(col) == n, "length", s, col, lead=lead, count=n)
    return cols, n


def _zipped(spec: dict[str, Any], given: dict[str, Any], max_payload: int) -> list[Any] | None:
    """A ``from`` list's ARGV (its count, then each item's fields), encoded column by
    column; None when a value is refused, so that the row path refuses the call with
    the error every port gives (the first bad item's, field by field).

    Why: a bulk enqueue spent more client time per event in the row path (a list per
    row, four encoder calls with their default lookups) than Redis spends on it; a
    column left out is its default once (an id column, new ids), a given one one
    comprehension (issue 10: enqueue_many x1000 against the leased design).
    """
    cols, n = _columns(spec, given)
    if not spec["min"] <= n <= spec["max"]:
        return None
    k = len(cols)
    flat: list[Any] = [None] * (k * n + 1)
    flat[0] = n
    try:
        for j, (col, column) in enumerate(zip(cols, column_encoders(spec), strict=True)):
            flat[1 + j::k] = column(col, n, max_payload)
    except HomingError:
        return None
    return flat


def call(name: str, service: str, max_payload: int, /, **given: Any) -> Call:
    """The Call for client call ``name`` of the table, its arguments checked and encoded.

    Arguments left out take the table's defaults; one given as None is None
    (refused unless its type is optional: a None count by mistake must not
    quietly become a count of 1); anything the table does not know is
    refused.
    """
    entry = CALLS[name]
    if service or not entry["global"]:  # a script of global keys only (beat) takes no service
        check_service(service)
    unknown = sorted(set(given) - set(entry["accepts"]))
    refuse(not unknown, "unknown", name, unknown, names=", ".join(unknown))
    args: list[Any] = []
    items: list[list[Any]] = []
    for spec in entry["args"]:
        arg, t = spec["name"], spec["type"]
        if t == "list" and "from" in spec and not spec.get("one") \
                and entry["reply"]["kind"] == "records":  # its parse needs no items
            flat = _zipped(spec, given, max_payload)
            if flat is not None:
                args.extend(flat)
                continue
        value = _rows(spec, given) if t == "list" else given[arg] if arg in given else \
            spec.get("default")
        out = encode_arg(spec, value, name if t == "list" else arg, max_payload)
        if t == "list":  # its count slot, right before it, sent nothing: the count goes here
            items, out = out, [len(out), *chain.from_iterable(out)]
        args.extend(out) if isinstance(out, list) else args.append(out)

    if entry["reply"]["kind"] == "records":
        rec = _RECORD_PARSE.get(name) or _RECORD_PARSE.setdefault(name, _records(entry))
        return Call(entry["script"], service, args, lambda r: rec(service, r))

    def parse(r: Any) -> Any:
        return _shape(entry, service, parse_reply(entry["reply"], r, items))

    return Call(entry["script"], service, args, parse)


def _records(entry: dict[str, Any]) -> Callable[[str, Any], Any]:
    """The parse of a ``records`` reply (a head, then rows of the same fields), made
    once per call from its reply and shape: each row one value type (``dequeue``'s
    Events, in ``dequeue_batch``'s Batch), one field picked (enqueue's ids), or the
    neutral dict of its fields (due_take's services); ``merge`` copies head fields
    into each row. Values go straight into the row's constructor with no dict per
    row on the way (issue 10: the dicts of a general parse cost ~10 us of CPU per
    event of a batch on this VM, in every consumer's hot loop).
    """
    reply, shape = entry["reply"], entry["shape"]
    head = [(f["name"], FIELD[f["type"]]) for f in reply["head"]]
    each = {f["name"]: (i, FIELD[f["type"]]) for i, f in enumerate(reply["each"])}
    merged = shape.get("merge", [])
    outer = _RECORDS[shape["record"]] if "record" in shape and not shape.get("rows") else None
    holds = (outer or {}).get("items", {})  # the record holding the rows: their field and type
    row_name = holds.get("record") if outer else shape.get("record")
    if row_name:  # its fields that the row, a merged head field or the service gives
        make: Callable[..., Any] = getattr(types, row_name)
        names = [k for k in _RECORDS[row_name]["fields"]
                 if k in each or k in merged or k == "service"]
        # Positional only if they are the value type's first fields, in its order.
        if [f.name for f in dataclasses.fields(make)][:len(names)] != names:
            make = (lambda t, ks: lambda *a: t(**dict(zip(ks, a, strict=True))))(make, names)
    elif "pick" in shape:
        names, make = [shape["pick"]], lambda v: v
    else:  # the neutral dict, as {**merged head fields, **row}
        names = [*merged, *(k for k in each if k not in merged)]
        make = lambda *a: dict(zip(names, a, strict=True))  # noqa: E731
    h, n = len(head), len(each)
    # One field picked (enqueue's ids): one comprehension over its column.
    picked = each[shape["pick"]] if names == [shape.get("pick")] and not row_name else None
    if not any(k in each for k in names):  # parse's map ends with a row's own field
        raise ValueError(f"records reply of {entry['script']}: its rows hold no field of theirs")

    def parse(service: str, r: Any) -> Any:
        if len(r) < h or (len(r) - h) % n:  # a row cut short: refused as zip(strict=True) does
            raise ValueError("zip() argument 2 is shorter than argument 1")
        top = {k: conv(v) for (k, conv), v in zip(head, r[:h], strict=True)}
        # Column by column: each field of the rows one slice of the reply, converted
        # by one map; a value the rows share (a merged head field, else the
        # service) repeated. A row's field overrides a merged head field, which
        # overrides the service. Why: a row loop copying a list and converting
        # field by field was a third of a consumer loop's client time per event.
        if picked is not None:
            rows = [picked[1](v) for v in r[h + picked[0]::n]]
        else:
            cols: list[Any] = []
            for k in names:
                if k in each:
                    j, conv = each[k]
                    cols.append(r[h + j::n] if conv is _same else map(conv, r[h + j::n]))
                else:
                    cols.append(repeat(top[k] if k in merged else service))
            rows = list(map(make, *cols))
        if shape.get("rows"):
            return rows[0] if shape.get("one") else rows
        if outer is None:
            return {**top, "items": rows}
        f = {"service": service, **top, holds.get("field", "items"): rows}
        return getattr(types, shape["record"])(**{k: f[k] for k in outer["fields"] if k in f})

    return parse


# Call name -> its records parse (see _records), made on the call's first use.
_RECORD_PARSE: dict[str, Callable[[str, Any], Any]] = {}
