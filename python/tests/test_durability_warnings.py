"""Clients, workers and daemons warn about a Redis that may lose events; require_durable refuses it.

Each server here is private and started with the setting under test: an
eviction policy, no persistence, everysec, a user that may not run CONFIG.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from servers import RedisServer

import homing
from homing import durability
from homing.cli import main
from homing.daemons import Scheduler, run_daemons


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test warns as a new process would (and leaves the session's record alone)."""
    monkeypatch.setattr(durability, "_warned", set())


@pytest.fixture
def lru_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Evicting and without persistence: both settings under test at once."""
    with RedisServer(tmp_path, extra=["--maxmemory-policy", "allkeys-lru"]) as server:
        yield server


@pytest.fixture
def everysec_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path, appendonly=True, appendfsync="everysec") as server:
        yield server


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "homing" and r.levelno == logging.WARNING]


def test_each_finding_is_warned_once_per_process_and_server(
        lru_server: RedisServer, caplog: pytest.LogCaptureFixture, prefix: str) -> None:
    caplog.set_level(logging.WARNING, "homing")
    with homing.Client.from_url(lru_server.url, prefix=prefix) as c:
        c.enqueue("svc", 1)
    with homing.Client.from_url(lru_server.url, prefix=prefix) as c:  # the same process again
        c.enqueue("svc", 2)

    async def other_client() -> None:
        async with await homing.AsyncClient.from_url(lru_server.url, prefix=prefix) as ac:
            await ac.enqueue("svc", 3)

    asyncio.run(other_client())
    told = warnings(caplog)
    node = f"127.0.0.1:{lru_server.port}"
    assert len(told) == 2, told
    assert told[0] == (f"Redis at {node}: maxmemory-policy is 'allkeys-lru': when memory runs "
                       "out Redis evicts keys and may silently delete queued events; set it to "
                       "noeviction (see docs/guarantees.md)")
    assert f"Redis at {node}: appendonly is 'no': no persistence at all" in told[1]
    assert "a restart loses every queued event" in told[1]


def test_a_client_made_from_a_redis_client_checks_before_its_first_call(
        lru_server: RedisServer, caplog: pytest.LogCaptureFixture, prefix: str) -> None:
    caplog.set_level(logging.WARNING, "homing")
    client = homing.Client(redis.Redis.from_url(lru_server.url), prefix=prefix)
    assert warnings(caplog) == []  # no I/O in the constructor
    client.enqueue("svc", 1)
    assert len(warnings(caplog)) == 2
    client.close()


def test_require_durable_refuses_everywhere(lru_server: RedisServer, prefix: str) -> None:
    url = lru_server.url
    with pytest.raises(homing.NotDurableError) as info:
        homing.Client.from_url(url, prefix=prefix, require_durable=True)
    assert "maxmemory-policy is 'allkeys-lru'" in str(info.value)
    assert "appendonly is 'no'" in str(info.value)

    async def async_client() -> None:
        await homing.AsyncClient.from_url(url, prefix=prefix, require_durable=True)

    with pytest.raises(homing.NotDurableError):
        asyncio.run(async_client())

    client = homing.Client.from_url(url, prefix=prefix)  # warns, works
    with pytest.raises(homing.NotDurableError):
        homing.Worker(client, "svc", homing.Consumer, require_durable=True).start()
    assert client.services() == []  # refused before registering anything
    stop = threading.Event()
    with pytest.raises(homing.NotDurableError):
        run_daemons(client, stop, require_durable=True)
    with pytest.raises(homing.NotDurableError):
        Scheduler(client, require_durable=True).run(stop)  # the loop does not retry it
    with pytest.raises(homing.NotDurableError):
        client.check_durability(require=True)
    client.close()


@pytest.mark.parametrize("args", [
    ["--require-durable", "stats"],
    ["stats", "--require-durable"],
    ["worker", "homing:Consumer", "--service", "svc", "--require-durable"],
    ["daemon", "--require-durable"],
])
def test_cli_require_durable_exits_2_in_one_line(lru_server: RedisServer, prefix: str,
                                                 args: list[str]) -> None:
    r = CliRunner().invoke(main, ["--redis-url", lru_server.url, "--prefix", prefix, *args])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: NOT_DURABLE: "), r.stderr
    assert "Traceback" not in r.stderr


def test_cli_require_durable_from_the_environment(lru_server: RedisServer, prefix: str) -> None:
    r = CliRunner().invoke(main, ["--redis-url", lru_server.url, "--prefix", prefix, "enqueue",
                                  "svc", "1"], env={"HOMING_REQUIRE_DURABLE": "1"})
    assert r.exit_code == 2 and "NOT_DURABLE" in r.stderr
    raw = redis.Redis.from_url(lru_server.url)
    assert list(raw.scan_iter(match=f"{prefix}:*")) == []  # refused before anything was sent
    raw.close()


def test_everysec_is_warned_about_but_durable_enough(
        everysec_server: RedisServer, caplog: pytest.LogCaptureFixture, prefix: str) -> None:
    caplog.set_level(logging.WARNING, "homing")
    with homing.Client.from_url(everysec_server.url, prefix=prefix, require_durable=True) as c:
        [node] = c.check_durability()
    assert node.durable
    [told] = warnings(caplog)
    assert "appendfsync is 'everysec': a crash may lose about the last second" in told


def test_a_durable_server_is_quiet(aof_server: RedisServer, caplog: pytest.LogCaptureFixture,
                                   prefix: str) -> None:
    caplog.set_level(logging.WARNING, "homing")
    with homing.Client.from_url(aof_server.url, prefix=prefix, require_durable=True) as c:
        c.enqueue("svc", 1)
        assert all(node.durable and not node.findings for node in c.check_durability())
    assert warnings(caplog) == []
    r = CliRunner().invoke(main, ["--redis-url", aof_server.url, "--prefix", prefix, "stats"])
    assert r.exit_code == 0 and "durab" not in r.stderr, r.output
    assert r.stdout.splitlines()[-1] == (
        f"durability: ok (127.0.0.1:{aof_server.port}: noeviction, appendonly yes, "
        "appendfsync always)")


def test_stats_shows_it(lru_server: RedisServer, prefix: str) -> None:
    with homing.Client.from_url(lru_server.url, prefix=prefix) as c:
        c.enqueue("svc", 1)
    base = ["--redis-url", lru_server.url, "--prefix", prefix]
    durability.forget()  # as in a fresh `homing stats` process
    r = CliRunner().invoke(main, [*base, "stats"])
    assert r.exit_code == 0, r.output
    last = r.stdout.splitlines()[-1]
    assert last.startswith("durability: NOT DURABLE, acknowledged events may be lost: ")
    assert "maxmemory-policy is 'allkeys-lru'" in last and "appendonly is 'no'" in last
    assert sum("maxmemory-policy" in line for line in r.stderr.splitlines()) == 1  # the warning
    data = json.loads(CliRunner().invoke(main, [*base, "stats", "--json"]).stdout)
    assert data["services"]["svc"]["ready"] == 1
    node = data["durability"]["nodes"][f"127.0.0.1:{lru_server.port}"]
    assert data["durability"]["durable"] is False and node["durable"] is False
    assert node["settings"] == {"maxmemory-policy": "allkeys-lru", "appendonly": "no",
                                "appendfsync": "everysec", "save": ""}
    assert len(node["warnings"]) == 2 and node["config_refused"] is None


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Durable, with users that may not run CONFIG (as managed services do), or not INFO either."""
    with RedisServer(tmp_path, appendonly=True, appendfsync="always") as server:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "&*", "+@all",
                              "-config")
        admin.execute_command("ACL", "SETUSER", "blind", "on", ">pw", "~*", "&*", "+@all",
                              "-config", "-info")
        admin.close()
        yield server


