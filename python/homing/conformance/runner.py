"""Running conformance vectors against a Redis: the Python implementation of the runner contract.

For each vector the runner takes a fresh service name under its own prefix,
writes the starting state, freezes that service's test clock (the field
``test_clock`` of its ``config`` hash), runs the steps
in order (client calls, raw script calls, clock moves, writes, state checks)
and stops at the first mismatch. Afterwards it deletes exactly the keys of
that service (the names of keys.json), its registry entries and the daemon
and worker beats its steps wrote to the run prefix's daemons and workers hashes,
so a run never
touches a key it did not create, on a standalone server or a Cluster.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from .. import envelope
from ..client import Client
from ..connection import connect, translate
from ..errors import HomingError
from ..manifest import DEFAULT_MAX_PAYLOAD, GLOBAL_KEYS, LAYOUT, SCRIPTS, global_key, service_key
from .calls import CALLS
from .loader import TEST_CLOCK, Suite, Vector, to_value, to_wire

KEY_TYPES: dict[str, str] = {k: v["type"] for k, v in LAYOUT["service_keys"].items()}
ENVELOPE_OPERATION = "envelope"


@dataclass
class VectorResult:
    """One vector's verdict; detail names the first failing step and why."""

    operation: str
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    """Every verdict of one run, with the server and prefix it ran on."""

    server: str
    prefix: str
    results: list[VectorResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)


# -- comparison --------------------------------------------------------------------

def show(v: Any, limit: int = 120) -> str:
    """A value for a mismatch message: Redis bytes as text when they are text."""
    if isinstance(v, bytes):
        try:
            text = repr(v.decode("utf-8"))
        except UnicodeDecodeError:
            text = "0x" + v.hex()
    else:
        text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare(exp: Any, act: Any, path: str, mode: str) -> list[str]:
    """Differences between an expectation (JSON with conventions) and an actual value.

    mode ``value``: client-level results, compared as decoded values.
    ``raw``: a script's Redis reply; a JSON string is a bulk string, a number
    an integer reply. ``state``: stored Redis strings, where a JSON number is
    its decimal text.
    """
    if isinstance(exp, dict) and len(exp) == 1 and "$subset" in exp:
        if not isinstance(act, dict):
            return [f"{path}: expected an object, got {show(act, 80)}"]
        out = []
        for k, v in exp["$subset"].items():
            if k not in act:
                out.append(f"{path}.{k}: missing")
            else:
                out += compare(v, act[k], f"{path}.{k}", mode)
        return out
    if isinstance(exp, dict) and len(exp) == 1 and "$error" in exp:
        ok = isinstance(act, dict) and act.get("$error") == exp["$error"]
        return [] if ok else [f"{path}: expected error {exp['$error']}, got {show(act, 80)}"]
    if isinstance(exp, dict) and any(k.startswith("$") for k in exp):
        exp = to_value(exp, path)
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return [f"{path}: expected an object, got {show(act, 80)}"]
        out = [f"{path}.{k}: unexpected" for k in act if k not in exp]
        for k, v in exp.items():
            out += [f"{path}.{k}: missing"] if k not in act else compare(v, act[k],
                                                                          f"{path}.{k}", mode)
        return out
    if isinstance(exp, list):
        if not isinstance(act, list):
            return [f"{path}: expected a list, got {show(act, 80)}"]
        if len(exp) != len(act):
            return [f"{path}: expected {len(exp)} items, got {len(act)}: {show(act)}"]
        out = []
        for i, (e, a) in enumerate(zip(exp, act, strict=True)):
            out += compare(e, a, f"{path}[{i}]", mode)
        return out
    # Redis strings: a JSON string is its UTF-8 text; in stored state a number is its
    # decimal text too, but in a script's reply a number must be an integer reply.
    wire = mode == "state" or (mode == "raw" and isinstance(exp, str))
    if wire and isinstance(act, bytes) and exp is not None and not isinstance(exp, bytes):
        exp = to_wire(exp, path)
    # Numbers compare by value (JSON, and so JavaScript, has one number type).
    same = exp == act if _num(exp) and _num(act) else type(exp) is type(act) and exp == act
    return [] if same else [f"{path}: expected {show(exp)}, got {show(act)}"]


# -- the runner ----------------------------------------------------------------------

