"""Bad input of every kind: the exact homing error class, and nothing written (registry included).

A fuzz of the public API found inputs that escaped as ValueError, TypeError,
OverflowError or RecursionError, and refused calls that still added their
service to the registry. Each row of the tables below is one such input: the
call must raise exactly the named class, and every key under the test's
prefix (the registry is one) must hold what it held before.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from helpers import key, running
from servers import free_port

import homing
from homing import ops
from homing.daemons import Distributor, Scheduler
from homing.manifest import global_key

NAN, INF = math.nan, math.inf
UTC = dt.timezone.utc


def nest(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def loop() -> list[Any]:
    me: list[Any] = []
    me.append(me)
    return me


def snapshot(client: homing.Client) -> dict[str, Any]:
    """Every key under the client's prefix with its type and content (all cluster nodes)."""
    r = client.redis
    out: dict[str, Any] = {}
    for k in r.scan_iter(match=f"{client.prefix}:*"):
        kind = r.type(k).decode()
        read: dict[str, Callable[[], Any]] = {
            "string": lambda k=k: r.get(k), "hash": lambda k=k: r.hgetall(k),
            "list": lambda k=k: r.lrange(k, 0, -1), "set": lambda k=k: r.smembers(k),
            "zset": lambda k=k: r.zrange(k, 0, -1, withscores=True)}
        out[k.decode()] = (kind, read[kind]())
    return out


class World:
    """A prefix with a leased event, a service of another schema and one with a broken key."""

    def __init__(self, client: homing.Client) -> None:
        self.c = client
        client.enqueue("live", "payload")
        [self.ev] = client.dequeue("live", lease_ms=600_000)
        client.redis.hset(key(client, "schema", "config"), "schema", 99)
        client.redis.set(key(client, "wt", "ready"), "not a list")


@pytest.fixture
def world(client: homing.Client) -> World:
    return World(client)


