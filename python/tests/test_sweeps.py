"""The scheduler's estimate of the Redis clock (``homing.sweeps.RedisClock``), and
its sleep (``Waker``).

It says only when a promote is sent (the scripts judge what is due by TIME
themselves), so it must be close, run a little ahead (LEAD_MS), and fall back
to the due-time index's readings where TIME is refused.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import redis
from helpers import key, wait_for

import homing
from homing import due, sweeps
from homing.daemons import Scheduler
from homing.sweeps import RedisClock, Waker


def redis_ms(client: homing.Client) -> float:
    sec, usec = client.redis.time()
    return sec * 1000 + usec / 1000


def test_read_with_time_it_runs_just_ahead(client: homing.Client) -> None:
    clock = RedisClock(client)
    clock.refresh()
    assert clock.timed
    before = redis_ms(client)
    est = clock.now()
    after = redis_ms(client)
    # Floored to whole ms, LEAD_MS ahead, within a round trip on a shared machine.
    assert before - 5 <= est <= after + sweeps.LEAD_MS + 5
    # A due_take's whole-ms reading does not replace a TIME reading (it only bounds it).
    offset = clock.offset
    sent = time.monotonic()
    clock.taken(int(redis_ms(client)), sent)
    assert clock.offset == offset


def test_refused_time_falls_back_to_the_index_readings() -> None:
    def refused() -> None:
        raise redis.ResponseError("NOPERM this user has no permissions to run 'time'")

    clock = RedisClock(SimpleNamespace(redis=SimpleNamespace(time=refused)))  # type: ignore[arg-type]
    clock.refresh()
    assert not clock.timed
    sent = time.monotonic()
    clock.taken(1_000_000, sent)
    assert 1_000_000 <= clock.now() <= 1_000_000 + (time.monotonic() - sent) * 1000 + 1
    assert clock.until(clock.now() + 50) > 0.04


def test_read_again_only_every_clock_every(client: homing.Client) -> None:
    clock = RedisClock(client)
    clock.refresh()
    first = clock.read_at
    clock.refresh()
    assert clock.read_at == first


def test_a_clock_running_ahead_is_taken_back_by_the_index(
        client: homing.Client, service: str) -> None:
    """An estimate far ahead of Redis (a clock step) would read the index again
    and again too early: the first due_take's reading bounds it."""
    sched = Scheduler(client)
    sched.backstop.first, sched.backstop.rate = False, 0.0
    sched.clock.refresh()
    sched.clock.offset += 20  # 20 ms ahead of Redis
    timer = client.create_timer(service, "t", delay_ms=100)
    due = client.redis.zscore(key(client, service, "timers"), timer)
    sent = time.monotonic()
    now = int(redis_ms(client))
    sched.clock.taken(now, sent)  # what a due_take's reading does
    assert sched.clock.offset == now + 1 - sent * 1000 + sweeps.LEAD_MS
    sched.clock.offset += 20  # and once more, for the scheduler's own due_take
    stop = threading.Event()
    t = threading.Thread(target=sched.run, args=(stop,), daemon=True)
    t.start()
    try:
        wait_for(lambda: client.redis.zscore(key(client, service, "timers"), timer) is None)
        assert redis_ms(client) >= due
    finally:
        stop.set()
        t.join(10)
    assert sched.promoted <= 5


def test_a_promote_sent_early_is_sent_again_at_once_then_a_ms_later(
        client: homing.Client, service: str) -> None:
    sched = Scheduler(client)
    timer = client.create_timer(service, "t", delay_ms=300)
    due = int(client.redis.zscore(key(client, service, "timers"), timer))
    # As if the estimate said it is due: nothing moves (Redis judges by TIME).
    assert sched._promote_one(service, due) == (0, due)  # again at once
    assert sched.early == 1
    assert sched._promote_one(service, due) == (0, due + 1)  # then every ms
    time.sleep(max(0.0, (due - redis_ms(client)) / 1000) + 0.01)
    assert sched._promote_one(service, due + 20)[0] == 1
    assert service not in sched._early


def test_the_waker_never_wakes_before_its_time(client: homing.Client) -> None:
    """Nor after a message that did not come: a wait of a few ms, as between two
    timers, ends on its time (the socket wait's whole ms and the precise last
    stretch together), never before it."""
    waker = Waker(client, fallback=0.05)
    assert waker.arm()
    stop = threading.Event()
    for seconds in (0.0023, 0.0107):
        t0 = time.monotonic()
        waker.wait(seconds, stop)
        assert time.monotonic() - t0 >= seconds
    assert waker.woken == 0 and not waker.rung
    waker.close()


def test_the_waker_sees_messages_that_came_before_it_waited(client: homing.Client) -> None:
    """Two PUBLISHes before the wait: it returns at once and takes both (one look
    at the index answers them); the next one sleeps its time."""
    waker = Waker(client, fallback=0.05)
    waker.arm()
    stop = threading.Event()
    for _ in range(2):
        client.redis.publish(due.channel(client.prefix), "svc")
    time.sleep(0.05)
    t0 = time.monotonic()
    waker.wait(30.0, stop)
    assert time.monotonic() - t0 < 5
    assert waker.woken == 1 and waker.rung
    waker.rung = False
    t0 = time.monotonic()
    waker.wait(0.02, stop)
    assert time.monotonic() - t0 >= 0.02 and not waker.rung
    waker.close()


def test_a_publish_ends_the_waker_s_sleep(client: homing.Client) -> None:
    waker = Waker(client, fallback=0.05)
    waker.arm()
    stop = threading.Event()
    ring = threading.Timer(0.1, lambda: client.redis.publish(due.channel(client.prefix), "s"))
    ring.start()
    t0 = time.monotonic()
    waker.wait(30.0, stop)
    assert time.monotonic() - t0 < 10 and waker.rung
    ring.join()
    waker.close()
