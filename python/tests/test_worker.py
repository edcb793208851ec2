"""The Worker runner end to end, against real Redis, with a scheduler and distributor running."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import counters, running, running_daemons, states, wait_for

import homing
from homing.manifest import MAX_REASON
from homing.outcomes import cut_reason

HERE = Path(__file__).resolve().parent


class Counting(homing.Consumer):
    """Returns without completing: the runner acknowledges for it. State counts events."""

    seen: list[tuple[object, int]]

    def init(self) -> int:
        return 0

    def handle_event(self, event: homing.Event, state: int) -> int:
        self.seen.append((event.payload, state))
        return state + 1


def test_auto_complete_and_state(client: homing.Client, service: str) -> None:
    seen: list[tuple[object, int]] = []
    client.configure(service, done_ttl_ms=600_000)  # result() sees None results
    ids = client.enqueue_many(service, ["a", "b", "c"])
    consumer = type("C", (Counting,), {"seen": seen})
    with running(homing.Worker(client, service, consumer, lease_ms=5000, grace=2)) as w:
        for event_id in ids:
            assert client.result(service, event_id, timeout=10) is None
    # One slot: its state threads through the events in order.
    assert seen == [("a", 0), ("b", 1), ("c", 2)]
    assert w.stats.completed == 3 and w.stats.received == 3
    assert counters(client, service)["completed"] == 3


class Answering(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        self.complete(event.service, event.id, result={"echo": event.payload})
        return state


def test_consumer_completes_with_result(client: homing.Client, service: str) -> None:
    with running(homing.Worker(client, service, Answering, concurrency=3, lease_ms=5000,
                               grace=2)):
        ids = client.enqueue_many(service, list(range(20)))
        results = [client.result(service, i, timeout=10) for i in ids]
    assert results == [{"echo": i} for i in range(20)]
    c = counters(client, service)
    assert (c["completed"], c["delivered"]) == (20, 20)  # each acknowledged once


def test_consumer_complete_outside_worker_is_refused() -> None:
    with pytest.raises(RuntimeError):
        Answering().complete("svc", "id", 1)


class Flaky(homing.Consumer):
    """Fails the first two attempts of every event."""

    def handle_event(self, event: homing.Event, state: object) -> object:
        if event.attempt < 3:
            raise RuntimeError(f"transient trouble on attempt {event.attempt}")
        self.complete(event.service, event.id, result=event.attempt)
        return state


def test_exception_is_retried_until_success(client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=10)
    event_id = client.enqueue(service, "x")
    with running_daemons(client), \
            running(homing.Worker(client, service, Flaky, lease_ms=5000, grace=2)) as w:
        assert client.result(service, event_id, timeout=10) == 3
    assert w.stats.failed == 2
    c = counters(client, service)
    assert (c["failed"], c["retried"], c["delivered"], c["completed"]) == (2, 2, 3, 1)


class Rejecting(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        raise homing.Reject(f"cannot handle {event.payload!r}")


def test_reject_dead_letters_at_once(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, "poison")
    with running(homing.Worker(client, service, Rejecting, lease_ms=5000, grace=2)), \
            pytest.raises(homing.EventDeadError, match="poison"):
        client.result(service, event_id, timeout=10)
    [letter] = client.dead_list(service).letters
    assert (letter.id, letter.attempt, letter.payload) == (event_id, 1, "poison")
    assert letter.reason.startswith("Reject: cannot handle")


def test_a_fail_reason_is_cut_to_the_manifest_cap_in_bytes() -> None:
    """limits.reason_bytes counts UTF-8 bytes, as fail.lua does, and never splits a character."""
    cap = MAX_REASON
    assert cut_reason("x" * (2 * cap)) == "x" * cap
    assert cut_reason("é" * cap) == "é" * (cap // 2)  # two bytes each
    cut = cut_reason("a" + "é" * cap)  # the last 'é' would straddle the cap: dropped whole
    assert cut == "a" + "é" * ((cap - 1) // 2) and len(cut.encode()) == cap - 1
    assert cut_reason("short \ud800") == "short ?"  # a lone surrogate cannot be sent as is


def test_a_long_reason_reaches_the_dead_letters_cut(client: homing.Client, service: str) -> None:
    class Long(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            raise homing.Reject("é" * 2000)

    event_id = client.enqueue(service, "x")
    with running(homing.Worker(client, service, Long, lease_ms=5000, grace=2)), \
            pytest.raises(homing.EventDeadError):
        client.result(service, event_id, timeout=10)
    [letter] = client.dead_list(service).letters
    assert letter.reason == cut_reason("Reject: " + "é" * 2000)
    assert len(letter.reason.encode()) <= MAX_REASON


def test_attempts_used_up_by_exceptions(client: homing.Client, service: str) -> None:
    client.configure(service, max_attempts=2, backoff_base_ms=0)
    event_id = client.enqueue(service, "x")
    with running_daemons(client), \
            running(homing.Worker(client, service, Flaky, lease_ms=5000, grace=2)), \
            pytest.raises(homing.EventDeadError, match="attempt 2 of 2"):
        client.result(service, event_id, timeout=10)


class AsyncEcho(homing.Consumer):
    def init(self) -> list[str]:
        return []

    async def handle_event(self, event: homing.Event, state: list[str]) -> list[str]:
        await asyncio.sleep(0.001)
        self.complete(event.service, event.id, result=[*state, event.payload])
        return [*state, event.payload]


def test_async_handle_event(client: homing.Client, service: str) -> None:
    ids = client.enqueue_many(service, ["a", "b"])
    with running(homing.Worker(client, service, AsyncEcho, lease_ms=5000, grace=2)):
        assert client.result(service, ids[1], timeout=10) == ["a", "b"]
        assert client.result(service, ids[0], timeout=10) == ["a"]


class Slow(homing.Consumer):
    started = threading.Event()  # set once a handler runs (not only dequeued)

    def handle_event(self, event: homing.Event, state: object) -> object:
        Slow.started.set()
        time.sleep(float(event.payload))
        return state


def test_heartbeat_keeps_a_slow_handlers_lease(client: homing.Client, service: str) -> None:
    client.configure(service, done_ttl_ms=600_000)  # result() sees None results
    event_id = client.enqueue(service, 1.0)
    with running_daemons(client), \
            running(homing.Worker(client, service, Slow, lease_ms=300, grace=2)):
        assert client.result(service, event_id, timeout=10) is None
    c = counters(client, service)
    assert (c["delivered"], c.get("expired", 0), c["completed"]) == (1, 0, 1)


def test_heartbeat_runs_through_the_shutdown_grace(client: homing.Client, service: str) -> None:
    """A handler still finishing during the grace period keeps its lease too."""
    client.configure(service, done_ttl_ms=600_000)  # result() sees None results
    event_id = client.enqueue(service, 1.0)
    with running_daemons(client):
        began = threading.Event()
        slow = type("S", (Slow,), {"handle_event": lambda self, ev, st: (
            began.set(), Slow.handle_event(self, ev, st))[1]})
        worker = homing.Worker(client, service, slow, lease_ms=300, grace=5)
        worker.start()
        # Its handler running, not only leased: a prefetched event that no slot
        # took yet is released at shutdown, which is not what this test is about.
        assert began.wait(10)
        worker.shutdown()  # the handler has ~1 s left, well within the grace
        assert client.result(service, event_id, timeout=5) is None
    c = counters(client, service)
    # A stall of ~270 ms between the lease and a slot's start (a loaded CI machine:
    # the lease is 300 ms) makes the slot release the event unstarted, counted, and
    # the next lease delivers it again: the documented path, its lease ended first.
    again = worker.stats.expired_unstarted
    assert (c["delivered"], c.get("expired", 0), c["completed"]) == (1 + again, 0, 1)


class Gate(homing.Consumer):
    """Blocks in its first event until the test opens the gate."""

    started = threading.Event()
    gate = threading.Event()

    def handle_event(self, event: homing.Event, state: object) -> object:
        self.started.set()
        assert self.gate.wait(10)
        return state


def test_shutdown_releases_prefetched_events(client: homing.Client, service: str) -> None:
    gate = type("G", (Gate,), {"started": threading.Event(), "gate": threading.Event()})
    client.configure(service, done_ttl_ms=600_000)  # result() sees None results
    first, *rest = client.enqueue_many(service, list(range(6)))
    worker = homing.Worker(client, service, gate, concurrency=1, prefetch=10, lease_ms=5000,
                           grace=5)
    worker.start()
    assert gate.started.wait(10)
    wait_for(lambda: worker.stats.received == 6)
    stopper = threading.Thread(target=worker.shutdown)
    stopper.start()
    # The five prefetched events are back in the queue at once, while the
    # first one is still being handled; their deliveries did not count.
    wait_for(lambda: states(client, service) == {first: "leased", **dict.fromkeys(rest, "ready")})
    assert all(client.status(service, i).attempt == 0 for i in rest)
    gate.gate.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert client.result(service, first, timeout=5) is None  # finished within the grace
    assert worker.stats.released == 5
    assert [e.id for e in client.dequeue(service, 10)] == rest  # order kept
    assert counters(client, service)["released"] == 5


def test_shutdown_leaves_handlers_past_the_grace_to_their_leases(
        client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, 3.0)
    worker = homing.Worker(client, service, Slow, lease_ms=400, grace=0.2)
    Slow.started.clear()
    worker.start()
    # Its handler has begun: an event only dequeued (in a slot's share) is released instead.
    wait_for(Slow.started.is_set)
    worker.shutdown()
    # Still running after the grace: not handed to another consumer while its
    # handler may still act on it; no longer extended either.
    st = client.status(service, event_id)
    assert (st.detail, st.attempt) == ("reserved", 0), "held, no attempt charged"
    time.sleep(0.6)  # past the lease
    assert client.promote(service).returned == 1, "the lease ran out: redelivered from here"
    assert client.status(service, event_id).detail == "ready"


@pytest.mark.parametrize("redis_url", ["standalone"], indirect=True)
def test_killed_worker_process_event_is_redelivered(client: homing.Client, service: str,
                                                    tmp_path: Path, redis_url: str) -> None:
    client.configure(service, backoff_base_ms=0)
    event_id = client.enqueue(service, {"job": "crash me"})
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "worker_proc.py"), redis_url, client.prefix, service,
         str(marker), "300"], env=env, stdin=subprocess.DEVNULL)
    try:
        wait_for(marker.exists, timeout=20)
        assert marker.read_text().split() == [event_id, "1"]
        time.sleep(0.5)  # > the lease: only the heartbeat keeps it now
        assert client.status(service, event_id).detail in ("leased", "reserved")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    seen: list[tuple[str, int]] = []

    class Second(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            seen.append((event.id, event.attempt))
            self.complete(event.service, event.id, result="second worker")
            return state

    with running_daemons(client), \
            running(homing.Worker(client, service, Second, lease_ms=5000, grace=2)):
        assert client.result(service, event_id, timeout=15) == "second worker"
    # The killed worker never told Redis it had started the event (its fast
    # path): it came back uncharged, and this delivery is attempt 1, marked.
    assert seen == [(event_id, 1)]
    c = counters(client, service)
    assert (c["delivered"], c["returned"], c["completed"]) == (2, 1, 1)
    assert "expired" not in c
