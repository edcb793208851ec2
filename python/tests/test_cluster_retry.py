"""The Cluster client half of failover: refused calls retried within a budget, seeds that are down.

While a slot migrates, a node runs a multi-key script only when all of its keys
are there; with the keys split between the two nodes (or some absent) it
answers TRYAGAIN, and redis-py gives up after ~0.4 s with "TTL exhausted". Such
a call never ran, so homing retries it (scripting: 10 ms doubling to 200 ms,
RETRY_BUDGET s in all) and raises ConnectionLostError only past that. The
migration here is done by hand, key by key (CLUSTER SETSLOT IMPORTING /
MIGRATING, MIGRATE, SETSLOT NODE), while a producer keeps calling. Then the
first seed of a multi-seed URL is stopped: the client must still start.
(test_cluster_migration.py checks the scripts' side: no key declared in vain.)
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode
from redis.crc import key_slot
from servers import HOST, RedisClusterServers

import homing
from homing import scripting
from homing.manifest import global_key, service_key

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A private cluster: the last test stops one of its nodes."""
    with RedisClusterServers(tmp_path_factory.mktemp("retry-cluster")) as c:
        for node in c.nodes:  # the other slots stay served while one node is down
            with redis.Redis(host=HOST, port=node.port) as r:
                r.config_set("cluster-require-full-coverage", "no")
        yield c


def _nodes(cluster: RedisClusterServers) -> list[redis.Redis]:
    return [redis.Redis(host=HOST, port=n.port, socket_timeout=10) for n in cluster.nodes]


class Migration:
    """Moves one slot from its owner to another node by hand, the way redis-cli --cluster
    reshard does: IMPORTING / MIGRATING, then MIGRATE key by key, then SETSLOT NODE."""

    def __init__(self, cluster: RedisClusterServers, slot: int) -> None:
        self.slot = slot
        self.nodes = _nodes(cluster)
        self.ids = {r: r.execute_command("CLUSTER", "MYID").decode() for r in self.nodes}
        owner_id = next(m[2][2].decode() for m in self.nodes[0].execute_command("CLUSTER", "SLOTS")
                        if m[0] <= slot <= m[1])
        self.source = next(r for r in self.nodes if self.ids[r] == owner_id)
        self.target = next(r for r in self.nodes if r is not self.source)

    def begin(self) -> None:
        self.target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING",
                                    self.ids[self.source])
        self.source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING",
                                    self.ids[self.target])

    def move_keys(self, pause: float, limit: int | None = None) -> int:
        """MIGRATE the slot's keys one by one, ``pause`` s apart; returns how many moved."""
        moved = 0
        port = self.target.connection_pool.connection_kwargs["port"]
        while limit is None or moved < limit:
            keys = self.source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 1)
            if not keys:
                break
            self.source.execute_command("MIGRATE", HOST, port, keys[0], 0, 5000)
            moved += 1
            time.sleep(pause)
        return moved

    def finish(self) -> None:
        self.move_keys(0)
        for r in (self.target, self.source, *self.nodes):
            r.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.ids[self.target])

    def close(self) -> None:
        for r in self.nodes:
            r.close()


def _slot(prefix: str, service: str) -> int:
    return key_slot(service_key(prefix, service, "ready").encode())


@pytest.mark.timeout(60)
def test_calls_wait_out_a_migration_then_succeed(cluster: RedisClusterServers,
                                                 prefix: str) -> None:
    service = "mig-" + uuid.uuid4().hex[:6]
    client = homing.Client.from_url(cluster.url, prefix=prefix)
    enqueued: list[str] = []
    errors: list[BaseException] = []
    slowest = [0.0]
    stopped = threading.Event()

    def produce() -> None:
        n = 0
        while not stopped.is_set():
            n += 1
            t0 = time.monotonic()
            try:
                enqueued.append(client.enqueue(service, n, key=f"k{n}"))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            time.sleep(0.01)

    client.enqueue_many(service, [0, 0, 0])
    [ev] = client.dequeue(service, 1)
    client.complete(service, ev.id, ev.token, result="kept")  # a results key to move too
    migration = Migration(cluster, _slot(prefix, service))
    t = threading.Thread(target=produce, daemon=True)
    try:
        t.start()
        time.sleep(0.2)
        migration.begin()
        moved = migration.move_keys(pause=0.15)
        migration.finish()
        time.sleep(0.3)
    finally:
        stopped.set()
        t.join(10)
        migration.close()
    try:
        assert moved >= 5, "the service's keys should have moved one by one"
        assert errors == [], f"calls failed during the migration: {errors[:3]}"
        assert slowest[0] < scripting.RETRY_BUDGET, f"a call waited {slowest[0]:.2f} s"
        assert len(enqueued) > 20
        stats = client.stats(service)  # served by the new owner
        assert stats["ready"] == 2 + len(enqueued)
        print(f"{moved} keys moved; {len(enqueued)} enqueues, the slowest waited "
              f"{slowest[0]:.2f} s")
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_a_migration_stuck_past_the_budget_is_a_typed_error(
        cluster: RedisClusterServers, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scripting, "RETRY_BUDGET", 0.5)
    service = "stuck-" + uuid.uuid4().hex[:6]
    client = homing.Client.from_url(cluster.url, prefix=prefix)
    client.enqueue_many(service, [1, 2])
    [ev] = client.dequeue(service, 1)
    client.complete(service, ev.id, ev.token, result="r")
    migration = Migration(cluster, _slot(prefix, service))
    try:
        migration.begin()
        migration.move_keys(pause=0, limit=2)  # its keys split between the two nodes
        t0 = time.monotonic()
        with pytest.raises(homing.ConnectionLostError, match="kept refusing"):
            client.enqueue(service, 3, key="x")
        took = time.monotonic() - t0
        assert 0.4 <= took < 3, took

        async def run() -> None:
            ac = await homing.AsyncClient.from_url(cluster.url, prefix=prefix)
            try:
                with pytest.raises(homing.ConnectionLostError, match="kept refusing"):
                    await ac.enqueue(service, 4, key="y")
            finally:
                await ac.close()

        asyncio.run(run())
    finally:
        migration.finish()
        migration.close()
    assert client.enqueue(service, 5, key="z")  # the slot settled: the call goes through
    client.close()


