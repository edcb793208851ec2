"""The checker: classify every acknowledged event from what was recorded outside Redis.

Inputs are the producers' ledger, the deliveries the consumers wrote down, the
final status of each event (asked once, after the drain) and the fault windows
the scenario opened. Each acknowledged event is exactly one of:

- **ok**: completed, delivered once;
- **recovered**: completed after more deliveries than its own planned failures
  explain (a fault cost a delivery, at-least-once made up for it);
- **dead**: dead-lettered (fine when its handler failed; *collateral* otherwise);
- **stuck**: still pending after the drain deadline (delivery never finished);
- **forgotten**: handled to the end, yet Redis knows nothing of it afterwards (a
  rollback lost its enqueue and its completion together: the work was done, the
  record is gone);
- **lost**: acknowledged, never handled to the end, and homing knows nothing of it.

Across events the checker also counts *duplicated* (handled to the end by two
deliveries), *unexpected* (delivered, yet no producer was told it was accepted:
refused or never attempted), *token reuse* (one fencing token on two
deliveries), *stale acks accepted* (a completion accepted although a newer
delivery of the event had already started), *late starts* (a handler started
when its lease had certainly ended) and *early timers*. Every rule below only
counts what the records prove, so a count is never a false alarm.
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field

from .record import Delivery, LeaseView, Ledger

MARGIN_S = 0.3  # clock and logging slack on "certainly ended"
EPS_S = 0.005  # one clock: the Redis script's ms against the harness's float seconds
TIMER_SLACK_MS = 2.0  # Redis TIME is in ms, the producer's clock in float ms


@dataclass
class Fault:
    """A window in which ``pids`` (None: every worker) could not reach Redis or run."""

    kind: str
    start: float
    end: float
    pids: set[int] | None = None


@dataclass
class Verdict:
    """One run's figures; the scenario's table row is the sum over runs."""

    acknowledged: int = 0
    ok: int = 0
    lost: int = 0
    recovered: int = 0
    duplicated: int = 0
    unexpected: int = 0
    collateral: int = 0
    token_reuse: int = 0
    stale_ack: int = 0
    late_start: int = 0
    early_timer: int = 0
    stuck: int = 0
    forgotten: int = 0
    dead: int = 0
    unsure_delivered: int = 0
    deliveries: int = 0
    recovery_s: float | None = None
    problems: list[str] = field(default_factory=list)  # broken promises
    notes: list[str] = field(default_factory=list)  # facts worth reporting, no failure


def _completed(d: Delivery) -> bool:
    return bool(d.ok) and d.ack in (None, "ok")


def classify(ledger: Ledger, deliveries: list[Delivery], finals: dict[str, tuple[str, str]],
             faults: list[Fault], lease_ms: int, views: list[LeaseView],
             split: frozenset[tuple[str, int]] = frozenset()) -> Verdict:
    """Count everything; ``problems`` is filled by ``promises``.

    ``split``: the (id, token) of deliveries a superseded primary handed out
    (a worker left on the demoted primary of a failover, after the promotion):
    that primary's history is discarded when it is demoted, so its leases can
    neither supersede nor be superseded by the surviving primary's. They are
    judged for duplicates like any other, and left out of the stale-ack check.
    """
    v = Verdict(acknowledged=len(ledger.acked), deliveries=len(deliveries))
    by_id: dict[str, list[Delivery]] = collections.defaultdict(list)
    for d in deliveries:
        by_id[d.id].append(d)
    for ds in by_id.values():
        ds.sort(key=lambda d: (d.deadline_ms, d.start))
    for event_id in ledger.acked:
        _one_event(v, by_id.get(event_id, []), finals.get(event_id, ("unknown", "")))
    for event_id in by_id:
        if event_id in ledger.unsure:
            v.unsure_delivered += 1
        elif event_id not in ledger.acked:
            v.unexpected += 1
    tokens = collections.Counter(d.tok for d in deliveries)
    v.token_reuse = sum(1 for n in tokens.values() if n > 1)
    v.stale_ack = sum(_stale_acks([d for d in ds if (d.id, d.tok) not in split])
                      for ds in by_id.values())
    v.late_start = _late_starts(by_id, faults, lease_ms / 1000, views)
    v.early_timer = _early_timers(ledger, by_id)
    v.recovery_s = _recovery(deliveries, faults)
    return v


def split_leases(deliveries: list[Delivery], superseded_at: dict[int, float],
                 lease_ms: int) -> frozenset[tuple[str, int]]:
    """The (id, token) of the deliveries a superseded primary handed out: those of a
    worker pid in ``superseded_at`` leased (deadline less the lease) at or after the
    time its primary was replaced (``classify``'s ``split``)."""
    lease_s = lease_ms / 1000
    return frozenset((d.id, d.tok) for d in deliveries if d.pid in superseded_at
                     and d.deadline_ms / 1000 - lease_s >= superseded_at[d.pid])


def _one_event(v: Verdict, ds: list[Delivery], final: tuple[str, str]) -> None:
    state = final[0]
    handled = [d for d in ds if d.ok]
    if len(handled) > 1:
        v.duplicated += 1
    if state == "unknown" and handled:
        v.forgotten += 1  # a rollback forgot the event after its work was done
    elif state == "done":
        unplanned = [d for d in ds if d.ok is not False]  # planned failures excluded
        if len(unplanned) > 1:
            v.recovered += 1
        else:
            v.ok += 1
    elif state == "dead":
        v.dead += 1
        if all(d.ok for d in ds):  # no delivery failed (raised, or died in its handler)
            v.collateral += 1
    elif state == "pending":
        v.stuck += 1
    else:
        v.lost += 1


def _stale_acks(ds: list[Delivery]) -> int:
    """Completions accepted although a delivery issued later had started before they
    were sent: the acker's lease had ended, so fencing should have refused it."""
    n = 0
    for i, d in enumerate(ds):
        if d.ack != "ok" or d.ack_sent is None:
            continue
        if any(j.deadline_ms > d.deadline_ms and j.start < d.ack_sent for j in ds[i + 1:]):
            n += 1
    return n


def _late_starts(by_id: dict[str, list[Delivery]], faults: list[Fault], lease_s: float,
                 views: list[LeaseView]) -> int:
    """Handlers started after their lease had certainly ended; any one proof suffices."""
    sents = [v.sent for v in views]
    return sum(1 for ds in by_id.values() for d in ds
               if d.pid != 0 and _late(d, ds, faults, lease_s, views, sents))


def _late(d: Delivery, ds: list[Delivery], faults: list[Fault], lease_s: float,
          views: list[LeaseView], sents: list[float]) -> bool:
    """The three proofs that ``d``'s lease was over when its handler started:

    - the event had been issued again, to anyone, before ``d`` started;
    - the lease watcher saw the id hold no lease at an instant between ``d``'s
      issue and its start (a lease never comes back once gone);
    - ``d`` was issued before a fault that cut its process off for a whole
      lease at least, and started while the fault still lasted, more than a
      lease after it began (no extend could have got through).
    """
    issued = d.deadline_ms / 1000 - lease_s
    if any(j.deadline_ms > d.deadline_ms and j.deadline_ms / 1000 - lease_s < d.start - EPS_S
           for j in ds):
        return True
    for i in range(bisect.bisect_right(sents, issued + EPS_S), len(views)):
        view = views[i]
        if view.got >= d.start - EPS_S:
            break
        if d.id not in view.ids:
            return True
    return any(f.end - f.start >= lease_s and (f.pids is None or d.pid in f.pids)
               and issued < f.start and f.start + lease_s + MARGIN_S < d.start < f.end
               for f in faults)


def _early_timers(ledger: Ledger, by_id: dict[str, list[Delivery]]) -> int:
    early = 0
    for event_id, (sent_ms, delay_ms) in ledger.timers.items():
        for d in by_id.get(event_id, []):
            if d.start * 1000 < sent_ms + delay_ms - TIMER_SLACK_MS:
                early += 1
    return early


def _recovery(deliveries: list[Delivery], faults: list[Fault]) -> float | None:
    """The worst fault's recovery time, in seconds.

    A fault of some processes (kill, stop, partition, crash): from its start to
    the first completion, by anyone, of an event that was inside one of their
    handlers (its lease has to run out first); when none of those ever
    completes (a poison), from its end to the first completion of any event.
    A fault of Redis: from Redis being back to the first completion after it.
    """
    worst: float | None = None
    for f in faults:
        since, hit = f.end, None
        if f.pids is not None:
            since = f.start
            hit = {d.id for d in deliveries if d.pid in f.pids and d.start <= f.start
                   and (d.end is None or d.end >= f.start)}
            if not hit:
                continue
        ends = [d.end for d in deliveries if d.end is not None and d.end > since
                and _completed(d) and (hit is None or d.id in hit)
                and (f.pids is None or d.pid not in f.pids or d.start > f.end)]
        if not ends and hit is not None:  # what it hit never completes (a poison): any event
            since = f.end
            ends = [d.end for d in deliveries if d.end is not None and d.end > since
                    and _completed(d)]
        if ends:
            took = min(ends) - since
            worst = took if worst is None else max(worst, took)
    return worst


LIMITS = ("lost", "forgotten", "duplicated", "collateral", "stuck", "token_reuse",
          "late_start")


def promises(v: Verdict, allow: set[str]) -> list[str]:
    """The docs' promises this run broke; ``allow`` names counts the mode may have.

    Never allowed: unexpected deliveries, stale acks accepted, early timers.
    Allowed only by name: lost and forgotten (everysec, RDB, rollback,
    eviction), duplicated (any fault that ends a lease), late_start (a
    rollback erases leases behind the worker's back), collateral and stuck
    (eviction), token_reuse (eviction deletes the token counter itself).
    """
    out = [f"{name}={getattr(v, name)}" for name in LIMITS
           if getattr(v, name) and name not in allow]
    out += [f"{name}={getattr(v, name)}" for name in ("unexpected", "stale_ack", "early_timer")
            if getattr(v, name)]
    return out
