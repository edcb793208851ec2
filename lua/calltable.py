"""The call table: every client call, its ARGV and its reply, as data every port reads.

Why: the scripts are shared, but the glue between a client method and its
script (argument order and encoding, reply parsing) used to be written once
per port and drifted. Here it is described once: each script's header types
its ARGV (``@arg NAME TYPE DOC``) and its reply (``@return KIND DOC``), and
conformance/calls.json names the client calls on top of the scripts. The
build checks both against each other and against the script bodies, and
writes one ``calls`` table into the manifest. A port is then a generic
builder and reply parser over this table (docs/protocol.md, "The call
table"), so a new script with its header and vectors gives every port the
call with no hand-written parsing.

The table is plain JSON of strings, numbers, lists and objects, with no
schema language: a port in a language without a JSON Schema library (Erlang)
reads it with a dozen pattern matches.

Standard library only: it runs before any virtual environment exists.
"""
from __future__ import annotations

import copy
import re

MAX_WHOLE = 2**53 - 1  # the largest whole number a Lua double holds exactly

# ARGV types. Each becomes {"type": NAME, ...bounds}; see docs/protocol.md.
SCALARS = {"ms", "token", "id", "key", "envelope", "result", "bool"}
PARAM_TYPES = {"whole", "text", "name", "config", "count", "list", "rest", "pairs"}
FIELD_TYPES = {"int", "str", "bool", "bytes", "num", "status"}
TYPE_RE = re.compile(r"^(\w+)(?:\((.*)\))?(\?)?$")


class TableError(Exception):
    """A header or calls.json entry breaks a rule of the call table."""


def _bound(text: str, limits: dict, where: str) -> int:
    if text == "max":
        return MAX_WHOLE
    if text in limits:
        return int(limits[text])
    if re.fullmatch(r"\d+", text):
        return int(text)
    raise TableError(f"{where}: bound {text!r} is not a number, 'max' or a limit of keys.json")


def arg_type(spec: str, limits: dict, where: str, *, field: bool = False) -> dict:
    """One ARGV type of a header, e.g. ``whole(1..batch)`` or ``list(id:id,token:token)``."""
    m = TYPE_RE.match(spec)
    if not m:
        raise TableError(f"{where}: cannot read the type {spec!r}")
    name, params, optional = m.group(1), m.group(2), bool(m.group(3))
    out: dict = {"type": name}
    if name in SCALARS:
        if params is not None:
            raise TableError(f"{where}: type {name} takes no parameters")
        if name in ("ms", "token"):
            out.update(min=0, max=MAX_WHOLE)
    elif name in PARAM_TYPES:
        if params is None:
            raise TableError(f"{where}: type {name} needs parameters")
        if name == "whole":
            lo, sep, hi = params.partition("..")
            if not sep:
                raise TableError(f"{where}: whole takes (LO..HI)")
            out.update(min=_bound(lo, limits, where), max=_bound(hi, limits, where))
        elif name in ("text", "name"):
            out["max"] = _bound(params, limits, where)
        elif name == "config":
            if params != "max_payload":
                raise TableError(f"{where}: the only client setting is max_payload")
            out["setting"] = params
        elif name == "count":
            out["of"] = params
        elif name == "pairs":
            if params != "policy":
                raise TableError(f"{where}: pairs takes (policy)")
            out["of"] = params
        elif name == "rest":
            # Absent is none; given, at least one (a purge of [] must not purge the oldest).
            out["item"] = arg_type(params, limits, where, field=True)
            out.update(min=1, max=int(limits["batch"]))
        elif name == "list":
            out["fields"] = fields(params, limits, where, arg=True)
            out.update(min=1, max=int(limits["batch"]))
    else:
        raise TableError(f"{where}: unknown type {name}")
    if field and name in ("count", "list", "rest", "pairs", "config"):
        raise TableError(f"{where}: a {name} cannot be a field of a list")
    if optional:
        if name not in ("ms", "whole", "id"):
            raise TableError(f"{where}: only ms, whole and id can be optional ('?')")
        out["optional"] = True
    return out