@pytest.mark.timeout(60)
def test_waited_writes_follow_a_migration(cluster: RedisClusterServers, prefix: str) -> None:
    """wait_replicas sends the script and WAIT on one node's connection, bypassing redis-py's
    routing: MOVED and ASK are followed by homing there (0 replicas asked: WAIT returns 0)."""
    service = "wait-" + uuid.uuid4().hex[:6]
    with homing.Client.from_url(cluster.url, prefix=prefix, wait_replicas=1,
                                wait_timeout_ms=50) as client:
        with pytest.raises(homing.NotReplicatedError) as err:
            client.enqueue(service, 1, id="a")  # the cluster has no replicas
        assert err.value.result == "a"  # type: ignore[attr-defined]
        migration = Migration(cluster, _slot(prefix, service))
        try:
            migration.begin()
            migration.finish()  # everything moved: the old node answers MOVED
        finally:
            migration.close()
        with pytest.raises(homing.NotReplicatedError):
            client.enqueue(service, 2, id="b")
        assert client.stats(service)["ready"] == 2

    async def run() -> None:  # the asyncio Cluster sends its pipeline through a ClusterNode
        ac = await homing.AsyncClient.from_url(cluster.url, prefix=prefix, wait_replicas=1,
                                               wait_timeout_ms=50)
        try:
            for event_id in ("c", "c"):  # the second is a repeat: touched, then WAIT again
                with pytest.raises(homing.NotReplicatedError) as err:
                    await ac.enqueue(service, 3, id=event_id)
                assert err.value.result == "c"  # type: ignore[attr-defined]
        finally:
            await ac.close()

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_a_client_starts_with_its_first_seed_down(cluster: RedisClusterServers,
                                                  prefix: str) -> None:
    first, *rest = cluster.nodes
    seeds = ",".join(f"{HOST}:{n.port}" for n in cluster.nodes)
    first.stop()
    with redis.Redis(host=HOST, port=rest[0].port) as r:
        owners = r.execute_command("CLUSTER", "SLOTS")

    def served(key: str) -> bool:  # by a node that is up
        slot = key_slot(key.encode())
        return next(m[2][1] for m in owners if m[0] <= slot <= m[1]) != first.port

    # A service, and a registry (the prefix's), whose slots the stopped node does not own.
    while not served(global_key(prefix, "services")):
        prefix = "t" + uuid.uuid4().hex[:12]
    service = "seed-" + uuid.uuid4().hex[:6]
    while not served(service_key(prefix, service, "ready")):
        service = "seed-" + uuid.uuid4().hex[:6]
    with homing.Client.from_url(f"redis://{seeds}/0", prefix=prefix) as client:
        assert isinstance(client.redis, redis.RedisCluster)
        event_id = client.enqueue(service, 1)
        assert client.status(service, event_id).state == "pending"
        unreachable = [d for d in client.check_durability() if d.unreachable]
        assert [d.node for d in unreachable] == [f"{HOST}:{first.port}"]
    with homing.Client.from_url(f"redis://{seeds}/0", prefix=prefix, cluster=True) as client:
        assert isinstance(client.redis, redis.RedisCluster)
    with homing.Client.from_url(first.url, prefix=prefix,
                                startup_nodes=[ClusterNode(HOST, rest[0].port)]) as client:
        assert isinstance(client.redis, redis.RedisCluster)

    async def run() -> None:
        ac = await homing.AsyncClient.from_url(f"redis://{seeds}/0", prefix=prefix)
        await ac.close()

    asyncio.run(run())
    with pytest.raises(homing.ConnectionLostError):  # no seed up at all
        homing.Client.from_url(f"redis://{HOST}:{first.port},{HOST}:{first.port + 1}/0")


def test_several_hosts_name_a_cluster(standalone_server: Any, tmp_path: Path) -> None:
    with pytest.raises(homing.InvalidArgumentError, match="seed nodes of a Redis Cluster"):
        homing.Client.from_url(f"redis://{HOST}:{standalone_server.port},{HOST}:1/0")
