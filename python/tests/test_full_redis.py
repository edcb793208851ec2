"""Issue 7, item 1: a full Redis (maxmemory, noeviction) drains, and refuses producers typed.

Each test fills a private redis-server with large payloads until enqueue is
refused, then checks which operations still run: everything that frees
memory or keeps it level (dequeue, complete, extend, fail, release, start,
promote, distribute, dead letters, the daemons' beat, a worker's start) must;
a producer must get RedisFullError with nothing written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import running, running_daemons, wait_for
from servers import RedisServer

import homing

PAYLOAD = "x" * 60_000
SERVICE = "full"


@pytest.fixture
def full(tmp_path: Path) -> Iterator[tuple[homing.Client, list[str]]]:
    """A client on a Redis filled until enqueue was refused, and the ids accepted."""
    with RedisServer(tmp_path, extra=["--maxmemory", "6mb",
                                      "--maxmemory-policy", "noeviction"]) as srv:
        client = homing.Client.from_url(srv.url, prefix="oom")
        ids: list[str] = []
        with pytest.raises(homing.RedisFullError):
            for _ in range(1000):
                ids.append(client.enqueue(SERVICE, PAYLOAD))
        assert len(ids) > 10
        yield client, ids
        client.close()


def _ready(client: homing.Client) -> int:
    return client.stats(SERVICE)["ready"]


def test_a_refused_enqueue_writes_nothing(full: tuple[homing.Client, list[str]]) -> None:
    client, ids = full
    before = client.stats(SERVICE)
    for call in (lambda: client.enqueue(SERVICE, PAYLOAD),
                 lambda: client.enqueue(SERVICE, "small"),
                 lambda: client.create_timer(SERVICE, PAYLOAD, delay_ms=10),
                 lambda: client.enqueue("brand-new", "x")):
        with pytest.raises(homing.RedisFullError, match="nothing was written"):
            call()
    assert client.stats(SERVICE) == before
    assert "brand-new" not in client.services()


def test_a_worker_and_the_daemons_start_on_a_full_redis_and_drain_it(
        full: tuple[homing.Client, list[str]]) -> None:
    client, ids = full
    done: list[str] = []

    class Drains(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            done.append(event.id)
            return state

    with running_daemons(client), \
            running(homing.Worker(client, SERVICE, Drains, prefetch=10)) as worker:
        wait_for(lambda: worker.stats.completed == len(ids), timeout=30)
        assert sorted(done) == sorted(ids)
        assert _ready(client) == 0
        # The beats of both daemons landed although the Redis was full at their start.
        assert {name.split(":")[0] for name in client.daemons()} == {"scheduler", "distributor"}
    client.enqueue(SERVICE, PAYLOAD)  # drained: producers are accepted again


def test_every_draining_operation_runs_on_a_full_redis(
        full: tuple[homing.Client, list[str]]) -> None:
    client, ids = full
    client.redis.config_set("maxmemory", "1mb")  # stays full however much is freed
    evs = client.dequeue(SERVICE, 7, reserve=True)
    assert len(evs) == 7
    a, b, c, d, e, f, g = evs
    assert client.extend_many(SERVICE, [(a.id, a.token)])[0] > 0
    assert client.start(SERVICE, [(a.id, a.token)]) == [1]
    # A result no larger than the payload it frees is kept; a larger one is refused
    # for that item alone, which stays leased for the worker to send again.
    small, large = "ok", "y" * (len(PAYLOAD) + 1000)
    out = client.complete_many(SERVICE, [(a.id, a.token, small), (b.id, b.token, large)])
    assert out[0] is None and isinstance(out[1], homing.RedisFullError)
    assert client.status(SERVICE, a.id).result == "ok"
    assert client.status(SERVICE, b.id).detail == "reserved"
    assert client.complete_many(SERVICE, [(b.id, b.token, None)]) == [None]
    assert client.fail(SERVICE, c.id, c.token, "retry me", delay_ms=0).action == "retry"
    assert client.fail(SERVICE, d.id, d.token, "bad", dead=True).action == "dead"
    assert client.release(SERVICE, [(e.id, e.token)]) == [None]
    # f started and g reserved, both leases run out: the scheduler reclaims both
    # (g straight back to ready, uncharged) and the distributor routes f.
    assert client.start(SERVICE, [(f.id, f.token)]) == [1]
    client.extend_many(SERVICE, [(f.id, f.token), (g.id, g.token)], lease_ms=1)
    time.sleep(0.01)
    reclaimed = client.promote(SERVICE)
    assert (reclaimed.expired, reclaimed.returned) == (2, 1)
    assert client.distribute(SERVICE).retried == 1
    assert client.dead_requeue(SERVICE, [d.id]) == (1, 0)
    client.beat("scheduler:test:1")
    assert client.stats(SERVICE)["dead"] == 0
    with pytest.raises(homing.RedisFullError):
        client.enqueue(SERVICE, "small")


def test_a_result_refused_by_a_full_redis_is_sent_again_and_its_lease_kept(
        full: tuple[homing.Client, list[str]]) -> None:
    client, ids = full
    client.redis.config_set("maxmemory", "10kb")  # stays full however much is drained
    large = "y" * (len(PAYLOAD) + 1000)
    first: list[str] = []

    class Reports(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            if not first:
                first.append(event.id)
                self.complete(event.service, event.id, result=large)  # returns: queued
            return state

    with running_daemons(client):
        with running(homing.Worker(client, SERVICE, Reports, lease_ms=600)) as worker:
            wait_for(lambda: worker.stats.completed == len(ids) - 1, timeout=30)
            time.sleep(1.5)  # over two leases: only the heartbeat keeps the first one
            assert client.status(SERVICE, first[0]).state == "pending"
            client.redis.config_set("maxmemory", "0")  # room again
            wait_for(lambda: client.status(SERVICE, first[0]).state == "done", timeout=10)
        assert client.status(SERVICE, first[0]).result == large
        assert worker.stats.lost == 0 and worker.stats.completed == len(ids)


def test_a_stale_ack_on_a_full_redis_is_still_refused_per_item(
        full: tuple[homing.Client, list[str]]) -> None:
    """complete counts stale acks (stale_acks); when that count is the call's only write,
    a full Redis refuses it: the refusal must still come back per item, not as an error."""
    client, ids = full
    client.redis.config_set("maxmemory", "1mb")
    [ev] = client.dequeue(SERVICE, 1)
    out = client.complete_many(SERVICE, [(ev.id, ev.token + 1, None)])
    assert isinstance(out[0], homing.StaleLeaseError)
    assert client.stats(SERVICE).get("total.stale_acks", 0) == 0  # dropped, as documented
    assert client.complete_many(SERVICE, [(ev.id, ev.token, None)]) == [None]
