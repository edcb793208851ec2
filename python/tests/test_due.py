"""The due-time index (issue 10): the clients' hints, the scheduler's claims and
settles, its wake-ups and backstop, run_daemons, forgetting a service, and the
worker's blocking wait on its ready queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import key, running, states, wait_for

import homing
from homing import daemons
from homing.daemons import Scheduler, run_daemons
from homing.due import CLAIM
from homing.errors import InvalidArgumentError, ServiceNotEmptyError


def due_index(client: homing.Client) -> dict[str, float]:
    raw = client.redis.zrange(f"{client.prefix}:due", 0, -1, withscores=True)
    return {m.decode(): s for m, s in raw}


def state(client: homing.Client, service: str, event_id: str) -> str | None:
    return states(client, service).get(event_id)


def detail(client: homing.Client, service: str, event_id: str) -> str:
    """Where an event is, atomically (``states`` reads key by key: not while daemons run)."""
    return client.status(service, event_id).detail


def no_backstop(sched: Scheduler) -> Scheduler:
    """A scheduler that follows the index only, so a test sees what the index does."""
    sched.backstop.first = False
    sched.backstop.rate = 0.0
    return sched


@contextmanager
def running_scheduler(sched: Scheduler) -> Iterator[Scheduler]:
    stop = threading.Event()
    t = threading.Thread(target=sched.run, args=(stop,), daemon=True)
    t.start()
    try:
        yield sched
    finally:
        stop.set()
        t.join(10)
        assert not t.is_alive()


# -- the clients' hints ----------------------------------------------------------------

def test_timers_retries_and_leases_are_indexed_at_their_due_time(
        client: homing.Client, service: str) -> None:
    client.create_timer(service, "later", delay_ms=60_000)
    [timer_due] = client.redis.zrange(key(client, service, "timers"), 0, 0, withscores=True)
    assert due_index(client) == {service: timer_due[1]}
    client.enqueue(service, "job")
    [ev] = client.dequeue(service, lease_ms=5000)
    assert due_index(client) == {service: ev.deadline_ms}  # earlier than the timer: lowered
    out = client.fail(service, ev.id, ev.token, delay_ms=1000)
    assert out.action == "retry"
    assert due_index(client) == {service: out.at_ms}  # the retry is due before the lease was
    client.create_timer(service, "later still", delay_ms=120_000)
    assert due_index(client) == {service: out.at_ms}  # an entry is never raised


def test_a_wrong_typed_index_does_not_fail_the_producer(client: homing.Client,
                                                        service: str) -> None:
    client.redis.set(f"{client.prefix}:due", "not a zset")
    timer = client.create_timer(service, "t", delay_ms=10)  # the script's write stands
    assert state(client, service, timer) == "timer"


# -- claims and settles -------------------------------------------------------------------

def test_take_claims_what_is_due_and_settle_puts_back_the_next_due_time(
        client: homing.Client) -> None:
    client.due_settle(CLAIM, [("a", 1000), ("b", 2**45)])
    now, next_due, next_claim, taken = client.due_take(100, 5000)
    assert taken == ["a"]
    assert next_due == 2**45 and next_claim == now + 5000
    assert due_index(client) == {"a": CLAIM + now, "b": 2**45}
    # A second scheduler keeps off a fresh claim.
    assert client.due_take(100, 5000)[3] == []
    assert client.due_settle(CLAIM + now, [("a", 12345)]) == 1
    assert due_index(client)["a"] == 12345
    now, *_, taken = client.due_take(100, 5000)
    assert taken == ["a"]
    assert client.due_settle(CLAIM + now, [("a", -1)]) == 0  # nothing left: it goes
    assert "a" not in due_index(client)


def test_a_timer_added_during_a_claim_is_not_lost(client: homing.Client, service: str) -> None:
    """The race the claim exists for: a timer whose script runs after the promote."""
    client.create_timer(service, "due", delay_ms=0)
    now, *_, taken = client.due_take(100, 5000)
    assert taken == [service]
    client.promote(service)  # the scheduler's promote: nothing else is due
    late = client.create_timer(service, "added meanwhile", delay_ms=30_000)
    [(_, at)] = client.redis.zrange(key(client, service, "timers"), 0, 0, withscores=True)
    client.due_settle(CLAIM + now, [(service, -1)])  # what the promote said: nothing due
    assert due_index(client) == {service: at}
    assert state(client, service, late) == "timer"


def test_a_stale_claim_is_taken_again(client: homing.Client) -> None:
    client.due_settle(CLAIM, [("a", 1000)])
    assert client.due_take(100, 1)[3] == ["a"]
    time.sleep(0.01)  # the claim (1 ms) went stale: its scheduler died
    assert client.due_take(100, 1)[3] == ["a"]


def test_bad_arguments_are_refused_before_sending(client: homing.Client) -> None:
    for bad in (lambda: client.due_take(0), lambda: client.due_take(10, 0),
                lambda: client.due_settle(CLAIM - 1, [("a", 1)]),
                lambda: client.due_settle(CLAIM, []),
                lambda: client.due_settle(CLAIM, [("a", CLAIM)])):
        with pytest.raises(InvalidArgumentError):
            bad()
    assert due_index(client) == {}


# -- the scheduler ----------------------------------------------------------------------

def test_the_scheduler_promotes_what_the_index_says_not_every_service(
        client: homing.Client, service: str) -> None:
    idle = [f"idle-{i}" for i in range(50)]
    client.redis.sadd(f"{client.prefix}:services", *idle)
    timer = client.create_timer(service, "now", delay_ms=0)
    sched = no_backstop(Scheduler(client))
    assert sched.cycle() == 1
    assert sched.promoted == 1  # the one service with work due, none of the 50
    assert state(client, service, timer) == "ready"
    assert sched.cycle() == 0 and sched.promoted == 1
    assert service not in due_index(client)  # nothing left due: the entry went


def test_a_lost_hint_is_found_by_the_backstop(client: homing.Client, service: str) -> None:
    timer = client.create_timer(service, "t", delay_ms=0)
    client.redis.delete(f"{client.prefix}:due")  # the producer died before its ZADD
    client.redis.sadd(f"{client.prefix}:services", *(f"idle-{i}" for i in range(30)))
    sched = Scheduler(client)
    for _ in range(20):
        sched.cycle()
        if sched.backstop.passes:
            break
    assert sched.backstop.passes == 1
    sched.cycle()
    assert state(client, service, timer) == "ready"


def test_the_backstop_hints_expired_events_to_the_distributors(
        client: homing.Client, service: str) -> None:
    client.redis.lpush(key(client, service, "expired"), "e1")
    client.register(service)
    sched = Scheduler(client)
    while not sched.backstop.passes:
        sched.cycle()
    assert client.take_hints() == [service]


def test_a_sleeping_scheduler_is_woken_by_an_earlier_timer(
        client: homing.Client, service: str) -> None:
    client.create_timer(service, "far", delay_ms=600_000)
    sched = no_backstop(Scheduler(client, max_wait=60.0))
    with running_scheduler(sched):
        wait_for(lambda: sched._wait > 30)  # asleep until the far timer (or 60 s)
        near = client.create_timer(service, "near", delay_ms=0)
        wait_for(lambda: detail(client, service, near) == "ready")
        assert sched.waker.woken >= 1  # the PUBLISH woke it, not a timeout


def test_a_service_on_a_test_clock_is_looked_at_every_interval(
        client: homing.Client, service: str) -> None:
    from helpers import freeze

    clock = freeze(client, service)
    timer = client.create_timer(service, "t", delay_ms=100)
    sched = no_backstop(Scheduler(client, interval=0.01))
    sched.cycle()  # its due time (test clock) is long past by the Redis clock: not moved
    assert state(client, service, timer) == "timer"
    assert due_index(client)[service] > clock.now + 100  # looked at again after interval
    clock.advance(100)
    time.sleep(0.02)
    sched.cycle()
    assert state(client, service, timer) == "ready"


def test_several_schedulers_promote_each_timer_once(redis_url: str, prefix: str,
                                                    service: str) -> None:
    clients = [homing.Client.from_url(redis_url, prefix=prefix) for _ in range(3)]
    try:
        ids = [clients[0].create_timer(service, i, delay_ms=(i % 20) * 5) for i in range(200)]
        scheds = [Scheduler(c) for c in clients]
        with running_scheduler(scheds[0]), running_scheduler(scheds[1]), \
                running_scheduler(scheds[2]):
            wait_for(lambda: clients[0].redis.llen(key(clients[0], service, "ready")) >= 200)
            time.sleep(0.1)
        ready = [i.decode() for i in clients[0].redis.lrange(key(clients[0], service, "ready"),
                                                             0, -1)]
        assert sorted(ready) == sorted(ids)  # each once
        assert clients[0].stats(service)["total.timers_fired"] == 200
    finally:
        for c in clients:
            c.close()


# -- run_daemons ------------------------------------------------------------------------

def test_run_daemons_promotes_distributes_and_reports(client: homing.Client,
                                                      service: str) -> None:
    client.configure(service, backoff_base_ms=0, backoff_jitter=0)
    timer = client.create_timer(service, "t", delay_ms=0)
    client.enqueue(service, "e")
    [ev] = [e for e in client.dequeue(service, 2, lease_ms=50) if e.id != timer]
    stop, reported = threading.Event(), []
    t = threading.Thread(target=run_daemons, args=(client, stop),
                         kwargs={"interval": 0.01, "report": reported.append}, daemon=True)
    t.start()
    try:
        wait_for(lambda: detail(client, service, timer) == "ready")
        # The lease ran out: reclaimed, routed to a retry (0 backoff), promoted again.
        wait_for(lambda: detail(client, service, ev.id) == "ready")
    finally:
        stop.set()
        t.join(10)
    assert [d.name for d in reported] == ["scheduler", "distributor"]
    assert reported[0].moved >= 2 and reported[1].moved == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_run_daemons_raises_when_a_daemon_dies(client: homing.Client,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(daemons.Scheduler, "cycle", broken)
    reported: list[Any] = []
    with pytest.raises(RuntimeError, match="homing-scheduler stopped unexpectedly"):
        run_daemons(client, threading.Event(), report=reported.append)
    assert len(reported) == 2  # both reported, the distributor stopped too


def test_run_daemons_needs_a_daemon(client: homing.Client) -> None:
    with pytest.raises(InvalidArgumentError):
        run_daemons(client, threading.Event(), scheduler=False, distributor=False)


# -- forgetting a service ---------------------------------------------------------------

def test_forget_removes_an_empty_service_everywhere(client: homing.Client,
                                                    service: str) -> None:
    client.configure(service, lease_ms=5000)
    client.enqueue(service, "e")
    [ev] = client.dequeue(service)
    # A result: a completion without one keeps nothing (done_ttl_ms 0).
    client.complete(service, ev.id, ev.token, result="r")
    with pytest.raises(ServiceNotEmptyError, match="results"):
        client.forget(service)  # its result is kept for the producer
    assert service in client.services()
    assert client.stats(service)["policy.lease_ms"] == 5000  # nothing written
    client.redis.delete(key(client, service, "results"), key(client, service, "results_at"))
    assert client.forget(service) == 3
    assert service not in client.services() and service not in due_index(client)
    assert not client.redis.keys(f"{client.prefix}:{{{service}}}:*")


def test_cli_services_lists_and_forgets(cli: Any, client: homing.Client) -> None:
    client.enqueue("busy", "e")
    client.enqueue("urgent", "e", priority=7)  # waits in prio, not in the ready list
    client.register("typo")
    r = cli("services")
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines()[1:]}
    assert set(lines) == {"busy", "typo", "urgent"}
    assert lines["typo"].rstrip().endswith("-")  # no activity on record
    assert "Z" in lines["busy"]  # the ready event's creation time
    assert "Z" in lines["urgent"]  # a prioritised event's creation time
    r = cli("services", "forget", "busy")
    assert r.exit_code == 2 and "SERVICE_NOT_EMPTY" in r.output
    r = cli("services", "forget", "typo")
    assert r.exit_code == 0 and "forgot typo" in r.output
    assert sorted(client.services()) == ["busy", "urgent"]


# -- the worker's wait ------------------------------------------------------------------

class Noting(homing.Consumer):
    seen: list[str] = []

    def handle_event(self, event: Any, state: Any) -> Any:
        self.seen.append(event.id)
        return state


def test_wait_ready_leaves_the_queue_as_it_was(client: homing.Client, service: str) -> None:
    assert client.wait_ready(service, 0.01) is False
    ids = client.enqueue_many(service, ["a", "b", "c"])
    assert client.wait_ready(service, 0.01) is True
    assert [e.id for e in client.dequeue(service, 3)] == ids  # still first in, first out


def test_an_idle_worker_blocks_instead_of_polling(client: homing.Client, service: str) -> None:
    Noting.seen = []
    worker = homing.Worker(client, service, Noting)
    with running(worker):
        time.sleep(1.0)
        # Blocking waits of 0.1 s: about ten a second. Polling every 1..50 ms made
        # 20 and more dequeues a second.
        assert 1 <= worker._ready.waits <= 15
        event = client.enqueue(service, "x")
        wait_for(lambda: Noting.seen == [event])


def test_the_async_client_hints_and_forgets(redis_url: str, prefix: str, service: str) -> None:
    import asyncio

    async def main() -> None:
        c = await homing.AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            await c.create_timer(service, "t", delay_ms=60_000)
            [(_, at)] = await c.redis.zrange(key(c, service, "timers"), 0, 0, withscores=True)
            assert await c.redis.zscore(f"{prefix}:due", service) == at
            with pytest.raises(ServiceNotEmptyError):
                await c.forget(service)
            assert await c.redis.sismember(f"{prefix}:services", service)
            await c.cancel_timer(service, (await c.redis.zrange(key(c, service, "timers"),
                                                                0, 0))[0].decode())
            assert await c.forget(service) >= 1
            assert not await c.redis.sismember(f"{prefix}:services", service)
            assert await c.redis.zscore(f"{prefix}:due", service) is None
        finally:
            await c.close()

    asyncio.run(main())


def test_a_service_due_again_soon_stays_claimed_until_close(client: homing.Client,
                                                            service: str) -> None:
    first = client.create_timer(service, "now", delay_ms=0)
    client.create_timer(service, "soon", delay_ms=800)
    [_, (_, soon_at)] = client.redis.zrange(key(client, service, "timers"), 0, -1,
                                            withscores=True)
    sched = no_backstop(Scheduler(client))
    sched.cycle()
    assert state(client, service, first) == "ready"
    assert due_index(client)[service] >= CLAIM  # kept claimed: promoted directly when due
    assert client.due_take(100, 5000)[3] == []  # and kept off the other schedulers
    sched.close()
    assert due_index(client) == {service: soon_at}  # settled, not left to go stale


def test_the_backstop_keeps_sweeping_after_its_first_pass(client: homing.Client,
                                                          service: str) -> None:
    client.register(service)
    client.redis.sadd(f"{client.prefix}:services", *(f"idle-{i}" for i in range(500)))
    # 500 commands a second: the full-speed first pass (3,000 reads) must not be
    # charged to the passes after it, or the next would wait 6 s and more.
    sched = Scheduler(client, backstop_rate=500.0)
    while not sched.backstop.passes:
        sched.cycle()
    need = 1 + daemons.Backstop.CHUNK * daemons.BACKSTOP_COST
    assert sched.backstop.due_in() <= need / 500.0 + 0.01  # no debt from the first pass
    timer = client.create_timer(service, "t", delay_ms=0)
    client.redis.delete(f"{client.prefix}:due")  # its hint lost after the first pass
    # Found within one pass (3,006 reads at 500 a second: about 6 s).
    wait_for(lambda: sched.cycle() is not None and state(client, service, timer) == "ready",
             timeout=30)
