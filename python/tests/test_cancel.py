"""Cancelling a queued event: from the CLI, and at scale (the script:
conformance/vectors/cancel.json). A ready event at level 0 is cancelled in O(1):
its id stays in the ready list as a dead copy, counted in void, which dequeue
skips and consumes (lua/include/void.lua)."""

from __future__ import annotations

import time

from helpers import counters, key, running, void, wait_for

from homing import Client, Consumer, Event, Worker


def test_cancel_from_the_cli(cli, client: Client, service: str) -> None:
    a, b = client.enqueue_many(service, [1, 2])
    (held,) = client.dequeue(service)  # a
    r = cli("cancel", service, b)
    assert r.exit_code == 0 and f"cancelled {b} (ready)" in r.stdout
    r = cli("cancel", service, held.id)
    assert r.exit_code == 1 and "was not cancelled: it is leased" in r.stderr
    assert client.status(service, b).state == "unknown"
    assert client.status(service, held.id).detail == "leased"


# -- a cancel is O(1): the id stays in the ready list as a dead copy (void) -------------

def _cancel_all(client: Client, service: str, ids: list[str]) -> None:
    for i in ids:
        assert client.cancel(service, i) == (True, "ready")


def test_many_cancels_from_a_long_queue(client: Client, service: str) -> None:
    """None of the cancelled is delivered; the rest arrive once each, in order."""
    ids = [f"e{n:05d}" for n in range(6000)]
    for at in range(0, len(ids), 1000):
        client.enqueue_many(service, list(range(at, at + 1000)), ids=ids[at:at + 1000])
    # A run longer than one dequeue skips (1500 at the front), then every third.
    cancelled = set(ids[:1500]) | set(ids[1500::3])
    _cancel_all(client, service, [i for i in ids if i in cancelled])
    live = [i for i in ids if i not in cancelled]
    st = client.stats(service)
    assert st["ready"] == len(live) and st["total.cancelled"] == len(cancelled)
    # The event next in line lies behind 1500 dead copies: more than stats walks past.
    assert st["oldest_ready_created_ms"] == -1
    got: list[str] = []
    empty_with_wait = 0
    for _ in range(200):
        batch = client.dequeue_batch(service, 100)
        if not batch.events:
            if batch.wait_ms == 1:  # stopped at the bound: ask again at once
                empty_with_wait += 1
                continue
            break
        got += [e.id for e in batch.events]
        client.complete_many(service, [(e.id, e.token, None) for e in batch.events])
    assert got == live
    assert empty_with_wait == 1  # the first call skipped 1000 dead copies and stopped
    assert not client.redis.exists(key(client, service, "void"))
    assert not client.redis.exists(key(client, service, "ready"))
    c = counters(client, service)
    assert c["delivered"] == len(live) and c.get("orphaned", 0) == 0


def test_the_bound_of_dead_copies_and_a_reused_id(client: Client, service: str) -> None:
    """1000 dead copies a call at most; an id enqueued again after its cancel is delivered
    once, after what was queued before it, and its dead copy consumed."""
    ids = [f"d{n}" for n in range(1200)]
    client.enqueue_many(service, list(range(1000)), ids=ids[:1000])
    client.enqueue_many(service, list(range(200)), ids=ids[1000:])
    _cancel_all(client, service, ids)
    client.enqueue(service, "again", id="d0")
    assert client.stats(service)["ready"] == 1
    assert void(client, service) == {**{i: 1 for i in ids}, "": 1200}
    batch = client.dequeue_batch(service, 1)
    assert (batch.events, batch.wait_ms) == ([], 1)
    assert void(client, service)[""] == 200
    [ev] = client.dequeue_batch(service, 1).events
    assert (ev.id, ev.payload) == ("d0", "again")
    assert client.dequeue_batch(service, 1).events == []
    assert void(client, service) == {} and counters(client, service).get("orphaned", 0) == 0


class _Recording(Consumer):
    seen: list[str]

    def handle_event(self, event: Event, state: object) -> object:
        self.seen.append(event.id)
        return state


def test_a_worker_does_not_stall_behind_dead_copies(client: Client, service: str) -> None:
    """A worker meets 2500 dead copies before the live events: it asks again at once
    (wait_ms 1) instead of waiting for a push, and handles each live event once, in order."""
    ids = [f"w{n:04d}" for n in range(3000)]
    for at in range(0, len(ids), 1000):
        client.enqueue_many(service, list(range(at, at + 1000)), ids=ids[at:at + 1000])
    _cancel_all(client, service, ids[:2500])
    seen: list[str] = []
    consumer = type("Rec", (_Recording,), {"seen": seen})
    with running(Worker(client, service, consumer, lease_ms=5000, grace=2)):
        wait_for(lambda: len(seen) >= 500, timeout=20)
        time.sleep(0.2)
    assert seen == ids[2500:]
    assert void(client, service) == {}