def _as(server: RedisServer, user: str) -> str:
    return f"redis://{user}:pw@127.0.0.1:{server.port}/0"


def test_config_refused_falls_back_to_info(acl_server: RedisServer, prefix: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "homing")
    with homing.Client.from_url(_as(acl_server, "noconfig"), prefix=prefix,
                                require_durable=True) as c:  # INFO shows enough
        [node] = c.check_durability()
    assert node.settings == {"maxmemory-policy": "noeviction", "appendonly": "yes",
                             "appendfsync": None, "save": None}
    assert node.durable and "no permissions" in (node.config_refused or "")
    told = warnings(caplog)
    assert len(told) == 2
    assert "refused CONFIG GET" in told[0] and "could not all be checked" in told[0]
    assert told[1].endswith("appendfsync could not be read: how much a crash may lose is "
                            "unknown (see docs/guarantees.md)")


def test_settings_nobody_will_show_cannot_be_required(acl_server: RedisServer,
                                                      prefix: str) -> None:
    with homing.Client.from_url(_as(acl_server, "blind"), prefix=prefix) as c:
        [node] = c.check_durability()  # warns, works
        assert node.settings == dict.fromkeys(durability.SETTINGS) and not node.durable
        c.enqueue("svc", 1)
    with pytest.raises(homing.NotDurableError, match="durability cannot be shown"):
        homing.Client.from_url(_as(acl_server, "blind"), prefix=prefix, require_durable=True)


@pytest.mark.parametrize(("settings", "fatal"), [
    ({"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "always",
      "save": ""}, []),
    ({"maxmemory-policy": "volatile-lru", "appendonly": "yes", "appendfsync": "always",
      "save": ""}, ["maxmemory-policy"]),
    ({"maxmemory-policy": "noeviction", "appendonly": "no", "appendfsync": "always",
      "save": "3600 1"}, ["appendonly"]),
    ({"maxmemory-policy": "noeviction", "appendonly": "yes", "appendfsync": "no",
      "save": ""}, []),
    (dict.fromkeys(durability.SETTINGS), ["maxmemory-policy", "appendonly"]),
])
def test_assess(settings: dict[str, str | None], fatal: list[str]) -> None:
    findings = durability.assess(settings)
    assert [f.setting for f in findings if f.fatal] == fatal
    if settings["appendonly"] == "no":
        assert "RDB snapshots only (save '3600 1')" in findings[0].consequence


@pytest.mark.cluster
def test_cluster_checks_every_master(cluster_servers: object, prefix: str) -> None:
    nodes = cluster_servers.nodes  # type: ignore[attr-defined]
    odd = redis.Redis.from_url(nodes[1].url)
    odd.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        url = cluster_servers.url  # type: ignore[attr-defined]
        with homing.Client.from_url(url, prefix=prefix) as c:
            reports = c.check_durability()
        assert sorted(rep.node for rep in reports) == sorted(
            f"127.0.0.1:{n.port}" for n in nodes)
        evicting = [rep.node for rep in reports
                    if any(f.setting == "maxmemory-policy" for f in rep.findings)]
        assert evicting == [f"127.0.0.1:{nodes[1].port}"]
    finally:
        odd.config_set("maxmemory-policy", "noeviction")
        odd.close()