W = World
CASES: list[tuple[str, Callable[[W], Any], type[homing.HomingError]]] = [
    # delays, due times, leases and fail delays that are not finite whole milliseconds
    *[(f"delay_ms={v!r}", lambda w, v=v: w.c.create_timer("fresh", 1, delay_ms=v),
       homing.InvalidArgumentError) for v in (NAN, INF, -INF, 10**30, -1, "5", True, None)],
    *[(f"at={v!r}", lambda w, v=v: w.c.create_timer("fresh", 1, at=v), homing.InvalidArgumentError)
      for v in (NAN, INF, -INF, 1e300, 1e15, -5, "2030", dt.date(2030, 1, 1),
                dt.datetime(2030, 1, 1), dt.datetime.min.replace(tzinfo=UTC))],
    *[(f"dequeue lease_ms={v!r}", lambda w, v=v: w.c.dequeue("live", lease_ms=v),
       homing.InvalidArgumentError) for v in (NAN, INF, 10**30, -1, "x", 43_200_001)],
    ("extend lease_ms=nan", lambda w: w.c.extend_lease("live", w.ev.id, w.ev.token, NAN),
     homing.InvalidArgumentError),
    *[(f"fail delay_ms={v!r}", lambda w, v=v: w.c.fail("live", w.ev.id, w.ev.token, "x",
                                                       delay_ms=v),
       homing.InvalidArgumentError) for v in (NAN, INF, 10**30, -1)],
    ("fail reason bytes", lambda w: w.c.fail("live", w.ev.id, w.ev.token, b"x"),
     homing.InvalidArgumentError),
    # counts, offsets, limits and timeouts
    *[(f"dequeue count={v!r}", lambda w, v=v: w.c.dequeue("live", v), homing.InvalidArgumentError)
      for v in ("3", None, 2.5, NAN, 0, 1001)],
    ("dead_list count=nan", lambda w: w.c.dead_list("live", count=NAN),
     homing.InvalidArgumentError),
    ("dead_list count='x'", lambda w: w.c.dead_list("live", count="x"),
     homing.InvalidArgumentError),
    ("dead_list offset=-1", lambda w: w.c.dead_list("live", offset=-1),
     homing.InvalidArgumentError),
    ("dead_requeue count=inf", lambda w: w.c.dead_requeue("live", count=INF),
     homing.InvalidArgumentError),
    ("dead_purge ids='abc'", lambda w: w.c.dead_purge("live", ids="abc"),
     homing.InvalidArgumentError),
    ("promote limit=inf", lambda w: w.c.promote("live", INF), homing.InvalidArgumentError),
    ("promote limit='x'", lambda w: w.c.promote("live", "x"), homing.InvalidArgumentError),
    ("distribute limit=10**30", lambda w: w.c.distribute("live", 10**30),
     homing.InvalidArgumentError),
    *[(f"result timeout={v!r}", lambda w, v=v: w.c.result("live", w.ev.id, timeout=v),
       homing.InvalidArgumentError) for v in (NAN, "1", -1)],
    ("daemons forget_after='x'", lambda w: w.c.daemons(forget_after="x"),
     homing.InvalidArgumentError),
    ("take_hints count='x'", lambda w: w.c.take_hints("x"), homing.InvalidArgumentError),
    # tokens that are not ints in [0, 2^53 - 1] (a whole float, a bool or digits too)
    *[(f"{verb} token={t!r}", call, homing.InvalidArgumentError)
      for t in ("abc", 1.5, -1, None, 2**70, 7.0, True, "7")
      for verb, call in (
          ("complete", lambda w, t=t: w.c.complete("live", w.ev.id, t)),
          ("fail", lambda w, t=t: w.c.fail("live", w.ev.id, t)),
          ("extend", lambda w, t=t: w.c.extend_lease("live", w.ev.id, t)),
          ("release", lambda w, t=t: w.c.release("live", [(w.ev.id, t)])),
          ("start", lambda w, t=t: w.c.start("live", [(w.ev.id, t)])))],
    # batches whose items are not the documented tuples
    ("complete_many [id]", lambda w: w.c.complete_many("live", [w.ev.id]),
     homing.InvalidArgumentError),
    # (id, token) without a result is taken, as in JavaScript: the result defaults to None.
    ("complete_many [(id,)]", lambda w: w.c.complete_many("live", [(w.ev.id,)]),
     homing.InvalidArgumentError),
    ("complete_many 4-tuple", lambda w: w.c.complete_many("live", [(w.ev.id, w.ev.token, 1, 2)]),
     homing.InvalidArgumentError),
    ("release 'abc'", lambda w: w.c.release("live", "abc"), homing.InvalidArgumentError),
    ("extend_many [id]", lambda w: w.c.extend_many("live", [w.ev.id]),
     homing.InvalidArgumentError),
    ("start [(id,)]", lambda w: w.c.start("live", [(w.ev.id,)]), homing.InvalidArgumentError),
    *[(f"enqueue_many {v!r}", lambda w, v=v: w.c.enqueue_many("fresh", v),
       homing.InvalidArgumentError) for v in (None, 5, "abc", {"a": 1})],
    ("enqueue_many keys='a'", lambda w: w.c.enqueue_many("fresh", [1], keys="a"),
     homing.InvalidArgumentError),
    *[(f"enqueue key={k!r}", lambda w, k=k: w.c.enqueue("fresh", 1, key=k),
       homing.InvalidArgumentError) for k in (5, b"k", ["a"])],
    ("create_timer key=['a']", lambda w: w.c.create_timer("fresh", 1, delay_ms=1, key=["a"]),
     homing.InvalidArgumentError),
    # payloads nested too deep (the limit is lua/keys.json limits.nesting)
    *[(f"{what} nested {name}", call, homing.PayloadNotEncodableError)
      for name, p in (("101", nest(101)), ("10000", nest(10_000)), ("in itself", loop()))
      for what, call in (
          ("enqueue", lambda w, p=p: w.c.enqueue("fresh", p)),
          ("create_timer", lambda w, p=p: w.c.create_timer("fresh", p, delay_ms=1)),
          ("complete result", lambda w, p=p: w.c.complete("live", w.ev.id, w.ev.token, p)))],
    # refused by a script: the service must not be registered for it
    *[(f"configure {field}={v!r}", lambda w, f=field, v=v: w.c.configure("fresh", **{f: v}),
       homing.InvalidArgumentError)
      for field, v in (("lease_ms", 0), ("lease_ms", 10**30), ("lease_ms", NAN), ("lease_ms", "5"),
                       ("backoff_jitter", 2), ("max_attempts", 1.5), ("nope", 1))],
    ("enqueue schema mismatch", lambda w: w.c.enqueue("schema", 1), homing.SchemaMismatchError),
    ("configure schema mismatch", lambda w: w.c.configure("schema", lease_ms=5),
     homing.SchemaMismatchError),
    ("timer schema mismatch", lambda w: w.c.create_timer("schema", 1, delay_ms=1),
     homing.SchemaMismatchError),
    ("enqueue wrong-typed key", lambda w: w.c.enqueue("wt", 1), homing.WrongTypeError),
    # settings refused when made, not later in a thread
    *[(f"max_payload={v!r}", lambda w, v=v: homing.Client(w.c.redis, max_payload=v),
       homing.InvalidArgumentError) for v in ("x", 0, -1, NAN)],
    *[(f"Worker {kw}", lambda w, kw=kw: homing.Worker(w.c, "live", homing.Consumer, **kw),
       homing.InvalidArgumentError)
      for kw in ({"lease_ms": NAN}, {"lease_ms": "x"}, {"lease_ms": 0}, {"lease_ms": 10**30},
                 {"concurrency": "x"}, {"prefetch": NAN}, {"grace": NAN}, {"poll_max": -1},
                 {"handler_timeout": NAN})],
    ("Scheduler interval=nan", lambda w: Scheduler(w.c, interval=NAN), homing.InvalidArgumentError),
    ("Scheduler limit=0", lambda w: Scheduler(w.c, limit=0), homing.InvalidArgumentError),
    ("Distributor sweep_every=inf", lambda w: Distributor(w.c, sweep_every=INF),
     homing.InvalidArgumentError),
]


