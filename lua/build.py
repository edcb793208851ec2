#!/usr/bin/env python3
"""Flatten homing's Lua scripts into one manifest that every client loads.

Why a build step: the scripts share small includes (clock, policy, bookkeeping
record), and Redis runs one self-contained source per EVALSHA. Rather than let
each client library concatenate files its own way (and drift, as BullMQ's
hand-kept script lists did), this file does it once and writes a JSON manifest:
for each script its name, version, ordered key names, sha1 and flattened
source, plus the error-code table and the key layout. Clients only read it.

The build also generates, from each script's header, a prologue that binds the
declared keys to names (``K.ready``) and checks every key's Redis type before
the script body runs, so a foreign key of the wrong type is refused with
WRONG_TYPE before anything is written. It refuses to build a script whose body
uses a key or error code its header does not declare, or whose header declares
a key its body never uses (on a Cluster whose slot is migrating, a call with a
declared key that does not exist is refused with TRYAGAIN).

Each flattened script keeps only the top-level functions and tables of the
generated prologue and of its includes that it reaches (lua/deadcode.py):
Redis builds every top-level local again on each call, so a single enqueue
used to pay for ~40 functions it never called. The checks above read what is
left, so a key only a dropped function used must not be declared. The
generated constant tables are then read in place (``K.ready`` is ``KEYS[1]``,
``LIMITS.batch`` ``(1000)``, ``DEFAULTS.f`` its value), so a script that only
reads them builds none of them. And the functions marked ``--@cold`` (called
only on rare paths) are built on first use instead of on every call
(lua/cold.py).

Standard library only: it runs before any virtual environment exists.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import calltable  # noqa: E402 - beside this file, found through the path set above
import cold  # noqa: E402 - the same
import deadcode  # noqa: E402 - the same

HEADER_RE = re.compile(r"^--\[\[\n(.*?)\n\]\]\n", re.DOTALL)
TAG_RE = re.compile(r"^@(\w+)\s*(.*)$")
INCLUDE_RE = re.compile(r"^--@include (\w+)\s*$", re.MULTILINE)


# What a script does to memory decides whether a full Redis (maxmemory with
# noeviction) may run it, through the Redis 7 shebang flags:
# - grows: it adds data (a producer). Plain '#!lua': a full Redis refuses it
#   before its first command, so nothing is written and the caller is told.
# - level: it frees memory or keeps it level (draining: dequeue, acks,
#   retries, reclaims). allow-oom: it runs on a full Redis, which is how a
#   full Redis is drained.
# - none: it only reads. no-writes: it runs on a full Redis (and a replica).
# - checked: no shebang (compatibility mode, where Redis refuses only a first
#   write that may grow memory); the script probes for a full Redis itself and
#   decides per item (complete: a result larger than the payload it frees).
MEMORY = {"grows": "#!lua", "level": "#!lua flags=allow-oom",
          "none": "#!lua flags=no-writes", "checked": None}


class BuildError(Exception):
    """A script or data file breaks a rule of the manifest."""


def load_json(name: str) -> dict:
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def parse_header(path: Path, text: str) -> dict:
    """Read the @-tagged header block that opens every script.

    Tags: @script, @version, @memory CLASS, @summary, @key NAME, @arg NAME TYPE DOC,
    @return KIND DOC, @error CODE DOC (the types and kinds: lua/calltable.py), and
    two that tell clients how to treat a write: @wait (with ``wait_replicas``,
    follow it with WAIT: a producer's write or an acknowledgement that must survive
    a failover) and @repeats COUNTER (a repeat of the same id or idempotency key is
    answered without a write; the real write increments counters field COUNTER).
    A line without a tag continues the tag above it.
    """
    m = HEADER_RE.match(text)
    if not m:
        raise BuildError(f"{path.name}: must open with a --[[ ... ]] header block")
    head: dict = {"key": [], "arg": [], "error": [], "return": [""], "summary": [""]}
    last: list | None = None
    for line in m.group(1).splitlines():
        line = line.strip()
        tm = TAG_RE.match(line)
        if not tm:
            if last is not None and line:
                last[-1] = (last[-1] + " " + line).strip()
            continue
        tag, rest = tm.group(1), tm.group(2).strip()
        if tag in ("script", "version", "memory", "repeats"):
            head[tag], last = rest, None
        elif tag == "wait":
            head[tag], last = True, None
        elif tag in ("key", "arg", "error"):
            name, _, doc = rest.partition(" ")
            last = [name, doc.strip()]
            head[tag].append(last)
        elif tag in ("return", "summary"):
            last = head[tag]
            last[-1] = (last[-1] + " " + rest).strip()
        else:
            raise BuildError(f"{path.name}: unknown header tag @{tag}")
    for need in ("script", "version", "memory"):
        if need not in head:
            raise BuildError(f"{path.name}: header lacks @{need}")
    if head["script"] != path.stem:
        raise BuildError(f"{path.name}: @script {head['script']} must match the file name")
    if not head["version"].isdigit():
        raise BuildError(f"{path.name}: @version must be a whole number")
    if head["memory"] not in MEMORY:
        raise BuildError(f"{path.name}: @memory must be one of {sorted(MEMORY)}")
    return head


def flatten(body: str, seen: set[str], removable: bool = False) -> list[tuple[bool, str]]:
    """Replace each ``--@include name`` by include/name.lua, once per script.

    The pieces come back in order as (removable, text): an include's text is
    removable (lua/deadcode.py may drop what the script never uses), the
    script's own is not.
    """
    pieces, pos = [], 0
    for m in INCLUDE_RE.finditer(body):
        pieces.append((removable, body[pos:m.start()]))
        pos = m.end()
        name = m.group(1)
        if name in seen:
            continue
        seen.add(name)
        inc = HERE / "include" / f"{name}.lua"
        if not inc.exists():
            raise BuildError(f"unknown include {name}")
        pieces.append((True, f"-- include {name}\n"))
        pieces += flatten(inc.read_text(encoding="utf-8"), seen, True)
    pieces.append((removable, body[pos:]))
    return pieces


def prologue(head: dict, layout: dict, errors: list[dict]) -> str:
    """Generated preamble: error codes, schema, defaults, key names, type guard.

    The type guard rule. Redis itself refuses a command on a key of the wrong
    type (WRONGTYPE), and a refused ``redis.call`` aborts the script. That is
    harmless before the script's first write (nothing was written) and harmful
    after it (Redis has no rollback: a half-done batch). So a key needs checking
    up front only when the script may write it, or read it, after its first
    write without having touched it before. The guard checks every declared key
    with TYPE before the body runs, except those whose ``@key`` line says
    ``unguarded: <why>``; the why must name the command that touches the key
    before any write (or why a failure there writes nothing), and the body
    sends that command through ``on(key, ...)`` (lua/include/base.lua) so the
    refusal is still the typed WRONG_TYPE naming the key. A TYPE call costs as
    much as a small command, so on a per-event path (a single enqueue) nine of
    them were half the script's time.

    ``E`` maps a code to itself; the build checks each ``E.X`` the body
    uses against errors.json and then writes it as the string ``'X'``, so no
    call builds the table (it stays for code the fold does not reach).
    """
    keys = [k for k, _ in head["key"]]
    lines = ["-- generated by lua/build.py: do not edit the manifest by hand"]
    lines.append("local E = setmetatable({}, {__index = function(_, code) return code end})")
    # The error reply's prefix (keys.json error_reply): fail() in include/base.lua
    # and the guard below raise '<prefix> <CODE> <message>', which clients parse.
    lines.append(f"local ERR_PREFIX = '{layout['error_reply']['prefix']}'")
    # The status letters a meta record may hold (keys.json statuses), for
    # include/record.lua's parser.
    lines.append(f"local STATUS_LETTERS = '{''.join(layout['statuses'].values())}'")
    lines.append(f"local SCHEMA = {layout['schema']}")
    # The stamps this schema reads (keys.json schema_reads): an older one whose
    # data it reads as it is, re-stamped by its first enqueue.
    lines.append("local SCHEMA_READS = {" + ", ".join(
        f"[{v}] = true" for v in layout["schema_reads"]["versions"]) + "}")
    policy = layout["policy"]
    defaults = ", ".join(f"{k} = {v['default']}" for k, v in policy.items())
    lines.append("local DEFAULTS = {" + defaults + "}")
    # load_policy's table, presized (grown field by field it was rehashed 5 times).
    lines.append("local function policy_defaults() return {" + defaults +
                 ", test_clock = nil, schema = nil} end")
    lines.append("local POLICY_FIELDS = {" + ", ".join(f"'{k}'" for k in policy) + "}")
    ranges = ", ".join(f"{k} = {{{v['min']}, {v['max']}, {'true' if v['whole'] else 'false'}}}"
                       for k, v in policy.items())
    # Only configure reads the ranges: a function, so no other call builds ten tables.
    lines.append("local function policy_ranges() return {" + ranges + "} end")
    limits = ", ".join(f"{k} = {v}" for k, v in layout["limits"].items())
    lines.append("local LIMITS = {" + limits + "}")
    lines.append("local K = {" + ", ".join(f"{k} = KEYS[{i + 1}]" for i, k in enumerate(keys))
                 + "}")
    # The guard runs before the body: a wrong-typed key aborts with nothing written.
    types = {**layout["service_keys"], **layout["global_keys"]}
    # For on()'s refusal message: built only when a key is refused.
    pairs = ", ".join(f"[K.{k}] = '{types[k]['type']}'" for k in keys)
    lines.append("--@cold")
    lines.append("local function expected_type(key) return ({" + pairs + "})[key] end")
    guarded = []
    for k, doc in head["key"]:
        if doc.startswith("unguarded"):
            if not doc.partition(":")[2].strip():
                raise BuildError(f"{head['script']}: @key {k} unguarded needs a reason "
                                 "('unguarded: <the command that touches it first>')")
            continue
        guarded.append(k)
    if guarded:
        checks = ", ".join(f"{{K.{k}, '{types[k]['type']}'}}" for k in guarded)
        lines.append("for _, kt in ipairs({" + checks + "}) do")
        lines.append("  local t = redis.call('TYPE', kt[1]).ok")
        lines.append("  if t ~= 'none' and t ~= kt[2] then")
        lines.append("    error({err = ERR_PREFIX .. ' WRONG_TYPE key ' .. kt[1] .. "
                     "' holds a ' .. t .. ', expected a ' .. kt[2]})")
        lines.append("  end")
        lines.append("end")
    return "\n".join(lines) + "\n"


def build_script(path: Path, layout: dict, errors: list[dict]) -> dict:
    text = path.read_text(encoding="utf-8")
    head = parse_header(path, text)
    known_keys = layout["service_keys"]
    declared = [k for k, _ in head["key"]]
    glob = [k for k in declared if k in layout["global_keys"]]
    for k in declared:
        if k not in known_keys and k not in glob:
            raise BuildError(f"{path.name}: @key {k} is not in keys.json")
    # One Cluster slot per script: a global key has no {service} tag, so a
    # script that takes one takes nothing else.
    if glob and len(declared) > 1:
        raise BuildError(f"{path.name}: a script with a global key takes no other key")
    if len(set(declared)) != len(declared):
        raise BuildError(f"{path.name}: a key is declared twice")
    header_end = HEADER_RE.match(text).end()
    header = text[:header_end]
    # Only what the script reaches is kept of the prologue and the includes:
    # Redis builds every top-level local again on each call (lua/deadcode.py).
    pieces = [(True, prologue(head, layout, errors))] + flatten(text[header_end:], set())
    try:
        code, dropped, starts = deadcode.prune(pieces)
    except deadcode.LuaSyntaxError as exc:
        raise BuildError(f"{path.name}: {exc}") from exc
    # The checks below read the body as Redis runs it, without the prologue
    # (whose K table names every key).
    body = code[starts[1]:]
    used_keys = set(re.findall(r"\bK\.(\w+)", body))
    missing = used_keys - set(declared)
    if missing:
        raise BuildError(f"{path.name}: uses keys {sorted(missing)} not declared with @key")
    # And the reverse: a declared key the body never touches is not harmless. On
    # a Cluster whose slot is migrating, Redis answers a call with TRYAGAIN
    # unless all its keys or none of them are on the node, so a declared key
    # that is usually absent makes every call fail for the whole migration.
    unused = set(declared) - used_keys
    if unused:
        raise BuildError(f"{path.name}: declares keys {sorted(unused)} with @key that its "
                         "body never uses")
    codes = {e["code"] for e in errors}
    used_codes = set(re.findall(r"\bE\.(\w+)", body))
    unknown = used_codes - codes
    if unknown:
        raise BuildError(f"{path.name}: error codes {sorted(unknown)} are not in errors.json")
    # Every script may raise WRONG_TYPE: the generated guard does.
    declared_codes = {c for c, _ in head["error"]} | {"WRONG_TYPE"}
    undeclared = used_codes - declared_codes
    if undeclared:
        raise BuildError(f"{path.name}: raises {sorted(undeclared)} without an @error line")
    try:
        argv, reply = calltable.script_signature(head["script"], head, layout["limits"])
        calltable.check_arity(head["script"], argv, body)
    except calltable.TableError as exc:
        raise BuildError(str(exc)) from exc
    if head.get("repeats") and f"'{head['repeats']}'" not in body:
        raise BuildError(f"{path.name}: @repeats {head['repeats']}: the body never names "
                         "that counter")
    if head.get("wait") and head["memory"] == "none":
        raise BuildError(f"{path.name}: @wait on a script that writes nothing")
    # What Redis runs: the same, with the generated constant tables read in
    # place (K.ready is KEYS[1], E.X 'X'), so that each table no call reads
    # is not built (E, with its metatable, cost ~2,600 instructions a call).
    consts = {"K": {k: f"KEYS[{i + 1}]" for i, k in enumerate(declared)},
              "E": {c: f"'{c}'" for c in codes},
              "LIMITS": {k: f"({v})" for k, v in layout["limits"].items()},
              "DEFAULTS": {k: f"({v['default']})" for k, v in layout["policy"].items()},
              # A policy field's largest value: policy_ranges() builds ten tables.
              "POLICY_MAX": {k: f"({v['max']})" for k, v in layout["policy"].items()}}
    try:
        code, dropped, _ = deadcode.prune([(rem, deadcode.fold(piece, consts))
                                           for rem, piece in pieces])
        # The functions marked --@cold are built on first use (lua/cold.py).
        code, _ = cold.defer(code)
    except (deadcode.LuaSyntaxError, cold.ColdError) as exc:
        raise BuildError(f"{path.name}: {exc}") from exc
    shebang = MEMORY[head["memory"]]
    note = ""
    if dropped:
        note = ("-- lua/build.py left out what this script never uses: "
                + ", ".join(sorted(set(dropped))) + "\n")
    source = (shebang + "\n" if shebang else "") + header + note + code
    return {
        "name": head["script"],
        "version": int(head["version"]),
        "memory": head["memory"],
        "summary": head["summary"][0],
        "keys": declared,
        "numkeys": len(declared),
        "argv": argv,
        "reply": reply,
        "wait": bool(head.get("wait", False)),
        "repeats": head.get("repeats"),
        "errors": sorted(declared_codes),
        "sha1": hashlib.sha1(source.encode("utf-8")).hexdigest(),
        "source": source,
    }


def build() -> dict:
    layout = load_json("keys.json")
    errors = load_json("errors.json")["errors"]
    # config holds these beside the policy fields (lua/include/policy.lua reads
    # them in the same HMGET): a policy field of the same name would collide.
    clash = {"schema", "test_clock"} & set(layout["policy"])
    if clash:
        raise BuildError(f"keys.json: {sorted(clash)} are config fields, not policy fields")
    scripts = {}
    for path in sorted((HERE / "scripts").glob("*.lua")):
        s = build_script(path, layout, errors)
        scripts[s["name"]] = s
    if not scripts:
        raise BuildError("no scripts found in lua/scripts")
    layout = {k: v for k, v in layout.items() if k != "comment"}
    # Clients read the defaults by this name; the ranges stay with the scripts.
    layout["policy_defaults"] = {k: v["default"] for k, v in layout["policy"].items()}
    calls = json.loads((HERE.parent / "conformance" / "calls.json").read_text(encoding="utf-8"))
    try:
        table = calltable.client_calls(calls["calls"], scripts, frozenset(layout["global_keys"]))
        records = calltable.records(calls.get("records", {}), table)
        calltable.derive(table, records)
    except calltable.TableError as exc:
        raise BuildError(str(exc)) from exc
    return {"format": 2, "layout": layout, "errors": errors, "scripts": scripts, "calls": table,
            "records": records, "refusals": calltable.REFUSALS}


def python_errors(errors: list[dict]) -> str:
    """The Python exception module, one class per code of errors.json."""
    out = [
        '"""homing\'s exceptions: one class per code of lua/errors.json.',
        "",
        "Generated by lua/build.py; do not edit. Catch HomingError for all of them,",
        "or a class for one code. Errors a script reports carry the script's message.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "__all__ = [",
        '    "HomingError",',
        *[f'    "{e["class"]}",' for e in errors],
        "]",
        "",
        "",
        "class HomingError(Exception):",
        '    """Base of every error homing raises."""',
        "",
        '    code = "HOMING"',
        "",
        '    def __init__(self, message: str = "") -> None:',
        "        super().__init__(message or self.__doc__ or self.code)",
        "        self.message = message",
        "",
    ]
    for e in errors:
        bases = "HomingError" + (f", {e['python_base']}" if e.get("python_base") else "")
        doc = textwrap.wrap(e["message"][0].upper() + e["message"][1:] + ".", 88)
        doc[0] = '"""' + doc[0]
        doc[-1] += '"""'
        out += ["", f"class {e['class']}({bases}):"] + ["    " + d for d in doc]
        out += ["", f'    code = "{e["code"]}"', ""]
    out += ["", "BY_CODE: dict[str, type[HomingError]] = {"]
    out += [f'    "{e["code"]}": {e["class"]},' for e in errors]
    out += ["}", "", "", "def error_for(code: str, message: str) -> HomingError:",
            '    """The exception for an error code; unknown codes become a plain HomingError."""',
            "    cls = BY_CODE.get(code)",
            "    if cls is None:",
            '        return HomingError(f"{code} {message}")',
            "    return cls(message)", ""]
    return "\n".join(out)


