"""A plain URL on a node that was demoted to a replica: typed errors, and no endless retries.

Without Sentinel, homing cannot know where the primary went. What it does: every
write is refused as ReadOnlyError (code READ_ONLY, never a generic ScriptError),
reads still work, and a worker or daemon that has met nothing but READONLY for
``readonly_give_up`` seconds stops with one clear error (the CLI exits 2)
instead of retrying for ever while its events wait. Each test demotes a private
primary with REPLICAOF, as Sentinel does to an old primary after a failover.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from servers import HOST, RedisServer

import homing
from homing.daemons import Scheduler, run_daemons


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary and its replica."""
    fast = ["--repl-diskless-sync-delay", "0"]  # the first sync at once, not after 5 s
    primary = RedisServer(tmp_path / "primary", extra=fast).start()
    replica = RedisServer(tmp_path / "replica",
                          extra=[*fast, "--replicaof", HOST, str(primary.port)])
    try:
        replica.start()
        _wait_online(primary)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def _wait_online(primary: RedisServer) -> None:
    with redis.Redis(host=HOST, port=primary.port, decode_responses=True) as r:
        end = time.monotonic() + 10
        while r.info("replication").get("connected_slaves", 0) < 1:
            assert time.monotonic() < end, "the replica did not connect"
            time.sleep(0.05)


def _demote(primary: RedisServer, replica: RedisServer) -> None:
    """Swap the roles: the replica takes over, the old primary follows it."""
    with redis.Redis(host=HOST, port=replica.port) as r:
        r.replicaof("NO", "ONE")
    with redis.Redis(host=HOST, port=primary.port) as r:
        r.replicaof(HOST, replica.port)


def test_writes_to_a_replica_are_read_only_errors(pair: tuple[RedisServer, RedisServer],
                                                  prefix: str) -> None:
    primary, replica = pair
    with homing.Client.from_url(primary.url, prefix=prefix) as c:
        event_id = c.enqueue("svc", {"x": 1})
    with homing.Client.from_url(replica.url, prefix=prefix) as c:
        end = time.monotonic() + 5
        while c.status("svc", event_id).state == "unknown":  # reads work on the replica
            assert time.monotonic() < end
            time.sleep(0.02)
        with pytest.raises(homing.ReadOnlyError) as err:
            c.enqueue("svc", {"x": 2})
        assert err.value.code == "READ_ONLY" and "read-only replica" in str(err.value)
        with pytest.raises(homing.ReadOnlyError):
            c.dequeue("svc")
        with pytest.raises(homing.ReadOnlyError):
            c.register("svc")  # a plain command, not a script
        assert c.read_only_for() > 0
        assert c.stats("svc")["ready"] == 1

    async def run() -> None:
        ac = await homing.AsyncClient.from_url(replica.url, prefix=prefix)
        try:
            with pytest.raises(homing.ReadOnlyError):
                await ac.enqueue("svc", {"x": 3})
        finally:
            await ac.close()

    asyncio.run(run())


class Noop(homing.Consumer):
    def handle_event(self, event: homing.Event, state: Any) -> Any:
        return state