@pytest.mark.parametrize(("call", "error"), [pytest.param(c, e, id=n) for n, c, e in CASES])
def test_refused_typed_and_nothing_written(world: World, call: Callable[[World], Any],
                                           error: type[homing.HomingError]) -> None:
    before = snapshot(world.c)
    with pytest.raises(homing.HomingError) as info:
        call(world)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert snapshot(world.c) == before
    assert set(world.c.services()) == {"live"}


def test_a_refused_creating_call_leaves_the_registry_alone(client: homing.Client) -> None:
    """The registry is written only after the script succeeded, and then it is."""
    for bad in (lambda: client.configure("fresh", lease_ms=0),
                lambda: client.create_timer("fresh", 1, delay_ms=10**30)):
        with pytest.raises(homing.InvalidArgumentError):
            bad()
    assert client.services() == []
    client.configure("fresh", lease_ms=5000)
    assert client.services() == ["fresh"]


def test_async_refused_calls_leave_the_registry_alone(redis_url: str, prefix: str) -> None:
    import asyncio

    async def go() -> list[str]:
        async with await homing.AsyncClient.from_url(redis_url, prefix=prefix) as ac:
            with pytest.raises(homing.InvalidArgumentError):
                await ac.configure("fresh", lease_ms=0)
            with pytest.raises(homing.PayloadNotEncodableError):
                await ac.enqueue("fresh", nest(10_000))
            assert await ac.services() == []
            await ac.enqueue("fresh", 1)
            return await ac.services()

    assert asyncio.run(go()) == ["fresh"]


