"""Timers, idle cost and wake-up: the issue-10 figures that are latencies, not rates.

    .venv/bin/python bench/timers.py [--quick] [--json PATH]

Each part runs against a private redis-server of its own (started here on a
free port, never a shared Redis), so that INFO commandstats counts only what
homing sent:

- **timer lateness**: 2,000 timers due at random over 10 s, one ``homing
  daemon`` process, a Worker in this process; lateness = when the handler
  started minus the timer's due time (its score, ms, Redis clock: the same
  host clock as ``time.time()``, the offset is measured with TIME and taken
  off). p50/p99/max and how many were early (must be 0); and when each was
  promoted (its push onto the ready queue, by MONITOR: ``Monitor``).
- **idle daemon cost**: ``homing daemon`` over 1,000 and 10,000 registered
  services with nothing due: Redis commands per second (INFO commandstats
  deltas over a window, the INFO calls themselves taken off), measured after
  the daemon's first backstop pass (which runs at full speed once per start)
  is over; and the lateness of a 1 s timer on one of those services meanwhile.
- **worker wake-up**: an idle Worker (blocked on its ready queue); an event is
  enqueued every 20 ms; latency = handler start minus the moment the enqueue's
  script pushed the event onto the ready queue (MONITOR's time, Redis clock),
  and, as bounds, minus the moment before the enqueue call was made (the
  producer's round trip included) and minus its reply.
- **floor**: meanwhile, a bare process sleeping 1-5 ms at a time: how late a
  single wake-up is on this machine at this load, which no chain of processes
  can beat.

Prints a table and writes the figures as JSON (``rows()`` gives them to the
bench table's generator). The load average is printed with them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.dont_write_bytecode = True
try:
    import homing
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))
    import homing

from homing import Consumer, Worker  # noqa: E402 - after the fallback import above

HOMING = str(Path(sys.executable).with_name("homing"))
# The machine's floor, meanwhile: a bare process that sleeps 1-5 ms at random (as the
# scheduler sleeps until its next due time) for argv[1] s and prints how late each
# sleep woke (ms). No chain of daemon, Redis and worker can be on time more often
# than a single process's wake-up on the same loaded machine.
FLOOR = """
import random, sys, time
end, late = time.monotonic() + float(sys.argv[1]), []
while time.monotonic() < end:
    d = random.uniform(0.001, 0.005)
    t = time.monotonic() + d
    time.sleep(d)
    late.append((time.monotonic() - t) * 1000)