def fields(text: str, limits: dict, where: str, *, arg: bool) -> list[dict]:
    """``name:type,name:type`` as a list of {name, type...}; reply fields have plain types."""
    out = []
    for part in filter(None, text.split(",")):
        name, sep, typ = part.partition(":")
        if not sep or not name:
            raise TableError(f"{where}: field {part!r} is not name:type")
        if arg:
            out.append({"name": name, **arg_type(typ, limits, where, field=True)})
        else:
            if typ not in FIELD_TYPES:
                raise TableError(f"{where}: reply field type {typ!r} is not one of "
                                 f"{sorted(FIELD_TYPES)}")
            out.append({"name": name, "type": typ})
    names = [f["name"] for f in out]
    if len(set(names)) != len(names):
        raise TableError(f"{where}: a field name repeats in {text!r}")
    return out


REPLY_RE = re.compile(r"^(\w+)\((.*)\)$")


def reply_type(spec: str, limits: dict, where: str) -> dict:
    """The reply KIND of an @return line, e.g. ``tuple(a:int,b:bool)``."""
    m = REPLY_RE.match(spec)
    if not m:
        raise TableError(f"{where}: @return must start with KIND(...), got {spec!r}")
    kind, params = m.group(1), m.group(2)
    if kind == "value":
        if params not in FIELD_TYPES:
            raise TableError(f"{where}: value({params}) is not a reply field type")
        return {"kind": kind, "type": params}
    if kind == "tuple":
        return {"kind": kind, "fields": fields(params, limits, where, arg=False)}
    if kind == "records":
        head, sep, each = params.partition("|")
        if not sep or not each:
            raise TableError(f"{where}: records takes (HEAD|EACH), HEAD may be empty")
        return {"kind": kind, "head": fields(head, limits, where, arg=False),
                "each": fields(each, limits, where, arg=False)}
    if kind == "items":
        if params not in ("int", "ok"):
            raise TableError(f"{where}: items takes (int) or (ok)")
        return {"kind": kind, "ok": params}
    if kind == "union":
        cases = {}
        for case in params.split(";"):
            tag, _, rest = case.partition(":")
            cases[tag] = fields(rest, limits, where, arg=False)
        return {"kind": kind, "cases": cases}
    if kind == "map":
        if params != "num":
            raise TableError(f"{where}: map takes (num)")
        return {"kind": kind, "value": params}
    raise TableError(f"{where}: unknown reply kind {kind}")


def script_signature(name: str, head: dict, limits: dict) -> tuple[list[dict], dict]:
    """A script's typed ARGV and reply from its header; checks their order rules."""
    args = []
    for arg_name, doc in head["arg"]:
        typ, _, rest = doc.partition(" ")
        args.append({"name": arg_name, **arg_type(typ, limits, f"{name}.lua @arg {arg_name}"),
                     "doc": rest.strip()})
    names = [a["name"] for a in args]
    for i, a in enumerate(args):
        where = f"{name}.lua @arg {a['name']}"
        # The count comes right before its list, which the scripts read as
        # ARGV[count+...]; a port sends the length with the list's items.
        if a["type"] == "count" and names[i + 1:i + 2] != [a["of"]]:
            raise TableError(f"{where}: count({a['of']}) must come right before a list of "
                             "that name")
        if a["type"] in ("list", "rest", "pairs") and i != len(args) - 1:
            raise TableError(f"{where}: a {a['type']} must be the last argument")
        if a["type"] == "list" and not any(b["type"] == "count" and b["of"] == a["name"]
                                           for b in args):
            raise TableError(f"{where}: a list needs a count({a['name']}) before it")
    spec, _, rdoc = head["return"][0].partition(" ")
    if not spec:
        raise TableError(f"{name}.lua: @return is missing")
    reply = reply_type(spec, limits, f"{name}.lua @return")
    reply["doc"] = rdoc.strip()
    return args, reply


def fixed_arity(args: list[dict]) -> int | None:
    """How many ARGV a script takes, or None when a list, rest or pairs makes it vary."""
    if any(a["type"] in ("list", "rest", "pairs") for a in args):
        return None
    return len(args)


