"""Rate and concurrency limits across every worker, against real Redis.

The script rules (the sliding window, the concurrency count, wait_ms, nothing
written when held back) are the conformance vectors' (limits.json, with a
frozen clock); these tests are about many callers at once on the real clock:
a hundred concurrent dequeues, several Workers sharing a limit, the workers'
sleep instead of a busy poll, the Python API and the CLI.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from helpers import counters, running, wait_for

import homing


def test_dequeue_keeps_its_list_and_dequeue_batch_says_how_long_to_wait(
        client: homing.Client, service: str) -> None:
    client.enqueue_many(service, [1, 2, 3])
    lim = client.set_limits(service, rate_limit=1, rate_window_ms=60_000)
    assert (lim.rate_limit, lim.rate_window_ms, lim.concurrency) == (1, 60_000, 0)
    (ev,) = client.dequeue(service, 3)
    assert isinstance(ev, homing.Event) and ev.payload == 1
    b = client.dequeue_batch(service, 3)
    assert isinstance(b, homing.Batch) and b.events == []
    assert 59_000 < b.wait_ms <= 60_000, "the rate's next slot: the oldest start leaving"
    assert client.dequeue(service, 3) == []
    lim = client.set_limits(service, rate_limit=0, concurrency=1)
    assert (lim.rate_limit, lim.concurrency, lim.in_flight, lim.ready) == (0, 1, 1, 2)
    assert client.configure(service)["rate_limit"] == 0, "0 lifts it: the override is removed"
    b = client.dequeue_batch(service, 3)
    assert (b.events, b.wait_ms) == ([], 100), "a slot may free at any time: at most 100 ms"
    client.complete(service, ev.id, ev.token)
    b = client.dequeue_batch(service, 3)
    assert [e.payload for e in b.events] == [2] and b.wait_ms == 100
    assert b.events[0].deadline_ms > 0


def test_a_hundred_concurrent_dequeues_never_exceed_the_concurrency_limit(
        redis_url: str, prefix: str, client: homing.Client, service: str) -> None:
    limit = 7
    client.enqueue_many(service, list(range(500)))
    client.set_limits(service, concurrency=limit)
    clients = [homing.Client.from_url(redis_url, prefix=prefix) for _ in range(10)]
    start = threading.Barrier(100)
    got: list[list[homing.Event]] = [[] for _ in range(100)]

    def take(i: int) -> None:
        start.wait()
        got[i] = clients[i % 10].dequeue(service, 5)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(100)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        leased = [e for evs in got for e in evs]
        assert len(leased) == limit, "exactly the limit, however many asked at once"
        assert len({e.id for e in leased}) == limit
        assert client.stats(service)["in_flight"] == limit
    finally:
        for c in clients:
            c.close()


def test_concurrent_dequeues_and_completions_keep_in_flight_under_the_limit(
        redis_url: str, prefix: str, client: homing.Client, service: str) -> None:
    limit, total = 5, 300
    client.enqueue_many(service, list(range(total)))
    client.set_limits(service, concurrency=limit)
    clients = [homing.Client.from_url(redis_url, prefix=prefix) for _ in range(10)]
    lock = threading.Lock()
    held, most, done = [0], [0], [0]

    def work(c: homing.Client) -> None:
        while True:
            with lock:
                if done[0] >= total:
                    return
            b = c.dequeue_batch(service, 3)
            if not b.events:
                time.sleep(b.wait_ms / 1000 if b.wait_ms else 0.005)
                continue
            with lock:
                # Counted up after the lease and down before its completion is sent:
                # never above what Redis holds in flight.
                held[0] += len(b.events)
                most[0] = max(most[0], held[0])
            for e in b.events:
                with lock:
                    held[0] -= 1
                    done[0] += 1
                c.complete(service, e.id, e.token)

    threads = [threading.Thread(target=work, args=(clients[i % 10],)) for i in range(100)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert done[0] == total and 1 <= most[0] <= limit
        assert counters(client, service)["completed"] == total
    finally:
        for c in clients:
            c.close()


class Timed(homing.Consumer):
    """Records when each handler starts and how many run at once."""

    starts: list[float]
    running: list[int]
    most: list[int]
    lock: threading.Lock

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        with self.lock:
            self.starts.append(time.monotonic())
            self.running[0] += 1
            self.most[0] = max(self.most[0], self.running[0])
        time.sleep(0.02)
        with self.lock:
            self.running[0] -= 1
        return state


def _timed() -> type[Timed]:
    return type("T", (Timed,), {"starts": [], "running": [0], "most": [0],
                                "lock": threading.Lock()})


def test_several_workers_together_respect_the_rate_limit_and_sleep_meanwhile(
        client: homing.Client, service: str) -> None:
    consumer = _timed()
    client.set_limits(service, rate_limit=20, rate_window_ms=1000)
    client.enqueue_many(service, list(range(60)))
    workers = [homing.Worker(client, service, consumer, concurrency=4, prefetch=10, grace=2)
               for _ in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: sum(w.stats.completed for w in workers) == 60, timeout=30)
    finally:
        for w in workers:
            w.shutdown()
    starts = sorted(consumer.starts)
    # The window is Redis's, judged when dequeue hands events out; a handler starts
    # a little later, by up to the slack: in any (1000 - slack) ms at most 20 start.
    slack = 0.2
    for i, t in enumerate(starts):
        assert sum(1 for u in starts[i:] if u < t + 1.0 - slack) <= 20
    assert starts[-1] - starts[0] >= 2.0 - slack, "three windows' worth took two windows"
    limited = sum(w.stats.limited for w in workers)
    assert 0 < limited < 200, f"slept {limited} times: the wait, not a busy poll"


def test_several_workers_together_respect_the_concurrency_limit(
        client: homing.Client, service: str) -> None:
    consumer = _timed()
    client.set_limits(service, concurrency=2)
    client.enqueue_many(service, list(range(30)))
    workers = [homing.Worker(client, service, consumer, concurrency=4, prefetch=10, grace=2)
               for _ in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: sum(w.stats.completed for w in workers) == 30, timeout=30)
    finally:
        for w in workers:
            w.shutdown()
    assert consumer.most[0] <= 2, "prefetched leases count: at most 2 handlers at once"
    assert client.stats(service)["in_flight"] == 0


def test_a_paused_worker_sleeps_and_delivers_nothing_until_resume(
        client: homing.Client, service: str) -> None:
    consumer = _timed()
    client.enqueue_many(service, [1, 2])
    client.pause(service)
    with running(homing.Worker(client, service, consumer, grace=2)) as w:
        wait_for(lambda: w.stats.limited >= 2, timeout=10)
        assert w.stats.received == 0 and consumer.starts == []
        client.resume(service)
        wait_for(lambda: w.stats.completed == 2, timeout=10)
    assert w.stats.limited < 40, "it slept 250 ms at a time, not a busy loop"


def test_async_client_limits(redis_url: str, prefix: str, service: str) -> None:
    async def go() -> None:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            await c.enqueue_many(service, [1, 2])
            lim = await c.set_limits(service, concurrency=1)
            assert (lim.concurrency, lim.ready) == (1, 2)
            b = await c.dequeue_batch(service, 2)
            assert [e.payload for e in b.events] == [1] and b.wait_ms == 100
            assert (await c.limits(service)).in_flight == 1
        finally:
            await c.close()

    asyncio.run(go())


def test_cli_limits_configure_and_stats(cli, client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    r = cli("limits", service)
    assert r.exit_code == 0, r.output
    assert "rate limit   none" in r.stdout and "concurrency  none" in r.stdout
    assert "limits, across every worker" not in cli("stats", service).stdout
    r = cli("configure", service, "--rate-limit", "10", "--rate-window-ms", "2000",
            "--concurrency", "2")
    assert r.exit_code == 0, r.output
    assert "rate_limit       10" in r.stdout and "concurrency      2" in r.stdout
    r = cli("limits", service)
    assert "10 per 2000 ms" in r.stdout and "2 at once" in r.stdout and "ready        1" in r.stdout
    r = cli("stats", service)
    assert "limits, across every worker" in r.stdout and "10 per 2000 ms" in r.stdout
    r = cli("limits", service, "--concurrency", "0", "--json")
    assert r.exit_code == 0, r.output
    assert '"concurrency": 0' in r.stdout and '"rate_limit": 10' in r.stdout
    r = cli("configure", service, "--rate-window-ms", "0")
    assert r.exit_code != 0 and "INVALID_ARGUMENT" in r.output
