"""The lean send path (homing.lane): what redis-py's command layer did for a script call
still happens on it (NOSCRIPT, a dead connection replaced, reconnects, threads), on a
private redis-server."""

from __future__ import annotations

import threading

import pytest
import redis
from helpers import counters

import homing
from homing.lane import BUSY, Lane, drop_lane, lane_for


@pytest.fixture
def plain(standalone_server, prefix: str):
    c = homing.Client.from_url(standalone_server.url, cluster=False, prefix=prefix)
    try:
        yield c
    finally:
        c.close()


def test_a_plain_client_gets_a_lane_and_others_do_not(plain: homing.Client) -> None:
    assert isinstance(lane_for(plain.redis), Lane)
    assert lane_for(plain.redis) is lane_for(plain.redis)  # one per client
    # A subclass (the Sentinel client is one) and anything else keep redis-py's path.
    sub = type("Sub", (redis.Redis,), {})(connection_pool=plain.redis.connection_pool)
    assert lane_for(sub) is None
    assert lane_for(object()) is None


def test_noscript_is_answered_with_eval(plain: homing.Client, service: str) -> None:
    first = plain.enqueue(service, 1)
    plain.redis.script_flush()  # as after a restart or a failover
    second = plain.enqueue(service, 2)
    assert [e.id for e in plain.dequeue(service, 10)] == [first, second]


def test_a_connection_the_server_closed_is_replaced_before_sending(
        plain: homing.Client, service: str) -> None:
    plain.enqueue(service, 1)
    lane = lane_for(plain.redis)
    assert lane is not None and lane.conn is not None
    # The server drops the lane's connection (a timeout, a restart): the next call
    # must still run, once, on a fresh connection, not fail on the dead socket.
    lane_id = lane.call("CLIENT", "ID")
    assert plain.redis.execute_command("CLIENT", "KILL", "ID", lane_id) == 1
    plain.enqueue(service, 2)
    assert counters(plain, service)["enqueued"] == 2


def test_drop_idle_closes_the_lane(plain: homing.Client, service: str) -> None:
    plain.enqueue(service, 1)
    lane = lane_for(plain.redis)
    assert lane is not None and lane.conn is not None and lane.conn._sock is not None
    drop_lane(plain.redis)
    assert lane.conn._sock is None
    plain.enqueue(service, 2)  # connects again on its own
    assert counters(plain, service)["enqueued"] == 2


def test_a_busy_lane_sends_through_the_pool(plain: homing.Client, service: str) -> None:
    lane = lane_for(plain.redis)
    assert lane is not None
    with lane.lock:  # another thread holds it
        assert lane.call("PING") is BUSY
        plain.enqueue(service, 1)  # not blocked: redis-py's pooled path
    assert counters(plain, service)["enqueued"] == 1


def test_threads_share_a_client(plain: homing.Client, service: str) -> None:
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(200):
                plain.enqueue(service, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert counters(plain, service)["enqueued"] == 800
    assert plain.stats(service)["ready"] == 800


def test_a_refused_call_keeps_the_lane_in_step(plain: homing.Client, service: str) -> None:
    # An error reply is a reply: the connection stays usable and in step.
    plain.enqueue(service, 1, id="e1")
    with pytest.raises(homing.DuplicateIdError):
        plain.enqueue(service, 2, id="e1")
    lane = lane_for(plain.redis)
    assert lane is not None and lane.conn is not None and lane.conn._sock is not None
    assert plain.enqueue(service, 3, id="e2") == "e2"


def test_the_lane_packs_as_redis_py_does(plain: homing.Client) -> None:
    """hiredis's packer called directly (lane._pack): the same bytes as redis-py's,
    and what hiredis refuses is packed (or refused) by redis-py as before."""
    from homing.lane import _pack

    conn = plain.redis.connection_pool.get_connection()
    try:
        for args in [("EVALSHA", "a" * 40, 2, "k1", "k2", 7, b"\x81\xa1n\x01", "", 1.5, 2**53),
                     ("SET", "k", memoryview(b"ab")), ("SET", "k", bytearray(b"ab"))]:
            assert b"".join(_pack(conn, args)) == b"".join(conn.pack_command(*args)), args
        with pytest.raises(redis.DataError):
            _pack(conn, ("SET", "k", {"a": 1}))
    finally:
        plain.redis.connection_pool.release(conn)