def check_arity(name: str, args: list[dict], body: str) -> None:
    """A fixed-arity script's argc(N) must match its header's @arg count."""
    n = fixed_arity(args)
    found = [int(x) for x in re.findall(r"^argc\((\d+)\)", body, re.MULTILINE)]
    if n is not None and found and found != [n]:
        raise TableError(f"{name}.lua: header declares {n} arguments, body checks argc{found}")


CALL_KEYS = {"script", "doc", "args", "returns", "creates", "batch_of", "items_from",
             "pick", "merge_head", "record", "rename", "defaults"}


def client_calls(calls: dict, scripts: dict, global_keys: frozenset = frozenset()) -> dict:
    """conformance/calls.json joined with the script signatures: the manifest's ``calls``.

    Each client call gets its script's ARGV (with the call's defaults) and
    reply, and the shaping that turns the reply into the port's value:
    ``batch_of`` (a single form: one item of that batch call, its error
    raised), ``items_from`` (a batch's list zipped from per-field client
    arguments), ``pick`` (one field of each record), ``merge_head`` (the head
    fields, named, copied into each record; the other head fields dropped),
    ``record`` (the port's type name).
    What the ports would otherwise each work out is written in too:
    ``accepts`` (every argument name the call takes), ``global`` (its keys
    are all global: it takes no service) and ``items_lead`` (the
    ``items_from`` column with no default, which sets the list's length);
    ``derive`` adds the rest once the records are known.
    """
    out = {}
    for cname, c in calls.items():
        where = f"calls.json {cname}"
        unknown = set(c) - CALL_KEYS
        if unknown:
            raise TableError(f"{where}: unknown fields {sorted(unknown)}")
        script = scripts.get(c["script"])
        if script is None:
            raise TableError(f"{where}: no script {c['script']}")
        entry = {"script": c["script"], "creates": bool(c.get("creates", False)),
                 "args": script["argv"], "reply": script["reply"],
                 "client_args": c.get("args", {}),
                 "accepts": sorted(set(c.get("args", {})) | {a["name"] for a in script["argv"]}),
                 "global": set(script["keys"]) <= global_keys}
        lead = [src for src, f in c.get("items_from", {}).items() if f not in c.get("defaults", {})]
        if "items_from" in c:
            if not lead:
                raise TableError(f"{where}: every items_from column has a default; one must not")
            entry["items_lead"] = lead[0]
        for k in ("batch_of", "items_from", "pick", "merge_head", "record", "rename",
                  "defaults", "doc"):
            if k in c:
                entry[k] = c[k]
        out[cname] = entry
    for cname, entry in out.items():
        where = f"calls.json {cname}"
        b = entry.get("batch_of")
        if b is not None and (b not in out or out[b]["script"] != entry["script"]):
            raise TableError(f"{where}: batch_of {b} must be a call of the same script")
        if b is None:
            _check_call_args(where, entry)
        pick, reply = entry.get("pick"), entry["reply"]
        merge = entry.get("merge_head")
        if merge is not None:
            head = [f["name"] for f in reply.get("head", [])]
            if reply["kind"] != "records" or not isinstance(merge, list) or not merge \
                    or not set(merge) <= set(head):
                raise TableError(f"{where}: merge_head must list head fields of a records "
                                 f"reply ({head}), got {merge!r}")
        if pick is not None:
            names = [f["name"] for f in reply.get("fields", reply.get("each", []))]
            if pick not in names:
                raise TableError(f"{where}: pick {pick} is not a reply field ({names})")
    used = {e["script"] for e in out.values()}
    missing = sorted(set(scripts) - used)
    if missing:
        raise TableError(f"calls.json: scripts {missing} have no client call")
    return out


