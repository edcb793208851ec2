"""Faults of a Redis Cluster (3 masters + 3 replicas): the service's master killed or
paused past ``cluster-node-timeout``, its slot moved by hand under load, and clients
started while a seed node is down.

A homing service lives in one slot, so each fault aims at that slot's master.
The users' URL names one master that the fault spares (several seeds, the first
one down, in ``seed-down``).
"""

from __future__ import annotations

import time

from ..cluster import slot_of
from ..harness import SERVICE, Run
from .sentinel_faults import FAILOVER_ERRORS, WAIT_ENV, WAIT_KW

SLOT = slot_of(SERVICE)
BATCH, PAUSE_S = 1, 0.4  # keys per MIGRATE, pause between MIGRATEs


def _load(run: Run, wait: bool = False) -> None:
    if wait:
        run.extra_env.update(WAIT_ENV)
    run.daemon()
    for _ in range(2):
        run.worker(concurrency=2, prefetch=20)
    for tag in ("a", "b"):
        run.producer(tag, rate=100, payload=lambda n: {"w": 10},
                     client_kw=WAIT_KW if wait else None)


def _spare(run: Run, victim: object) -> None:
    """Point the users at a master the fault spares."""
    topo = run.topo
    topo.seeds = [topo.others(victim)[0]]
    run.url = topo.url


def _failed_over(run: Run, victim: object, kind: str, t0: float) -> None:
    topo = run.topo
    if not run.wait_until(lambda: topo.failed_over(SLOT, victim), 30, step=0.05):
        raise RuntimeError(f"{kind}: no replica took slot {SLOT} over within 30 s")
    run.fault(kind, t0)
    run.notes.append(f"{kind}: a replica served the slot after {time.time() - t0:.2f} s")


def _rejoined(run: Run, node: object, t0: float) -> None:
    if run.wait_until(lambda: run.topo.rejoined(node), 30, step=0.2):
        run.notes.append(f"the old master was a synced replica {time.time() - t0:.1f} s after "
                         "the fault")
    else:
        run.problems.append("the old master did not rejoin as a replica within 30 s")


def master_kill(run: Run) -> None:
    """The master of the service's slot SIGKILLed under load; its replica takes over and
    the old master returns (from its AOF) as a replica."""
    victim = run.topo.owner(SLOT)
    _spare(run, victim)
    run.recovery = "durable"
    _load(run)
    run.wait(3.0)
    t0 = time.time()
    victim.kill()
    _failed_over(run, victim, "master-kill", t0)
    run.wait(1.0)
    victim.start()
    _rejoined(run, victim, t0)
    run.wait(2.0)
    run.drain(40)
    run.producer_errors(FAILOVER_ERRORS)


def master_pause(run: Run, wait: bool = False) -> None:
    """The slot's master SIGSTOPped past cluster-node-timeout (its replica takes over),
    then SIGCONT: the calls it had buffered run on a master that is no longer one."""
    topo = run.topo
    victim = topo.owner(SLOT)
    _spare(run, victim)
    run.recovery = "durable"
    _load(run, wait)
    run.wait(3.0)
    t0 = time.time()
    topo.pause(victim, True)
    try:
        _failed_over(run, victim, "master-pause", t0)
        run.wait(0.5)
    finally:
        topo.pause(victim, False)
    _rejoined(run, victim, t0)
    run.wait(2.0)
    run.drain(40)
    run.producer_errors(FAILOVER_ERRORS)


def master_pause_wait(run: Run) -> None:
    """The slot's master paused past cluster-node-timeout, with the WAIT option
    (wait_replicas=1, 500 ms)."""
    master_pause(run, wait=True)


def reshard(run: Run) -> None:
    """The service's slot moved to another master and back under load, by hand:
    SETSLOT MIGRATING/IMPORTING, MIGRATE of one key every 0.4 s, SETSLOT NODE, so
    calls meet ASK and TRYAGAIN for seconds. recovery_s: the longest pause in
    completions while a slot moved."""
    topo = run.topo
    home = topo.owner(SLOT)
    away = topo.others(home)[0]
    topo.seeds = [n for n in topo.others(home) if n is not away][:1] or [away]
    run.url = topo.url
    run.recovery = "stall"
    _load(run)
    run.wait(3.0)
    before = topo.errors("ASK", "TRYAGAIN")
    for src, dst in ((home, away), (away, home)):
        t0 = time.time()
        moved = topo.migrate(SLOT, src, dst, batch=BATCH, pause_s=PAUSE_S, sleep=run.wait)
        run.fault("reshard", t0)
        run.notes.append(f"slot {SLOT} {src.port}->{dst.port}: {moved} keys in "
                         f"{time.time() - t0:.1f} s")
        run.wait(2.0)
    after = topo.errors("ASK", "TRYAGAIN")
    seen = {k: after[k] - before[k] for k in after}
    run.notes.append(f"the nodes answered ASK {seen['ASK']}x and TRYAGAIN {seen['TRYAGAIN']}x")
    if not any(seen.values()):
        run.problems.append("the moves sent no ASK or TRYAGAIN: the scenario tested nothing")
    run.drain(40)
    run.producer_errors()  # a move shorter than the client's retry budget refuses nothing


def seed_down(run: Run) -> None:
    """Producers, workers and a daemon started with a URL whose first seed node is down
    (a stopped replica): they must start from the next seed. recovery_s: from starting
    them to the first completion."""
    topo = run.topo
    home = topo.owner(SLOT)
    down = topo.replicas()[0]
    down.kill()
    topo.seeds = [down, topo.others(home)[0]]
    run.url = topo.url
    run.recovery = "durable"
    t0 = time.time()
    _load(run)
    run.fault("seed-down", t0)
    run.wait(4.0)
    down.start()
    run.wait(2.0)
    run.drain(30)
    run.producer_errors()
    for proc in run.procs:
        if proc.exits:
            run.problems.append(f"{proc.name} exited {proc.exits} with a seed node down")
