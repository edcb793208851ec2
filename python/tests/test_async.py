"""The AsyncClient mirrors the sync Client: same operations, same replies, same errors.

pytest-asyncio is not a dependency: each test runs one coroutine with
``asyncio.run``, and builds its AsyncClient inside it (an asyncio Redis client
belongs to the loop that made it).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from helpers import T0, TEST_CLOCK, key

import homing

# Sync-only on purpose: the daemons and the Worker that use them (the scheduler's
# due-time index, the worker's idle wait; and `homing stats` and the dashboard, which
# read the beats) are thread loops and commands, not coroutines.
SYNC_ONLY = {"hint_expired", "take_hints", "beat", "daemons", "worker_beat", "due_take",
             "due_settle", "wait_ready", "dequeue_when_ready", "run_hinted"}


def run(redis_url: str, prefix: str, body: Callable[[homing.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        client = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            return await body(client)
        finally:
            await client.close()

    return asyncio.run(main())


def public(cls: type) -> dict[str, Any]:
    # Over the whole MRO: methods split into mixins (homing.handling, homing.daemoncalls)
    # must mirror too.
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[:-1]):
        out.update({n: m for n, m in vars(klass).items() if not n.startswith("_") and callable(m)})
    return out


def test_same_methods_and_signatures() -> None:
    sync, aio = public(homing.Client), public(homing.AsyncClient)
    assert set(sync) - SYNC_ONLY == set(aio)
    for name, method in aio.items():
        if name in ("from_url", "close") or method is sync[name]:
            continue  # the same function: shared by both (ClientBase)
        assert inspect.iscoroutinefunction(method), name
        assert inspect.signature(method) == inspect.signature(sync[name]), name


def test_round_trip(redis_url: str, prefix: str, service: str) -> None:
    async def body(c: homing.AsyncClient) -> None:
        first = await c.enqueue(service, {"a": 1}, key="k")
        assert await c.enqueue(service, {"a": 2}, key="k") == first
        more = await c.enqueue_many(service, [b"\x00bin", 2**64 - 1])
        evs = await c.dequeue(service, 5, lease_ms=5000)
        assert [e.id for e in evs] == [first, *more]
        assert [e.payload for e in evs] == [{"a": 1}, b"\x00bin", 2**64 - 1]
        assert await c.extend_lease(service, evs[0].id, evs[0].token, 9000) > 0
        await c.complete(service, evs[0].id, evs[0].token, result="done")
        assert await c.result(service, first, timeout=5) == "done"
        assert await c.complete_many(service, [(e.id, e.token, None) for e in evs[1:]]) == \
            [None, None]
        with pytest.raises(homing.UnknownEventError):
            await c.complete(service, evs[1].id, evs[1].token)  # completed just above
        assert await c.services() == [service]
        stats = await c.stats(service)
        assert (stats["total.completed"], stats["ready"], stats["in_flight"]) == (3, 0, 0)

    run(redis_url, prefix, body)


def test_matches_the_sync_client(client: homing.Client, redis_url: str, service: str) -> None:
    """The same calls through both clients leave the same replies and the same state."""

    client.redis.hset(key(client, service + "-s", "config"), TEST_CLOCK, T0)
    client.redis.hset(key(client, service + "-a", "config"), TEST_CLOCK, T0)
    sync_out = [client.configure(service + "-s", max_attempts=2, backoff_base_ms=0),
                client.enqueue_many(service + "-s", ["a", "b", "c"])]
    a, b, _ = client.dequeue(service + "-s", 3)
    client.fail(service + "-s", a.id, a.token, "x", dead=True)
    client.release(service + "-s", [(b.id, b.token)])

    async def body(c: homing.AsyncClient) -> Any:
        out = [await c.configure(service + "-a", max_attempts=2, backoff_base_ms=0),
               await c.enqueue_many(service + "-a", ["a", "b", "c"])]
        x, y, _ = await c.dequeue(service + "-a", 3)
        await c.fail(service + "-a", x.id, x.token, "x", dead=True)
        await c.release(service + "-a", [(y.id, y.token)])
        return out, await c.stats(service + "-a"), await c.dead_list(service + "-a")

    aio_out, aio_stats, aio_dead = run(redis_url, client.prefix, body)
    assert aio_out[0] == sync_out[0]
    assert client.stats(service + "-s") == aio_stats
    sync_dead = client.dead_list(service + "-s")
    assert [(x.died_ms, x.attempt, x.reason, x.payload) for x in sync_dead.letters] == \
        [(x.died_ms, x.attempt, x.reason, x.payload) for x in aio_dead.letters]


def test_timers_and_daemon_steps(redis_url: str, prefix: str, service: str) -> None:
    async def body(c: homing.AsyncClient) -> None:
        config = key(c, service, "config")
        await c.redis.hset(config, TEST_CLOCK, T0)
        keep = await c.create_timer(service, "keep", delay_ms=100)
        drop = await c.create_timer(service, "drop", delay_ms=100)
        assert await c.cancel_timer(service, drop) is True
        assert (await c.status(service, keep)).detail == "timer"
        await c.redis.hset(config, TEST_CLOCK, T0 + 99)
        assert (await c.promote(service)).timers == 0
        await c.redis.hset(config, TEST_CLOCK, T0 + 100)
        assert (await c.promote(service)).timers == 1
        [ev] = await c.dequeue(service, lease_ms=10)
        await c.redis.hset(config, TEST_CLOCK, T0 + 110)
        assert (await c.promote(service)).expired == 1
        assert (await c.distribute(service)).retried == 1
        assert (await c.status(service, keep)).detail == "waiting"
        assert ev.payload == "keep"

    run(redis_url, prefix, body)


def test_dead_letters(redis_url: str, prefix: str, service: str) -> None:
    async def body(c: homing.AsyncClient) -> None:
        config = key(c, service, "config")
        ids = await c.enqueue_many(service, [1, 2])
        for i, ev in enumerate(await c.dequeue(service, 2)):
            # distinct times of death: a stable order
            await c.redis.hset(config, TEST_CLOCK, T0 + i)
            out = await c.fail(service, ev.id, ev.token, "nope", dead=True)
            assert out.action == "dead"
        with pytest.raises(homing.EventDeadError):
            await c.result(service, ids[0], timeout=1)
        page = await c.dead_list(service)
        assert (page.total, [x.id for x in page.letters]) == (2, ids)
        assert await c.dead_requeue(service, [ids[0]]) == (1, 1)
        assert await c.dead_purge(service, count=10) == (1, 0)
        assert [e.id for e in await c.dequeue(service, 5)] == [ids[0]]

    run(redis_url, prefix, body)


def test_typed_errors(redis_url: str, prefix: str, service: str) -> None:
    async def body(c: homing.AsyncClient) -> None:
        with pytest.raises(homing.InvalidNameError):
            await c.enqueue("a:b", 1)
        with pytest.raises(homing.PayloadNotEncodableError):
            await c.enqueue(service, object())
        with pytest.raises(homing.UnknownEventError):
            await c.fail(service, "ghost", 1)
        with pytest.raises(homing.UnknownEventError):
            await c.result(service, "ghost", timeout=1)
        event_id = await c.enqueue(service, 1)
        with pytest.raises(homing.ResultTimeoutError):
            await c.result(service, event_id, timeout=0.05)
        with pytest.raises(homing.InvalidArgumentError):
            await c.configure(service, max_attempts=0)
        await c.redis.set(key(c, service + "-w", "ready"), "x")
        with pytest.raises(homing.WrongTypeError):
            await c.enqueue(service + "-w", 1)
        await c.redis.hset(key(c, service + "-s", "config"), "schema", 99)
        with pytest.raises(homing.SchemaMismatchError):
            await c.dequeue(service + "-s")

    run(redis_url, prefix, body)


def test_concurrent_producers_and_consumers(redis_url: str, prefix: str, service: str) -> None:
    """Many coroutines on one fresh client, from its very first call."""

    async def body(c: homing.AsyncClient) -> None:
        ids = await asyncio.gather(*(c.enqueue(service, i) for i in range(50)))
        done: list[int] = []

        async def consume() -> None:
            while evs := await c.dequeue(service, 7):
                await c.complete_many(service, [(e.id, e.token, e.payload) for e in evs])
                done.extend(e.payload for e in evs)

        await asyncio.gather(*(consume() for _ in range(4)))
        assert sorted(done) == list(range(50))
        results = await asyncio.gather(*(c.result(service, i, timeout=5) for i in ids))
        assert results == list(range(50))
        # Each call ran once: a command re-sent by the Redis client would show here.
        stats = await c.stats(service)
        assert [stats[f"total.{k}"] for k in ("enqueued", "delivered", "completed")] == [50] * 3

    run(redis_url, prefix, body)