def _check_call_args(where: str, entry: dict) -> None:
    """Every ARGV slot is filled: by a client argument of its name, a default or the client."""
    client = set(entry["client_args"])
    zipped = entry.get("items_from", {})
    defaults = entry.get("defaults", {})
    for a in entry["args"]:
        if a["type"] in ("config", "count"):
            continue  # filled by the port: its setting, the list's length
        if a["name"] in client or a["name"] in defaults:
            continue
        if a["type"] == "list" and zipped:
            cols = set(zipped.values())
            want = {f["name"] for f in a["fields"]}
            if cols != want:
                raise TableError(f"{where}: items_from fills {sorted(cols)}, the list has "
                                 f"{sorted(want)}")
            for src in zipped:
                if src not in client:
                    raise TableError(f"{where}: items_from names {src}, not a client argument")
            continue
        if a.get("optional"):
            continue
        raise TableError(f"{where}: nothing fills the script's argument {a['name']}")
    known = {a["name"] for a in entry["args"]} | set(zipped)
    extra = client - known - set(entry.get("rename", {}))
    if extra:
        raise TableError(f"{where}: client arguments {sorted(extra)} fill no script argument")


def records(spec: dict, table: dict) -> dict:
    """calls.json ``records`` as the manifest's: each port value type's fields, checked.

    Why: the ports used to map each record name to their type by hand (one
    constructor call per type, per port). A list of field names in
    constructor order is enough for a port to build any of them: by keyword
    (Python) or by position (JavaScript). ``service`` is the call's service;
    ``NAME:RECORD`` is the field that holds the reply's records, each made a
    RECORD. The build refuses a record that would drop a reply field.
    """
    out: dict = {}
    for rname, names in spec.items():
        entry: dict = {"fields": []}
        for n in names:
            field, sep, each = n.partition(":")
            if sep:
                if each not in spec:
                    raise TableError(f"calls.json records {rname}: {each} is not a record")
                entry["items"] = {"field": field, "record": each}
            entry["fields"].append(field)
        out[rname] = entry
    for cname, c in table.items():
        rname = c.get("record")
        if rname is None:
            continue
        if rname not in out:
            raise TableError(f"calls.json {cname}: record {rname} is not in records")
        reply, rec = c["reply"], out[rname]
        merged = set(c.get("merge_head") or [])
        if reply["kind"] == "records" and merged and "items" not in rec:
            # A list of records with the named head fields merged in; the other head
            # fields are left to a call that keeps them (dequeue's wait_ms: dequeue_batch).
            have = [f for f in reply["head"] if f["name"] in merged] + reply["each"]
        elif reply["kind"] == "records":
            # The record holds the records (NAME:RECORD); merged head fields go into each.
            have = [f for f in reply["head"] if f["name"] not in merged]
            if "items" not in rec:
                raise TableError(f"calls.json {cname}: record {rname} has no NAME:RECORD field "
                                 "for the reply's records")
            each = out[rec["items"]["record"]]["fields"]
            lost = ({f["name"] for f in reply["each"]} | merged) - set(each)
            if lost:
                raise TableError(f"calls.json {cname}: {rec['items']['record']} drops "
                                 f"{sorted(lost)}")
        elif reply["kind"] == "union":
            have = [{"name": "state"}] + [f for case in reply["cases"].values() for f in case]
        else:
            have = reply.get("fields", [])
        lost = {f["name"] for f in have} - set(rec["fields"])
        if lost:
            raise TableError(f"calls.json {cname}: record {rname} drops reply fields "
                             f"{sorted(lost)}")
    return out