print(" ".join(f"{x:.3f}" for x in late))
"""


def sleep_floor(seconds: float) -> subprocess.Popen:
    """Start FLOOR for ``seconds``; ``floor_of`` its figures."""
    return subprocess.Popen([sys.executable, "-c", FLOOR, str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def floor_of(proc: subprocess.Popen) -> dict[str, float]:
    out, _ = proc.communicate(timeout=60)
    return percentiles([float(x) for x in out.split()])


class Monitor:
    """Every command Redis runs, with its time (us), scripts' own calls too, noted
    by ``redis-cli monitor`` (C, into a file: the notes cost the machine little)
    from now until ``ready_moves``."""

    def __init__(self, url: str) -> None:
        port = url.rsplit(":", 1)[1].split("/")[0]
        fd, path = tempfile.mkstemp(prefix="homing-monitor-")
        self.path = Path(path)
        with os.fdopen(fd, "w") as out:
            self.proc = subprocess.Popen(["redis-cli", "-p", port, "monitor"], stdout=out)
        time.sleep(0.2)  # MONITOR sent and answered

    def ready_moves(self, key: str) -> tuple[dict[str, float], dict[str, float]]:
        """Stop; from MONITOR's lines: when each id was pushed onto ready list
        ``key`` and when it was popped (ms, Redis clock), replaying the list
        (LPUSH at the head, RPUSH at the tail as a release does, RPOP from the
        tail; BLMOVE RIGHT RIGHT moves nothing)."""
        time.sleep(0.2)  # the last lines written
        self.proc.terminate()
        self.proc.wait(10)
        pushed: dict[str, float] = {}
        popped: dict[str, float] = {}
        queue: collections.deque[str] = collections.deque()
        text = self.path.read_text(errors="replace")
        self.path.unlink()
        for line in text.splitlines():
            head, _, rest = line.partition(" [")
            words = re.findall(r'"((?:[^"\\]|\\.)*)"', rest)
            if len(words) < 2 or words[1] != key:
                continue
            at, cmd = float(head) * 1000, words[0].upper()
            if cmd == "LPUSH":
                for w in words[2:]:
                    queue.appendleft(w)
                    pushed.setdefault(w, at)
            elif cmd == "RPUSH":
                queue.extend(words[2:])
            elif cmd == "RPOP":
                for _ in range(min(int(words[2]) if len(words) > 2 else 1, len(queue))):
                    popped.setdefault(queue.pop(), at)
        return pushed, popped


def wait_ping(port: int, tries: int) -> None:
    """Wait (50 ms a try) until a server just started on port answers PING."""
    import redis

    r = redis.Redis(port=port)
    for _ in range(tries):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    r.close()


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway redis-server on a free port; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="homing-bench-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_ping(port, 100)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def daemon(url: str, prefix: str) -> Iterator[subprocess.Popen]:
    """One ``homing daemon`` process (the real CLI), stopped with SIGTERM."""
    proc = subprocess.Popen([HOMING, "--redis-url", url, "--prefix", prefix, "daemon"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def clock_offset_ms(client: homing.Client) -> float:
    """Redis TIME minus time.time(), ms (the midpoint of the round trip)."""
    best = None
    for _ in range(5):
        t0 = time.time()
        sec, usec = client.redis.time()
        t1 = time.time()
        off = (sec * 1000 + usec / 1000) - (t0 + t1) * 500
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, off)
    assert best is not None
    return best[1]


class Recorder(Consumer):
    """Notes when each handler started (ms, time.time())."""

    seen: ClassVar[dict[str, float]] = {}
    lock = threading.Lock()

    def handle_event(self, event: Any, state: Any) -> Any:
        at = time.time() * 1000
        with self.lock:
            self.seen.setdefault(event.id, at)
        return state


def percentiles(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {"n": 0}

    def pct(p: float) -> float:
        return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]

    return {"n": len(v), "p50": round(pct(50), 2), "p99": round(pct(99), 2),
            "max": round(v[-1], 2), "early": sum(1 for x in v if x < 0)}


def wait_until(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def timer_lateness(count: int, spread_ms: int) -> dict[str, Any]:
    with private_redis() as url:
        prefix, service = "bench-timers", "tm"
        client = homing.Client.from_url(url, prefix=prefix)
        Recorder.seen = {}
        worker = Worker(client, service, Recorder, concurrency=4, prefetch=100)
        # When the promote pushed each timer onto the ready queue (MONITOR's time,
        # Redis clock), to tell the daemon's lateness from the worker's.
        monitor = Monitor(url)
        with daemon(url, prefix):
            worker.start()
            try:
                # The daemon is up once its scheduler beat (its process may take longer
                # than any fixed sleep to start on a loaded machine: a timer due before it
                # runs would measure the start, not the scheduler); then let it go idle.
                wait_until(lambda: any(k.startswith("scheduler")
                                       for k in client.daemons()), 30)
                time.sleep(0.3)
                # Due times by the Redis clock (at = ms since the epoch), so that each
                # timer's due time is known exactly however long creating them takes.
                # Created in the order they fall due: created at random, a timer due
                # early in the spread could be created after its due time on a loaded
                # machine (2,000 creations can take longer than the 1 s head start),
                # and that was counted as lateness. One created late anyway is left
                # out of the figures and counted (created_late).
                offset = clock_offset_ms(client)
                sec, usec = client.redis.time()
                start_ms = sec * 1000 + usec // 1000 + 1000
                floor = sleep_floor(1 + spread_ms / 1000)
                due: dict[str, int] = {}
                created_late = set()
                for i, at_ms in enumerate(sorted(start_ms + random.randrange(spread_ms)
                                                 for _ in range(count))):
                    timer = client.create_timer(service, i, at=at_ms / 1000)
                    due[timer] = at_ms
                    if time.time() * 1000 + offset >= at_ms:
                        created_late.add(timer)
                ids = list(due)
                wait_until(lambda: len(Recorder.seen) >= count, spread_ms / 1000 + 12)
            finally:
                worker.stop()
                worker.shutdown()
        pushed, _ = monitor.ready_moves(f"{prefix}:{{{service}}}:ready")
        floor_figures = floor_of(floor)
        late = [Recorder.seen[i] + offset - d for i, d in due.items()
                if i in Recorder.seen and i not in created_late]
        out = percentiles(late)
        out["created_late"] = len(created_late)
        out["promoted"] = percentiles([pushed[i] - d for i, d in due.items()
                                       if i in pushed and i not in created_late])
        out["missing"] = sum(1 for i in ids if i not in Recorder.seen)
        out["sleep_floor"] = floor_figures
        client.close()
        return out


def commands(client: homing.Client) -> int:
    info = client.redis.info("commandstats")
    return sum(v["calls"] for v in info.values())


def idle_cost(services: int, window: float) -> dict[str, Any]:
    with private_redis() as url:
        prefix = "bench-idle"
        client = homing.Client.from_url(url, prefix=prefix)
        names = [f"svc-{i:05d}" for i in range(services)]
        for i in range(0, services, 1000):
            client.redis.sadd(f"{prefix}:services", *names[i:i + 1000])
        with daemon(url, prefix):
            # The first backstop pass (full speed) reads every service once; wait it out.
            start = time.monotonic()
            last, quiet = commands(client), 0
            while quiet < 3 and time.monotonic() - start < 120:
                time.sleep(1)
                now = commands(client)
                quiet = quiet + 1 if now - last - 1 < 400 else 0
                last = now
            first_pass = time.monotonic() - start
            before = commands(client)
            t0 = time.monotonic()
            # Meanwhile: a 1 s timer on one of the services, and its lateness.
            Recorder.seen = {}
            worker = Worker(client, names[services // 2], Recorder)
            worker.start()
            timer = client.create_timer(names[services // 2], "t", delay_ms=1000)
            due = float(client.redis.zscore(f"{prefix}:{{{names[services // 2]}}}:timers", timer))
            offset = clock_offset_ms(client)
            wait_until(lambda: timer in Recorder.seen, 5)
            worker.stop()
            worker.shutdown()
            # The worker's and the timer's own commands are not the daemon's: measure the
            # daemon alone over the window, once the worker is gone.
            time.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
            before = commands(client)
            t0 = time.monotonic()
            time.sleep(window)
            after = commands(client)
            elapsed = time.monotonic() - t0
        client.close()
        per_s = (after - before - 1) / elapsed  # the second INFO counts itself once
        late = Recorder.seen.get(timer)
        return {"services": services, "commands_per_s": round(per_s, 1),
                "first_pass_s": round(first_pass, 1), "window_s": round(elapsed, 1),
                "timer_1s_late_ms": None if late is None else round(late + offset - due, 2)}


def wake_latency(count: int) -> dict[str, Any]:
    with private_redis() as url:
        client = homing.Client.from_url(url, prefix="bench-wake")
        producer = homing.Client.from_url(url, prefix="bench-wake")
        Recorder.seen = {}
        worker = Worker(client, "wk", Recorder)
        worker.start()
        offset = clock_offset_ms(client)
        monitor = Monitor(url)
        sent: dict[str, float] = {}
        acked: dict[str, float] = {}
        floor = sleep_floor(count * 0.02 + 0.5)
        try:
            time.sleep(0.3)
            for i in range(count):
                t = time.time() * 1000
                event_id = producer.enqueue("wk", i)
                acked[event_id] = time.time() * 1000
                sent[event_id] = t
                time.sleep(0.02)
            wait_until(lambda: len(Recorder.seen) >= count, 5)
        finally:
            worker.stop()
            worker.shutdown()
        pushed, _ = monitor.ready_moves("bench-wake:{wk}:ready")
        out = percentiles([Recorder.seen[i] - t for i, t in sent.items() if i in Recorder.seen])
        # The event became ready when the enqueue's script pushed it (MONITOR's time, by
        # the Redis clock): the goal's own measure, neither the call nor its reply.
        out["from_ready"] = percentiles([Recorder.seen[i] + offset - pushed[i] for i in sent
                                         if i in Recorder.seen and i in pushed])
        # The event was ready somewhere between the call and its reply: from the reply on.
        out["from_reply"] = percentiles([Recorder.seen[i] - t for i, t in acked.items()
                                         if i in Recorder.seen])
        out["blocking_waits"] = worker._ready.waits
        out["sleep_floor"] = floor_of(floor)
        client.close()
        producer.close()
        return out


def ratio(value: float | None, floor: float | None) -> str:
    """value / floor as "N.Nx" ("-" where either is missing or the floor is 0)."""
    return f"{value / floor:.1f}x" if value is not None and floor else "-"


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(row, value, goal) for the bench table."""
    t, w = figures["timers"], figures["wake"]
    r = w["from_reply"]
    rd = w.get("from_ready", {"p50": None, "p99": None, "max": None})
    p = t["promoted"]
    none = {"p50": None, "p99": None, "max": None}
    f, wf = t.get("sleep_floor", none), w.get("sleep_floor", none)
    out = [("timer lateness, handler started, p50 / p99 / max (ms)",
            f"{t['p50']} / {t['p99']} / {t['max']}", "p99 <= 5"),
           ("timer lateness, promoted, p50 / p99 / max (ms)",
            f"{p['p50']} / {p['p99']} / {p['max']}", ""),
           ("floor: a bare process's 1-5 ms sleeps meanwhile, late p50 / p99 / max (ms)",
            f"{f['p50']} / {f['p99']} / {f['max']}", ""),
           ("timer lateness p99 / the floor's p99 (four wake-ups in turn: >= 1)",
            ratio(t["p99"], f["p99"]), ""),
           ("timers early / missing / created after their due time (left out)",
            f"{t['early']} / {t['missing']} / {t.get('created_late', 0)}", "0 / 0 / 0"),
           ("worker wake-up from before the enqueue, p50 / p99 / max (ms)",
            f"{w['p50']} / {w['p99']} / {w['max']}", ""),
           ("worker wake-up from the enqueue's reply, p50 / p99 / max (ms)",
            f"{r['p50']} / {r['p99']} / {r['max']}", ""),
           ("worker wake-up from the enqueue's push (MONITOR), p50 / p99 / max (ms)",
            f"{rd['p50']} / {rd['p99']} / {rd['max']}", "p99 <= 2"),
           ("floor: a bare process's 1-5 ms sleeps meanwhile, late p50 / p99 / max (ms)",
            f"{wf['p50']} / {wf['p99']} / {wf['max']}", ""),
           ("wake-up p99 from the push / the floor's p99 (three wake-ups in turn)",
            ratio(rd["p99"], wf["p99"]), "")]
    for i in figures["idle"]:
        out.append((f"idle daemon, {i['services']:,} services (commands/s)",
                    f"{i['commands_per_s']}", "<= 100"))
        out.append((f"1 s timer among {i['services']:,} idle services, late (ms)",
                    f"{i['timer_1s_late_ms']}", ""))
    return out


