"""The idle worker's wait and dequeue in one round trip (``Client.dequeue_when_ready``).

Its reply is a dequeue's; its due-time hint is left to the caller (the worker
sends it once its handlers have the events), and a NOSCRIPT is answered as
``run`` answers it.
"""

from __future__ import annotations

import threading
import time

from helpers import key

import homing
from homing.daemoncalls import send_hints


def lease(client: homing.Client, service: str, timeout: float = 0.1,
          hints: list[tuple[str, int]] | None = None,
          ) -> tuple[object, homing.Batch, list[tuple[str, int]]]:
    hints = [] if hints is None else hints
    call = client.op("dequeue_batch", service, count=10, reserve=True)
    ready, batch = client.dequeue_when_ready(service, timeout, call, hints)
    return ready, batch, hints


def test_nothing_ready_waits_and_leases_nothing(client: homing.Client, service: str) -> None:
    t0 = time.monotonic()
    ready, batch, hints = lease(client, service)
    assert time.monotonic() - t0 >= 0.09
    assert ready is False and batch.events == [] and batch.wait_ms == 0
    assert client.redis.zcard(key(client, service, "leases")) == 0


def test_an_event_enqueued_meanwhile_comes_back_leased(client: homing.Client,
                                                       service: str) -> None:
    client.register(service)
    timer = threading.Timer(0.05, lambda: client.enqueue(service, "x"))
    timer.start()
    try:
        ready, batch, hints = lease(client, service, timeout=2.0)
    finally:
        timer.join()
    assert ready is True
    [event] = batch.events
    assert event.payload == "x" and event.token > 0
    assert client.redis.zscore(key(client, service, "leases"), event.id) is not None
    # The lease deadline's hint is the caller's to send.
    index = f"{client.prefix}:due"
    assert client.redis.zscore(index, service) is None
    deadline = client.redis.zscore(key(client, service, "leases"), event.id)
    assert hints == [(service, deadline)]
    send_hints(client, hints)
    assert hints == [] and client.redis.zscore(index, service) == deadline


def test_kept_hints_go_out_before_the_wait(client: homing.Client, service: str) -> None:
    pubsub = client.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{client.prefix}:wake")
    pubsub.get_message(timeout=1)
    try:
        _, batch, hints = lease(client, service, hints=[(service, 12345)])
        assert batch.events == [] and hints == []
        assert client.redis.zscore(f"{client.prefix}:due", service) == 12345
        message = pubsub.get_message(timeout=2)  # it lowered the entry: schedulers woken
        assert message is not None and message["data"] in (service, service.encode())
    finally:
        pubsub.close()


def test_ready_events_come_back_at_once_in_order(client: homing.Client, service: str) -> None:
    ids = client.enqueue_many(service, ["a", "b", "c"])
    t0 = time.monotonic()
    ready, batch, _ = lease(client, service, timeout=2.0)
    assert time.monotonic() - t0 < 1.0
    assert ready is True and [e.id for e in batch.events] == ids


def test_an_empty_script_cache_is_answered_as_run_answers_it(client: homing.Client,
                                                              service: str) -> None:
    ids = client.enqueue_many(service, ["a"])
    client.redis.script_flush()
    ready, batch, _ = lease(client, service)
    assert ready is True and [e.id for e in batch.events] == ids


def test_kept_hints_ride_the_next_dequeue(client: homing.Client, service: str) -> None:
    """``run_hinted``: the kept-back hints go out with the call, in its pipeline; then
    ``hints`` holds the call's own (the new batch's lease deadline)."""
    ids = client.enqueue_many(service, ["a", "b"])
    index = f"{client.prefix}:due"
    hints = [(service, 12345)]
    batch = client.run_hinted(client.op("dequeue_batch", service, count=10, reserve=True), hints)
    assert [e.id for e in batch.events] == ids
    assert client.redis.zscore(index, service) == 12345
    deadline = client.redis.zscore(key(client, service, "leases"), ids[0])
    assert hints == [(service, deadline)]
    # No hints kept: the call alone (its own hint still left to the caller).
    more = client.enqueue_many(service, ["c"])
    hints = []
    batch = client.run_hinted(client.op("dequeue_batch", service, count=10, reserve=True), hints)
    assert [e.id for e in batch.events] == more and len(hints) == 1
    assert client.redis.zscore(index, service) == 12345, "LT: never raised"


def test_an_empty_script_cache_is_answered_with_hints_too(client: homing.Client,
                                                          service: str) -> None:
    ids = client.enqueue_many(service, ["a"])
    client.redis.script_flush()
    hints = [(service, 12345)]
    batch = client.run_hinted(client.op("dequeue_batch", service, count=10, reserve=True), hints)
    assert [e.id for e in batch.events] == ids and len(hints) == 1
    assert client.redis.zscore(f"{client.prefix}:due", service) == 12345