def _js_doc(e: dict) -> str:
    return e["message"][0].upper() + e["message"][1:] + "."


def js_errors(errors: list[dict]) -> str:
    """The JavaScript error module (ESM), the counterpart of python_errors()."""
    out = [
        "// homing's errors: one class per code of lua/errors.json.",
        "// Generated by lua/build.py; do not edit. Catch HomingError for all of them,",
        "// or a class for one code. Errors a script reports carry the script's message.",
        "",
        "/** Base of every error homing raises. */",
        "export class HomingError extends Error {",
        "  /** @type {string} */",
        '  static code = "HOMING";',
        '  static description = "Base of every error homing raises.";',
        "",
        "  /**",
        "   * @param {string} [message] what went wrong (defaults to the class description)",
        "   * @param {ErrorOptions} [options] e.g. `{ cause }`",
        "   */",
        '  constructor(message = "", options = undefined) {',
        "    const cls = /** @type {typeof HomingError} */ (new.target);",
        "    super(message || cls.description, options);",
        "    this.name = cls.name;",
        "    /** The error code of lua/errors.json. */",
        "    this.code = cls.code;",
        "  }",
        "}",
    ]
    for e in errors:
        out += ["", f"/** {_js_doc(e)} */", f"export class {e['class']} extends HomingError {{",
                f'  static code = "{e["code"]}";',
                f"  static description = {json.dumps(_js_doc(e))};", "}"]
    out += ["", "/** Each error class by its code. */", "export const BY_CODE = Object.freeze({"]
    out += [f'  {e["code"]}: {e["class"]},' for e in errors]
    out += ["});", "",
            "/**",
            " * The error for an error code; unknown codes become a plain HomingError.",
            " * @param {string} code",
            " * @param {string} message",
            " * @returns {HomingError}",
            " */",
            "export function errorFor(code, message) {",
            "  const cls = Object.hasOwn(BY_CODE, code) ? BY_CODE[code] : undefined;",
            "  if (cls === undefined) {",
            "    return new HomingError(`${code} ${message}`);",
            "  }",
            "  return new cls(message);",
            "}", ""]
    return "\n".join(out)


