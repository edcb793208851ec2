"""Bad input and foreign data: refused with a typed error, nothing written, nothing lost."""

from __future__ import annotations

import pytest
from helpers import TEST_CLOCK, counters, freeze, key, meta, states, wait_for, written_keys
from servers import free_port

import homing
from homing import ops

BAD_NAMES = ["{", "}", "a{b}", "a:b", "", "x" * 129, ".dot", "-dash", "sp ace", "é",
             123, None, b"svc"]


def nothing_written(client: homing.Client) -> bool:
    """No key under the test's prefix exists at all (scan_iter walks every cluster node)."""
    return list(client.redis.scan_iter(match=f"{client.prefix}:*")) == []


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_invalid_service_names(client: homing.Client, name: object) -> None:
    for call in (lambda: client.enqueue(name, 1),
                 lambda: client.enqueue_many(name, [1, 2]),
                 lambda: client.create_timer(name, 1, delay_ms=1),
                 lambda: client.configure(name, lease_ms=5),
                 lambda: client.dequeue(name),
                 lambda: client.stats(name),
                 lambda: client.hint_expired(name)):
        with pytest.raises(homing.InvalidNameError):
            call()
    assert nothing_written(client)
    assert client.services() == []


def test_longest_valid_service_name(client: homing.Client) -> None:
    name = "x" * 128
    client.enqueue(name, 1)
    assert client.services() == [name]


@pytest.mark.parametrize("event_id", ["a:b", "{x}", "", "x" * 129, 7], ids=repr)
def test_invalid_event_ids(client: homing.Client, service: str, event_id: object) -> None:
    with pytest.raises(homing.InvalidNameError):
        client.enqueue(service, 1, id=event_id)
    with pytest.raises(homing.InvalidNameError):
        client.create_timer(service, 1, delay_ms=1, id=event_id)
    assert nothing_written(client)


def test_invalid_prefix(redis_url: str) -> None:
    for bad in ("a:b", "{p}", "", "x" * 65):
        with pytest.raises(homing.InvalidNameError):
            homing.Client.from_url(redis_url, prefix=bad)


def test_oversize_payload_refused_by_client(redis_url: str, prefix: str, service: str) -> None:
    with homing.Client.from_url(redis_url, prefix=prefix, max_payload=100) as small:
        with pytest.raises(homing.PayloadTooLargeError):
            small.enqueue(service, b"x" * 200)
        with pytest.raises(homing.PayloadTooLargeError):
            small.enqueue_many(service, [b"ok", b"x" * 200])
        with pytest.raises(homing.PayloadTooLargeError):
            small.create_timer(service, "y" * 200, delay_ms=5)
        assert nothing_written(small)
        small.enqueue(service, b"x" * 80)  # 80 bytes + envelope overhead fits in 100
        [ev] = small.dequeue(service)
        with pytest.raises(homing.PayloadTooLargeError):
            small.complete(service, ev.id, ev.token, result=b"r" * 200)
        assert states(small, service) == {ev.id: "leased"}


def test_oversize_payload_refused_by_script(client: homing.Client, service: str) -> None:
    big = b"x" * 101
    with pytest.raises(homing.PayloadTooLargeError):
        client.run(ops.Call("enqueue", service, [100, 2, "ok", b"small", "", 0, "big", big, "", 0],
                            lambda r: r))
    with pytest.raises(homing.PayloadTooLargeError):
        client.run(ops.Call("schedule", service, [100, "t", big, "", 10, "", 0], lambda r: r))
    assert not any(written_keys(client, service).values())
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    out = client.run(ops.Call("complete", service, [100, 1, ev.id, ev.token, big], lambda r: r))
    assert out == [b"PAYLOAD_TOO_LARGE"]
    assert states(client, service) == {ev.id: "leased"}


@pytest.mark.parametrize("payload", [object(), 2**70, -(2**64), {1, 2}, {"k": object()}],
                         ids=["object", "2**70", "-2**64", "set", "nested-object"])
def test_unencodable_payload(client: homing.Client, service: str, payload: object) -> None:
    with pytest.raises(homing.PayloadNotEncodableError):
        client.enqueue(service, payload)
    with pytest.raises(homing.PayloadNotEncodableError):
        client.create_timer(service, payload, delay_ms=1)
    assert nothing_written(client)
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    with pytest.raises(homing.PayloadNotEncodableError):
        client.complete(service, ev.id, ev.token, result=payload)
    assert states(client, service) == {ev.id: "leased"}


