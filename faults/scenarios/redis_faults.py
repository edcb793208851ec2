"""Faults of Redis itself: crashes per persistence mode, rollbacks, full memory, eviction,
outages, and timers across restarts."""

from __future__ import annotations

import re
import shutil
import signal
import time

from homing.errors import HomingError

from ..harness import SERVICE, Run

PAD = "x" * 100_000  # 100 KiB payloads fill a 20 MB Redis with ~190 events
DURABILITY_WARNING = re.compile(r"(?i)evict|maxmemory.policy|allkeys-lru")


def redis_kill(run: Run) -> None:
    """Redis SIGKILLed twice under load (down 1 s each) and restarted from its own files.

    Producers outrun the workers (300/s against ~200/s), so a backlog of
    acknowledged, undelivered events is always there for a crash to lose.
    """
    run.daemon()
    for _ in range(2):
        run.worker(concurrency=2, prefetch=50)
    for tag in ("a", "b"):
        run.producer(tag, rate=150, payload=lambda n: {"w": 20})
    run.wait(3.5)
    run.kill_redis(1.0)
    run.wait(2.5)
    run.kill_redis(1.0)
    run.wait(1.5)
    run.drain(40)


def _bgsave(run: Run) -> None:
    before = run.client.redis.lastsave()
    run.client.redis.bgsave()
    if not run.wait_until(lambda: run.client.redis.lastsave() != before, 10, step=0.05):
        raise RuntimeError("BGSAVE did not finish within 10 s")


def snapshot_rollback(run: Run) -> None:
    """Redis restarted from an older RDB snapshot mid-run: no token handed out twice, no
    stale completion accepted (the events acked after the snapshot are lost, and counted).

    The snapshot is taken with a fresh batch still ready (the workers paused for it),
    and the batch's first events take 3 s: they are dequeued after the snapshot, still
    running when Redis comes back with them ready again, and complete after their
    second delivery started, which fencing must refuse.
    """
    run.daemon()
    workers = [run.worker(concurrency=4, prefetch=20) for _ in range(2)]
    run.producer("p", rate=100, payload=lambda n: {"w": 10})
    run.wait(3.0)
    for w in workers:
        w.signal(signal.SIGSTOP)
    run.preload([{"w": 3000}] * 4 + [{"w": 10}] * 36, tag="s")
    _bgsave(run)
    data = run.redis.tmpdir
    shutil.copy(data / "dump.rdb", data / "old.rdb")
    for w in workers:
        w.signal(signal.SIGCONT)
    run.wait(1.0)
    t0 = time.time()
    run.redis.kill()
    shutil.copy(data / "old.rdb", data / "dump.rdb")
    run.redis.start()
    run.fault("rollback", t0)
    run.wait(4.0)
    run.drain(40)


def _fill(run: Run, limit: int = 400) -> list[str]:
    """Enqueue 100 KiB events until Redis refuses one; the refusals' error classes."""
    refusals: list[str] = []
    for n in range(limit):
        event_id = f"big-{n}"
        try:
            run.client.enqueue(SERVICE, {"w": 1, "pad": PAD}, id=event_id)
            run.ledger.outcome(event_id, None)
        except HomingError as exc:
            run.ledger.outcome(event_id, exc)
            refusals.append(type(exc).__name__)
            if len(refusals) >= 5:
                break
    return refusals


def full_memory(run: Run) -> None:
    """maxmemory 20 MB + noeviction filled with 100 KiB events: producers get RedisFullError;
    a worker and a daemon started into the full Redis drain it."""
    t0 = time.time()
    refusals = _fill(run)
    if not refusals:
        run.problems.append("Redis never refused an enqueue: maxmemory not reached")
    elif set(refusals) != {"RedisFullError"}:
        run.problems.append(f"a full Redis refused producers with {sorted(set(refusals))}, "
                            "not RedisFullError")
    run.notes.append(f"{len(run.ledger.acked)} events filled it")
    run.fault("full", t0)  # recovery: from here to the first completion on the full Redis
    daemon = run.daemon()
    worker = run.worker(concurrency=2, prefetch=20)
    drained = run.wait_until(lambda: run.pending() == 0, 60, step=0.2)
    for proc in (daemon, worker):
        if proc.exits:
            run.problems.append(f"{proc.name} exited ({proc.exits}) on a full Redis")
    if not drained:
        run.problems.append("the full Redis was not drained within 60 s")
    else:
        try:
            run.client.enqueue(SERVICE, {"w": 1}, id="after-drain")
            run.ledger.outcome("after-drain", None)
        except HomingError as exc:
            run.problems.append(f"still refused after the drain: {exc}")
    run.drain(20)


def eviction(run: Run) -> None:
    """maxmemory 20 MB + allkeys-lru and a backlog twice that size: losses are counted,
    and the worker and the daemon must have warned about the eviction policy."""
    daemon = run.daemon()
    worker = run.worker(concurrency=1, prefetch=20)
    run.producer("p", rate=200, limit=400, payload=lambda n: {"w": 20, "pad": PAD})
    run.wait(3.0)
    run.drain(30)
    for proc in (worker, daemon):
        if not DURABILITY_WARNING.search(proc.log_text()):
            run.problems.append(f"no durability warning in the {proc.name}'s log")


def redis_outage(run: Run) -> None:
    """Redis stopped for 2.5 leases while the workers hold full prefetch windows: no
    handler may start an event whose lease it knows has ended."""
    run.preload([{"w": 50}] * 400)
    run.daemon()
    for _ in range(2):
        run.worker(concurrency=1, prefetch=100)
    run.wait(1.5)
    t0 = time.time()
    run.redis.stop()
    run.wait(2.5 * run.lease_ms / 1000)
    run.redis.start()
    run.fault("outage", t0)
    run.wait_until(lambda: run.pending() == 0, 60, step=0.2)
    run.drain(30)


def timers_restart(run: Run) -> None:
    """Timers (0.3-6 s) across two Redis SIGKILLs and a daemon SIGKILL: none early, all fire."""
    daemon = run.daemon()
    run.worker(concurrency=2, prefetch=20)
    run.producer("t", rate=40, limit=240, payload=lambda n: {"w": 5},
                 delay=lambda n: 300 + n * 7919 % 5700)
    run.wait(2.0)
    run.kill_redis(1.0)
    run.wait(1.0)
    daemon.kill()
    run.wait(1.0)
    daemon.start()
    run.kill_redis(1.0)
    run.wait_until(lambda: all(p.sent >= p.limit for p in run.producers), 15)
    run.wait_until(lambda: run.pending() == 0, 30, step=0.2)
    run.drain(20)
    if not run.ledger.timers:
        run.problems.append("no timer was created")

