"""Event priorities through the clients, the Worker and the CLI, against real Redis.

The script rules (the order across and within levels, a release and a retry
keeping the level, the wake marker, a refused priority writing nothing) are
the conformance vectors' (priority.json) and the model test's; these tests
are about the ports: a Worker delivers higher levels first, an idle Worker
blocked on the ready list wakes for a prioritised event, the marker never
reaches a handler and does not pile up, the per-call and per-item forms of
enqueue_many, the client-side checks, the asyncio client and the CLI; and the
levels of a recurring timer's occurrences and of a group's members.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from helpers import READY_MARKER, counters, key, running, s, wait_for, written_keys

import homing


class Recorder(homing.Consumer):
    """Completes every event, recording the payloads in delivery order."""

    seen: list[Any]

    def handle_event(self, event: homing.Event, state: object) -> object:
        self.seen.append(event.payload)
        return state


def recorder() -> tuple[type[homing.Consumer], list[Any]]:
    seen: list[Any] = []
    return type("R", (Recorder,), {"seen": seen}), seen


def ready_list(client: homing.Client, service: str) -> list[str]:
    return [s(x) for x in client.redis.lrange(key(client, service, "ready"), 0, -1)]


def test_a_worker_takes_higher_levels_first(client: homing.Client, service: str) -> None:
    consumer, seen = recorder()
    levels = [0, 3, 9, 0, 3, 9, 5]
    client.enqueue_many(service, [f"{lv}-{n}" for n, lv in enumerate(levels)], priority=levels)
    with running(homing.Worker(client, service, consumer, prefetch=1, grace=2)) as w:
        wait_for(lambda: w.stats.completed == len(levels))
    assert seen == ["9-2", "9-5", "5-6", "3-1", "3-4", "0-0", "0-3"]
    assert counters(client, service).get("orphaned", 0) == 0


def test_an_idle_worker_wakes_for_a_prioritised_event(client: homing.Client,
                                                      service: str) -> None:
    consumer, seen = recorder()
    client.enqueue(service, "first")  # registers the service
    with running(homing.Worker(client, service, consumer, grace=2)) as w:
        wait_for(lambda: w.stats.completed == 1)
        waits = w._ready.waits
        wait_for(lambda: w._ready.waits > waits + 2)  # blocked on the empty ready list
        started = time.monotonic()
        client.enqueue(service, "urgent", priority=7)
        wait_for(lambda: w.stats.completed == 2, timeout=5)
        assert time.monotonic() - started < 1.0, "woken by the marker, not by a poll"
        for n in range(30):  # one at a time: the marker never piles up
            client.enqueue(service, n, priority=1 + n % 9)
        wait_for(lambda: w.stats.completed == 32)
        wait_for(lambda: ready_list(client, service) == [])
    assert READY_MARKER not in seen and len(seen) == 32
    assert counters(client, service).get("orphaned", 0) == 0


def test_enqueue_many_takes_one_level_or_one_per_payload(client: homing.Client,
                                                         service: str) -> None:
    a = client.enqueue_many(service, (x for x in "ab"), priority=2)  # any iterable
    b = client.enqueue_many(service, ["c", "d"], priority=[0, 8])
    assert [client.status(service, i).priority for i in a + b] == [2, 2, 0, 8]
    got = client.dequeue(service, 10)
    assert [e.payload for e in got] == ["d", "a", "b", "c"]
    assert client.stats(service)["ready"] == 0


@pytest.mark.parametrize("bad", [10, -1, 1.5, "5", True],
                         ids=["10", "-1", "1.5", "text", "bool"])
def test_a_bad_priority_is_refused_before_anything_is_sent(client: homing.Client,
                                                           service: str, bad: object) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue(service, 1, priority=bad)  # type: ignore[arg-type]
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_many(service, [1, 2], priority=[0, bad])  # type: ignore[list-item]
    with pytest.raises(homing.InvalidArgumentError):
        client.create_timer(service, 1, delay_ms=10, priority=bad)  # type: ignore[arg-type]
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_many(service, [1, 2], priority=[1])
    assert not any(written_keys(client, service).values())


def test_release_and_status_keep_the_level(client: homing.Client, service: str) -> None:
    low, high = client.enqueue(service, "low"), client.enqueue(service, "high", priority=4)
    (ev,) = client.dequeue(service)
    assert ev.id == high
    assert client.release(service, [(ev.id, ev.token)]) == [None]
    st = client.status(service, high)
    assert (st.state, st.detail, st.attempt, st.priority) == ("pending", "ready", 0, 4)
    assert client.stats(service)["ready"] == 2
    assert [e.id for e in client.dequeue(service, 2)] == [high, low]


def test_cancel_of_a_prioritised_event(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, "x", priority=9)
    assert ready_list(client, service) == [READY_MARKER]
    assert client.cancel(service, event_id) == (True, "ready")
    assert ready_list(client, service) == []
    assert client.dequeue(service) == []


def test_the_async_client_takes_priorities(redis_url: str, prefix: str, service: str) -> None:
    async def body() -> tuple[list[str], list[int]]:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            await c.enqueue(service, "plain")
            await c.enqueue(service, "six", priority=6)
            await c.enqueue_many(service, ["three"], priority=3)
            timer = await c.create_timer(service, "timer", delay_ms=0, priority=9)
            with pytest.raises(homing.InvalidArgumentError):
                await c.enqueue(service, "x", priority=10)
            levels = [(await c.status(service, timer)).priority]
            await c.promote(service)
            got = await c.dequeue(service, 10)
            return [e.payload for e in got], levels
        finally:
            await c.close()

    order, levels = asyncio.run(body())
    assert levels == [9]
    assert order == ["timer", "six", "three", "plain"]


def test_the_cli_enqueues_at_a_level_and_shows_it(cli, client: homing.Client,
                                                  service: str) -> None:
    r = cli("enqueue", service, '"hi"', "--priority", "7")
    assert r.exit_code == 0, r.output
    event_id = r.stdout.strip()
    r = cli("status", service, event_id)
    assert r.stdout.strip() == "pending: ready (attempt 0, snoozes 0, progress 0%, priority 7)"
    r = cli("status", service, event_id, "--json")
    assert json.loads(r.stdout)["priority"] == 7
    r = cli("enqueue", service, "x", "--count", "3", "--priority", "2")
    assert r.exit_code == 0, r.output
    assert [client.status(service, i).priority for i in r.stdout.split()] == [2, 2, 2]
    r = cli("timer", service, "t", "--delay-ms", "0", "--priority", "9")
    assert r.exit_code == 0, r.output
    assert client.status(service, r.stdout.strip()).priority == 9
    r = cli("enqueue", service, "x", "--priority", "10")
    assert r.exit_code == 2 and "10" in r.output
    assert client.stats(service)["ready"] == 4


def test_the_dashboard_ages_the_event_next_in_line(client: homing.Client, service: str) -> None:
    """The stats script reads prio first (the list's tail may be the wake marker), and
    the dashboard ages the event from its reply."""
    from homing.web import data

    client.redis.hset(key(client, service, "config"), "test_clock", 1_000_000)
    client.enqueue(service, "urgent", priority=5)
    assert ready_list(client, service) == [READY_MARKER]
    assert data.oldest_ready_age(client.stats(service), 1_004_000) == 4.0
    client.dequeue(service)
    assert data.oldest_ready_age(client.stats(service), 1_004_000) is None


def test_a_recurring_timer_fires_into_its_level(client: homing.Client, service: str) -> None:
    """Each occurrence takes the schedule's level; a worker takes it before level 0."""
    client.redis.hset(key(client, service, "config"), "test_clock", 1_000_000)
    client.enqueue(service, "plain")
    client.recurring_put(service, "hot", "tick", every_ms=1000, priority=8)
    (sched,) = client.recurring_list(service).schedules
    assert (sched.name, sched.priority) == ("hot", 8)
    client.redis.hincrby(key(client, service, "config"), "test_clock", 1000)
    assert client.promote(service).timers == 1
    assert client.status(service, "hot.1001000").priority == 8
    consumer, seen = recorder()
    client.redis.hdel(key(client, service, "config"), "test_clock")
    with running(homing.Worker(client, service, consumer, prefetch=1, grace=2)) as w:
        wait_for(lambda: w.stats.completed == 2)
    assert seen[:2] == ["tick", "plain"]


def test_a_groups_members_take_one_level_or_one_each(client: homing.Client,
                                                     service: str) -> None:
    client.enqueue(service, "plain")
    g = client.enqueue_group(service, ["a", "b"], priority=5)
    assert [client.status(service, i).priority for i in g.event_ids] == [5, 5]
    h = client.enqueue_group(service, ["c", "d"], priority=[0, 9])
    assert [client.status(service, i).priority for i in h.event_ids] == [0, 9]
    got = [e.payload for e in client.dequeue(service, 10)]
    assert got == ["d", "a", "b", "plain", "c"]


@pytest.mark.parametrize("bad", [10, -1, 1.5, "5", True],
                         ids=["10", "-1", "1.5", "text", "bool"])
def test_a_bad_level_of_a_schedule_or_group_writes_nothing(client: homing.Client,
                                                           service: str, bad: object) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.recurring_put(service, "n", 1, every_ms=1000, priority=bad)  # type: ignore[arg-type]
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_group(service, [1, 2], priority=bad)  # type: ignore[arg-type]
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_group(service, [1, 2], priority=[0, bad])  # type: ignore[list-item]
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_group(service, [1, 2], priority=[1])
    assert not any(written_keys(client, service).values())


def test_the_async_client_takes_levels_of_schedules_and_groups(redis_url: str, prefix: str,
                                                               service: str) -> None:
    async def body() -> tuple[list[int], int]:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            g = await c.enqueue_group(service, [1, 2], priority=[3, 0])
            await c.recurring_put(service, "r", 1, cron="@hourly", priority=6)
            with pytest.raises(homing.InvalidArgumentError):
                await c.recurring_put(service, "r2", 1, cron="@hourly", priority=10)
            levels = [(await c.status(service, i)).priority for i in g.event_ids]
            page = await c.recurring_list(service)
            return levels, page.schedules[0].priority
        finally:
            await c.close()

    assert asyncio.run(body()) == ([3, 0], 6)


def test_the_cli_adds_a_recurring_timer_at_a_level(cli, client: homing.Client,
                                                   service: str) -> None:
    r = cli("recurring", "add", service, "hot", "x", "--every-ms", "1000", "--priority", "4")
    assert r.exit_code == 0, r.output
    assert client.recurring_list(service).schedules[0].priority == 4
    r = cli("recurring", "list", service)
    head, *rows = r.stdout.splitlines()
    assert r.exit_code == 0 and head.split()[-1] == "PRIORITY"
    assert [row.split()[-1] for row in rows if row.startswith("hot")] == ["4"]
    r = cli("recurring", "add", service, "hot", "x", "--every-ms", "1000", "--priority", "10")
    assert r.exit_code == 2 and "10" in r.output
    assert client.recurring_list(service).schedules[0].priority == 4