def test_wrong_tokens_and_unknown_ids(client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    with pytest.raises(homing.StaleLeaseError):
        client.complete(service, ev.id, ev.token + 1)
    with pytest.raises(homing.StaleLeaseError):
        client.fail(service, ev.id, 0)
    with pytest.raises(homing.UnknownEventError):
        client.complete(service, "ghost", 1)
    with pytest.raises(homing.UnknownEventError):
        client.fail(service, "ghost", 1)
    with pytest.raises(homing.UnknownEventError):
        client.extend_lease(service, "ghost", 1)
    [err] = client.release(service, [("ghost", 1)])
    assert isinstance(err, homing.UnknownEventError)
    # Nothing moved: the event is still leased with its own token.
    assert states(client, service) == {ev.id: "leased"}
    client.complete(service, ev.id, ev.token)


def test_batch_bounds(client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_many(service, [])
    with pytest.raises(homing.InvalidArgumentError):
        client.enqueue_many(service, [1] * 1001)
    with pytest.raises(homing.InvalidArgumentError):
        client.dequeue(service, 0)
    with pytest.raises(homing.InvalidArgumentError):
        client.run(ops.Call("dequeue", service, [0, 0], lambda r: r))
    with pytest.raises(homing.InvalidArgumentError):
        client.run(ops.Call("enqueue", service, [100, 2, "a", b"x", "", 0], lambda r: r))
    with pytest.raises(homing.InvalidArgumentError):
        client.run(ops.Call("fail", service, ["a", 1, "r", "maybe", ""], lambda r: r))
    assert not any(written_keys(client, service).values())


def test_corrupt_envelope_is_dead_lettered_by_worker(client: homing.Client, service: str) -> None:
    ids = client.enqueue_many(service, ["good-1", "bad", "good-2"])
    client.redis.hset(key(client, service, "data"), ids[1], b"\xc1not msgpack")
    evs = client.dequeue(service, 3)
    assert [e.id for e in evs] == ids
    assert evs[0].payload == "good-1"
    with pytest.raises(homing.CorruptEnvelopeError):
        evs[1].payload  # noqa: B018 - decoding is the point
    client.release(service, [(e.id, e.token) for e in evs])

    seen: list[str] = []

    class Reader(homing.Consumer):
        def handle_event(self, event: homing.Event, state: object) -> object:
            seen.append(event.payload)
            return state

    worker = homing.Worker(client, service, Reader, lease_ms=5000, grace=1)
    worker.start()
    try:
        wait_for(lambda: client.stats(service)["dead"] == 1 and len(seen) == 2)
    finally:
        worker.shutdown()
    [letter] = client.dead_list(service).letters
    assert letter.id == ids[1] and "CorruptEnvelopeError" in letter.reason
    assert letter.attempt == 1  # dead at once: retrying cannot fix the bytes
    assert letter.raw == b"\xc1not msgpack"  # kept for inspection, not lost
    assert sorted(seen) == ["good-1", "good-2"]
    # Completed without a result on a service that keeps none: no trace left.
    assert client.status(service, ids[0]).state == "unknown"


def test_envelope_of_another_version(client: homing.Client, service: str) -> None:
    import msgpack

    event_id = client.enqueue(service, 1)
    client.redis.hset(key(client, service, "data"), event_id,
                      msgpack.packb({"v": 2, "p": 1}))
    [ev] = client.dequeue(service)
    with pytest.raises(homing.CorruptEnvelopeError):
        ev.payload  # noqa: B018


def test_corrupt_meta_is_quarantined(client: homing.Client, service: str) -> None:
    freeze(client, service)
    garbled, missing, no_data, good = client.enqueue_many(service, ["g", "m", "n", "ok"])
    # Records exist from the first lease on (an event never delivered has none:
    # lua/include/fresh.lua): lease and release them first.
    client.release(service, [(e.id, e.token) for e in client.dequeue(service, 10)])
    client.redis.hset(key(client, service, "meta"), garbled, "garbage|x")
    client.redis.hdel(key(client, service, "meta"), missing)
    client.redis.hdel(key(client, service, "data"), no_data)
    evs = client.dequeue(service, 10)
    # A payload without a record is an event never delivered (its value keeps the
    # fresh prefix with its creation time): delivered again, not dead-lettered.
    assert sorted(e.id for e in evs) == sorted([missing, good])
    page = client.dead_list(service)
    reasons = {x.id: x.reason for x in page.letters}
    assert reasons == {garbled: "unreadable bookkeeping record: garbage|x",
                       no_data: "payload missing"}
    # The payloads that still exist are kept with the dead letter.
    payloads = {x.id: x.payload for x in page.letters if x.raw}
    assert payloads == {garbled: "g"}
    assert states(client, service) == {good: "leased", missing: "leased", garbled: "dead",
                                       no_data: "dead"}
    # A requeue gives the readable ones a fresh, valid record.
    assert client.dead_requeue(service, [garbled, no_data]) == (1, 0)
    assert [e.payload for e in client.dequeue(service, 10)] == ["g"]


def test_fresh_event_losing_its_payload_is_counted_orphaned(client: homing.Client,
                                                            service: str) -> None:
    """An event never delivered has no record, only its payload (lua/include/fresh.lua):
    with the payload deleted by someone else, its id in the ready list is all that is
    left, and dequeue counts it orphaned instead of delivering nothing as something."""
    freeze(client, service)
    gone, kept = client.enqueue_many(service, ["gone", "kept"])
    client.redis.hdel(key(client, service, "data"), gone)
    assert [e.payload for e in client.dequeue(service, 10)] == ["kept"]
    st = client.stats(service)
    assert st["total.orphaned"] == 1 and st["dead"] == 0
    assert client.status(service, gone).state == "unknown"


def test_corrupt_meta_per_item_codes(client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    client.redis.hset(key(client, service, "meta"), ev.id, "???")
    [err] = client.complete_many(service, [(ev.id, ev.token, None)])
    assert isinstance(err, homing.CorruptStateError)
    [err] = client.extend_many(service, [(ev.id, ev.token)])
    assert isinstance(err, homing.CorruptStateError)
    with pytest.raises(homing.CorruptStateError):
        client.fail(service, ev.id, ev.token)
    assert meta(client, service) == {ev.id: "???"}  # untouched, for a human to look at


def test_corrupt_meta_of_expired_lease_goes_to_dead(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    client.enqueue(service, "p")
    [ev] = client.dequeue(service, lease_ms=10)
    client.redis.hset(key(client, service, "meta"), ev.id, "broken")
    clock.advance(10)
    assert client.promote(service).expired == 1
    assert client.distribute(service).dead == 1
    [letter] = client.dead_list(service).letters
    assert letter.id == ev.id and letter.payload == "p"


def test_stray_copy_in_ready_is_leased_once(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, 1)
    client.redis.lpush(key(client, service, "ready"), event_id)  # another program's double
    got = client.dequeue(service, 10)
    assert [e.id for e in got] == [event_id]
    assert counters(client, service)["orphaned"] == 1
    assert states(client, service) == {event_id: "leased"}


def test_wrong_type_key_refused_before_writing(client: homing.Client, service: str) -> None:
    client.redis.set(key(client, service, "ready"), "not a list")
    with pytest.raises(homing.WrongTypeError, match="ready"):
        client.enqueue(service, 1)
    with pytest.raises(homing.WrongTypeError):
        client.dequeue(service)
    with pytest.raises(homing.WrongTypeError):
        client.stats(service)
    assert [k for k, v in written_keys(client, service).items() if v] == ["ready"]
    assert client.redis.get(key(client, service, "ready")) == b"not a list"
    # A script that does not take the ready key is unaffected.
    assert client.create_timer(service, 1, delay_ms=5)


def test_schema_mismatch(client: homing.Client, service: str) -> None:
    client.redis.hset(key(client, service, "config"), "schema", 99)
    for call in (lambda: client.enqueue(service, 1), lambda: client.dequeue(service),
                 lambda: client.stats(service), lambda: client.configure(service, lease_ms=9),
                 lambda: client.create_timer(service, 1, delay_ms=1),
                 lambda: client.promote(service)):
        with pytest.raises(homing.SchemaMismatchError, match="99"):
            call()
    assert [k for k, v in written_keys(client, service).items() if v] == ["config"]
    assert client.redis.hgetall(key(client, service, "config")) == {b"schema": b"99"}


def test_corrupt_test_clock(client: homing.Client, service: str) -> None:
    client.redis.hset(key(client, service, "config"), TEST_CLOCK, "tomorrow")
    with pytest.raises(homing.CorruptStateError, match="clock"):
        client.enqueue(service, 1)
    assert [k for k, v in written_keys(client, service).items() if v] == ["config"]
    assert client.redis.hgetall(key(client, service, "config")) == {b"test_clock": b"tomorrow"}
    assert client.stats(service)["test_clock"] == "tomorrow", "stats shows it as it is"


def test_redis_down() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(homing.ConnectionLostError):
        homing.Client.from_url(url)
    offline = homing.Client.from_url(url, cluster=False, socket_connect_timeout=0.5)
    for call in (lambda: offline.enqueue("svc", 1), lambda: offline.dequeue("svc"),
                 lambda: offline.services(), lambda: offline.stats("svc"),
                 lambda: offline.hint_expired("svc"), lambda: offline.take_hints()):
        with pytest.raises(homing.ConnectionLostError):
            call()
    assert isinstance(homing.ConnectionLostError(""), ConnectionError)


def test_redis_down_async() -> None:
    import asyncio

    url = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> None:
        with pytest.raises(homing.ConnectionLostError):
            await homing.AsyncClient.from_url(url)
        offline = await homing.AsyncClient.from_url(url, cluster=False)
        with pytest.raises(homing.ConnectionLostError):
            await offline.enqueue("svc", 1)
        await offline.close()

    asyncio.run(main())


def test_errors_do_not_break_the_client(client: homing.Client, service: str) -> None:
    """After a refused call the same client (and connection) keeps working."""
    errors = []
    for call in (lambda: client.enqueue(service, object()),
                 lambda: client.complete(service, "ghost", 1),
                 lambda: client.run(ops.Call("dequeue", service, [0, 0], lambda r: r))):
        try:
            call()
        except homing.HomingError as exc:
            errors.append(exc.code)
    assert errors == ["PAYLOAD_NOT_ENCODABLE", "UNKNOWN_EVENT", "INVALID_ARGUMENT"]
    client.enqueue(service, "after")
    [ev] = client.dequeue(service)
    client.complete(service, ev.id, ev.token)
    assert client.stats(service)["total.completed"] == 1
