"""Where a timer's lateness comes from: timers.py's load, each stage timed apart.

    .venv/bin/python bench/timerstages.py [--count 2000] [--spread-ms 10000] [--switch S]

A diagnostic, not a figure of the bench table. The instruments are the
bench's own (monkeypatched here, nothing in the library): the daemon runs as
``homing daemon`` through a wrapper that notes, in its process, each promote
the scheduler sends (when sent, when answered, how many timers it moved) and
each sleep (when it meant to wake, when it did); the worker, in this process,
notes when the fetcher handed each leased batch to the slots. With MONITOR
(``timers.Monitor``: when Redis pushed each id onto the ready queue and when a
dequeue popped it) and the handler's start, each timer's lateness splits into:

- ``wake``: due -> the scheduler sent the promote that moved it
- ``promote``: sent -> Redis pushed it (the call's way there and the script)
- ``queued``: pushed -> a dequeue popped it (the worker's lease, blocked or not)
- ``reply``: popped -> the fetcher had it (reply, parse, bookkeeping)
- ``handoff``: the fetcher had it -> the handler started

and the sleeps' own lateness (woke minus meant), which says whether a late
wake is the scheduler's sleep or its work; the floor (``timers.sleep_floor``);
the garbage collections of both processes (the daemon's by generation, and
when its full ones fell: the wrapper's own notes allocate, so it collects
more often than a bare daemon does). ``--switch`` sets
``sys.setswitchinterval`` in both processes (default: the library's own).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from homing import Worker  # noqa: E402

import timers  # noqa: E402 - the bench's own helpers, beside this file

# Run as the daemon process: notes each promote and each sleep, written out at exit.
DAEMON = """
import atexit, gc, json, sys, time
out, switch = sys.argv[1], sys.argv[2]
pauses, began = [], [0.0]
def on_gc(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        pauses.append((info["generation"], (time.perf_counter() - began[0]) * 1000,
                       time.time() * 1000))
gc.callbacks.append(on_gc)
if __import__("os").environ.get("STAGES_FREEZE"):
    import homing.daemons
    orig_run = homing.daemons.run_daemons
    def run_daemons(*a, **kw):
        gc.freeze()
        return orig_run(*a, **kw)
    homing.daemons.run_daemons = run_daemons
    import homing.cli
    homing.cli.run_daemons = run_daemons
if switch != "-":
    sys.setswitchinterval(float(switch))
import homing.client, homing.sweeps
promotes, sleeps = [], []
orig_promote = homing.client.Client.promote
def promote(self, *a, **kw):
    t0 = time.time() * 1000
    r = orig_promote(self, *a, **kw)
    promotes.append((t0, time.time() * 1000, r.timers))
    return r
homing.client.Client.promote = promote
orig_wait = homing.sweeps.Waker.wait
def wait(self, seconds, stop):
    meant = time.time() * 1000 + seconds * 1000
    orig_wait(self, seconds, stop)
    sleeps.append((meant, time.time() * 1000, self.rung))
homing.sweeps.Waker.wait = wait
atexit.register(lambda: open(out, "w").write(json.dumps(
    {"promotes": promotes, "sleeps": sleeps, "switch": sys.getswitchinterval(),
     "gc": pauses})))
sys.argv = ["homing", *sys.argv[3:]]
from homing.cli import main
main(prog_name="homing")
"""


def gc_pauses() -> list[float]:
    """Each garbage collection's pause in this process from now on (ms)."""
    pauses: list[float] = []
    began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - began[0]) * 1000)

    gc.callbacks.append(on_gc)
    return pauses


