"""Faults of consumers and daemons: crashes, stalls, poison, hangs, partitions, many daemons."""

from __future__ import annotations

import signal
import time

from homing.errors import HomingError

from ..consumer import POISON_EXIT
from ..harness import SERVICE, Run
from ..record import Delivery

KILLS = 3


def worker_kill(run: Run) -> None:
    """Worker SIGKILLed mid-event (3 times a run, two workers), restarted at once."""
    run.daemon()
    workers = [run.worker(concurrency=2, prefetch=20) for _ in range(2)]
    run.producer("p", rate=150, payload=lambda n: {"w": 20})
    for k in range(KILLS):
        run.wait(1.5)
        victim = workers[k % 2]
        if not run.mid_event(victim):
            run.notes.append(f"kill {k}: the victim was between events")
        pid, t0 = victim.pid, time.time()
        victim.kill()
        run.fault("worker-kill", t0, {pid})
        victim.start()
    run.wait(1.0)
    run.drain(30)


def worker_sigstop(run: Run) -> None:
    """SIGSTOP of a worker for 2.5 leases, then SIGCONT: its events went to the other worker."""
    run.preload([{"w": 20}] * 600, tag="b")  # a backlog: the victim's prefetch window is full
    run.daemon()
    victim, _ = run.worker(concurrency=2, prefetch=50), run.worker(concurrency=2, prefetch=50)
    run.producer("p", rate=100, payload=lambda n: {"w": 20})
    run.wait(2.0)
    run.mid_event(victim)
    pid, t0 = victim.pid, time.time()
    victim.signal(signal.SIGSTOP)
    run.wait(2.5 * run.lease_ms / 1000)
    victim.signal(signal.SIGCONT)
    run.fault("sigstop", t0, {pid})
    run.wait(2.0)
    run.drain(30)


def poison_prefetch(run: Run) -> None:
    """A handler that os._exit()s on one payload, prefetch 100: only the poison may die."""
    payloads = [{"w": 2} for _ in range(300)]
    payloads[150] = {"k": "poison"}
    ids = run.preload(payloads)
    run.daemon()
    run.supervise = True  # as systemd would: the poison kills the worker each time
    run.worker(concurrency=1, prefetch=100)
    poison = ids[150]
    attempts = int(run.policy["max_attempts"])
    run.wait_until(lambda: run.client.status(SERVICE, poison).state == "dead", 60, step=0.2)
    run.drain(30)
    st = run.client.status(SERVICE, poison)
    ran = sum(1 for d in run.deliveries() if d.id == poison)
    crashes = sum(1 for w in run.workers for code in w.exits if code == POISON_EXIT)
    # The first crash may go uncharged: a fast-path start is not marked in Redis, so the
    # lease that runs out looks unstarted. From then on every run is charged.
    if st.state != "dead":
        run.problems.append(f"poison not dead-lettered (it is {st.state} {st.detail})")
    elif not attempts <= ran <= attempts + 1:
        run.problems.append(f"poison dead after {ran} runs of its handler, max_attempts "
                            f"{attempts}")
    run.notes.append(f"poison ran {ran}x (max_attempts {attempts}), worker crashed {crashes}x")


HUNG_EXIT = 3  # `homing worker` when every slot is hung (docs/worker.md)


def handler_hung(run: Run) -> None:
    """A handler hung past handler_timeout_ms: failed with a reason, the rest unharmed.

    One slot: the hang leaves no slot free, so the worker must exit 3 for its
    supervisor (here, the run) to restart it; the hang's retry hangs again and
    dies after max_attempts.
    """
    payloads = [{"w": 5} for _ in range(200)]
    payloads[60] = {"k": "hang"}
    ids = run.preload(payloads)
    run.daemon()
    run.supervise = True
    run.worker(concurrency=1, prefetch=20)
    hang = ids[60]
    run.wait_until(lambda: run.client.status(SERVICE, hang).state == "dead", 60, step=0.2)
    run.drain(30)
    st = run.client.status(SERVICE, hang)
    if st.state != "dead":
        run.problems.append(f"hung event not dead-lettered (it is {st.state} {st.detail})")
    elif "timed out" not in st.detail:
        run.problems.append(f"hung event died without a timeout reason: {st.detail!r}")
    exits = [code for w in run.workers for code in w.exits]
    if HUNG_EXIT not in exits:
        run.problems.append(f"the worker with its only slot hung did not exit {HUNG_EXIT} "
                            f"(exits: {exits})")
    run.notes.append(f"worker exits {exits}")


def partition(run: Run) -> None:
    """A TCP partition (our proxy) between one worker and Redis for 2.5 leases."""
    via = run.start_proxy()
    run.preload([{"w": 20}] * 600, tag="b")  # a backlog: the cut worker's window is full
    run.daemon()
    cut = run.worker(concurrency=2, prefetch=50, url=via)
    run.worker(concurrency=2, prefetch=50)
    run.producer("p", rate=100, payload=lambda n: {"w": 20})
    run.wait(2.0)
    run.mid_event(cut)
    assert run.proxy is not None
    t0 = time.time()
    run.proxy.partition()
    run.wait(2.5 * run.lease_ms / 1000)
    run.proxy.heal()
    run.fault("partition", t0, {cut.pid})
    run.wait(3.0)
    run.drain(40)


def _ghost(run: Run, count: int, lease_ms: int = 300) -> None:
    """A consumer that leases events and vanishes: their leases expire through the
    schedulers and distributors. Booked as deliveries that never ran a handler."""
    try:
        events = run.client.dequeue(SERVICE, count, lease_ms=lease_ms)
    except HomingError:
        return
    now = time.time()
    for ev in events:  # deadline rebased to the run's lease, as the checker expects
        run.ghosts.append(Delivery(ev.id, ev.token, ev.attempt, 0, now,
                                   ev.deadline_ms - lease_ms + run.lease_ms))


def two_daemons(run: Run) -> None:
    """Two schedulers and two distributors (one of each SIGKILLed and restarted) under
    retries, timers and abandoned leases: nothing moved twice, nothing handled twice."""
    scheds = [run.daemon("scheduler") for _ in range(2)]
    dists = [run.daemon("distributor") for _ in range(2)]
    for _ in range(2):
        run.worker(concurrency=2, prefetch=20)
    run.producer("p", rate=100, payload=lambda n: {"w": 5, "f": 1 if n % 5 == 0 else 0})
    run.producer("t", rate=30, payload=lambda n: {"w": 5}, delay=lambda n: 200 + n * 7919 % 1800)
    for k in range(16):
        run.wait(0.5)
        _ghost(run, 3)
        if k == 5:
            scheds[0].kill()
            scheds[0].start()
        if k == 10:
            dists[1].kill()
            dists[1].start()
    run.wait(1.0)
    run.drain(30)
