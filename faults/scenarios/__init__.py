"""The scenarios: each is a function that drives one ``Run`` through one fault.

A scenario starts what it needs, produces, breaks something, ends the fault,
and drains; the runner then classifies the run (``Run.verdict``). ``allow``
names the counts the docs permit for that fault (a duplicate after a lease
ended, losses under ``everysec`` or RDB): they are counted and reported, never
hidden, and never fail the run. Everything else that is not zero is a broken
promise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import cluster, sentinel
from ..harness import Run
from . import cluster_faults, network_faults, redis_faults, sentinel_faults, worker_faults

DUP = frozenset({"duplicated"})
ROLLBACK = frozenset({"duplicated", "lost", "forgotten", "late_start"})
EVICTION = ROLLBACK | {"collateral", "stuck", "token_reuse"}
SMALL_REDIS = ("--maxmemory", "20mb")
# A failover may lose what the old primary acknowledged last (asynchronous replication),
# leases included, so a worker may start an event the new primary handed out again.
FAILOVER = frozenset({"duplicated", "lost", "forgotten", "late_start"})
# With WAIT an acknowledged enqueue reached the replica; leases (dequeue) are not waited on.
FAILOVER_WAIT = frozenset({"duplicated", "late_start"})


@dataclass(frozen=True)
class Scenario:
    """How to set a run up, what the docs allow it, and how many times to repeat it."""

    name: str
    fn: Callable[[Run], None]
    mode: str = "always"
    redis_extra: tuple[str, ...] = ()
    policy: dict[str, float] = field(default_factory=dict)
    ack: str = "batch"
    allow: frozenset[str] = DUP
    runs: int = 3
    quick: bool = False
    budget_s: int = 150
    topology: Callable[..., Any] | None = None  # faults.sentinel/cluster.started; None: one
    notes_in_docs: bool = False  # the run's notes (switch times, ...) go under the table

    @property
    def doc(self) -> str:
        """The scenario function's first docstring paragraph, on one line."""
        return " ".join((self.fn.__doc__ or "").strip().split("\n\n")[0].split())


SCENARIOS: list[Scenario] = [
    Scenario("worker-kill", worker_faults.worker_kill, quick=True),
    Scenario("worker-sigstop", worker_faults.worker_sigstop, ack="sync"),
    Scenario("poison-prefetch", worker_faults.poison_prefetch, policy={"max_attempts": 3},
             quick=True),
    Scenario("handler-hung", worker_faults.handler_hung,
             policy={"max_attempts": 2, "handler_timeout_ms": 1000}),
    Scenario("redis-kill-always", redis_faults.redis_kill, quick=True),
    Scenario("redis-kill-everysec", redis_faults.redis_kill, mode="everysec", allow=ROLLBACK),
    Scenario("redis-kill-rdb", redis_faults.redis_kill, mode="rdb", allow=ROLLBACK),
    Scenario("snapshot-rollback", redis_faults.snapshot_rollback, mode="snapshot",
             ack="sync", allow=ROLLBACK, quick=True),
    Scenario("full-memory", redis_faults.full_memory,
             redis_extra=(*SMALL_REDIS, "--maxmemory-policy", "noeviction"), runs=2),
    Scenario("eviction-lru", redis_faults.eviction,
             redis_extra=(*SMALL_REDIS, "--maxmemory-policy", "allkeys-lru"), allow=EVICTION,
             runs=2),
    Scenario("partition", worker_faults.partition, ack="sync"),
    Scenario("redis-outage", redis_faults.redis_outage, ack="sync"),
    Scenario("two-daemons", worker_faults.two_daemons, allow=frozenset()),
    Scenario("timers-restart", redis_faults.timers_restart),
    # Issue 8: Sentinel, Cluster, and a partition of both ports' workers (sync acks:
    # recovery counts only completions that survived the failover).
    *(Scenario(name, fn, topology=topo, ack="sync", allow=allow, runs=runs,
               notes_in_docs=True, quick=name == "sentinel-kill")
      for name, fn, topo, allow, runs in (
          ("sentinel-failover", sentinel_faults.failover, sentinel.started, FAILOVER, 2),
          ("sentinel-failover-wait", sentinel_faults.failover_wait, sentinel.started,
           FAILOVER_WAIT, 1),
          ("sentinel-kill", sentinel_faults.kill, sentinel.started, FAILOVER, 2),
          ("sentinel-kill-wait", sentinel_faults.kill_wait, sentinel.started, FAILOVER_WAIT, 1),
          ("cluster-kill", cluster_faults.master_kill, cluster.started, FAILOVER, 2),
          ("cluster-pause", cluster_faults.master_pause, cluster.started, FAILOVER, 2),
          ("cluster-pause-wait", cluster_faults.master_pause_wait, cluster.started,
           FAILOVER_WAIT, 1),
          ("cluster-reshard", cluster_faults.reshard, cluster.started, DUP, 1),
          ("cluster-seed-down", cluster_faults.seed_down, cluster.started, frozenset(), 1),
          ("partition-both", network_faults.partition_both, None, DUP, 1))),
]


def find(names: list[str]) -> list[Scenario]:
    """The scenarios named (all if none); an unknown name is an error."""
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    missing = [n for n in names if n not in known]
    if missing:
        raise SystemExit(f"unknown scenario(s) {', '.join(missing)}; known: {', '.join(known)}")
    return [known[n] for n in names]