# Why one text per refusal, here: the ports used to word each refusal their own
# way (Python's "a lease token is a whole number >= 0", JavaScript's "... in
# [0, 2^53 - 1]"). A port fills {what} (the argument as its API names it) and
# {value} (the refused value as it shows one: a list by its length); the other
# names are the slot's own fields (min, max), a list's field names ({names})
# and the policy fields ({known}).
REFUSALS = {
    "whole": "{what} must be a whole number in [{min}, {max}], got {value}",
    "ms": "{what} must be a finite number in [0, 2^53 - 1], got {value}",
    # An integer, as every port's dequeue hands one out: a float (5.0) or text ("5")
    # is refused in every port (JavaScript alone cannot tell 5.0 from 5).
    "token": "{what} must be a lease token, an integer in [0, 2^53 - 1] (no float, no "
             "text), got {value}",
    "key": "{what} must be text (an idempotency key) or none, got {value}",
    "text": "{what} must be text, got {value}",
    "name": "{what} must be 1..{max} bytes of text, got {value}",
    "pairs": "{what} takes a mapping of policy field to number, got {value}",
    "policy": "{what} must be a policy field ({known}) set to a finite number or none "
              "(none removes the override), got {value}",
    "list": "{what} takes a list of {min}..{max} items, got {value}",
    "rest": "{what} takes none or a list of {min}..{max} items, got {value}",
    "item": "{what} items are ({names}), the first {need} required, got {value}",
    "column": "{what} takes a list (or any iterable), got {value}",
    "length": "{what} must be as many as {lead} ({count}), got {value}",
    "type": "{what}: the call table has no type {value}",
    # An argument name the call does not take (not in its ``accepts``): {what} is the
    # call as the port's API names it, {names} the names refused, in table order
    # (sorted by the table's snake_case names), each as the port's API spells it.
    # Refused, never ignored: a typo (``prority``) must not quietly send the default.
    "unknown": "{what} takes no argument {names}",
    # Not INVALID_ARGUMENT but PAYLOAD_TOO_LARGE: an envelope (or result) over the
    # client's max_payload; {size} is its encoded length, {max} the setting.
    "payload": "encoded payload is {size} bytes, over the limit of {max}; nothing was written",
    # INVALID_NAME: a service name or an event id outside its layout pattern; {what}
    # is "service name" or "event id", {pattern} the pattern of lua/keys.json.
    "pattern": "invalid {what} {value}: use 1-128 characters of letters, digits, '_', '.' and "
               "'-', not starting with '.' or '-' (pattern {pattern})",
}


def derive(table: dict, records_out: dict) -> None:
    """Write into each call what a port would otherwise work out from it at run time.

    Why: each port used to derive these itself, each its own way (Python and
    JavaScript with their own loops, Erlang with another). Written here once,
    a port's call layer only reads them (docs/protocol.md, "Worked out by the
    build"); nothing existing changes, so a port that ignores them still works.

    - every ARGV slot and list field a default fills carries it, ``default``
      (a single form takes its batch call's defaults);
    - a list slot carries ``need`` (its fields up to the last one with no
      default: an item may leave out the rest) and, when the client does not
      pass the list itself, ``from``: per field, the client argument it comes
      from, with ``lead`` (the argument that sets the length: ``items_from``)
      or ``one`` (the call's own arguments are its one item: ``batch_of``);
    - ``shape``: how the neutral reply becomes the port's value, in one form
      for every call (see docs/protocol.md).
    """
    for entry in table.values():
        batch = table.get(entry.get("batch_of", ""))
        defaults = {**(batch or {}).get("defaults", {}), **entry.get("defaults", {})}
        entry["args"] = args = copy.deepcopy(entry["args"])
        for a in args:
            for f in (a, *a.get("fields", ())):
                if f["name"] in defaults:
                    f["default"] = defaults[f["name"]]
            if a["type"] != "list":
                continue
            names = [f["name"] for f in a["fields"]]
            a["need"] = max([0] + [i + 1 for i, n in enumerate(names) if n not in defaults])
            if batch is not None:
                a.update({"from": names, "one": True})
            elif "items_from" in entry:
                source = {field: src for src, field in entry["items_from"].items()}
                a.update({"from": [source[n] for n in names], "lead": entry["items_lead"]})
    for entry in table.values():
        entry["shape"] = _shape(table.get(entry.get("batch_of", ""), entry), records_out)
        if "batch_of" in entry:
            entry["shape"]["one"] = True


def _shape(entry: dict, records_out: dict) -> dict:
    """A call's reply shaping as {merge?, rows?, pick?, record?}, applied in that order.

    ``merge``: the head fields copied into each record; ``rows``: the value is
    the list of records (the head dropped), else the records stay under
    ``items`` (a record type that holds them: Batch, DeadPage); ``pick`` or
    ``record``: applied to each record when ``rows``, else to the value.
    """
    out: dict = {k: entry[k] for k in ("pick", "record") if entry.get(k) is not None}
    if entry.get("merge_head"):
        out["merge"] = entry["merge_head"]
    holder = "items" in records_out.get(entry.get("record") or "", {})
    if entry["reply"]["kind"] == "records" and ("pick" in out or ("merge" in out and not holder)):
        out["rows"] = True
    return out
