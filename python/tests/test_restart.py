"""Redis restarts and crashes (standalone, appendonly + appendfsync always).

The script cache does not survive a restart, so every client call after one
meets NOSCRIPT and must reload the script by itself. With appendfsync always,
nothing Redis acknowledged may be lost, even on SIGKILL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from helpers import counters, running, running_daemons, states, wait_for
from servers import RedisServer

import homing
from homing.manifest import SCRIPTS

SERVICE = "orders"


@pytest.fixture
def aof_client(aof_server: RedisServer) -> Iterator[homing.Client]:
    c = homing.Client.from_url(aof_server.url, prefix="rs")
    try:
        yield c
    finally:
        c.close()


def bounce(server: RedisServer, how: str, down_s: float = 0.0) -> None:
    if how == "kill":
        server.kill()  # a crash: no chance to flush anything
        time.sleep(down_s)
        server.start()
    else:
        server.restart()  # SIGTERM, then start again on the same port and dir


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_nothing_acknowledged_is_lost(aof_server: RedisServer, aof_client: homing.Client,
                                      how: str) -> None:
    c = aof_client
    ids = []
    for i in range(0, 500, 100):
        ids += c.enqueue_many(SERVICE, [{"n": n} for n in range(i, i + 100)])
    leased = c.dequeue(SERVICE, 100, lease_ms=600_000)
    done, held = leased[:60], leased[60:]
    assert c.complete_many(SERVICE, [(e.id, e.token, e.payload["n"]) for e in done]) == \
        [None] * 60
    dead = held.pop()
    c.fail(SERVICE, dead.id, dead.token, "given up", dead=True)
    timer = c.create_timer(SERVICE, "later", delay_ms=0)
    before = c.stats(SERVICE)
    before_states = states(c, SERVICE)

    bounce(aof_server, how)

    sha = SCRIPTS["stats"].sha1
    assert c.redis.script_exists(sha) == [False]  # the cache is gone ...
    assert c.stats(SERVICE) == before  # ... and reloads transparently (NOSCRIPT -> EVAL)
    assert c.redis.script_exists(sha) == [True]
    assert states(c, SERVICE) == before_states
    assert c.services() == [SERVICE]
    for e in done:
        assert c.result(SERVICE, e.id, timeout=1) == e.payload["n"]
    assert c.dead_list(SERVICE).letters[0].id == dead.id
    # Leases and their fencing tokens survived: the holders can still complete.
    assert c.complete_many(SERVICE, [(e.id, e.token, None) for e in held]) == [None] * len(held)
    # Everything else is deliverable, the token counter never went backwards.
    assert c.promote(SERVICE).timers == 1
    rest = []
    while batch := c.dequeue(SERVICE, 1000):
        rest += batch
    assert min(e.token for e in rest) > max(e.token for e in leased)
    assert {e.id for e in rest} == set(ids[100:]) | {timer}
    assert c.complete_many(SERVICE, [(e.id, e.token, None) for e in rest]) == [None] * len(rest)
    assert counters(c, SERVICE)["completed"] == 500


def test_writes_during_an_outage_fail_loudly(aof_server: RedisServer,
                                             aof_client: homing.Client) -> None:
    aof_client.enqueue(SERVICE, "before")
    aof_server.kill()
    with pytest.raises(homing.ConnectionLostError):
        aof_client.enqueue(SERVICE, "during")  # the producer knows it was not accepted
    aof_server.start()
    assert [e.payload for e in aof_client.dequeue(SERVICE, 10)] == ["before"]


class Recorder(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        time.sleep(0.002)
        self.complete(event.service, event.id, result=event.payload)
        return state


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_worker_keeps_working_across_a_restart(aof_server: RedisServer,
                                               aof_client: homing.Client, how: str) -> None:
    c = aof_client
    ids = c.enqueue_many(SERVICE, list(range(400)))
    worker = homing.Worker(c, SERVICE, Recorder, concurrency=2, prefetch=20, lease_ms=3000,
                           grace=2)
    with running_daemons(c), running(worker):
        wait_for(lambda: worker.stats.completed >= 50)
        bounce(aof_server, how, down_s=0.5)
        more = c.enqueue_many(SERVICE, list(range(400, 500)))
        for event_id, n in zip(ids + more, range(500), strict=True):
            assert c.result(SERVICE, event_id, timeout=30) == n
    cnt = counters(c, SERVICE)
    assert cnt["completed"] == 500  # each event exactly once, none lost
    st = c.stats(SERVICE)
    assert (st["ready"], st["in_flight"], st["dead"]) == (0, 0, 0)


def test_daemons_survive_an_outage(aof_server: RedisServer, aof_client: homing.Client) -> None:
    """An outage must not end the daemon threads: they retry until Redis is back."""
    c = aof_client
    c.configure(SERVICE, backoff_base_ms=0)
    with running_daemons(c, interval=0.01) as daemons:
        time.sleep(0.1)  # both loops are polling
        bounce(aof_server, "kill", down_s=0.5)
        timer = c.create_timer(SERVICE, "t", delay_ms=0)
        c.enqueue(SERVICE, "lease me")
        [ev] = c.dequeue(SERVICE, lease_ms=50)
        # The scheduler promotes the timer and reclaims the lease, the distributor
        # routes the reclaimed event back, the scheduler promotes its retry: both
        # loops are still alive.
        wait_for(lambda: counters(c, SERVICE).get("retries_ready", 0) == 1, timeout=10)
        assert all(d.moved > 0 for d in daemons)
    assert states(c, SERVICE) == {timer: "ready", ev.id: "ready"}
