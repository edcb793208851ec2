"""Worker edges found in review: redelivery to the same worker, odd handlers."""

from __future__ import annotations

import asyncio
import threading
import time

from helpers import running, wait_for

import homing


def test_a_redelivery_to_the_same_worker_is_a_lease_of_its_own(
        client: homing.Client, service: str) -> None:
    """The first handler stalls past its lease; the event comes back to the
    same worker under a new token while the first still runs. The new lease
    must be extended and its completion kept; only the stale one is refused.
    The first delivery was never marked started (the worker's fast path), so
    it comes back uncharged, and the second is marked started first."""
    event_id = client.enqueue(service, "job")
    first_running = threading.Event()
    let_first_finish = threading.Event()
    seen: list[tuple[int, bool]] = []

    class Stalls(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            seen.append((event.attempt, event.must_start))
            if len(seen) == 1:
                first_running.set()
                let_first_finish.wait(10)
            else:
                time.sleep(1.0)  # longer than the lease: only the heartbeat keeps it
                self.complete(event.service, event.id, result="second")
            return state

    worker = homing.Worker(client, service, Stalls, concurrency=2, lease_ms=600)
    with running(worker):
        first_running.wait(5)
        # A stall: the heartbeat's extension is refused once the lease is reclaimed.
        client.redis.zadd(f"{client.prefix}:{{{service}}}:leases", {event_id: 0})
        reclaimed = client.promote(service)
        assert (reclaimed.expired, reclaimed.returned) == (1, 1), "back to ready, uncharged"
        wait_for(lambda: len(seen) == 2, timeout=5)
        assert client.result(service, event_id, timeout=10) == "second"
        let_first_finish.set()
    assert seen == [(1, False), (1, True)], "the second delivery is the first charged attempt"
    assert worker.stats.completed == 1
    st = client.stats(service)
    assert (st.get("total.expired", 0), st["total.returned"]) == (0, 1), \
        "the second lease was extended, never reclaimed"


def test_async_init_is_awaited(client: homing.Client, service: str) -> None:
    seen: list[object] = []

    class AsyncBoth(homing.Consumer):
        async def init(self) -> object:
            await asyncio.sleep(0)
            return {"ready": True}

        async def handle_event(self, event: homing.Event, state: object) -> object:
            seen.append(state)
            return state

    client.enqueue(service, 1)
    with running(homing.Worker(client, service, AsyncBoth)) as worker:
        wait_for(lambda: worker.stats.completed == 1)
    assert seen == [{"ready": True}]


def test_a_handler_raising_system_exit_fails_the_event_not_the_slot(
        client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=0)

    class Exits(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            if event.payload == "exit":
                raise SystemExit(3)
            return state

    client.enqueue(service, "exit")
    with running(homing.Worker(client, service, Exits, concurrency=1)) as worker:
        wait_for(lambda: worker.stats.failed == 1)
        client.enqueue(service, "fine")
        wait_for(lambda: worker.stats.completed == 1)  # the one slot is still alive


def test_a_full_window_still_hints_its_lease_deadlines(client: homing.Client,
                                                       service: str) -> None:
    """The lease deadline's due-time hint waits for the next dequeue to carry it, but
    not for ever: with the window full (a handler that does not return), it goes
    out on its own (fetching.HINT_HOLD_S), so a worker that dies holding the
    leases still has them reclaimed on time."""
    client.enqueue_many(service, list(range(5)))
    release = threading.Event()

    class Holds(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            release.wait(10)
            return state

    index = f"{client.prefix}:due"
    worker = homing.Worker(client, service, Holds, concurrency=1, prefetch=2)
    try:
        with running(worker):
            wait_for(lambda: client.redis.zscore(index, service) is not None, timeout=2)
            leases = client.redis.zrange(f"{client.prefix}:{{{service}}}:leases", 0, 0,
                                         withscores=True)
            assert client.redis.zscore(index, service) <= leases[0][1]
            release.set()
    finally:
        release.set()


def test_slow_handlers_spread_over_every_slot(client: homing.Client, service: str) -> None:
    """One batch of slow events: each free slot takes the next one and wakes a peer
    while more wait, so all four run at once (not one slot running them in turn)."""
    running_now: set[int] = set()
    most = [0]
    lock = threading.Lock()

    class Slow(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            with lock:
                running_now.add(threading.get_ident())
                most[0] = max(most[0], len(running_now))
            time.sleep(0.3)
            with lock:
                running_now.discard(threading.get_ident())
            return state

    client.enqueue_many(service, list(range(8)))
    worker = homing.Worker(client, service, Slow, concurrency=4)
    with running(worker):
        wait_for(lambda: worker.stats.completed == 8, timeout=10)
    assert most[0] == 4


def test_an_event_does_not_wait_behind_a_slow_handler_while_a_slot_is_free(
        client: homing.Client, service: str) -> None:
    """The first event's handler blocks; the rest, leased in the same batch, are run
    by the other slot meanwhile."""
    release = threading.Event()
    done: list[object] = []

    class FirstBlocks(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            if event.payload == 0:
                release.wait(10)
            done.append(event.payload)
            return state

    client.enqueue_many(service, list(range(6)))
    worker = homing.Worker(client, service, FirstBlocks, concurrency=2)
    try:
        with running(worker):
            wait_for(lambda: sorted(done) == [1, 2, 3, 4, 5], timeout=5)
            release.set()
            wait_for(lambda: worker.stats.completed == 6, timeout=5)
    finally:
        release.set()
