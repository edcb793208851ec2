"""Smoke tests for the private-server fixtures in conftest.py / servers.py."""

from __future__ import annotations

import pytest
import redis
from servers import RedisClusterServers, RedisServer


def test_standalone_ping(standalone_server: RedisServer) -> None:
    assert standalone_server.alive()
    with redis.Redis.from_url(standalone_server.url) as r:
        assert r.ping()


@pytest.mark.cluster
def test_cluster_keys_in_different_slots(cluster_servers: RedisClusterServers, prefix: str) -> None:
    keys = [f"{prefix}:{i}" for i in range(30)]
    with redis.RedisCluster.from_url(cluster_servers.url) as rc:
        # 30 keys hash to several slots, so several of the 3 masters are hit.
        assert len({rc.keyslot(k) for k in keys}) > 1
        for k in keys:
            rc.set(k, k)
        assert [rc.get(k).decode() for k in keys] == keys
        owners = {rc.get_node_from_key(k).port for k in keys}
    assert len(owners) > 1


def test_redis_url_matches_param(request: pytest.FixtureRequest, redis_url: str) -> None:
    backend = request.node.callspec.params["redis_url"]
    fixture = "standalone_server" if backend == "standalone" else "cluster_servers"
    assert redis_url == request.getfixturevalue(fixture).url


def test_prefix_is_unique_per_test(prefix: str) -> None:
    assert prefix.startswith("t") and len(prefix) == 13


def test_aof_survives_restart(aof_server: RedisServer, prefix: str) -> None:
    port = aof_server.port
    with redis.Redis.from_url(aof_server.url) as r:
        r.set(f"{prefix}:k", "graceful")
    aof_server.restart()
    assert aof_server.port == port
    with redis.Redis.from_url(aof_server.url) as r:
        assert r.get(f"{prefix}:k") == b"graceful"


def test_aof_survives_kill(aof_server: RedisServer, prefix: str) -> None:
    # appendfsync always: an acknowledged write is on disk before the reply,
    # so even SIGKILL (no shutdown flush) must not lose it.
    with redis.Redis.from_url(aof_server.url) as r:
        r.set(f"{prefix}:k", "crash")
    aof_server.kill()
    assert not aof_server.alive()
    aof_server.restart()
    with redis.Redis.from_url(aof_server.url) as r:
        assert r.get(f"{prefix}:k") == b"crash"
