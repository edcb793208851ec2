"""A stateful model test: random operation sequences against a plain Python model of a queue.

Hypothesis drives enqueue, dequeue, complete (with valid and stale tokens),
fail, release, extend, snooze (uncharged, bounded by max_snoozes) and
progress, timers, cancels of any id (and enqueues of a cancelled id again),
the test clock, the scheduler and distributor steps, dead-letter requeues,
pause and resume (nothing delivered while paused) and a concurrency limit
(never more leases out than it; dequeue's wait_ms as documented), each event
at a random priority level. After every step the whole of Redis is compared
with the model: each event in exactly one structure, the right status and
attempt, the delivery order (higher levels first, FIFO within a level; a
release to the front of its level), the ready list copy by copy (the dead
copies a cancel leaves, counted in void, and which of them a dequeue has
consumed), the counts, and nothing lost. The test clock is frozen and backoff jitter is 0,
so every due time is exact.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from helpers import READY_MARKER, T0, freeze, key, meta, s, states, void
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import homing

LEASE_MS, MAX_ATTEMPTS, BASE_MS, MAX_MS, MAX_SNOOZES = 1000, 3, 100, 1000, 2
LEVELS = st.sampled_from([0, 0, 1, 5, 9])  # level 0 (the default) most often
LETTER = {"ready": "r", "leased": "l", "timer": "t", "waiting": "w", "expired": "x",
          "dead": "d"}


@dataclass
class Ev:
    """The model of one event: where it is, its attempt, current token and due time."""

    state: str
    attempt: int = 0
    token: int = 0
    due: int = 0  # timer due, retry due, lease deadline or time of death
    tokens: list[int] = field(default_factory=list)
    snoozes: int = 0  # record field s
    progress: int = 0  # record field q
    priority: int = 0  # record field p
    # No record yet: enqueued ready at level 0 and never delivered (lua/include/fresh.lua;
    # a batch with any level above 0 writes records for all its events).
    fresh: bool = False


def backoff(attempt: int) -> int:
    return min(BASE_MS * 2 ** (attempt - 1), MAX_MS)  # jitter 0: exact


class QueueModel(RuleBasedStateMachine):
    client: homing.Client  # set by the test below

    @initialize()
    def setup(self) -> None:
        self.service = "m-" + uuid.uuid4().hex[:10]
        self.client.configure(self.service, lease_ms=LEASE_MS, max_attempts=MAX_ATTEMPTS,
                              backoff_base_ms=BASE_MS, backoff_max_ms=MAX_MS, backoff_jitter=0,
                              max_snoozes=MAX_SNOOZES,
                              done_ttl_ms=3_600_000)  # the model reads "done" of every ack
        self.clock = freeze(self.client, self.service, T0)
        self.events: dict[str, Ev] = {}
        # Ready, per level above 0; level 0 is the ready list copy by copy, in
        # delivery order (tail first): (id, dead), dead for the copy a cancel left.
        self.levels: dict[int, list[str]] = {lv: [] for lv in range(1, 10)}
        self.list0: list[tuple[str, bool]] = []
        self.gone: dict[str, str] = {}  # completed or cancelled ids
        # Creation order, not sorted ids: ids are random, and draws by index must
        # pick the same event when Hypothesis replays a sequence.
        self.created: list[str] = []
        self.max_token = 0
        self.paused = False
        self.concurrency = 0  # the policy's limit across workers; 0: none

    # -- helpers ---------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.clock.now

    def ids_in(self, state: str) -> list[str]:
        return [i for i in self.created if i in self.events and self.events[i].state == state]

    @property
    def level0(self) -> list[str]:
        """The live events of the ready list, in delivery order."""
        return [i for i, dead in self.list0 if not dead]

    @property
    def ready(self) -> list[str]:
        """The ready events in delivery order: higher levels first, FIFO within a level."""
        return [i for lv in range(9, 0, -1) for i in self.levels[lv]] + self.level0

    def make_ready(self, ids: list[str], front: bool = False) -> None:
        """ids become ready at the back of their levels (or at the front, in the order given)."""
        for lv in range(1, 10):
            mine = [i for i in ids if self.events[i].priority == lv]
            self.levels[lv] = mine + self.levels[lv] if front else self.levels[lv] + mine
        mine0 = [(i, False) for i in ids if self.events[i].priority == 0]
        self.list0 = mine0 + self.list0 if front else self.list0 + mine0

    def due_sorted(self, state: str) -> list[str]:
        """Due members of a sorted set, in Redis order: by score, then by member."""
        due = [(e.due, i) for i, e in self.events.items() if e.state == state and e.due <= self.now]
        return [i for _, i in sorted(due)]

    # -- producer --------------------------------------------------------------

    @rule(levels=st.lists(LEVELS, min_size=1, max_size=3), one=st.booleans())
    def enqueue(self, levels: list[int], one: bool) -> None:
        if one:  # one level for the whole call
            levels = [levels[0]] * len(levels)
        ids = self.client.enqueue_many(self.service, [{"n": i} for i in range(len(levels))],
                                       priority=levels[0] if one else levels)
        for i, lv in zip(ids, levels, strict=True):
            self.events[i] = Ev("ready", priority=lv, fresh=not any(levels))
        self.make_ready(ids)
        self.created += ids

    @rule(delay=st.integers(0, 2000), level=LEVELS)
    def create_timer(self, delay: int, level: int) -> None:
        i = self.client.create_timer(self.service, "timer", delay_ms=delay, priority=level)
        self.events[i] = Ev("timer", due=self.now + delay, priority=level)
        self.created.append(i)

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self.created))
        ev = self.events.get(i)
        state = "unknown" if ev is None else ev.state
        done = state in ("ready", "timer", "waiting")
        assert self.client.cancel(self.service, i) == (done, state)
        if not done:
            return
        if state == "ready" and ev.priority == 0:
            # O(1): its copy stays in the list, dead (void counts it).
            at = self.list0.index((i, False))
            self.list0[at] = (i, True)
        elif state == "ready":
            self.levels[ev.priority].remove(i)
        del self.events[i]
        self.gone[i] = "cancelled"

    @precondition(lambda self: "cancelled" in self.gone.values())
    @rule(data=st.data(), level=LEVELS)
    def enqueue_cancelled_id(self, data: st.DataObject, level: int) -> None:
        """A cancelled id is free: enqueued again, it is delivered once, in its new place."""
        i = data.draw(st.sampled_from([i for i in self.created if self.gone.get(i) == "cancelled"]))
        assert self.client.enqueue(self.service, {"again": i}, id=i, priority=level) == i
        del self.gone[i]
        self.events[i] = Ev("ready", priority=level, fresh=level == 0)
        self.make_ready([i])

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def cancel_timer(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self.created))
        was_timer = i in self.events and self.events[i].state == "timer"
        assert self.client.cancel_timer(self.service, i) is was_timer
        if was_timer:
            del self.events[i]
            self.gone[i] = "cancelled"

    # -- consumer --------------------------------------------------------------

    @rule(count=st.integers(1, 4))
    def dequeue(self, count: int) -> None:
        batch = self.client.dequeue_batch(self.service, count)
        got = batch.events
        # Paused: nothing. A concurrency limit: no more leases than it (lapsed ones
        # not yet reclaimed count, as they are still in the leases zset).
        leased = self.ids_in("leased")
        room = 0 if self.paused else count
        if self.concurrency and not self.paused:
            room = min(room, max(self.concurrency - len(leased), 0))
        expected = self.ready[:room]
        assert [e.id for e in got] == expected
        taken = [i for i in expected if self.events[i].priority > 0]
        for i in taken:
            self.levels[self.events[i].priority].remove(i)
        # The ready list from its tail: dead copies are consumed on the way to
        # the live ones wanted (the bound, a batch's worth, is never reached here).
        need = room - len(taken)
        while need > 0 and self.list0:
            _, dead = self.list0.pop(0)
            if not dead:
                need -= 1
        wait = 0
        if room < count and self.ready:
            if self.paused:
                wait = 250
            else:  # the first lease deadline, at most 100 ms (at least 1)
                first = min([self.events[i].due for i in leased] + [e.deadline_ms for e in got])
                wait = max(min(first - self.now, 100), 1)
        assert batch.wait_ms == wait
        for e in got:
            ev = self.events[e.id]
            assert e.attempt == ev.attempt + 1
            assert e.token > self.max_token  # fencing tokens only grow
            assert e.deadline_ms == self.now + LEASE_MS
            self.max_token = e.token
            ev.state, ev.attempt, ev.token, ev.due = "leased", e.attempt, e.token, e.deadline_ms
            ev.tokens.append(e.token)
            ev.fresh = False

    @rule(on=st.booleans())
    def pause(self, on: bool) -> None:
        if on:
            self.client.pause(self.service)
        else:
            self.client.resume(self.service)
        self.paused = on

    @rule(limit=st.sampled_from([0, 1, 2, 3]))
    def limit_concurrency(self, limit: int) -> None:
        assert self.client.set_limits(self.service, concurrency=limit).concurrency == limit
        self.concurrency = limit

    @precondition(lambda self: self.ids_in("leased"))
    @rule(data=st.data(), with_result=st.booleans())
    def complete(self, data: st.DataObject, with_result: bool) -> None:
        i = data.draw(st.sampled_from(self.ids_in("leased")))
        self.client.complete(self.service, i, self.events[i].token,
                             result=i if with_result else None)
        del self.events[i]
        self.gone[i] = "completed"
        assert self.client.result(self.service, i, timeout=0) == (i if with_result else None)

    @precondition(lambda self: self.created)
    @rule(data=st.data())
    def complete_stale(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self.created))
        ev = self.events.get(i)
        candidates = [0, 10**12] + (ev.tokens if ev else [])
        if ev is not None and ev.state == "leased":
            candidates = [t for t in candidates if t != ev.token]
        token = data.draw(st.sampled_from(candidates))
        [err] = self.client.complete_many(self.service, [(i, token, None)])
        expected = homing.UnknownEventError if ev is None else homing.StaleLeaseError
        assert isinstance(err, expected), (i, token, ev, err)

    @precondition(lambda self: self.ids_in("leased"))
    @rule(data=st.data(), dead=st.booleans(), delay=st.none() | st.integers(0, 1500))
    def fail(self, data: st.DataObject, dead: bool, delay: int | None) -> None:
        i = data.draw(st.sampled_from(self.ids_in("leased")))
        ev = self.events[i]
        out = self.client.fail(self.service, i, ev.token, "model says no", dead=dead,
                               delay_ms=delay)
        if dead or ev.attempt >= MAX_ATTEMPTS:
            assert (out.action, out.at_ms) == ("dead", self.now)
            ev.state, ev.due = "dead", self.now
        else:
            due = self.now + (backoff(ev.attempt) if delay is None else delay)
            assert (out.action, out.at_ms) == ("retry", due)
            ev.state, ev.due = "waiting", due
        ev.token = 0

    @precondition(lambda self: self.ids_in("leased"))
    @rule(data=st.data(), delay=st.integers(0, 1500))
    def snooze(self, data: st.DataObject, delay: int) -> None:
        i = data.draw(st.sampled_from(self.ids_in("leased")))
        ev = self.events[i]
        out = self.client.snooze(self.service, i, ev.token, delay)
        if ev.snoozes >= MAX_SNOOZES:  # refused by dead-lettering; the delivery stays charged
            assert (out.action, out.at_ms) == ("dead", self.now)
            ev.state, ev.due = "dead", self.now
        else:  # not charged: the attempt goes back
            assert (out.action, out.at_ms) == ("snoozed", self.now + delay)
            ev.state, ev.due, ev.attempt = "waiting", self.now + delay, ev.attempt - 1
            ev.snoozes += 1
        ev.token = 0

    @precondition(lambda self: self.created)
    @rule(data=st.data(), value=st.integers(0, 100), stale=st.booleans())
    def progress(self, data: st.DataObject, value: int, stale: bool) -> None:
        i = data.draw(st.sampled_from(self.created))
        ev = self.events.get(i)
        if ev is not None and ev.state == "leased" and not stale:
            assert self.client.progress(self.service, i, ev.token, value) == value
            ev.progress = value
            return
        token = ev.token + 1 if ev is not None and ev.state == "leased" else 10**12
        expected = homing.UnknownEventError if ev is None else homing.StaleLeaseError
        with pytest.raises(expected):  # and nothing written: the invariants check the record
            self.client.progress(self.service, i, token, value)
        with pytest.raises(expected):
            self.client.snooze(self.service, i, token, 0)

    @precondition(lambda self: self.ids_in("leased"))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids_in("leased")), min_size=1,
                                 unique=True))
        errs = self.client.release(self.service, [(i, self.events[i].token) for i in ids])
        assert errs == [None] * len(ids)
        for i in ids:
            ev = self.events[i]
            ev.state, ev.attempt, ev.token = "ready", ev.attempt - 1, 0
        self.make_ready(ids, front=True)  # next of their levels, in the order given

    @precondition(lambda self: self.ids_in("leased"))
    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(self.ids_in("leased")))
        ev = self.events[i]
        assert self.client.extend_lease(self.service, i, ev.token) == self.now + LEASE_MS
        ev.due = self.now + LEASE_MS

    # -- time and daemons ------------------------------------------------------

    @rule(ms=st.sampled_from([0, 1, 99, 100, 500, 999, 1000, 2000]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def promote(self) -> None:
        r = self.client.promote(self.service)
        timers, retries = self.due_sorted("timer"), self.due_sorted("waiting")
        expired = self.due_sorted("leased")
        assert (r.timers, r.retries, r.expired, r.more) == (
            len(timers), len(retries), len(expired), False)
        for i in timers + retries:
            self.events[i].state = "ready"
        self.make_ready(timers)  # timers first, each group by due time
        self.make_ready(retries)
        for i in expired:
            self.events[i].state, self.events[i].token = "expired", 0
        pending = [e.due for e in self.events.values()
                   if e.state in ("timer", "waiting", "leased")]
        assert r.next_due_ms == (min(pending) if pending else -1)

    @rule()
    def distribute(self) -> None:
        r = self.client.distribute(self.service)
        retried = dead = 0
        for i in self.ids_in("expired"):
            ev = self.events[i]
            if ev.attempt >= MAX_ATTEMPTS:
                ev.state, ev.due = "dead", self.now
                dead += 1
            else:
                ev.state, ev.due = "waiting", self.now + backoff(ev.attempt)
                retried += 1
        assert (r.retried, r.dead, r.more) == (retried, dead, False)

    @precondition(lambda self: self.ids_in("dead"))
    @rule()
    def requeue_dead(self) -> None:
        order = [i for _, i in sorted((e.due, i) for i, e in self.events.items()
                                      if e.state == "dead")]
        assert self.client.dead_requeue(self.service, count=1000) == (len(order), 0)
        for i in order:  # a new life: attempts, snoozes and progress start again (not priority)
            self.events[i].state, self.events[i].attempt = "ready", 0
            self.events[i].snoozes = self.events[i].progress = 0
        self.make_ready(order)

    # -- invariants ------------------------------------------------------------

    @invariant()
    def every_event_in_exactly_one_state(self) -> None:
        # states() itself fails if an id sits in two structures or twice in one.
        assert states(self.client, self.service) == {i: e.state for i, e in self.events.items()}
        records = meta(self.client, self.service)
        assert set(records) == {i for i, ev in self.events.items() if not ev.fresh}
        data = self.client.redis.hgetall(key(self.client, self.service, "data"))
        for i, ev in self.events.items():
            if ev.fresh:  # its payload carries its creation time instead of a record
                assert re.match(rb"#\d+#", data[i.encode()])
                continue
            letter, attempt, token, _, returns = records[i].split("|")[:5]
            assert (letter, int(attempt), int(token)) == (LETTER[ev.state], ev.attempt, ev.token)
            ext = {f: int(v) for f, v in re.findall(r"([a-z])(\d+)", returns)}
            assert ext == {k: v for k, v in (("s", ev.snoozes), ("q", ev.progress),
                                             ("p", ev.priority)) if v}

    @invariant()
    def delivery_order(self) -> None:
        r = self.client.redis
        raw = [s(x) for x in r.lrange(key(self.client, self.service, "ready"), 0, -1)]
        prio = [s(x) for x in r.zrange(key(self.client, self.service, "prio"), 0, -1)]
        # The wake marker: at most one, at the list's tail (RPOP end), and only
        # while prio holds events.
        if READY_MARKER in raw:
            assert raw.count(READY_MARKER) == 1 and raw[-1] == READY_MARKER and prio
        plain = [x for x in reversed(raw) if x != READY_MARKER]
        assert plain == [i for i, _ in self.list0]  # copy by copy, dead ones too
        assert prio == [i for lv in range(9, 0, -1) for i in self.levels[lv]]
        dead = Counter(i for i, d in self.list0 if d)
        expected = {**dead, "": sum(dead.values())} if dead else {}
        assert void(self.client, self.service) == expected

    @invariant()
    def counts_match(self) -> None:
        stats = self.client.stats(self.service)
        n = {name: len(self.ids_in(name)) for name in LETTER}
        assert (stats["ready"], stats["in_flight"], stats["timers"], stats["retrying"],
                stats["expired"], stats["dead"]) == (n["ready"], n["leased"], n["timer"],
                                                    n["waiting"], n["expired"], n["dead"])

    @invariant()
    def nothing_lost(self) -> None:
        assert set(self.events) | set(self.gone) == set(self.created)
        assert not set(self.events) & set(self.gone)
        c = {k: int(v) for k, v in self.client.stats(self.service).items()
             if k.startswith("total.")}
        assert c.get("total.orphaned", 0) == 0
        assert c.get("total.completed", 0) == sum(v == "completed" for v in self.gone.values())

    @invariant()
    def status_shows_snoozes_and_progress(self) -> None:
        for i in self.created[-3:]:  # a few: one script call each
            ev = self.events.get(i)
            if ev is not None and ev.state != "dead":
                st_ = self.client.status(self.service, i)
                assert (st_.snoozes, st_.progress, st_.priority) == (ev.snoozes, ev.progress,
                                                                     ev.priority)


@pytest.mark.timeout(120)
def test_queue_matches_model(client: homing.Client) -> None:
    machine = type("Machine", (QueueModel,), {"client": client})
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow]),
    )
