"""Snooze and progress through the clients and the Worker, against real Redis.

The script rules (uncharged, fenced, bounded by max_snoozes, nothing written on
a refusal) are the conformance vectors' (snooze.json, progress.json); these
tests are about the runner: both forms of a handler's Snooze (returned and
raised, sync and async handlers), the due-time hint that wakes a scheduler,
a refused delay, Consumer.progress, the asyncio client and the CLI.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import counters, key, running, running_daemons, wait_for

import homing
from homing.manifest import global_key


class Sleepy(homing.Consumer):
    """Snoozes each event once (returned for "return", raised for "raise"), then completes it."""

    seen: list[tuple[Any, int, Any]]

    def init(self) -> int:
        return 0

    def handle_event(self, event: homing.Event, state: int) -> Any:
        self.seen.append((event.payload, event.attempt, state))
        if [p for p, _, _ in self.seen].count(event.payload) > 1:
            return state
        if event.payload == "raise":
            raise homing.Snooze(0)
        return homing.Snooze(0, state=state + 1)


def test_returned_and_raised_snoozes_come_back_uncharged(client: homing.Client,
                                                         service: str) -> None:
    seen: list[tuple[Any, int, Any]] = []
    consumer = type("C", (Sleepy,), {"seen": seen})
    client.enqueue_many(service, ["return", "raise"])
    with running_daemons(client), \
            running(homing.Worker(client, service, consumer, lease_ms=5000, grace=2)) as w:
        wait_for(lambda: w.stats.completed == 2, timeout=15)
    assert sorted((p, a) for p, a, _ in seen) == [("raise", 1), ("raise", 1),
                                                    ("return", 1), ("return", 1)]
    assert 1 in [st for _, _, st in seen], "a returned Snooze hands its state on"
    assert (w.stats.snoozed, w.stats.failed) == (2, 0)
    c = counters(client, service)
    assert (c["snoozed"], c["completed"], c.get("failed", 0)) == (2, 2, 0)


class AsyncSleepy(homing.Consumer):
    async def handle_event(self, event: homing.Event, state: object) -> object:
        await asyncio.sleep(0)
        return homing.Snooze(60_000)


def test_an_async_handler_snoozes_and_the_due_index_is_hinted(client: homing.Client,
                                                              service: str) -> None:
    event_id = client.enqueue(service, "later")
    with running(homing.Worker(client, service, AsyncSleepy, lease_ms=120_000, grace=2)) as w:
        wait_for(lambda: w.stats.snoozed == 1)
    st = client.status(service, event_id)
    assert (st.state, st.detail, st.attempt, st.snoozes) == ("pending", "waiting", 0, 1)
    due = client.redis.zscore(key(client, service, "retry"), event_id)
    # The lease's deadline (120 s) was hinted first; the snooze (60 s) lowered it.
    assert client.redis.zscore(global_key(client.prefix, "due"), service) == due


class Forever(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        raise homing.Snooze(0)


def test_past_max_snoozes_the_event_is_dead_lettered(client: homing.Client, service: str) -> None:
    client.configure(service, max_snoozes=3)
    event_id = client.enqueue(service, "forever")
    with running_daemons(client), \
            running(homing.Worker(client, service, Forever, lease_ms=5000, grace=2)) as w, \
            pytest.raises(homing.EventDeadError, match=r"max_snoozes \(3\)"):
        client.result(service, event_id, timeout=15)
    [letter] = client.dead_list(service).letters
    assert (letter.id, letter.attempt) == (event_id, 1)
    assert letter.reason == "snooze refused: max_snoozes (3) reached"
    assert w.stats.snoozed == 3


class BadDelay(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        return homing.Snooze(-1)


def test_a_refused_delay_fails_the_event(client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=60_000)
    event_id = client.enqueue(service, "x")
    with running(homing.Worker(client, service, BadDelay, lease_ms=5000, grace=2)) as w:
        wait_for(lambda: w.stats.failed == 1)
    st = client.status(service, event_id)
    assert (st.state, st.detail, st.attempt, st.snoozes) == ("pending", "waiting", 1, 0)


class Reporting(homing.Consumer):
    shown: list[int]

    def handle_event(self, event: homing.Event, state: object) -> object:
        assert self.progress(event, 40) == 40
        self.shown.append(self._client.status(event.service, event.id).progress)
        return state


def test_progress_from_a_handler_is_shown_by_status(client: homing.Client, service: str) -> None:
    shown: list[int] = []
    consumer = type("C", (Reporting,), {"shown": shown, "_client": client})
    client.enqueue(service, "work")
    with running(homing.Worker(client, service, consumer, lease_ms=5000, grace=2)) as w:
        wait_for(lambda: w.stats.completed == 1)
    assert shown == [40]
    with pytest.raises(RuntimeError):
        Reporting().progress(homing.Event(service, "x", 1, 1, 0, b""), 1)


def test_progress_is_fenced_and_checked(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, "x")
    (ev,) = client.dequeue(service)
    assert client.progress(service, event_id, ev.token, 75) == 75
    with pytest.raises(homing.StaleLeaseError):
        client.progress(service, event_id, ev.token + 1, 80)
    for bad in (-1, 101, 2.5, "half"):
        with pytest.raises(homing.InvalidArgumentError):
            client.progress(service, event_id, ev.token, bad)
    assert client.status(service, event_id).progress == 75


def test_the_async_client_snoozes_and_reports(redis_url: str, prefix: str, service: str) -> None:
    async def body() -> tuple[Any, ...]:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            event_id = await c.enqueue(service, "x")
            (ev,) = await c.dequeue(service)
            stored = await c.progress(service, event_id, ev.token, 10)
            out = await c.snooze(service, event_id, ev.token, 1000)
            with pytest.raises(homing.StaleLeaseError):
                await c.snooze(service, event_id, ev.token, 1000)
            return stored, out, await c.status(service, event_id)
        finally:
            await c.close()

    stored, out, st = asyncio.run(body())
    assert stored == 10 and out.action == "snoozed" and out.at_ms > 0
    assert (st.detail, st.attempt, st.snoozes, st.progress) == ("waiting", 0, 1, 10)


def test_the_cli_shows_snoozes_and_progress(cli, client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, "x")
    (ev,) = client.dequeue(service)
    client.progress(service, event_id, ev.token, 55)
    client.snooze(service, event_id, ev.token, 60_000)
    r = cli("status", service, event_id)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == ("pending: waiting (attempt 0, snoozes 1, progress 55%, "
                                "priority 0)")
    r = cli("status", service, event_id, "--json")
    assert json.loads(r.stdout) == {"state": "pending", "detail": "waiting", "attempt": 0,
                                    "snoozes": 1, "progress": 55, "priority": 0}
    r = cli("status", service, "nope")
    assert r.exit_code == 1 and "unknown" in r.output