def js_error_types(errors: list[dict]) -> str:
    """TypeScript declarations for js_errors()."""
    out = [
        "// Generated by lua/build.py from lua/errors.json; do not edit.",
        "",
        "/** Base of every error homing raises. */",
        "export class HomingError extends Error {",
        "  static readonly code: string;",
        "  static readonly description: string;",
        "  /** The error code of lua/errors.json. */",
        "  readonly code: string;",
        "  constructor(message?: string, options?: ErrorOptions);",
        "}",
    ]
    for e in errors:
        out += ["", f"/** {_js_doc(e)} */", f"export class {e['class']} extends HomingError {{",
                f'  static readonly code: "{e["code"]}";', "}"]
    out += ["", "export type ErrorCode ="]
    out += [f'  | "{e["code"]}"' for e in errors]
    out[-1] += ";"
    out += ["", "/** Each error class by its code. */", "export const BY_CODE: Readonly<{"]
    out += [f"  {e['code']}: typeof {e['class']};" for e in errors]
    out += ["}>;", "",
            "/** The error for an error code; unknown codes become a plain HomingError. */",
            "export function errorFor(code: string, message: string): HomingError;", ""]
    return "\n".join(out)


def render(manifest: dict) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", action="append", default=[],
                    help="write the manifest here (repeatable)")
    ap.add_argument("--check", action="append", default=[], help="fail if this copy differs")
    ap.add_argument("--python-errors", help="write the generated Python exception module here")
    ap.add_argument("--js-errors", metavar="DIR",
                    help="write the generated JavaScript errors.js and errors.d.ts into DIR")
    ns = ap.parse_args(argv)
    try:
        text = render(build())
    except BuildError as exc:
        print(f"lua/build.py: {exc}", file=sys.stderr)
        return 1
    for out in ns.out:
        Path(out).write_text(text, encoding="utf-8")
    if ns.python_errors:
        Path(ns.python_errors).write_text(python_errors(load_json("errors.json")["errors"]),
                                          encoding="utf-8")
    if ns.js_errors:
        errors = load_json("errors.json")["errors"]
        Path(ns.js_errors, "errors.js").write_text(js_errors(errors), encoding="utf-8")
        Path(ns.js_errors, "errors.d.ts").write_text(js_error_types(errors), encoding="utf-8")
    stale = [c for c in ns.check
             if not Path(c).exists() or Path(c).read_text(encoding="utf-8") != text]
    for c in stale:
        print(f"lua/build.py: {c} is out of date; run 'make build'", file=sys.stderr)
    if not ns.out and not ns.check:
        sys.stdout.write(text)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