def closed_port() -> int:
    """A local port with nothing listening, for the 'connection refused' steps."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """Runs vectors on one Redis under one prefix; see the module docstring."""

    def __init__(self, redis_client: Any, prefix: str) -> None:
        self.r = redis_client
        self.prefix = prefix
        self.used: set[str] = set()
        self.overrides: set[str] = set()
        self.daemons: set[bytes] = set()  # daemon names a vector beat, removed after it
        self.workers: set[bytes] = set()  # worker names a vector beat, removed after it
        self.due_names: set[bytes] = set()  # due-index members a raw due_settle wrote

    # keys ---------------------------------------------------------------------
    def key(self, service: str, name: str) -> str:
        return service_key(self.prefix, service, name)

    def fresh_service(self, vec: Vector) -> str:
        for _ in range(10):
            service = f"{vec.operation}.{secrets.token_hex(4)}"
            if not any(self.r.exists(self.key(service, k)) for k in KEY_TYPES):
                self.used.add(service)
                return service
        raise RuntimeError("could not find an unused service name")  # pragma: no cover

    def cleanup(self, service: str) -> None:
        """Delete exactly this service's keys and registry entries, nothing else."""
        self.r.delete(*(self.key(service, k) for k in KEY_TYPES))
        self.r.srem(global_key(self.prefix, "services"), service)
        self.r.srem(global_key(self.prefix, "hints"), service)
        self.r.zrem(global_key(self.prefix, "due"), service)  # the clients' due-time hints

    def forget_beats(self) -> None:
        """Remove the beats a vector wrote to the run prefix's daemons hash (and only those),
        and the due-index entries its raw due_settle steps named."""
        if self.due_names:
            self.r.zrem(global_key(self.prefix, "due"), *self.due_names)
            self.due_names.clear()
        for hash_name, names in (("daemons", self.daemons), ("workers", self.workers)):
            if names:
                self.r.hdel(global_key(self.prefix, hash_name), *names)
                names.clear()

    def beat_names(self, hash_name: str = "daemons") -> list[str]:
        """The names with a beat under the run prefix, for the ``$daemons`` and
        ``$workers`` checks."""
        return sorted(f.decode("utf-8", "replace")
                      for f in self.r.hkeys(global_key(self.prefix, hash_name)))

    def _typed(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, dict) and "$type" in value:
            return value["$type"], value.get("value")
        return KEY_TYPES[name], value

    def write(self, service: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            key = self.key(service, name)
            kind, value = self._typed(name, value)
            self.r.delete(key)
            if value is None:
                continue
            where = f"write {name}"
            if kind == "string":
                self.r.set(key, to_wire(value, where))
            elif kind in ("list", "set") and value:
                items = [to_wire(v, where) for v in value]
                (self.r.rpush if kind == "list" else self.r.sadd)(key, *items)
            elif kind == "hash" and value:
                self.r.hset(key, mapping={f: to_wire(v, where) for f, v in value.items()})
            elif kind == "zset" and value:
                self.r.zadd(key, {m: float(to_value(s)) for m, s in value.items()})

    def read(self, key: str) -> tuple[str, Any]:
        kind = self.r.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "list":
            return kind, self.r.lrange(key, 0, -1)
        if kind == "hash":
            return kind, {f.decode(): v for f, v in self.r.hgetall(key).items()}
        if kind == "zset":
            return kind, {m.decode(): s for m, s in self.r.zrange(key, 0, -1, withscores=True)}
        if kind == "string":
            return kind, self.r.get(key)
        if kind == "set":
            return kind, sorted(self.r.smembers(key))
        return kind, None

    def check_state(self, service: str, expected: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for name, exp in expected.items():
            if name == "$keys":
                have = sorted(k for k in KEY_TYPES if self.r.exists(self.key(service, k)))
                if have != sorted(exp):
                    out.append(f"state.$keys: expected {sorted(exp)}, got {have}")
            elif name == "$registered":
                member = bool(self.r.sismember(global_key(self.prefix, "services"), service))
                if member != exp:
                    out.append(f"state.$registered: expected {exp}, got {member}")
            elif name == "$due":
                raw = self.r.zrange(global_key(self.prefix, "due"), 0, -1, withscores=True)
                due = {m.decode(): "claimed" if sc >= 2**50 else int(sc) for m, sc in raw}
                if due != exp:
                    out.append(f"state.$due: expected {exp}, got {due}")
            elif name in ("$daemons", "$workers"):
                have = self.beat_names(name[1:])
                if have != sorted(exp):
                    out.append(f"state.{name}: expected {sorted(exp)}, got {have}")
            else:
                kind, exp = self._typed(name, exp)
                have_kind, act = self.read(self.key(service, name))
                if exp is None:
                    if have_kind != "none":
                        out.append(f"state.{name}: expected no key, "
                                   f"got a {have_kind} {show(act, 80)}")
                elif have_kind != kind:
                    out.append(f"state.{name}: expected a {kind}, got {have_kind}")
                else:
                    if kind == "set":
                        exp = sorted(exp, key=lambda v: to_wire(v))
                    out += compare(exp, act, f"state.{name}", "state")
        return out

    # steps --------------------------------------------------------------------
    def client(self, vec: Vector) -> Client:
        return Client(self.r, prefix=self.prefix,
                      max_payload=vec.client.get("max_payload", DEFAULT_MAX_PAYLOAD))

    def call(self, client: Client, service: str, step: dict[str, Any]) -> Any:
        args = {k: to_value(v, f"args.{k}") for k, v in step.get("args", {}).items()}
        if "service" in step:
            # Meant to be refused; if a client wrongly accepts it, its keys (under our
            # prefix) must still be cleaned up.
            service = step["service"]
            self.overrides.add(service)
        if step.get("connection") == "refused":
            url = f"redis://127.0.0.1:{closed_port()}/0"
            client = Client.from_url(url, prefix=self.prefix, socket_connect_timeout=2)
        if step["call"] == "beat" and isinstance(args.get("name"), str):
            self.daemons.add(args["name"].encode())  # before the call: a half-done one too
        if step["call"] == "worker_beat" and isinstance(args.get("name"), str):
            self.workers.add(args["name"].encode())
        return CALLS[step["call"]](client, service, args)

    def script(self, service: str, step: dict[str, Any]) -> Any:
        script = SCRIPTS[step["script"]]
        # A global key (the beat script's daemons) is <prefix>:<name>, shared by the run.
        keys = [global_key(self.prefix, k) if k in GLOBAL_KEYS else self.key(service, k)
                for k in step.get("keys", script.keys)]
        args = [to_wire(a, f"args[{i}]") for i, a in enumerate(step["args"])]
        if step["script"] == "beat" and args:
            self.daemons.add(args[0])
        if step["script"] == "worker_beat" and args:
            self.workers.add(args[0])
        if step["script"] == "due_settle":
            self.due_names.update(args[2::2])
        try:
            try:
                return self.r.evalsha(script.sha1, len(keys), *keys, *args)
            except NoScriptError:
                return self.r.eval(script.source, len(keys), *keys, *args)
        except HomingError:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    def step(self, client: Client, service: str, step: dict[str, Any]) -> list[str]:
        if "clock" in step:
            if step["clock"] is None:
                self.r.hdel(self.key(service, "config"), TEST_CLOCK)
            else:
                self.r.hset(self.key(service, "config"), TEST_CLOCK, step["clock"])
            return []
        if "advance_ms" in step:
            self.r.hincrby(self.key(service, "config"), TEST_CLOCK, step["advance_ms"])
            return []
        if "write" in step:
            self.write(service, step["write"])
            return []
        if "state" in step:
            return self.check_state(service, step["state"])
        mode = "value" if "call" in step else "raw"
        try:
            got = self.call(client, service, step) if mode == "value" else self.script(service,
                                                                                       step)
        except HomingError as exc:
            if "error" in step:
                return [] if exc.code == step["error"] else [
                    f"expected error {step['error']}, got {exc.code}: {exc}"]
            return [f"unexpected error {exc.code}: {exc}"]
        if "error" in step:
            return [f"expected error {step['error']}, got a reply: {show(got, 200)}"]
        if "returns" in step:
            return compare(step["returns"], got, "returns", mode)
        return []

    def run_vector(self, vec: Vector) -> VectorResult:
        service = self.fresh_service(vec)
        try:
            self.write(service, vec.given)
            # After given: its config (a hash, no test_clock: conformance/build.py checks) keeps
            # its fields and gains the clock.
            self.r.hset(self.key(service, "config"), TEST_CLOCK, vec.clock)
            client = self.client(vec)
            for i, step in enumerate(vec.steps):
                try:
                    problems = self.step(client, service, step)
                except Exception as exc:  # a runner or client bug: report, keep going
                    problems = [f"raised {type(exc).__name__}: {exc}"]
                if problems:
                    what = step.get("call") or step.get("script") or next(iter(step))
                    detail = f"step {i + 1} ({what}): " + "; ".join(problems)
                    return VectorResult(vec.operation, vec.name, False, detail)
            return VectorResult(vec.operation, vec.name, True)
        finally:
            for name in {service, *self.overrides}:
                self.cleanup(name)
            self.overrides.clear()
            self.forget_beats()


def run_envelope_case(case: dict[str, Any]) -> VectorResult:
    """One golden wire vector through homing.envelope, byte for byte."""
    problems: list[str] = []
    try:
        if "error" in case and "payload" in case:
            try:
                envelope.encode(to_value(case["payload"]))
                problems.append(f"encode: expected error {case['error']}, got bytes")
            except HomingError as exc:
                if exc.code != case["error"]:
                    problems.append(f"encode: expected error {case['error']}, got {exc.code}")
        elif "error" in case:
            try:
                got = envelope.decode(bytes.fromhex(case["hex"]))
                problems.append(f"decode: expected error {case['error']}, got {got!r:.80}")
            except HomingError as exc:
                if exc.code != case["error"]:
                    problems.append(f"decode: expected error {case['error']}, got {exc.code}")
        else:
            # A vector with "trace" (envelope revision 1.1) encodes with exactly that trace
            # context ({} for none) and checks the one decoded; one without, no context.
            trace = case.get("trace") or {}
            if not case.get("decode_only"):
                hexed = envelope.encode(to_value(case["payload"]), trace).hex()
                if hexed != case["hex"]:
                    problems.append(f"encode: expected {case['hex']}, got {hexed}")
            problems += compare(case["payload"], envelope.decode(bytes.fromhex(case["hex"])),
                                "decode", "value")
            if "trace" in case:
                got_trace = envelope.trace_of(bytes.fromhex(case["hex"]))
                if got_trace != case["trace"]:
                    problems.append(f"trace: expected {case['trace']!r}, got {got_trace!r}")
    except Exception as exc:  # pragma: no cover - a bug in the envelope code
        problems.append(f"raised {type(exc).__name__}: {exc}")
    return VectorResult(ENVELOPE_OPERATION, case["name"], not problems, "; ".join(problems))


def describe_server(r: Any, cluster: bool) -> str:
    """'redis 7.2.4 cluster' and the like, for the report's first line."""
    topology = "cluster" if cluster else "standalone"
    try:
        info = r.info("server")
    except Exception:  # a managed service may refuse INFO: the suite can still run
        return f"unknown server, {topology}"
    if "redis_version" not in info and info:  # some clients answer per node
        info = next(iter(info.values()))
    name = "valkey" if info.get("server_name") == "valkey" else "redis"
    version = info.get("valkey_version") or info.get("redis_version", "?")
    return f"{name} {version} {topology}"


def new_prefix() -> str:
    return f"homing-conformance-{secrets.token_hex(4)}"


class PrefixInUseError(Exception):
    """The prefix already holds a homing registry: a live system may be using it."""


def run_suite(url: str, suite: Suite, *, prefix: str | None = None,
              operations: tuple[str, ...] = ()) -> Report:
    """Run the suite (or the named operations of it) against url and return the report."""
    r = connect(url)
    try:
        cluster = r.__class__.__name__ == "RedisCluster"
        prefix = prefix or new_prefix()
        if r.exists(global_key(prefix, "services")):
            raise PrefixInUseError(f"prefix {prefix!r} is in use ({global_key(prefix, 'services')} "
                                   "exists): the suite needs a prefix of its own")
        report = Report(describe_server(r, cluster), prefix)
        if not operations or ENVELOPE_OPERATION in operations:
            report.results += [run_envelope_case(c) for c in suite.envelopes]
        runner = Runner(r, prefix)
        for vec in suite.vectors:
            if not operations or vec.operation in operations:
                report.results.append(runner.run_vector(vec))
        return report
    finally:
        r.close()