def test_a_worker_gives_up_after_readonly_give_up(pair: tuple[RedisServer, RedisServer],
                                                  prefix: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    primary, replica = pair
    client = homing.Client.from_url(primary.url, prefix=prefix)
    worker = homing.Worker(client, "svc", Noop, readonly_give_up=1.0, lease_ms=2000)
    outcome: list[BaseException | homing.WorkerStats] = []

    def run() -> None:
        try:
            outcome.append(worker.run())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    try:
        t.start()
        client.enqueue("svc", 1)
        time.sleep(0.3)
        demoted_at = time.monotonic()
        _demote(primary, replica)
        t.join(15)
        took = time.monotonic() - demoted_at
    finally:
        worker.stop()
        t.join(15)
        client.close()
    assert not t.is_alive()
    assert isinstance(outcome[0], homing.ReadOnlyError), outcome
    assert worker.gave_up is outcome[0]
    assert "readonly_give_up 1 s" in str(outcome[0]) and "redis+sentinel://" in str(outcome[0])
    assert took < 8, f"the worker took {took:.1f} s to give up"
    assert [r for r in caplog.records if r.levelname == "ERROR" and "READONLY" in r.message]


def test_daemons_give_up_after_readonly_give_up(pair: tuple[RedisServer, RedisServer],
                                                prefix: str) -> None:
    primary, replica = pair
    _demote(primary, replica)
    with homing.Client.from_url(primary.url, prefix=prefix) as client:
        stop = threading.Event()
        t0 = time.monotonic()
        with pytest.raises(homing.ReadOnlyError, match="READONLY"):
            run_daemons(client, stop, readonly_give_up=0.5)
        assert time.monotonic() - t0 < 8
        assert stop.is_set()
        # One daemon run directly: run() raises it too.
        d = Scheduler(client, readonly_give_up=0.0)
        with pytest.raises(homing.ReadOnlyError):
            d.run(threading.Event())
        assert d.gave_up is not None


CONSUMER = """
from homing import Consumer

class Noop(Consumer):
    def handle_event(self, event, state):
        return state
"""


def _homing(url: str, prefix: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "homing", "--redis-url", url, "--prefix", prefix,
                           *args], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_cli_worker_and_daemon_exit_2_with_one_error_line(pair: tuple[RedisServer, RedisServer],
                                                          prefix: str, tmp_path: Path) -> None:
    primary, replica = pair
    (tmp_path / "noop.py").write_text(textwrap.dedent(CONSUMER))
    with homing.Client.from_url(primary.url, prefix=prefix) as client:
        client.enqueue("svc", 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "homing", "--redis-url", primary.url, "--prefix", prefix,
         "worker", "noop:Noop", "--service", "svc", "--readonly-give-up", "0.5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Started and working: its event completed (a fixed sleep was too short for
        # the process to start on a loaded machine, and it then met a replica at start).
        with homing.Client.from_url(primary.url, prefix=prefix) as client:
            deadline = time.monotonic() + 20
            while client.stats("svc").get("total.completed", 0) < 1:
                assert time.monotonic() < deadline, "the worker never completed its event"
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
        _demote(primary, replica)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, err
    assert "worker svc gave up:" in out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: READ_ONLY: "), err

    daemon = _homing(primary.url, prefix, "daemon", "--readonly-give-up", "0.3", cwd=tmp_path)
    assert daemon.returncode == 2, daemon.stderr
    errors = [line for line in daemon.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: READ_ONLY: "), daemon.stderr


def test_min_replicas_to_write_refusal_is_typed(pair: tuple[RedisServer, RedisServer],
                                                prefix: str) -> None:
    """A primary that lost its replicas under min-replicas-to-write refuses before writing."""
    primary, _ = pair
    with redis.Redis(host=HOST, port=primary.port) as r:
        r.config_set("min-replicas-to-write", "2")  # one replica only: never enough
    try:
        with homing.Client.from_url(primary.url, prefix=prefix) as c:
            with pytest.raises(homing.ConnectionLostError, match="min-replicas-to-write"):
                c.enqueue("svc", 1)
            assert c.stats("svc")["ready"] == 0  # nothing was written
    finally:
        with redis.Redis(host=HOST, port=primary.port) as r:
            r.config_set("min-replicas-to-write", "0")


def test_wait_vouches_for_the_first_send_of_a_repeat(pair: tuple[RedisServer, RedisServer],
                                                     prefix: str) -> None:
    """A resent enqueue (same id) writes nothing: its WAIT must still cover the first send.

    WAIT counts the replicas that have this connection's writes. A repeat on a
    connection that never wrote must not be vouched for at once: Redis 7.0 moves
    the mark with any script call, and the client also touches a counter after a
    repeat (scripting.Touch) for servers that would not.
    """
    primary, replica = pair
    first = homing.Client.from_url(primary.url, prefix=prefix, wait_replicas=1,
                                   wait_timeout_ms=200)
    again = homing.Client.from_url(primary.url, prefix=prefix, wait_replicas=1,
                                   wait_timeout_ms=200)  # a pool of its own: another connection
    try:
        end = time.monotonic() + 10
        while True:  # until the replica is in sync and acknowledging
            try:
                first.enqueue("svc", 0, id="warm")
                break
            except homing.NotReplicatedError:
                assert time.monotonic() < end, "the replica never acknowledged"
        again.stats("svc")
        os.kill(replica._proc.pid, signal.SIGSTOP)  # the replica stops acknowledging
        try:
            with pytest.raises(homing.NotReplicatedError) as err:
                first.enqueue("svc", 1, id="e1")
            assert err.value.result == "e1"  # type: ignore[attr-defined]
            with pytest.raises(homing.NotReplicatedError):
                again.enqueue("svc", 1, id="e1")  # the repeat: still not on the replica
            with pytest.raises(homing.NotReplicatedError):
                again.create_timer("svc", 2, delay_ms=10, key="t1")
        finally:
            os.kill(replica._proc.pid, signal.SIGCONT)
        assert again.enqueue("svc", 1, id="e1") == "e1"  # replicated now: acknowledged
        assert again.create_timer("svc", 2, delay_ms=10, key="t1")
    finally:
        first.close()
        again.close()