def test_a_wrong_typed_registry_is_a_wrong_type_error(client: homing.Client) -> None:
    registry = global_key(client.prefix, "services")
    client.redis.set(registry, "not a set")
    for call in (lambda: client.enqueue("fresh", 1), lambda: client.services(),
                 lambda: client.register("fresh"),
                 lambda: client.create_timer("fresh", 1, delay_ms=1)):
        with pytest.raises(homing.WrongTypeError, match=registry):
            call()
    assert list(client.redis.scan_iter(match=f"{client.prefix}:*")) == [registry.encode()]


def test_an_envelope_nested_too_deep_is_corrupt(client: homing.Client, service: str) -> None:
    """Written by another program (or an older client): refused on decode, not a RecursionError."""
    ids = client.enqueue_many(service, ["ok", "deep", "deeper"])
    deep = {"v": 1, "p": nest(101)}
    client.redis.hset(key(client, service, "data"), ids[1], msgpack.packb(deep))
    deeper = b"\x82\xa1v\x01\xa1p" + b"\x91" * 10_000 + b"\x01"  # msgpack itself gives up
    client.redis.hset(key(client, service, "data"), ids[2], deeper)
    ok, bad, worse = client.dequeue(service, 3)
    assert ok.payload == "ok"
    for ev in (bad, worse):
        with pytest.raises(homing.CorruptEnvelopeError, match="nested|not msgpack"):
            ev.payload  # noqa: B018 - decoding is the point
    assert homing.envelope.decode(homing.envelope.encode(nest(100))) == nest(100)


def test_wrong_database_index_is_refused_when_connecting(redis_url: str, cluster: bool) -> None:
    base = redis_url.rsplit("/", 1)[0]
    bad = f"{base}/1" if cluster else f"{base}/99"
    with pytest.raises(homing.InvalidArgumentError, match="database index|db"):
        homing.Client.from_url(bad)


@pytest.fixture
def cluster(redis_url: str, request: pytest.FixtureRequest) -> bool:
    return "cluster" in request.node.callspec.id


