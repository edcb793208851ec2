"""Failovers under Sentinel: ``SENTINEL FAILOVER`` and a SIGKILLed primary that returns.

Producers, two ``homing worker`` processes and a daemon all use the
``redis+sentinel://`` URL; the harness judges on the current primary directly.
Asynchronous replication may lose what the old primary acknowledged last
(counted as lost, forgotten or duplicated, allowed); with the WAIT option
(``wait_replicas=1``) an acknowledged enqueue has reached the replica, so none
may be lost. No token may be handed out twice, whatever was lost.
"""

from __future__ import annotations

import time

from ..harness import Run

WAIT_MS = 500
GIVE_UP_S = 3  # the plain-URL worker's --readonly-give-up
WAIT_KW = {"wait_replicas": 1, "wait_timeout_ms": WAIT_MS}
WAIT_ENV = {"HOMING_WAIT_REPLICAS": "1", "HOMING_WAIT_TIMEOUT_MS": str(WAIT_MS)}
# What a producer may be told during a failover: nothing written (READONLY on the old
# primary), or maybe written (the connection died; too few replicas acknowledged it).
FAILOVER_ERRORS = frozenset({"ReadOnlyError", "ConnectionLostError", "NotReplicatedError"})


def _load(run: Run, wait: bool) -> None:
    """A daemon, two workers, two producers at 100/s each, all through Sentinel."""
    if wait:
        run.extra_env.update(WAIT_ENV)
    run.recovery = "durable"  # from the fault to the first completion that survived it
    run.daemon()
    for _ in range(2):
        run.worker(concurrency=2, prefetch=20)
    for tag in ("a", "b"):
        run.producer(tag, rate=100, payload=lambda n: {"w": 10},
                     client_kw=WAIT_KW if wait else None)


def _switched(run: Run, old: object, kind: str, t0: float) -> None:
    """Wait for the sentinels to agree on the new primary; book the fault until then."""
    topo = run.topo
    if not run.wait_until(lambda: topo.switched(old), 30, step=0.05):
        raise RuntimeError(f"{kind}: no new primary within 30 s ({topo.describe()})")
    run.fault(kind, t0)
    run.notes.append(f"{kind}: the new primary was in charge after {time.time() - t0:.2f} s")
    run.repoint()


def _demoted(run: Run, old: object, t0: float) -> None:
    if run.wait_until(lambda: run.topo.demoted(old), 45, step=0.2):
        run.notes.append(f"the old primary was a synced replica {time.time() - t0:.1f} s "
                         "after the fault")
    else:
        run.problems.append("the old primary was not a synced replica within 45 s")


def _plain_exit(run: Run, plain: object) -> None:
    """The worker on a plain URL met READONLY once its primary was demoted: it must
    give up (exit non-zero) after --readonly-give-up, not loop for ever."""
    if not run.wait_until(lambda: bool(plain.exits), GIVE_UP_S + 20, step=0.2):
        run.problems.append(f"a worker with a plain URL on the demoted primary still ran "
                            f"{GIVE_UP_S + 20} s after its demotion (READONLY for ever?)")
    elif plain.exits[-1] == 0:
        run.problems.append("a worker with a plain URL on the demoted primary exited 0")
    else:
        run.notes.append(f"the plain-URL worker exited {plain.exits[-1]} on READONLY")


def _failover(run: Run, wait: bool) -> None:
    topo = run.topo
    _load(run, wait)
    old = topo.master()
    plain = run.worker(concurrency=1, prefetch=5, url=old.url,
                       env={"HOMING_READONLY_GIVE_UP": str(GIVE_UP_S)})
    run.wait(3.0)
    t0 = time.time()
    if not run.wait_until(topo.failover, 20, step=0.5):
        raise RuntimeError("SENTINEL FAILOVER found no good replica within 20 s")
    _switched(run, old, "sentinel-failover", t0)
    # From the promotion on, the plain-URL worker's primary is not the one that
    # lasts: until Sentinel demotes it, what it leases is its own (check.classify).
    run.superseded(plain, run.faults[-1].end)
    _demoted(run, old, t0)
    _plain_exit(run, plain)
    run.wait(2.0)
    run.drain(40)
    run.producer_errors(FAILOVER_ERRORS)


def _kill(run: Run, wait: bool) -> None:
    topo = run.topo
    _load(run, wait)
    run.wait(3.0)
    old = topo.master()
    t0 = time.time()
    old.kill()
    _switched(run, old, "primary-kill", t0)
    run.wait(1.0)
    old.start()  # back from its own AOF, as a primary, until Sentinel demotes it
    _demoted(run, old, t0)
    run.wait(2.0)
    run.drain(40)
    run.producer_errors(FAILOVER_ERRORS)


def failover(run: Run) -> None:
    """SENTINEL FAILOVER under load, the old primary reconfigured as a replica (a worker
    on a plain URL to it must give up on READONLY); no WAIT."""
    _failover(run, wait=False)


def failover_wait(run: Run) -> None:
    """SENTINEL FAILOVER under load, with the WAIT option (wait_replicas=1, 500 ms)."""
    _failover(run, wait=True)


def kill(run: Run) -> None:
    """The primary SIGKILLed under load, Sentinel promotes the replica, the old primary
    returns from its AOF (as a primary, until Sentinel demotes it); no WAIT."""
    _kill(run, wait=False)


def kill_wait(run: Run) -> None:
    """The primary SIGKILLed and returning, with the WAIT option (wait_replicas=1, 500 ms)."""
    _kill(run, wait=True)
