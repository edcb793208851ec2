"""Producer operations: enqueue, payload round trips, idempotency, timers, the registry."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import T0, counters, freeze, key, states

import homing


def test_enqueue_returns_ids_and_is_fifo(client: homing.Client, service: str) -> None:
    first = client.enqueue(service, 0)
    rest = client.enqueue_many(service, list(range(1, 6)))
    ids = [first, *rest]
    assert len(set(ids)) == 6
    assert all(isinstance(i, str) and len(i) == 32 for i in ids)
    got = client.dequeue(service, 2) + client.dequeue(service, 10)
    assert [e.id for e in got] == ids
    assert [e.payload for e in got] == list(range(6))
    assert client.dequeue(service, 10) == []


def test_enqueue_with_explicit_id(client: homing.Client, service: str) -> None:
    assert client.enqueue(service, "x", id="order-17") == "order-17"
    with pytest.raises(homing.DuplicateIdError):
        client.enqueue(service, "y", id="order-17")
    assert [e.payload for e in client.dequeue(service, 5)] == ["x"]


def test_enqueue_many_is_atomic(client: homing.Client, service: str) -> None:
    client.enqueue(service, "a", id="taken")
    with pytest.raises(homing.DuplicateIdError):
        client.enqueue_many(service, ["b", "c"], ids=["fresh", "taken"])
    # The batch was validated before the first write: "fresh" is not there.
    assert states(client, service) == {"taken": "ready"}
    assert counters(client, service)["enqueued"] == 1


PAYLOADS = [
    b"\x00\xffbinary\x80",
    "unicode: ÆØÅ ✓ 漢字 \U0001f680",
    {"nested": {"list": [1, 2.5, None, True, {"k": b"v"}], "n": -1}, "e": {}},
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    None,
    "",
    b"",
    [],
    {},
    0,
    1.5e300,
    [[[[["deep"]]]]],
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_round_trip(client: homing.Client, service: str, payload: object) -> None:
    # A result of None is "no result", kept (as done) only when the service asks.
    client.configure(service, done_ttl_ms=60_000)
    event_id = client.enqueue(service, payload)
    [ev] = client.dequeue(service)
    assert ev.id == event_id
    assert ev.payload == payload
    assert type(ev.payload) is type(payload)
    # Results travel in the same envelope.
    client.complete(service, ev.id, ev.token, result=payload)
    out = client.result(service, event_id, timeout=5)
    assert out == payload and type(out) is type(payload)


def test_large_batch_round_trip(client: homing.Client, service: str) -> None:
    ids = client.enqueue_many(service, [{"i": i} for i in range(1000)])
    got = client.dequeue(service, 1000)
    assert [e.id for e in got] == ids
    assert [e.payload["i"] for e in got] == list(range(1000))


def test_idempotency_key_returns_first_id(client: homing.Client, service: str) -> None:
    first = client.enqueue(service, "a", key="k1")
    again = client.enqueue(service, "b", key="k1")
    other = client.enqueue(service, "c", key="k2")
    assert again == first and other != first
    assert client.stats(service)["ready"] == 2
    assert counters(client, service)["enqueued"] == 2
    # Within one batch too: the second use of a key maps to the first event.
    a, b, c = client.enqueue_many(service, ["x", "y", "z"], keys=["k3", "k3", None])
    assert a == b != c
    assert [e.payload for e in client.dequeue(service, 10)] == ["a", "c", "x", "z"]


def test_idempotency_key_outlives_completion(client: homing.Client, service: str) -> None:
    first = client.enqueue(service, "a", key="k")
    [ev] = client.dequeue(service)
    client.complete(service, ev.id, ev.token)
    # A producer retrying after a timeout must not re-run a finished job.
    assert client.enqueue(service, "a", key="k") == first
    assert client.stats(service)["ready"] == 0


def test_idempotency_key_expires_with_test_clock(client: homing.Client, service: str) -> None:
    client.configure(service, idem_ttl_ms=1000)
    clock = freeze(client, service)
    first = client.enqueue(service, "a", key="k")
    clock.advance(999)
    assert client.enqueue(service, "b", key="k") == first
    clock.advance(1)
    second = client.enqueue(service, "c", key="k")
    assert second != first
    assert [e.payload for e in client.dequeue(service, 10)] == ["a", "c"]
    # The key now points at the new event, for a fresh idem_ttl_ms.
    clock.advance(999)
    assert client.enqueue(service, "d", key="k") == second


def test_expired_idempotency_keys_are_pruned(client: homing.Client, service: str) -> None:
    client.configure(service, idem_ttl_ms=10)
    clock = freeze(client, service)
    client.enqueue_many(service, list(range(3)), keys=["a", "b", "c"])
    assert client.redis.hlen(key(client, service, "idem")) == 3
    clock.advance(10)
    client.promote(service)  # the scheduler retires stale keys
    assert client.redis.hlen(key(client, service, "idem")) == 0
    assert client.redis.zcard(key(client, service, "idem_at")) == 0


def test_create_timer_with_delay_never_early(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    timer_id = client.create_timer(service, {"t": 1}, delay_ms=5000)
    assert states(client, service) == {timer_id: "timer"}
    assert client.status(service, timer_id).detail == "timer"
    clock.advance(4999)
    assert client.promote(service).timers == 0
    assert client.dequeue(service) == []
    clock.advance(1)
    r = client.promote(service)
    assert (r.timers, r.next_due_ms) == (1, -1)
    [ev] = client.dequeue(service)
    assert (ev.id, ev.payload, ev.attempt) == (timer_id, {"t": 1}, 1)
    assert counters(client, service)["timers_fired"] == 1


def test_create_timer_at_datetime_and_epoch(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    due_dt = dt.datetime.fromtimestamp((T0 + 2000) / 1000, tz=dt.timezone.utc)
    by_dt = client.create_timer(service, "dt", at=due_dt)
    by_epoch = client.create_timer(service, "epoch", at=(T0 + 3000) / 1000)
    zset = key(client, service, "timers")
    assert client.redis.zscore(zset, by_dt) == T0 + 2000
    assert client.redis.zscore(zset, by_epoch) == T0 + 3000
    assert client.promote(service).next_due_ms == T0 + 2000
    clock.set(T0 + 2999)
    assert client.promote(service).timers == 1
    assert [e.payload for e in client.dequeue(service, 5)] == ["dt"]
    clock.set(T0 + 3000)
    assert client.promote(service).timers == 1
    assert [e.payload for e in client.dequeue(service, 5)] == ["epoch"]


def test_timer_in_the_past_fires_on_next_promote(client: homing.Client, service: str) -> None:
    freeze(client, service)
    timer_id = client.create_timer(service, "late", at=(T0 - 60_000) / 1000)
    assert client.promote(service).timers == 1
    assert [e.id for e in client.dequeue(service)] == [timer_id]


def test_timer_argument_checks(client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.create_timer(service, 1)
    with pytest.raises(homing.InvalidArgumentError):
        client.create_timer(service, 1, delay_ms=1, at=1.0)
    with pytest.raises(homing.InvalidArgumentError):
        client.create_timer(service, 1, at=dt.datetime(2030, 1, 1))  # naive
    with pytest.raises(homing.InvalidArgumentError):
        client.create_timer(service, 1, delay_ms=-1)
    assert not client.redis.exists(key(client, service, "timers"))


def test_timer_idempotency_key(client: homing.Client, service: str) -> None:
    freeze(client, service)
    first = client.create_timer(service, "a", delay_ms=100, key="tk")
    assert client.create_timer(service, "b", delay_ms=900, key="tk") == first
    assert client.stats(service)["timers"] == 1
    assert client.redis.zscore(key(client, service, "timers"), first) == T0 + 100


def test_cancel_timer(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    keep = client.create_timer(service, "keep", delay_ms=10)
    drop = client.create_timer(service, "drop", delay_ms=10)
    assert client.cancel_timer(service, drop) is True
    assert client.cancel_timer(service, drop) is False
    assert client.status(service, drop).state == "unknown"
    clock.advance(10)
    assert client.promote(service).timers == 1
    assert client.cancel_timer(service, keep) is False  # fired: an ordinary event now
    assert states(client, service) == {keep: "ready"}
    assert client.cancel_timer(service, "never-existed") is False
    plain = client.enqueue(service, "plain")
    assert client.cancel_timer(service, plain) is False
    assert states(client, service)[plain] == "ready"
    assert counters(client, service)["cancelled"] == 1


def test_timers_use_redis_clock_not_client_clock(client: homing.Client, service: str) -> None:
    # No test clock: a due time a minute ahead is not due now, whatever the client thinks.
    timer_id = client.create_timer(service, "x", delay_ms=60_000)
    assert client.promote(service).timers == 0
    due = client.redis.zscore(key(client, service, "timers"), timer_id)
    redis_now = client.redis.time()
    now_ms = redis_now[0] * 1000 + redis_now[1] // 1000
    assert now_ms + 59_000 < due <= now_ms + 60_000


def test_registry_of_services(client: homing.Client, service: str) -> None:
    assert client.services() == []
    client.enqueue(service, 1)
    client.create_timer(service + "-t", 1, delay_ms=10)
    client.configure(service + "-c", lease_ms=100)
    client.enqueue(service, 2)
    assert client.services() == sorted([service, service + "-t", service + "-c"])
    # Reads do not register a service.
    client.stats("never-written")
    client.dequeue("never-written")
    assert "never-written" not in client.services()


def test_registry_is_shared_between_clients(client: homing.Client, service: str,
                                            redis_url: str) -> None:
    client.enqueue(service, 1)
    with homing.Client.from_url(redis_url, prefix=client.prefix) as other:
        assert other.services() == [service]
    with homing.Client.from_url(redis_url, prefix=client.prefix + "x") as stranger:
        assert stranger.services() == []


def test_status_of_a_pending_event(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, 1)
    st = client.status(service, event_id)
    assert (st.state, st.detail, st.attempt) == ("pending", "ready", 0)
    client.dequeue(service)
    st = client.status(service, event_id)
    assert (st.state, st.detail, st.attempt) == ("pending", "leased", 1)