def run(count: int, spread_ms: int, switch: str) -> dict[str, Any]:
    """One timers.py timer run with every stage noted; the stages' percentiles."""
    if switch != "-":
        sys.setswitchinterval(float(switch))
    trace = tempfile.mktemp(prefix="homing-stages-", suffix=".json")
    with timers.private_redis() as url:
        prefix, service = "bench-timers", "tm"
        client = timers.homing.Client.from_url(url, prefix=prefix)
        timers.Recorder.seen = {}
        worker = Worker(client, service, timers.Recorder, concurrency=4, prefetch=100)
        handed: dict[str, float] = {}
        put_many = worker._todo.put_many

        def noted(events: list[Any]) -> None:
            at = time.time() * 1000
            for e in events:
                handed.setdefault(e.id, at)
            put_many(events)

        worker._todo.put_many = noted  # type: ignore[method-assign]
        monitor = timers.Monitor(url)
        proc = subprocess.Popen([sys.executable, "-c", DAEMON, trace, switch, "--redis-url",
                                 url, "--prefix", prefix, "daemon"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            worker.start()
            timers.wait_until(lambda: any(k.startswith("scheduler") for k in client.daemons()),
                              30)
            time.sleep(0.3)
            offset = timers.clock_offset_ms(client)
            sec, usec = client.redis.time()
            start_ms = sec * 1000 + usec // 1000 + 1000
            floor = timers.sleep_floor(1 + spread_ms / 1000)
            pauses = gc_pauses()
            due: dict[str, int] = {}
            for i, at_ms in enumerate(sorted(start_ms + random.randrange(spread_ms)
                                             for _ in range(count))):
                timer = client.create_timer(service, i, at=at_ms / 1000)
                if time.time() * 1000 + offset < at_ms:  # else left out, as timers.py does
                    due[timer] = at_ms
            created = time.time() * 1000 + offset - start_ms  # after the first could fall due
            timers.wait_until(lambda: len(timers.Recorder.seen) >= count, spread_ms / 1000 + 12)
        finally:
            worker.stop()
            worker.shutdown()
            proc.send_signal(2)
            proc.wait(15)
        pushed, popped = monitor.ready_moves(f"{prefix}:{{{service}}}:ready")
        client.close()
    traced = json.loads(Path(trace).read_text())
    os.unlink(trace)
    # Everything on the Redis clock (ms): time.time() + offset.
    sent = sorted((t0 + offset, t1 + offset) for t0, t1, moved in traced["promotes"] if moved)
    sent_at = [s for s, _ in sent]
    stages: dict[str, list[float]] = {k: [] for k in ("total", "wake", "promote", "queued",
                                                      "reply", "handoff")}
    quiet: list[float] = []  # the timers due once the bench had created them all
    for i, d in due.items():
        seen = timers.Recorder.seen.get(i)
        if seen is None or i not in handed or i not in pushed or i not in popped:
            continue
        k = bisect.bisect_right(sent_at, pushed[i]) - 1  # the promote that pushed it
        if k < 0:
            continue
        stages["total"].append(seen + offset - d)
        if d > start_ms + created:
            quiet.append(seen + offset - d)
        stages["wake"].append(sent[k][0] - d)
        stages["promote"].append(pushed[i] - sent[k][0])
        stages["queued"].append(popped[i] - pushed[i])
        stages["reply"].append(handed[i] + offset - popped[i])
        stages["handoff"].append(seen - handed[i])
    out = {k: timers.percentiles(v) for k, v in stages.items()}
    late = [woke - meant for meant, woke, rung in traced["sleeps"] if not rung]
    out["total_after_created"] = timers.percentiles(quiet)
    out["floor"] = timers.floor_of(floor)
    out["gc_worker"] = {"n": len(pauses), "max": round(max(pauses, default=0), 2),
                        "total": round(sum(pauses), 1)}
    out["gc_daemon"] = {
        f"gen{g}": {"n": len(v), "max": round(max(v, default=0), 2), "total": round(sum(v), 1)}
        for g in (0, 1, 2) for v in [[ms for gen, ms, _ in traced["gc"] if gen == g]]}
    # When the full collections came, from the first due time on (ms): during the
    # timers (>= 0) they stall the scheduler.
    out["gc_daemon"]["gen2_at"] = [round(at + offset - start_ms) for gen, _, at in traced["gc"]
                                   if gen == 2]
    out["sleep_late"] = timers.percentiles(late)
    out["promotes"] = len(traced["promotes"])
    out["created_ms_after_start"] = round(created, 1)
    out["switch"] = [sys.getswitchinterval(), traced["switch"]]
    out["load"] = os.getloadavg()
    # The worst ten, stage by stage, to see which one a tail timer lost its time in.
    idx = sorted(range(len(stages["total"])), key=lambda j: -stages["total"][j])[:10]
    out["worst"] = [{k: round(stages[k][j], 2) for k in stages} for j in idx]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--spread-ms", type=int, default=10_000)
    ap.add_argument("--switch", default="-", help="sys.setswitchinterval in both processes")
    args = ap.parse_args()
    out = run(args.count, args.spread_ms, args.switch)
    worst = out.pop("worst")
    for k, v in out.items():
        print(f"{k}: {json.dumps(v)}")
    print("worst:")
    for w in worst:
        print("  ", json.dumps(w))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
