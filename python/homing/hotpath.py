"""The call table's work for one call shape, decided once: what a single ``enqueue`` runs.

Why: ``ops.call`` reads the table on every call (the unknown-argument check
builds two sets, each argument's spec is looked up, each value goes through
``encode_arg``'s generic lookups, and the reply is parsed into four dicts on
its way to one id): ~16 us of CPU of a single ``enqueue`` on this VM, as much
as the lane's whole send and read. A web request's enqueue pays it every time.

What is decided once per (call, names of the arguments given), from the same
table: whether those names are all known, and each argument's encoder. What
still runs on every call, for every value: each encoder's check (an id's
pattern, a priority's bounds, a key's type, the envelope's size and
encodability), so a refused call writes nothing and raises the same typed
error with the same text (a value a fast check does not take goes through
``encode_arg`` itself). Only calls whose table entry is the shapes below are
compiled; any other (or a shape with an unknown name) takes ``ops.call``,
which refuses or runs it as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import argtypes, ops
from .manifest import check_service

Builder = Callable[[dict[str, Any], int], list[Any]]
# (call, names given) -> its builder, or None (that shape takes ops.call)
_BUILDERS: dict[tuple[str, tuple[str, ...]], Builder | None] = {}
_MAX_SHAPES = 1000  # a caller looping over odd shapes must not grow this for ever


def _item_encoder(f: dict[str, Any]) -> Callable[[Any, int], Any]:
    """``argtypes``' encoder of one item field, with a new id made directly."""
    t, default, optional = f["type"], f.get("default"), f.get("optional")
    full, name = argtypes._encoder(f), f["name"]

    def enc(v: Any, mp: int) -> Any:  # as argtypes' list encoder: None takes the default
        return full(default if v is None else v, name, mp)

    if t == "id" and default == "$new_id":
        return lambda v, mp: argtypes.new_id() if v is None else enc(v, mp)
    if t == "envelope" and default is None and not optional:  # what ENCODE's envelope does
        return lambda v, mp: argtypes.encoded(v, mp)
    if t == "key" and not optional:  # a str is taken as it is; anything else as the table says
        return lambda v, mp: v if type(v) is str else enc(v, mp)
    return enc


def _scalar(spec: dict[str, Any], arg: str) -> Callable[[dict[str, Any], int], Any]:
    """One argument outside a list: left out, its default; given as None, None (as ops.call)."""
    default = spec.get("default")
    return lambda given, mp: argtypes.encode_arg(spec, given.get(arg, default),
                                                 arg, mp)


def _compile(name: str, shape: tuple[str, ...]) -> Builder | None:
    entry = ops.CALLS[name]
    if entry["global"] or not set(shape) <= set(entry["accepts"]):
        return None  # the general path refuses the unknown names (or runs beat)
    steps: list[tuple[str, Any]] = []
    for spec in entry["args"]:
        t = spec["type"]
        if t == "config":
            steps.append(("mp", None))
        elif t == "count":
            continue  # its list, right after, sends the count
        elif t == "list" and spec.get("one") and spec.get("from") \
                and spec["min"] <= 1 <= spec["max"] and spec["need"] <= len(spec["fields"]):
            fields = spec["fields"]
            if [f["name"] for f in fields] != spec["from"]:
                return None
            steps.append(("one", [(f["name"], _item_encoder(f)) for f in fields]))
        elif t not in ("list", "rest", "pairs"):
            steps.append(("arg", _scalar(spec, spec["name"])))
        else:
            return None

    def build(given: dict[str, Any], mp: int) -> list[Any]:
        args: list[Any] = []
        for kind, step in steps:
            if kind == "mp":
                args.append(mp)
            elif kind == "one":  # the call's arguments as the list's one item: count 1
                args.append(1)
                args.extend([enc(given.get(n), mp) for n, enc in step])
            else:
                args.append(step(given, mp))
        return args

    return build


def builder(name: str, shape: tuple[str, ...]) -> Builder | None:
    """The compiled argument build of call ``name`` given these argument names, or None."""
    key = (name, shape)
    try:
        return _BUILDERS[key]
    except KeyError:
        pass
    found = _compile(name, shape) if name in ops.CALLS else None
    if len(_BUILDERS) < _MAX_SHAPES:
        _BUILDERS[key] = found
    return found


def one_id_parse(name: str) -> Callable[[Any], Any] | None:
    """The reply parse of a call whose shape picks one field of its one record (enqueue's
    id), straight from the reply; None for any other. A reply of any other length takes
    the general parse, so it fails as it did."""
    entry = ops.CALLS[name]
    reply, shape = entry["reply"], entry["shape"]
    if reply["kind"] != "records" or reply["head"] or not shape.get("one") \
            or not shape.get("rows") or "pick" not in shape:
        return None
    each = reply["each"]
    names = [f["name"] for f in each]
    if shape["pick"] not in names:
        return None
    at = names.index(shape["pick"])
    conv = ops.FIELD[each[at]["type"]]
    n = len(each)
    return lambda r: conv(r[at]) if type(r) is list and len(r) == n else None


_ONE_ID: dict[str, Callable[[Any], Any] | None] = {n: one_id_parse(n) for n in ops.CALLS}


class Services:
    """Service names this client has checked: a valid name is checked once, not per call.

    Only exact ``str`` values are remembered (a subclass could compare equal and
    differ); anything else, and names past the bound, are checked every time.
    """

    def __init__(self, bound: int = 10000) -> None:
        self._ok: set[str] = set()
        self._bound = bound

    def check(self, service: Any) -> str:
        if type(service) is str and service in self._ok:
            return service
        check_service(service)
        if type(service) is str and len(self._ok) < self._bound:
            self._ok.add(service)
        return service


def call(name: str, service: str, max_payload: int, services: Services,
         given: dict[str, Any]) -> ops.Call:
    """``ops.call(name, service, max_payload, **given)``, by the compiled build when it has one.

    Only for calls with a direct reply parse (``one_id_parse``); the others take ops.call.
    """
    direct = _ONE_ID.get(name)
    build = None if direct is None else builder(name, tuple(given))
    if build is None:
        return ops.call(name, service, max_payload, **given)
    services.check(service)
    args = build(given, max_payload)
    entry = ops.CALLS[name]

    def parse(r: Any) -> Any:
        got = direct(r)
        if got is None:  # not one record: the general parse (rare: built again) says what is wrong
            return ops.call(name, service, max_payload, **given).parse(r)
        return got

    return ops.Call(entry["script"], service, args, parse)