@pytest.mark.parametrize("url", ["http://x", "redis://:::", "redis://127.0.0.1:99999/0"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(homing.InvalidArgumentError, match="invalid Redis URL"):
        homing.Client.from_url(url)


def test_consumer_complete_after_another_worker_completed_is_stale(
        client: homing.Client, service: str) -> None:
    """docs/python.md: Consumer.complete raises StaleLeaseError once the lease is lost."""
    import threading

    seen: dict[str, Any] = {}
    taken, done = threading.Event(), threading.Event()

    class Late(homing.Consumer):
        def handle_event(self, event: homing.Event, state: Any) -> Any:
            seen["event"] = event
            taken.set()
            assert done.wait(10)
            try:
                self.complete(event.service, event.id, result="late")
            except homing.HomingError as exc:
                seen["error"] = exc
            return state

    client.enqueue(service, 1)
    with running(homing.Worker(client, service, Late, lease_ms=60_000, grace=5)):
        assert taken.wait(10)
        ev = seen["event"]
        if ev.must_start:
            client.start(service, [(ev.id, ev.token)])
        client.complete(service, ev.id, ev.token, result="first")  # "the other worker"
        done.set()
        for _ in range(200):
            if "error" in seen:
                break
            threading.Event().wait(0.02)
    assert type(seen["error"]) is homing.StaleLeaseError, seen.get("error")
    assert client.result(service, ev.id, timeout=1) == "first"


# -- the command line: one line on stderr, exit status 2, nothing written --------------

DEEP_JSON = "[" * 10_000 + "]" * 10_000
CLI_CASES: list[tuple[str, list[str]]] = [
    ("NaN payload", ["enqueue", "fresh", "NaN"]),
    ("Infinity in a payload", ["enqueue", "fresh", '{"t": [1, Infinity]}']),
    ("1e999 in a payload", ["enqueue", "fresh", "[1e999]"]),
    ("-Infinity timer payload", ["timer", "fresh", "[-Infinity]", "--delay-ms", "5"]),
    ("JSON nested 10000 levels", ["enqueue", "fresh", DEEP_JSON]),
    ("JSON nested 101 levels", ["enqueue", "fresh", "[" * 101 + "]" * 101]),
    ("delay 10**30", ["timer", "fresh", "1", "--delay-ms", str(10**30)]),
    ("at year 1", ["timer", "fresh", "1", "--at", "0001-01-01T00:00:00Z"]),
    ("configure lease 0", ["configure", "fresh", "--lease-ms", "0"]),
    ("configure jitter nan", ["configure", "fresh", "--backoff-jitter", "nan"]),
    ("result timeout nan", ["result", "fresh", "some-id", "--timeout", "nan"]),
    ("worker grace nan", ["worker", "homing:Consumer", "--service", "fresh", "--grace", "nan"]),
    ("daemon interval nan", ["daemon", "--interval", "nan"]),
]


@pytest.mark.parametrize("args", [pytest.param(a, id=n) for n, a in CLI_CASES])
def test_cli_refuses_in_one_line(cli, client: homing.Client, args: list[str]) -> None:
    before = snapshot(client)
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1, r.stderr
    assert snapshot(client) == before


@pytest.mark.parametrize(("source", "what"), [
    ("1 / 0\n", "cannot load consumer"),
    ("import homing\nclass C(homing.Consumer):\n    def __init__(self):\n        {}['x']\n",
     "could not be created"),
    ("import homing\nclass C(homing.Consumer):\n    def init(self):\n"
     "        raise RuntimeError('no database')\n", "init() of consumer"),
    ("import homing\nclass C(homing.Consumer):\n    async def init(self):\n"
     "        raise RuntimeError('no database')\n", "init() of consumer"),
], ids=["import", "constructor", "init", "async init"])
def test_cli_worker_whose_consumer_fails(cli, client: homing.Client, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, source: str,
                                         what: str, request: pytest.FixtureRequest) -> None:
    module = "consumer_" + request.node.callspec.id.replace(" ", "_").replace("-", "_")
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    before = snapshot(client)
    r = cli("worker", f"{module}:C", "--service", "fresh")
    assert r.exit_code == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and what in errors[0], r.stderr
    assert "Traceback" not in r.stderr and "--log-level debug" in errors[0]
    assert snapshot(client) == before  # not even registered
    r = cli("--log-level", "debug", "worker", f"{module}:C", "--service", "fresh")
    assert r.exit_code == 2 and "Traceback" in r.stderr


def test_cli_wrong_database_index(standalone_server: Any) -> None:
    from click.testing import CliRunner

    from homing.cli import main

    url = standalone_server.url.rsplit("/", 1)[0] + "/99"
    r = CliRunner().invoke(main, ["--redis-url", url, "stats"])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: INVALID_ARGUMENT: --redis-url")
    assert "out of range" in r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = CliRunner().invoke(main, ["--redis-url", f"redis://127.0.0.1:{free_port()}/0", "stats"])
    assert r.exit_code == 2 and r.stderr.startswith("error: CONNECTION")


def test_ops_checks_need_no_redis() -> None:
    """The checks are in homing.ops, before any I/O: the conformance runner gets them too."""
    with pytest.raises(homing.InvalidArgumentError):
        ops.call("dequeue", "svc", 100, count="3")
    with pytest.raises(homing.InvalidArgumentError):
        ops.call("complete_many", "svc", 100, items=[("id", "abc", None)])
    with pytest.raises(homing.InvalidArgumentError):
        ops.call("dequeue", "svc", 100, count=1, colour="blue")  # not an argument of the table