def measure(quick: bool) -> dict[str, Any]:
    """Every figure of this file (bench/run.py calls it too, so one run prints them all)."""
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_before": os.getloadavg(),
        "timers": timer_lateness(200 if quick else 2000, 2000 if quick else 10_000),
        "wake": wake_latency(50 if quick else 300),
        "idle": [idle_cost(n, 3 if quick else 10) for n in ((200,) if quick else (1000, 10_000))],
    }
    figures["load_after"] = os.getloadavg()
    figures["rows"] = rows(figures)
    return figures


def goal_figures(figures: dict[str, Any]) -> list[tuple[str, str, float, str, str, bool]]:
    """(name, label, value, unit, goal, met) of each figure that has an issue-10 goal."""
    t, w = figures["timers"], figures["wake"]
    out = [("timer_p99", "timer lateness p99, handler started (2,000 timers, one daemon)",
            t["p99"], "ms", "<= 5 ms", t["p99"] <= 5),
           ("timers_early", "timers started early", t["early"], "", "0", t["early"] == 0),
           ("timers_missing", "timers never started", t["missing"], "", "0", t["missing"] == 0),
           ("wake_p99", "idle worker wake-up p99, from the enqueue's push (MONITOR)",
            w["from_ready"]["p99"], "ms", "<= 2 ms", w["from_ready"]["p99"] <= 2)]
    for i in figures["idle"]:
        out.append((f"idle_daemon_{i['services']}",
                    f"idle daemon, {i['services']:,} services: Redis commands/s",
                    i["commands_per_s"], "cmd/s", "<= 100", i["commands_per_s"] <= 100))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer timers and services (a smoke run)")
    ap.add_argument("--json", type=Path, default=BENCH / "results" / "timers.json")
    args = ap.parse_args()
    figures = measure(args.quick)
    print(f"# timers, idle cost, wake-up ({figures['date']}, load average "
          f"{' '.join(f'{x:.2f}' for x in figures['load_after'])})")
    for row, value, goal in figures["rows"]:
        print(f"| {row} | {value} | {goal} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
