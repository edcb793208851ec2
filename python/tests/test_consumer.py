"""Consumer operations: leases, fencing tokens, acknowledgements, retries, dead letters."""

from __future__ import annotations

import pytest
from helpers import T0, backoff_bounds, counters, freeze, key, meta, states

import homing


def test_dequeue_batches_and_leases(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    ids = client.enqueue_many(service, list(range(5)))
    batch = client.dequeue(service, 3, lease_ms=2000)
    assert [e.id for e in batch] == ids[:3]
    assert all(e.attempt == 1 and e.deadline_ms == T0 + 2000 for e in batch)
    assert all(e.service == service for e in batch)
    clock.advance(10)
    [ev] = client.dequeue(service, 1)  # lease_ms omitted: the service's policy
    assert ev.deadline_ms == T0 + 10 + 30_000
    assert client.stats(service)["in_flight"] == 4
    assert client.redis.zscore(key(client, service, "leases"), ev.id) == ev.deadline_ms


def test_lease_tokens_increase(client: homing.Client, service: str) -> None:
    client.enqueue_many(service, list(range(6)))
    tokens = [e.token for e in client.dequeue(service, 3)]
    tokens += [e.token for e in client.dequeue(service, 3)]
    assert tokens == sorted(tokens) and len(set(tokens)) == 6
    assert client.dequeue(service) == []
    # A redelivery gets a fresh token, larger than anything issued before.
    client.enqueue(service, 6)
    [last] = client.dequeue(service)
    client.release(service, [(last.id, last.token)])
    [again] = client.dequeue(service)
    assert again.id == last.id
    assert again.token > last.token > max(tokens)


def test_complete_and_complete_many_with_results(client: homing.Client, service: str) -> None:
    ids = client.enqueue_many(service, ["a", "b", "c"])
    evs = client.dequeue(service, 3)
    client.complete(service, evs[0].id, evs[0].token, result={"ok": 1})
    errs = client.complete_many(service, [(evs[1].id, evs[1].token, None),
                                          (evs[2].id, evs[2].token, [1, 2])])
    assert errs == [None, None]
    assert client.result(service, ids[0], timeout=1) == {"ok": 1}
    # No result and no one asked (done_ttl_ms 0): nothing kept, so no trace of it.
    assert client.status(service, ids[1]).state == "unknown"
    with pytest.raises(homing.UnknownEventError):
        client.result(service, ids[1], timeout=1)
    assert client.result(service, ids[2], timeout=1) == [1, 2]
    st = client.stats(service)
    assert (st["ready"], st["in_flight"], st["results"], st["total.completed"]) == (0, 0, 2, 3)
    assert meta(client, service) == {}  # completed events leave no bookkeeping


def test_done_ttl_ms_keeps_completions_without_a_result(client: homing.Client,
                                                       service: str) -> None:
    # A producer that wants to hear of completions without a result asks for it.
    clock = freeze(client, service)
    client.configure(service, done_ttl_ms=1000)
    [event_id] = client.enqueue_many(service, ["a"])
    [ev] = client.dequeue(service)
    client.complete(service, ev.id, ev.token)
    assert client.status(service, event_id).state == "done"
    assert client.result(service, event_id, timeout=1) is None
    clock.advance(1000)
    client.promote(service)  # retires what is past its time
    assert client.status(service, event_id).state == "unknown"
    assert client.stats(service)["results"] == 0


def test_complete_many_reports_per_item(client: homing.Client, service: str) -> None:
    client.enqueue_many(service, ["a", "b"])
    a, b = client.dequeue(service, 2)
    errs = client.complete_many(service, [(a.id, a.token, None), (b.id, b.token + 1000, None),
                                          ("nope", 1, None)])
    assert errs[0] is None
    assert isinstance(errs[1], homing.StaleLeaseError)
    assert isinstance(errs[2], homing.UnknownEventError)
    assert states(client, service) == {b.id: "leased"}  # the refused item is untouched


def test_complete_twice_in_one_batch_counts_once(client: homing.Client, service: str) -> None:
    client.enqueue(service, "a")
    [ev] = client.dequeue(service)
    errs = client.complete_many(service, [(ev.id, ev.token, "r1"), (ev.id, ev.token, "r2")])
    assert errs[0] is None and errs[1] is not None
    assert counters(client, service)["completed"] == 1
    assert client.result(service, ev.id, timeout=1) == "r1"


def test_result_feedback_states(client: homing.Client, service: str) -> None:
    event_id = client.enqueue(service, 1)
    with pytest.raises(homing.ResultTimeoutError):
        client.result(service, event_id, timeout=0.05)
    with pytest.raises(homing.UnknownEventError):
        client.result(service, "never-enqueued", timeout=1)
    [ev] = client.dequeue(service)
    client.fail(service, ev.id, ev.token, "broken input", dead=True)
    with pytest.raises(homing.EventDeadError, match="broken input"):
        client.result(service, event_id, timeout=1)
    st = client.status(service, event_id)
    assert (st.state, st.detail, st.attempt) == ("dead", "broken input", 1)


def test_result_is_kept_for_result_ttl(client: homing.Client, service: str) -> None:
    client.configure(service, result_ttl_ms=1000)
    clock = freeze(client, service)
    event_id = client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    client.complete(service, ev.id, ev.token, result="r")
    clock.advance(999)
    client.promote(service)
    assert client.result(service, event_id, timeout=1) == "r"
    clock.advance(1)
    client.promote(service)
    with pytest.raises(homing.UnknownEventError):
        client.result(service, event_id, timeout=1)


def test_no_result_retention(client: homing.Client, service: str) -> None:
    client.configure(service, result_ttl_ms=0)
    event_id = client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    client.complete(service, ev.id, ev.token, result="dropped")
    # Documented: with no retention, a completed event is unknown at once.
    with pytest.raises(homing.UnknownEventError):
        client.result(service, event_id, timeout=1)
    assert client.stats(service)["results"] == 0


def test_extend_lease(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    client.enqueue(service, 1)
    [ev] = client.dequeue(service, lease_ms=1000)
    clock.advance(900)
    assert client.extend_lease(service, ev.id, ev.token, 1000) == T0 + 1900
    clock.advance(500)  # past the first deadline, within the extended one
    assert client.promote(service).expired == 0
    out = client.extend_many(service, [(ev.id, ev.token), (ev.id, ev.token + 1), ("x", 1)])
    assert out[0] == T0 + 1400 + 30_000  # 0/None: the service's lease_ms
    assert isinstance(out[1], homing.StaleLeaseError)
    assert isinstance(out[2], homing.UnknownEventError)
    client.complete(service, ev.id, ev.token)


def _reclaimed(client: homing.Client, service: str) -> homing.Event:
    """Lease an event and let the scheduler reclaim it (clock past its deadline)."""
    clock = freeze(client, service)
    client.enqueue(service, "x")
    [ev] = client.dequeue(service, lease_ms=100)
    clock.advance(100)
    assert client.promote(service).expired == 1
    return ev


def test_stale_token_refused_after_reclaim(client: homing.Client, service: str) -> None:
    ev = _reclaimed(client, service)
    with pytest.raises(homing.StaleLeaseError):
        client.complete(service, ev.id, ev.token)
    with pytest.raises(homing.StaleLeaseError):
        client.extend_lease(service, ev.id, ev.token)
    with pytest.raises(homing.StaleLeaseError):
        client.fail(service, ev.id, ev.token, "late")
    [err] = client.release(service, [(ev.id, ev.token)])
    assert isinstance(err, homing.StaleLeaseError)
    # None of the refused calls touched the event: it waits for the distributor.
    assert states(client, service) == {ev.id: "expired"}
    assert counters(client, service).get("completed", 0) == 0


def test_stale_token_refused_after_redelivery(client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=0)
    ev = _reclaimed(client, service)
    assert client.distribute(service).retried == 1
    client.promote(service)
    [again] = client.dequeue(service)
    assert (again.id, again.attempt) == (ev.id, 2)
    assert again.token > ev.token
    with pytest.raises(homing.StaleLeaseError):
        client.complete(service, ev.id, ev.token)
    client.complete(service, again.id, again.token, result="second")
    assert client.result(service, ev.id, timeout=1) == "second"


def test_complete_after_deadline_before_reclaim_is_accepted(client: homing.Client,
                                                            service: str) -> None:
    # Documented: nobody else can hold the event until a scheduler reclaims it.
    clock = freeze(client, service)
    event_id = client.enqueue(service, 1)
    [ev] = client.dequeue(service, lease_ms=100)
    clock.advance(5000)
    client.complete(service, ev.id, ev.token, result="late but fine")
    assert client.result(service, event_id, timeout=1) == "late but fine"
    assert client.promote(service).expired == 0


def test_fail_retries_with_backoff(client: homing.Client, service: str) -> None:
    policy = client.configure(service, backoff_base_ms=1000, backoff_max_ms=5000,
                              backoff_jitter=0.5, max_attempts=10)
    clock = freeze(client, service)
    event_id = client.enqueue(service, 1)
    delays = []
    for attempt in range(1, 6):
        [ev] = client.dequeue(service)
        assert (ev.id, ev.attempt) == (event_id, attempt)
        out = client.fail(service, ev.id, ev.token, f"boom {attempt}")
        assert out.action == "retry"
        lo, hi = backoff_bounds(policy, attempt)
        assert lo <= out.at_ms - clock.now <= hi, (attempt, out.at_ms - clock.now)
        delays.append(out.at_ms - clock.now)
        st = client.status(service, event_id)
        assert (st.detail, st.attempt) == ("waiting", attempt)
        # Never early: one ms before the due time nothing moves.
        clock.set(out.at_ms - 1)
        assert client.promote(service).retries == 0
        clock.set(out.at_ms)
        assert client.promote(service).retries == 1
    assert delays[4] <= 5000  # capped at backoff_max_ms
    assert counters(client, service)["retried"] == 5


def test_backoff_jitter_spreads_a_burst(client: homing.Client, service: str) -> None:
    policy = client.configure(service, backoff_base_ms=10_000, backoff_jitter=1)
    clock = freeze(client, service)
    client.enqueue_many(service, list(range(20)))
    delays = {client.fail(service, e.id, e.token).at_ms - clock.now
              for e in client.dequeue(service, 20)}
    lo, hi = backoff_bounds(policy, 1)
    assert all(lo <= d <= hi for d in delays)
    assert len(delays) > 10  # not one thundering herd


def test_fail_with_explicit_delay(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    assert client.fail(service, ev.id, ev.token, delay_ms=0).at_ms == clock.now
    assert client.promote(service).retries == 1
    [ev] = client.dequeue(service)
    assert client.fail(service, ev.id, ev.token, delay_ms=12345).at_ms == clock.now + 12345


def test_fail_dead_and_attempts_exhausted(client: homing.Client, service: str) -> None:
    client.configure(service, max_attempts=2, backoff_base_ms=0)
    clock = freeze(client, service)
    doomed, tired = client.enqueue_many(service, ["doomed", "tired"])
    d, t = client.dequeue(service, 2)
    out = client.fail(service, d.id, d.token, "bad payload", dead=True)
    assert (out.action, out.at_ms) == ("dead", clock.now)
    assert client.fail(service, t.id, t.token, "first").action == "retry"
    client.promote(service)
    [t2] = client.dequeue(service)
    assert t2.attempt == 2
    assert client.fail(service, t2.id, t2.token, "second").action == "dead"
    page = client.dead_list(service)
    assert page.total == 2
    by_id = {x.id: x for x in page.letters}
    assert by_id[doomed].reason == "bad payload" and by_id[doomed].attempt == 1
    assert by_id[tired].reason == "second (attempt 2 of 2)" and by_id[tired].attempt == 2
    assert by_id[tired].payload == "tired"
    assert states(client, service) == {doomed: "dead", tired: "dead"}


def test_release_goes_next_without_counting(client: homing.Client, service: str) -> None:
    a, b, c = client.enqueue_many(service, ["a", "b", "c"])
    first, second = client.dequeue(service, 2)
    assert client.release(service, [(second.id, second.token)]) == [None]
    # The released event is next, before c, and its delivery did not count.
    nxt = client.dequeue(service)[0]
    assert (nxt.id, nxt.attempt) == (b, 1)
    assert nxt.token > second.token
    [err] = client.release(service, [(second.id, second.token)])  # old token
    assert isinstance(err, homing.StaleLeaseError)
    assert client.dequeue(service)[0].id == c
    assert counters(client, service)["released"] == 1


def test_dead_list_requeue_purge(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    ids = client.enqueue_many(service, [f"p{i}" for i in range(5)])
    for ev in client.dequeue(service, 5):
        clock.advance(1)
        client.fail(service, ev.id, ev.token, f"r-{ev.payload}", dead=True)
    page = client.dead_list(service, offset=1, count=2)
    assert page.total == 5
    assert [x.id for x in page.letters] == ids[1:3]  # oldest first
    assert [x.died_ms for x in page.letters] == [T0 + 2, T0 + 3]
    assert [x.reason for x in page.letters] == ["r-p1", "r-p2"]
    assert client.dead_requeue(service, [ids[3], "not-dead", ids[0]]) == (2, 3)
    assert client.dead_requeue(service, count=1) == (1, 2)  # the oldest left: ids[1]
    [x, y, z] = client.dequeue(service, 5)
    assert {x.id, y.id, z.id} == {ids[0], ids[1], ids[3]}
    assert all(e.attempt == 1 for e in (x, y, z))  # attempts reset
    live = client.enqueue(service, "live")
    assert client.dead_purge(service, [live]) == (0, 2)  # a live event is never purged
    assert client.dead_purge(service, count=1) == (1, 1)
    assert client.dead_purge(service, [ids[4]]) == (1, 0)
    assert states(client, service) == {x.id: "leased", y.id: "leased", z.id: "leased",
                                       live: "ready"}
    c = counters(client, service)
    assert (c["dead"], c["requeued"], c["purged"]) == (5, 3, 2)


def test_dead_requeue_with_repeated_ids(client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    client.fail(service, ev.id, ev.token, dead=True)
    assert client.dead_requeue(service, [ev.id, ev.id]) == (1, 0)
    assert client.redis.lrange(key(client, service, "ready"), 0, -1) == [ev.id.encode()]
    got = client.dequeue(service, 10)
    assert [e.id for e in got] == [ev.id]


def test_dead_purge_with_repeated_ids(client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    [ev] = client.dequeue(service)
    client.fail(service, ev.id, ev.token, dead=True)
    assert client.dead_purge(service, [ev.id, ev.id]) == (1, 0)
    assert counters(client, service)["purged"] == 1


@pytest.mark.parametrize("policy", [
    {"lease_ms": 0}, {"lease_ms": 1.5}, {"max_attempts": 0}, {"max_attempts": 1001},
    {"backoff_jitter": 1.5}, {"backoff_jitter": -0.1}, {"backoff_base_ms": -1},
    {"result_ttl_ms": 2592000001}, {"idem_ttl_ms": "soon"},
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_configure_validation(client: homing.Client, service: str, policy: dict) -> None:
    client.configure(service, lease_ms=1234)
    with pytest.raises(homing.InvalidArgumentError):
        client.configure(service, **{"max_attempts": 7, **policy})
    # All pairs are checked before any is written.
    assert client.stats(service)["policy.max_attempts"] == 5
    assert client.stats(service)["policy.lease_ms"] == 1234


def test_configure_unknown_field_and_reset(client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.configure(service, lease=5)
    out = client.configure(service, lease_ms=500, backoff_jitter=0.25)
    assert (out["lease_ms"], out["backoff_jitter"], out["max_attempts"]) == (500, 0.25, 5)
    out = client.configure(service, lease_ms=None)
    assert out["lease_ms"] == 30_000  # back to the default
    assert client.stats(service)["policy.backoff_jitter"] == 0.25


def test_stats_numbers(client: homing.Client, service: str) -> None:
    clock = freeze(client, service)
    client.configure(service, backoff_base_ms=10_000)  # the retry stays far in the future
    client.enqueue_many(service, list(range(6)))
    client.create_timer(service, "t", delay_ms=1000)
    a, b, c, d = client.dequeue(service, 4, lease_ms=50)
    client.complete(service, a.id, a.token, result="r")
    client.fail(service, b.id, b.token)
    client.fail(service, c.id, c.token, dead=True)
    clock.advance(50)
    client.promote(service)  # reclaims d
    st = client.stats(service)
    assert {k: st[k] for k in ("ready", "in_flight", "timers", "retrying", "expired", "dead",
                               "results")} == {"ready": 2, "in_flight": 0, "timers": 1,
                                               "retrying": 1, "expired": 1, "dead": 1,
                                               "results": 1}
    assert st["test_clock"] == clock.now and st["schema"] == homing.SCHEMA
    c = counters(client, service)
    assert {k: c.get(k, 0) for k in ("enqueued", "timers", "delivered", "completed", "failed",
                                     "retried", "dead", "expired")} == {
        "enqueued": 6, "timers": 1, "delivered": 4, "completed": 1, "failed": 2,
        "retried": 1, "dead": 1, "expired": 1}
    clock.clear()
    assert client.stats(service)["test_clock"] == -1
