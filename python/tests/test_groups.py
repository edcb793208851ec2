"""Group results through the clients, real Workers and the CLI, against real Redis.

The script rules (the group's record, first failure, dead_requeue, retention
together, nothing written on a refusal) are the conformance vectors'
(enqueue_group.json, group_status.json, group_result.json, group_forget.json);
these tests are about the producer's side: waiting for a whole group while
real workers complete it, the first failure raised without waiting for the
rest, a timeout, forget, the asyncio client and ``homing group``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from helpers import running, running_daemons, wait_for

import homing


class Results(homing.Consumer):
    """Completes with twice the number; "boom" is rejected, "slow" held until released."""

    release = threading.Event()

    def handle_event(self, event: homing.Event, state: object) -> object:
        if event.payload == "boom":
            raise homing.Reject("boom")
        if event.payload == "slow":
            Results.release.wait(10)
            self.complete(event.service, event.id, result="slow done")
            return state
        self.complete(event.service, event.id, result=event.payload * 2)
        return state


def test_wait_group_returns_every_result_in_order(client: homing.Client, service: str) -> None:
    group = client.enqueue_group(service, list(range(20)))
    assert group.id == "g1" and len(group.event_ids) == 20
    with running(homing.Worker(client, service, Results, concurrency=4, lease_ms=5000,
                               grace=2)):
        results = client.wait_group(service, group.id, timeout=20)
    assert results == [2 * n for n in range(20)]
    st = client.group_status(service, group.id)
    assert (st.total, st.done, st.failed, st.finished) == (20, 20, "", True)
    # The results stay with the group until it is forgotten, then all go together.
    assert client.result(service, group.event_ids[3], timeout=0) == 6
    assert client.group_forget(service, group.id) == 20
    with pytest.raises(homing.UnknownGroupError):
        client.wait_group(service, group.id, timeout=1)
    with pytest.raises(homing.UnknownEventError):
        client.result(service, group.event_ids[3], timeout=0)


def test_the_first_failure_is_raised_without_waiting_for_the_rest(client: homing.Client,
                                                                   service: str) -> None:
    Results.release.clear()
    group = client.enqueue_group(service, [1, "boom", "slow"], ids=["one", "two", "three"])
    with running(homing.Worker(client, service, Results, concurrency=3, lease_ms=5000,
                               grace=2)):
        with pytest.raises(homing.GroupFailedError,
                           match=r"group g1 failed: member two dead-lettered: Reject: boom"):
            client.wait_group(service, group.id, timeout=15)
        assert client.group_status(service, group.id).done < 3, "three was still running"
        Results.release.set()
        wait_for(lambda: client.group_status(service, group.id).done == 2)
    st = client.group_status(service, group.id)
    assert st.failed == "two" and st.finished
    # The others' results are kept with the failed group all the same.
    assert client.result(service, "three", timeout=0) == "slow done"
    # dead_requeue of the failure runs the group again; it can then not finish
    # (two is rejected again), and a timeout says so.
    assert client.dead_requeue(service, ["two"])[0] == 1
    st = client.group_status(service, group.id)
    assert (st.failed, st.finished_ms) == ("", 0)
    with pytest.raises(homing.ResultTimeoutError):
        client.wait_group(service, group.id, timeout=0.05)


def test_a_member_dying_of_expired_leases_fails_the_group(client: homing.Client,
                                                          service: str) -> None:
    client.configure(service, max_attempts=1)
    group = client.enqueue_group(service, [1, 2])
    client.dequeue(service, 2, lease_ms=1)
    with running_daemons(client), pytest.raises(homing.GroupFailedError,
                                                match=r"attempts used up \(1 of 1\)"):
        client.wait_group(service, group.id, timeout=15)
    assert client.group_status(service, group.id).failed in group.event_ids


def test_refusals_write_nothing(client: homing.Client, service: str) -> None:
    client.enqueue(service, "x", id="taken")
    with pytest.raises(homing.DuplicateIdError):
        client.enqueue_group(service, [1, 2], ids=["new", "taken"])
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_group(service, list(range(1001)))
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_group(service, [])
    with pytest.raises(homing.InvalidArgumentError):
        client.group_status(service, "not-a-group")
    with pytest.raises(homing.UnknownGroupError):
        client.group_result(service, "g1")
    assert client.stats(service)["ready"] == 1


def test_the_async_client_waits_for_a_group(redis_url: str, prefix: str, service: str) -> None:
    async def body() -> tuple[Any, ...]:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            group = await c.enqueue_group(service, ["a", "b"])
            running_now = await c.group_result(service, group.id)
            events = await c.dequeue(service, 2)
            waiter = asyncio.ensure_future(c.wait_group(service, group.id, timeout=10))
            await asyncio.sleep(0.01)
            for ev in reversed(events):
                await c.complete(service, ev.id, ev.token, ev.payload.upper())
            results = await waiter
            st = await c.group_status(service, group.id)
            return running_now, results, st, await c.group_forget(service, group.id)
        finally:
            await c.close()

    running_now, results, st, forgot = asyncio.run(body())
    assert running_now is None and results == ["A", "B"]
    assert (st.done, st.total) == (2, 2) and forgot == 2


def test_the_cli_shows_and_forgets_a_group(cli, client: homing.Client, service: str) -> None:
    group = client.enqueue_group(service, [1, 2])
    r = cli("group", "status", service, group.id)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "running: 0 of 2 completed"
    (ev,) = client.dequeue(service)
    client.fail(service, ev.id, ev.token, "no", dead=True)
    r = cli("group", "status", service, group.id, "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert (out["state"], out["done"], out["failed"]) == ("failed", 0, ev.id)
    r = cli("group", "forget", service, group.id)
    assert r.exit_code == 0 and "0 member results removed" in r.stdout
    r = cli("group", "status", service, group.id)
    assert r.exit_code == 2 and "UNKNOWN_GROUP" in r.output


def test_a_group_of_many_waits_with_few_calls(client: homing.Client, service: str) -> None:
    group = client.enqueue_group(service, list(range(1000)))
    with running(homing.Worker(client, service, Results, concurrency=8, lease_ms=5000,
                               grace=2)) as w:
        results = client.wait_group(service, group.id, timeout=60)
        wait_for(lambda: w.stats.completed == 1000)
    assert results == [2 * n for n in range(1000)]
