"""The worker's half of issue 7: a crash charges only what ran, a hung handler
is failed at its timeout, and an event whose lease ran out is never started.

Each test runs a real Worker (threads, or a process that dies) against a
private Redis and checks where every event ended up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import counters, running, running_daemons, wait_for
from servers import RedisServer

import homing

HERE = Path(__file__).resolve().parent


class Sleeps(homing.Consumer):
    """Sleeps as long as the payload says, in seconds."""

    def handle_event(self, event: homing.Event, state: object) -> object:
        time.sleep(event.payload)
        return state


def test_a_handler_past_its_timeout_is_failed_then_dead_lettered(
        client: homing.Client, service: str) -> None:
    client.configure(service, max_attempts=2, backoff_base_ms=0)
    event_id = client.enqueue(service, 0.8)
    with running_daemons(client), \
            running(homing.Worker(client, service, Sleeps, concurrency=3,
                                  handler_timeout=0.2)) as worker:
        st = wait_for(lambda: (s := client.status(service, event_id)).state == "dead" and s,
                      timeout=15)
        assert worker.stats.timed_out == 2
        # The retry runs on another slot while the first still sleeps: two of
        # three slots hung at most, so the worker keeps going.
        assert not worker.hung
    assert st.detail == "handler timed out after 200 ms (attempt 2 of 2)"
    assert st.attempt == 2


def test_the_policy_sets_the_timeout(client: homing.Client, service: str) -> None:
    client.configure(service, handler_timeout_ms=150, max_attempts=1)
    event_id = client.enqueue(service, 0.6)
    with running(homing.Worker(client, service, Sleeps, concurrency=2)) as worker:
        wait_for(lambda: client.status(service, event_id).state == "dead", timeout=10)
        assert worker.stats.timed_out == 1
    assert client.status(service, event_id).detail.startswith("handler timed out after 150 ms")


def test_a_worker_whose_slots_all_hang_stops_itself(client: homing.Client,
                                                    service: str) -> None:
    release = threading.Event()

    class Hangs(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            release.wait(30)
            return state

    client.configure(service, backoff_base_ms=60_000)
    event_id = client.enqueue(service, "stuck")
    other = client.enqueue(service, "never started")
    worker = homing.Worker(client, service, Hangs, handler_timeout=0.2, prefetch=5, grace=30)
    done = threading.Thread(target=worker.run, daemon=True)
    started = time.monotonic()
    done.start()
    done.join(10)
    try:
        assert not done.is_alive(), "run() returned by itself"
        assert worker.hung
        assert time.monotonic() - started < 5, "a hung slot is not waited for over the grace"
        st = client.status(service, event_id)
        assert (st.state, st.detail) == ("pending", "waiting"), "failed: waiting for its retry"
        assert client.status(service, other).detail == "ready", "released unstarted"
    finally:
        release.set()


def test_an_async_handler_is_cancelled_at_its_timeout(client: homing.Client,
                                                      service: str) -> None:
    cancelled: list[str] = []

    class Slow(homing.Consumer):
        async def handle_event(self, event: homing.Event, state: object) -> object:
            try:
                await asyncio.sleep(event.payload)
            except asyncio.CancelledError:
                cancelled.append(event.id)
                raise
            return state

    # status answers done for completions without a result (done_ttl_ms)
    client.configure(service, max_attempts=1, done_ttl_ms=600_000)
    slow, fast = client.enqueue(service, 30), client.enqueue(service, 0)
    with running(homing.Worker(client, service, Slow, handler_timeout=0.2)) as worker:
        wait_for(lambda: worker.stats.completed == 1 and worker.stats.timed_out == 1)
        assert not worker.hung
    assert cancelled == [slow]
    assert client.status(service, slow).detail.startswith("handler timed out after 200 ms")
    assert client.status(service, fast).state == "done"


@pytest.mark.parametrize("redis_url", ["standalone"], indirect=True)
def test_a_poison_event_dies_alone(client: homing.Client, service: str, tmp_path: Path,
                                   redis_url: str) -> None:
    """With prefetch 100, a handler that kills its process on one event: only
    that event is charged and dead-lettered; the others all complete."""
    client.configure(service, max_attempts=3, backoff_base_ms=0, done_ttl_ms=600_000)
    payloads = [f"job-{i}" for i in range(40)]
    payloads[5] = "poison"
    ids = client.enqueue_many(service, payloads)
    poison = ids[5]
    log = tmp_path / "ran.log"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    crashes = 0
    with running_daemons(client):
        while client.status(service, poison).state != "dead" and crashes < 8:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "poison_proc.py"), redis_url, client.prefix,
                 service, str(log), "400"], env=env, stdin=subprocess.DEVNULL)
            try:
                assert proc.wait(30) == 17, "the worker died on the poison"
            finally:
                if proc.poll() is None:
                    proc.kill()
            crashes += 1
            # Until the daemons have routed it (back to ready, a retry, or the dead letters).
            wait_for(lambda: client.status(service, poison).detail
                     not in ("reserved", "leased", "expired"), timeout=10)
        with running(homing.Worker(client, service, _Completes, prefetch=100)):
            for event_id in ids:
                if event_id != poison:
                    wait_for(lambda e=event_id: client.status(service, e).state == "done",
                             timeout=15)
    st = client.status(service, poison)
    assert (st.state, st.attempt) == ("dead", 3), st
    # One uncharged crash (its first run was never marked), then three charged ones.
    assert crashes == 4
    assert client.dead_list(service).total == 1, "no collateral in the dead letters"
    ran = [line.split() for line in log.read_text().splitlines()]
    assert [int(a) for i, a in ran if i == poison] == [1, 1, 2, 3]
    c = counters(client, service)
    assert c["dead"] == 1 and c["completed"] == len(ids) - 1


class _Completes(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        return state


def test_events_whose_lease_ran_out_in_the_inbox_are_not_started(tmp_path: Path) -> None:
    """Redis goes away for longer than the lease while events wait for the one
    slot: once the running handler returns, the worker does not start them (by
    its own clock their leases ended; they may be someone else's by then). The
    scheduler returns them, and each of them still runs exactly once."""
    with RedisServer(tmp_path, appendonly=True, appendfsync="always") as srv:
        client = homing.Client.from_url(srv.url, prefix="inbox")
        service = "outage"
        ran: list[str] = []

        class Records(homing.Consumer):
            def handle_event(self, event: homing.Event, state: object) -> object:
                ran.append(event.id)
                if len(ran) == 1:
                    time.sleep(1.0)  # returns while Redis is still down
                return state

        # status answers done for completions without a result (done_ttl_ms)
        client.configure(service, done_ttl_ms=600_000)
        ids = client.enqueue_many(service, list(range(6)))
        worker = homing.Worker(client, service, Records, prefetch=10, lease_ms=600)
        with running(worker):
            wait_for(lambda: ran)
            srv.kill()
            time.sleep(1.5)
            srv.restart()
            with running_daemons(client):
                wait_for(lambda: all(client.status(service, i).state == "done" for i in ids),
                         timeout=20)
        assert worker.stats.expired_unstarted >= 1
        # The first one ran during the outage, and its lease may have been
        # reclaimed before its ack: it alone may run twice (after its lease ended).
        assert sorted(set(ran)) == sorted(ids)
        assert all(ran.count(i) == 1 for i in ids[1:]), ran
        client.close()
