"""The retry scheduler and distributor: single steps, and many copies racing at once."""

from __future__ import annotations

import collections
import random
import threading
import time

import pytest
from helpers import T0, counters, freeze, key, meta, states, wait_for

import homing
from homing.daemons import Distributor, Scheduler


def test_scheduler_step_moves_due_work(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    timer = client.create_timer(service, "t", delay_ms=100)
    client.enqueue_many(service, ["r", "l"])
    r, leased = client.dequeue(service, 2, lease_ms=100)
    client.fail(service, r.id, r.token, delay_ms=100)
    sched = Scheduler(client)
    assert sched.step() == 0  # nothing due yet
    clock.advance(100)
    assert sched.step() == 3
    assert sched.moved == 3
    assert states(client, service) == {timer: "ready", r.id: "ready", leased.id: "expired"}
    # The scheduler hints the service to the distributors.
    assert client.take_hints() == [service]


def test_distributor_step_routes_expired(client: homing.Client, service: str) -> None:
    client.configure(service, max_attempts=2, backoff_base_ms=1000, backoff_jitter=0)
    clock = freeze(client, service)
    client.enqueue_many(service, ["once", "twice"])
    once, twice = client.dequeue(service, 2, lease_ms=10)
    client.fail(service, twice.id, twice.token, delay_ms=0)
    client.promote(service)
    [twice2] = client.dequeue(service, lease_ms=10)
    assert twice2.attempt == 2
    clock.advance(10)
    Scheduler(client).step()
    dist = Distributor(client)
    assert dist.step() == 2
    assert states(client, service) == {once.id: "waiting", twice.id: "dead"}
    assert client.redis.zscore(key(client, service, "retry"), once.id) == clock.now + 1000
    [letter] = client.dead_list(service).letters
    assert letter.reason == "lease expired on attempt 2; attempts used up (2 of 2)"
    assert dist.step() == 0


def test_lease_expiry_redelivers_with_attempt_two(client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=500, backoff_jitter=0)
    clock = freeze(client, service)
    event_id = client.enqueue(service, {"job": 1})
    [first] = client.dequeue(service, lease_ms=1000)
    sched, dist = Scheduler(client), Distributor(client)
    clock.advance(999)
    sched.step()
    dist.step()
    assert client.dequeue(service) == []  # the lease still holds
    clock.advance(1)
    sched.step()
    dist.step()
    assert client.status(service, event_id).detail == "waiting"
    clock.advance(499)
    sched.step()
    assert client.dequeue(service) == []  # never early
    clock.advance(1)
    sched.step()
    [second] = client.dequeue(service)
    assert (second.id, second.attempt, second.payload) == (event_id, 2, {"job": 1})
    assert second.token > first.token
    with pytest.raises(homing.StaleLeaseError):
        client.complete(service, first.id, first.token)
    client.complete(service, second.id, second.token, result="ok")
    assert client.result(service, event_id, timeout=1) == "ok"
    c = counters(client, service)
    assert (c["delivered"], c["expired"], c["completed"]) == (2, 1, 1)


def test_distributor_sweeps_without_hints(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    client.enqueue(service, 1)
    [ev] = client.dequeue(service, lease_ms=10)
    clock.advance(10)
    client.promote(service)  # reclaimed by hand: no hint was left
    assert client.take_hints() == []
    Distributor(client, sweep_every=0).step()
    assert states(client, service) == {ev.id: "waiting"}


def test_promote_reports_more_and_next_due(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    for i in range(5):
        client.create_timer(service, i, delay_ms=10 + i)
    clock.advance(12)
    r = client.promote(service, limit=2)
    assert (r.timers, r.more, r.next_due_ms) == (2, True, T0 + 12)
    r = client.promote(service, limit=2)
    assert (r.timers, r.more, r.next_due_ms) == (1, False, T0 + 13)
    # The Scheduler loops until a step reports no more.
    client.enqueue_many(service, [0] * 5)
    client.dequeue(service, 5, lease_ms=1)
    clock.advance(100)
    assert Scheduler(client, limit=2).step() == 7


def test_a_broken_service_does_not_stall_the_others(client: homing.Client, service: str) -> None:
    broken, fine = service + "-broken", service + "-fine"
    client.create_timer(broken, 1, delay_ms=0)
    client.create_timer(fine, 2, delay_ms=0)
    client.redis.set(key(client, broken, "ready"), "wrong type")
    assert Scheduler(client).step() == 1
    assert client.stats(fine)["ready"] == 1


def test_services_are_read_from_the_registry(client: homing.Client, service: str) -> None:
    sched = Scheduler(client, services_every=3600)
    assert sched.step() == 0
    client.create_timer(service, 1, delay_ms=0)
    assert sched.step() == 0  # registry cached for services_every
    sched.services_every = 0
    assert sched.step() == 1


def test_many_daemons_and_dying_consumers(redis_url: str, prefix: str, service: str) -> None:
    """Two schedulers and two distributors race over 3000 events; consumers sometimes die.

    Every event must be completed exactly once as acknowledged, every reclaim
    must be one we caused, and no event may ever be promoted twice (a second
    copy in the ready queue would show up as an 'orphaned' count or as a
    delivered total above what the consumers saw).
    """
    n, lease_ms = 3000, 50
    clients = [homing.Client.from_url(redis_url, prefix=prefix) for _ in range(8)]
    admin = clients[0]
    admin.configure(service, backoff_base_ms=0, max_attempts=1000, lease_ms=lease_ms)
    ids = []
    for i in range(0, n, 1000):
        ids += admin.enqueue_many(service, [{"i": j} for j in range(i, i + 1000)])

    stop_daemons = threading.Event()
    daemons = [Scheduler(clients[1], interval=0.01), Scheduler(clients[2], interval=0.01),
               Distributor(clients[3], interval=0.01, sweep_every=0.2),
               Distributor(clients[4], interval=0.01, sweep_every=0.2)]
    lock = threading.Lock()
    acked: collections.Counter[str] = collections.Counter()
    attempts: dict[str, list[int]] = collections.defaultdict(list)
    tally = collections.Counter()
    stop_consumers = threading.Event()
    failures: list[Exception] = []

    def consume(c: homing.Client, seed: int) -> None:
        rng = random.Random(seed)
        while not stop_consumers.is_set():
            batch = c.dequeue(service, 20)
            if not batch:
                time.sleep(0.005)
                continue
            with lock:
                tally["delivered"] += len(batch)
                for e in batch:
                    attempts[e.id].append(e.attempt)
            keep = [e for e in batch if rng.random() >= 0.05]  # ~5% of deliveries "die"
            tally_dead = len(batch) - len(keep)
            if rng.random() < 0.05:
                # A stall around the lease length: the late completion is accepted
                # or refused depending on whether a scheduler reclaimed it first.
                time.sleep(lease_ms / 1000 * 1.5)
            errs = c.complete_many(service, [(e.id, e.token, e.attempt) for e in keep]) \
                if keep else []
            with lock:
                tally["abandoned"] += tally_dead
                for e, err in zip(keep, errs, strict=True):
                    if err is None:
                        acked[e.id] += 1
                    elif isinstance(err, (homing.StaleLeaseError, homing.UnknownEventError)):
                        # Reclaimed (and perhaps already completed by its next holder).
                        tally["refused"] += 1
                    else:
                        failures.append(err)

    threads = [threading.Thread(target=d.run, args=(stop_daemons,), daemon=True)
               for d in daemons]
    threads += [threading.Thread(target=consume, args=(c, i), daemon=True)
                for i, c in enumerate(clients[5:])]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) == n, timeout=60, pause=0.05)
    finally:
        stop_consumers.set()
        stop_daemons.set()
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

    assert set(acked) == set(ids)
    assert set(acked.values()) == {1}  # exactly once, as acknowledged
    for event_id, seen in attempts.items():
        # Each delivery of an event is a new attempt: no delivery was duplicated.
        assert sorted(seen) == list(range(1, len(seen) + 1)), (event_id, seen)
    c = counters(admin, service)
    assert c["completed"] == n
    assert c["delivered"] == tally["delivered"] == n + tally["abandoned"] + tally["refused"]
    assert c["expired"] == tally["abandoned"] + tally["refused"]  # only reclaims we caused
    assert c["retried"] == c["expired"] and c.get("dead", 0) == 0
    assert c.get("orphaned", 0) == 0  # never a second copy in the ready queue
    assert tally["abandoned"] > 0  # the test did exercise redelivery
    st = admin.stats(service)
    assert (st["ready"], st["in_flight"], st["retrying"], st["expired"], st["dead"]) == (
        0, 0, 0, 0, 0)
    assert meta(admin, service) == {}
    assert sum(d.moved for d in daemons[2:]) == c["expired"]
    for cl in clients:
        cl.close()
