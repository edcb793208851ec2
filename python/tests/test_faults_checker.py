"""The fault suite's stale-ack judgement (faults/check.py), on hand-made deliveries.

Why a test of the checker: a count that can never be non-zero would pass every
fault run. These cases pin both directions: a superseded completion accepted
is counted, and a pair made by two primaries at once (a split brain Redis
allows during a failover) is left out only when the harness says so.
"""

from __future__ import annotations

from pathlib import Path

from faults.check import classify, split_leases
from faults.record import Delivery, Ledger

LEASE_MS = 2000


def _delivery(pid: int, tok: int, leased: float, *, ack_at: float) -> Delivery:
    """A delivery of event e leased at ``leased`` (s), handled at once, its ack
    accepted at ``ack_at``."""
    return Delivery(id="e", tok=tok, att=1, pid=pid, start=leased + 0.01,
                    deadline_ms=int((leased * 1000) + LEASE_MS), end=ack_at, ok=True,
                    ack="ok", ack_sent=ack_at)


def _verdict(tmp_path: Path, deliveries: list[Delivery],
             split: frozenset[tuple[str, int]] = frozenset()) -> int:
    ledger = Ledger(tmp_path / "producers.jsonl")
    ledger.outcome("e", None)
    v = classify(ledger, deliveries, {"e": ("done", "")}, [], LEASE_MS, [], split)
    return v.stale_ack


def test_a_completion_sent_after_a_later_lease_started_is_a_stale_ack(tmp_path: Path) -> None:
    first = _delivery(1, 100, 10.0, ack_at=16.0)  # acked long after its lease ended
    second = _delivery(2, 200, 13.0, ack_at=13.5)  # leased again meanwhile
    assert _verdict(tmp_path, [first, second]) == 1


def test_a_completion_sent_before_the_next_lease_is_not(tmp_path: Path) -> None:
    first = _delivery(1, 100, 10.0, ack_at=10.5)
    second = _delivery(2, 200, 13.0, ack_at=13.5)
    assert _verdict(tmp_path, [first, second]) == 0


def test_a_lease_of_the_superseded_primary_is_left_out(tmp_path: Path) -> None:
    kept = _delivery(1, 100, 10.0, ack_at=16.0)  # the surviving primary's lease holder
    ghost = _delivery(2, 200, 13.0, ack_at=13.5)  # leased by the demoted primary
    assert _verdict(tmp_path, [kept, ghost], frozenset({("e", 200)})) == 0
    # ...and only that one: naming another delivery changes nothing.
    assert _verdict(tmp_path, [kept, ghost], frozenset({("e", 999)})) == 1


def test_split_leases_are_the_superseded_workers_leases_from_the_promotion_on() -> None:
    before = _delivery(2, 100, 9.0, ack_at=9.5)  # its primary was still the primary
    after = _delivery(2, 200, 11.0, ack_at=11.5)
    other = _delivery(1, 300, 11.0, ack_at=11.5)  # a worker that followed the failover
    split = split_leases([before, after, other], {2: 10.0}, LEASE_MS)
    assert split == frozenset({("e", 200)})
