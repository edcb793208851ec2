"""homing benchmark: throughput of the Python client against a raw redis-py baseline.

    make bench                                  # via scripts/with-redis.sh
    .venv/bin/python bench/run.py [--events N] [--reps R] [--quick] [--only NAME]

Needs ``HOMING_REDIS_URL`` (a standalone Redis). If it is unset, run.py
re-runs itself under scripts/with-redis.sh, which starts a private,
throwaway redis-server: the bench never falls back to a shared Redis.

All cases run in the same process against the same Redis, in rounds: a
warm-up round, then ``--reps`` rounds that each run every case once. The
table reports each case's median events/s, its spread, and its ratio to the
baseline of the same rounds, and is also written to bench/results/latest.json.
See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))  # cases, measure, report, external sit beside this file
sys.dont_write_bytecode = True  # no __pycache__ left in bench/ (nothing ignores it there)
try:
    import homing
except ImportError:  # not installed in this interpreter: use the checkout
    sys.path.insert(1, str(ROOT / "python"))
    import homing

import redis  # noqa: E402
from homing.connection import is_cluster_url  # noqa: E402

import cases  # noqa: E402
import external  # noqa: E402
import extras  # noqa: E402
import floors  # noqa: E402
import report  # noqa: E402
import timers  # noqa: E402
from measure import Sample  # noqa: E402

# Sized so that the whole default run takes well under a minute on 2 shared cores.
DEFAULT_EVENTS = 20_000
DEFAULT_REPS = 5
QUICK_EVENTS = 400
QUICK_REPS = 2


# name, label, function, share of --events it runs (one-at-a-time enqueue is
# ~10x slower than the others, so it gets a tenth to keep every case ~1 s).
Case = tuple[str, str, Callable[[cases.Context, int], Sample], float]
CASES: list[Case] = [
    ("baseline", "baseline: redis-py LPUSH+RPOP, pipelined x100", cases.baseline, 1.0),
    ("evalsha_floor", "floor: redis-py EVALSHA, trivial script", floors.evalsha_floor, 0.1),
    ("enqueue_one", "Client.enqueue, one per call", cases.enqueue_one, 0.1),
    ("enqueue_many", "Client.enqueue_many, batches of 100", cases.enqueue_many(100), 1.0),
    ("enqueue_many_1000", "Client.enqueue_many, batches of 1000", cases.enqueue_many(1000), 1.0),
    ("leased_enqueue_1000", "leased design: enqueue_many x1000", floors.leased_enqueue(1000), 1.0),
    ("e2e_worker_c1", "end-to-end Worker c=1 prefetch=100", cases.worker(1), 1.0),
    ("e2e_worker_c10", "end-to-end Worker c=10 prefetch=100", cases.worker(10), 1.0),
    ("e2e_client_loop", "end-to-end loop: dequeue 100 + complete_many", cases.client_loop, 1.0),
    ("leased_drain", "leased design: drain, dequeue 100 + complete", floors.leased_drain, 1.0),
]
ROW_NAMES = [name for name, *_ in CASES]

# From the issue, measured on this machine by its reporter (not by this run):
# printed beside the table as context, never compared with as a ratio.
REFERENCE = ("target: end-to-end >= 20,000 events/s (Python); BullMQ on this machine per the "
             "issue: Python client ~2,800/s, Node client ~22,000/s at concurrency 10")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=None,
                   help=f"events per repetition (default {DEFAULT_EVENTS}, quick {QUICK_EVENTS})")
    p.add_argument("--reps", type=int, default=None,
                   help=f"timed repetitions (default {DEFAULT_REPS}, quick {QUICK_REPS})")
    p.add_argument("--quick", action="store_true", help="a smoke run: few events, 2 rounds")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only cases whose name contains NAME (repeatable; the baseline "
                        f"always runs). Names: {', '.join(ROW_NAMES)}")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json",
                   help="where to write the JSON results")
    p.add_argument("--no-js", action="store_true", help="skip the bench/js/run.mjs hook")
    p.add_argument("--flat-backlog", type=int, default=None,
                   help="the large backlog of the flatness figure "
                   "(default 1,000,000; quick 10,000)")
    p.add_argument("--no-extras", action="store_true",
                   help="skip the memory and flatness figures (they take ~1 min at 10^6)")
    p.add_argument("--no-timers", action="store_true",
                   help="skip timer lateness, worker wake-up and idle daemon cost (bench/timers.py;"
                        " ~1.5 min, private servers of their own)")
    args = p.parse_args(argv)
    args.events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    args.reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    args.flat_backlog = args.flat_backlog or (10_000 if args.quick else 1_000_000)
    if args.events < 10 or args.reps < 1:
        p.error("--events must be >= 10 and --reps >= 1")
    return args


def redis_url() -> str:
    """HOMING_REDIS_URL, or re-exec under scripts/with-redis.sh to get a private one."""
    url = os.environ.get("HOMING_REDIS_URL")
    if url:
        return url
    wrapper = ROOT / "scripts" / "with-redis.sh"
    if wrapper.exists() and not os.environ.get("HOMING_BENCH_REEXEC"):
        os.environ["HOMING_BENCH_REEXEC"] = "1"
        os.execv(str(wrapper), [str(wrapper), sys.executable, *sys.argv])
    sys.exit("bench: set HOMING_REDIS_URL to a Redis of your own (or run `make bench`); "
             "the bench never defaults to a shared Redis")


def run_rounds(ctx: cases.Context, selected: list[Case], events: int,
               reps: int) -> dict[str, list[Sample]]:
    """A warm-up round, then reps rounds of every selected case, interleaved.

    Interleaving (rather than all repetitions of one case, then the next)
    puts each case's sample next to a baseline sample taken seconds apart,
    so a burst of load from elsewhere on the machine hits both.
    """
    warm = max(events // 10, 50)
    for _name, _, fn, share in selected:
        fn(ctx, max(int(warm * share), 10))
    samples: dict[str, list[Sample]] = {name: [] for name, *_ in selected}
    for rnd in range(1, reps + 1):
        for name, _, fn, share in selected:
            s = fn(ctx, max(int(events * share), 10))
            samples[name].append(s)
            print(f"round {rnd}/{reps}  {name:<16} {s.rate:>9,.0f} events/s", file=sys.stderr)
    return samples


def meta(args: argparse.Namespace, raw: Any) -> dict[str, Any]:
    info = raw.info("server")
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "hiredis": bool(redis.utils.HIREDIS_AVAILABLE),
        "redis_server": info.get("redis_version"),
        "homing": homing.__version__,
        "events": args.events,
        "reps": args.reps,
        "baseline": "baseline",
        "reference": REFERENCE,
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = redis_url()
    raw = redis.Redis.from_url(url)
    if is_cluster_url(raw):
        sys.exit("bench: HOMING_REDIS_URL is a Redis Cluster node; the bench needs a standalone "
                 "Redis so that INFO describes the one server doing the work")
    prefix = "hbench-" + uuid.uuid4().hex[:8]
    ctx = cases.Context(raw, homing.Client.from_url(url, cluster=False, prefix=prefix), prefix)
    selected = [c for c in CASES
                if c[0] == "baseline" or not args.only or any(o in c[0] for o in args.only)]
    print(f"bench: {args.events} events x {args.reps} rounds on {url}", file=sys.stderr)
    try:
        samples = run_rounds(ctx, selected, args.events, args.reps)
        base = samples["baseline"]
        rows = [report.summarize(name, label, samples[name], base)
                for name, label, *_ in selected]
        if not args.no_js:
            rows += external.run_js(url, prefix + "-js", args.events, args.reps, args.quick,
                                    rows[0].median)
        figures: list[extras.Figure] = []
        if not args.no_extras:
            print("bench: memory and flatness figures", file=sys.stderr)
            figures += extras.memory(ctx, args.events)
            figures += extras.flatness(ctx, args.events, 1000, args.flat_backlog)
        if not args.no_timers:
            print("bench: timers, wake-up and idle daemon cost (bench/timers.py)", file=sys.stderr)
            figures += [extras.Figure(*f) for f in timers.goal_figures(timers.measure(args.quick))]
    except RuntimeError as exc:  # a case's own check failed: its figure would be a lie
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        ctx.cleanup()
        ctx.client.close()
    header = meta(args, raw)
    print(f"\nhoming bench {header['date']}  {args.events} events/rep, {args.reps} reps, "
          f"{header['cpus']} cpus, Python {header['python']}, redis-py {header['redis_py']}"
          f"{' +hiredis' if header['hiredis'] else ''}, Redis {header['redis_server']}")
    header["loadavg"] = _loadavg()
    print(f"load average (1, 5, 15 min) at the end: {header['loadavg']}")
    print(report.table(rows))
    print("vs base: median over rounds of (case events/s / baseline events/s in that round)")
    print(report.figures_table(figures))
    goals = report.goals(rows, figures)
    print(report.goals_table(goals))
    print(REFERENCE)
    report.write_json(args.out, header, rows, figures, goals)
    print(f"results: {args.out}")
    raw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
