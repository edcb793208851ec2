"""Shared fixtures: private Redis servers and per-test key prefixes.

Interface (tests are written against exactly this):

- ``standalone_server`` (session): a started ``servers.RedisServer``, appendonly off.
- ``cluster_servers`` (session): a started ``servers.RedisClusterServers`` (3 masters).
- ``redis_url``: parametrized ``standalone`` / ``cluster``; the URL of the matching
  session server. The cluster case carries the ``cluster`` marker, so
  ``-m "not cluster"`` skips it (and the cluster is then never started).
- ``prefix``: a unique key prefix per test. Tests isolate by prefix; nothing is
  ever flushed, so session servers can be shared safely.
- ``aof_server`` (function): a fresh started ``RedisServer`` with
  appendonly=yes, appendfsync=always in ``tmp_path``; stopped afterwards.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

# servers.py sits next to this file. pytest's default import mode already puts
# this directory on sys.path, but --import-mode=importlib would not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import RedisClusterServers, RedisServer  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the private Redis Cluster (deselect with -m 'not cluster')"
    )


def _durability_told(url: str) -> None:
    """The session servers run without persistence on purpose. homing warns about that
    once per process and server: have it say so now, silently, so that no test's
    stderr depends on whether it happened to connect first."""
    import logging

    import homing

    logger = logging.getLogger("homing")
    was, logger.disabled = logger.disabled, True
    try:
        homing.Client.from_url(url).close()
    finally:
        logger.disabled = was


@pytest.fixture(scope="session")
def standalone_server(tmp_path_factory: pytest.TempPathFactory):
    with RedisServer(tmp_path_factory.mktemp("redis-standalone")) as server:
        _durability_told(server.url)
        yield server


@pytest.fixture(scope="session")
def cluster_servers(tmp_path_factory: pytest.TempPathFactory):
    with RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        _durability_told(cluster.url)
        yield cluster


@pytest.fixture(
    params=[
        pytest.param("standalone", id="standalone"),
        pytest.param("cluster", id="cluster", marks=pytest.mark.cluster),
    ]
)
def redis_url(request: pytest.FixtureRequest) -> str:
    # getfixturevalue (not plain arguments) so that a run without cluster
    # tests never pays for starting the cluster.
    name = "standalone_server" if request.param == "standalone" else "cluster_servers"
    return request.getfixturevalue(name).url


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def aof_server(tmp_path: Path):
    with RedisServer(tmp_path, appendonly=True, appendfsync="always") as server:
        yield server


# --- client fixtures (homing) ---


@pytest.fixture
def client(redis_url: str, prefix: str):
    """A ``homing.Client`` on the parametrized server, isolated by ``prefix``.

    Async tests build their own ``AsyncClient`` inside ``asyncio.run`` (see
    test_async.py): an asyncio client is bound to the loop that created it, so
    a fixture-made one would outlive its loop.
    """
    import homing

    c = homing.Client.from_url(redis_url, prefix=prefix)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def service() -> str:
    """A fresh service name per test (the prefix already isolates; this keeps names readable)."""
    return "svc-" + uuid.uuid4().hex[:8]


@pytest.fixture
def cli(redis_url: str, prefix: str):
    """Invoke the ``homing`` command line against the test server, in the test's prefix."""
    from click.testing import CliRunner

    from homing.cli import main

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(main, ["--redis-url", redis_url, "--prefix", prefix, *args],
                             input=input, env=env)

    return invoke
