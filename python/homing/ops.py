"""Each homing call as data, built from the manifest's call table.

Sans-IO on purpose: the sync and asyncio clients (and the conformance runner)
execute the same ``Call`` objects, so their behaviour cannot drift. Nothing
here is written per call: ``lua/build.py`` joins each script's typed header
with conformance/calls.json into the manifest's ``calls`` table (ARGV order,
types and bounds, reply shape), and ``call()`` encodes arguments and parses
replies by that table alone. A new script with its header gives this port
the call with no code here; only the names of the value types it returns
(``RECORDS``) are this port's own. The argument checks that need no Redis
(and the typed errors they raise, before anything is sent) are in
``homing.argtypes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .argtypes import (  # noqa: F401 - whole, seconds... are imported from here too
    at_ms,
    encode_arg,
    new_id,
    seconds,
    whole,
    worker_options,
)
from .errors import HomingError, InvalidArgumentError, error_for
from .manifest import GLOBAL_KEYS, MANIFEST, SCRIPTS, STATUS_NAMES, check_service
from .types import (
    DeadLetter,
    DeadPage,
    DistributeResult,
    Event,
    FailOutcome,
    PromoteResult,
    Recurring,
    RecurringPage,
    Status,
)

CALLS: dict[str, dict[str, Any]] = MANIFEST["calls"]


@dataclass(frozen=True)
class Call:
    """One script invocation: the clients turn ``service`` into the script's KEYS."""

    script: str
    service: str
    args: list[Any]
    parse: Callable[[Any], Any]


# The port's value type for each record name of the table (calls.json "record").
RECORDS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    "Event": lambda service, f: Event(service, **f),
    "FailOutcome": lambda service, f: FailOutcome(**f),
    "DeadPage": lambda service, f: DeadPage(f["total"], [DeadLetter(**x) for x in f["items"]]),
    "Status": lambda service, f: Status(**f),
    "PromoteResult": lambda service, f: PromoteResult(**f),
    "DistributeResult": lambda service, f: DistributeResult(**f),
    "RecurringPage": lambda service, f: RecurringPage(
        f["total"], [Recurring(**x) for x in f["items"]]),
}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _num(v: Any) -> int | float | str:
    """A number (text numbers parsed); text that is none is returned as it is.

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
FIELD: dict[str, Callable[[Any], Any]] = {
    "int": int, "str": _s, "bool": lambda v: v == 1, "bytes": lambda v: v, "num": _num,
    "status": lambda v: STATUS_NAMES.get(_s(v), _s(v)),
}


def _doc(err: Any) -> str:
    """An error class's description on one line (docstrings are wrapped)."""
    return " ".join((err.__doc__ or "").split())


def _item_error(code: Any, item: Sequence[Any]) -> HomingError:
    code = _s(code)
    cls = type(error_for(code, ""))
    return cls(f"{code}: event {item[0]} (token {item[1]}): {_doc(cls)}")


def _fields(specs: list[dict[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    return {f["name"]: FIELD[f["type"]](v) for f, v in zip(specs, values, strict=True)}


def parse_reply(reply_spec: dict[str, Any], r: Any, items: list[Sequence[Any]]) -> Any:
    """A raw reply as the table's neutral value (dicts, lists and scalars)."""
    kind = reply_spec["kind"]
    if kind == "value":
        return FIELD[reply_spec["type"]](r)
    if kind == "tuple":
        return _fields(reply_spec["fields"], r)
    if kind == "records":
        head, each = reply_spec["head"], reply_spec["each"]
        n, h = len(each), len(head)
        out = _fields(head, r[:h])
        out["items"] = [_fields(each, r[i:i + n]) for i in range(h, len(r), n)]
        return out
    if kind == "items":
        ok_int = reply_spec["ok"] == "int"
        return [(v if ok_int else None) if (isinstance(v, int) if ok_int else v == b"OK")
                else _item_error(v, item) for v, item in zip(r, items, strict=True)]
    if kind == "union":
        tag = _s(r[0])
        case = reply_spec["cases"].get(tag)
        if case is None:
            raise HomingError(f"reply tag {tag!r} is not one of {sorted(reply_spec['cases'])}")
        return {"state": tag, **_fields(case, r[1:])}
    if kind == "map":
        return {_s(r[i]): _num(r[i + 1]) for i in range(0, len(r), 2)}
    raise HomingError(f"unknown reply kind {kind}")


def _shape(entry: dict[str, Any], service: str, value: Any) -> Any:
    """The neutral value as this port's: picked field, merged head, record type."""
    reply = entry["reply"]
    make = RECORDS.get(entry.get("record", ""))
    if reply["kind"] == "records":
        items = value["items"]
        if entry.get("merge_head"):
            head = {k: v for k, v in value.items() if k != "items"}
            items = [{**head, **it} for it in items]
            value = items
        if "pick" in entry:
            return [it[entry["pick"]] for it in items]
        if make is not None and entry.get("merge_head"):
            return [make(service, it) for it in items]
    elif "pick" in entry:
        return value[entry["pick"]]
    if make is not None:
        return make(service, value)
    if reply["kind"] == "tuple":
        return tuple(value.values())
    return value


def _list_items(entry: dict[str, Any], spec: dict[str, Any], given: dict[str, Any],
                name: str) -> Any:
    """The items of a list argument: given as such, or zipped from per-field arguments."""
    columns = entry.get("items_from")
    if not columns or spec["name"] in given:
        return given.get(spec["name"])
    lists = {field: given.get(src) for src, field in columns.items()}
    # The column that has no default sets the length (payloads; ids and keys may be left out).
    defaults = entry.get("defaults", {})
    lead = next(src for src, field in columns.items() if field not in defaults)
    rows = given.get(lead)
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, (list, tuple)):
        if rows is not None and not isinstance(rows, (str, bytes, dict)):
            try:
                rows = list(rows)
            except TypeError:
                rows = None
        if not isinstance(rows, list):
            raise InvalidArgumentError(f"{name} takes a list of {lead}, got "
                                       f"{type(given.get(lead)).__name__}")
    n = len(rows)
    for src, field in columns.items():
        col = rows if src == lead else lists[field]
        if col is not None and (isinstance(col, (str, bytes)) or not isinstance(col, Sequence)):
            raise InvalidArgumentError(f"{src} takes a list, got {type(col).__name__}")
        if col is not None and len(col) != n:
            raise InvalidArgumentError(f"{src} must be as many as {lead}")
        lists[field] = col
    order = [f["name"] for f in spec["fields"]]
    return [tuple(None if lists[f] is None else lists[f][i] for f in order) for i in range(n)]


def call(name: str, service: str, max_payload: int, /, **given: Any) -> Call:
    """The Call for client call ``name`` of the table, its arguments checked and encoded.

    Arguments left out take the table's defaults; anything the table does not
    know is refused. A batch call's single form (``batch_of``) is the
    batch of one, its item's error raised.
    """
    entry = CALLS[name]
    batch = entry.get("batch_of")
    if batch is not None:
        target = CALLS[batch]
        spec = next(a for a in target["args"] if a["type"] == "list")
        names = [f["name"] for f in spec["fields"]]
        item = tuple(given.pop(f, None) for f in names)
        inner = call(batch, service, max_payload, **{spec["name"]: [item]}, **given)

        def single(r: Any) -> Any:
            out = inner.parse(r)[0]
            if isinstance(out, HomingError):
                raise out
            return out

        return Call(inner.script, service, inner.args, single)
    # A script whose keys are all global (beat, worker_beat) takes no service.
    if service or not set(SCRIPTS[entry["script"]].keys) <= GLOBAL_KEYS:
        check_service(service)
    known = set(entry["client_args"]) | {a["name"] for a in entry["args"]}
    unknown = set(given) - known
    if unknown:
        raise InvalidArgumentError(f"{name} takes no argument {', '.join(sorted(unknown))}")
    defaults = entry.get("defaults", {})
    args: list[Any] = []
    items: list[Sequence[Any]] = []
    lists = {a["of"] for a in entry["args"] if a["type"] == "count"}
    count_at = -1
    for spec in entry["args"]:
        arg = spec["name"]
        if spec["type"] == "config":
            args.append(max_payload)
            continue
        if spec["type"] == "count":
            count_at = len(args)  # filled in once its list is known
            args.append(0)
            continue
        # An argument left out takes the table's default; one given as None is
        # None (refused unless its type is optional): a None count by mistake
        # must not quietly become a count of 1.
        if spec["type"] == "list":
            value = _list_items(entry, spec, given, name)
        else:
            value = given[arg] if arg in given else defaults.get(arg)
        encoded = encode_arg(spec, value, arg, max_payload, defaults)
        if arg in lists:
            width = len(spec["fields"])
            items = [encoded[i:i + width] for i in range(0, len(encoded), width)]
            args[count_at] = len(items)
        args.extend(encoded) if spec["type"] in ("list", "rest", "pairs") else args.append(encoded)
    reply = entry["reply"]

    def parse(r: Any) -> Any:
        return _shape(entry, service, parse_reply(reply, r, items))

    return Call(entry["script"], service, args, parse)
