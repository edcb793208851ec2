"""HOOK for figures measured outside Python: the JavaScript client, BullMQ on Node.

If ``bench/js/run.mjs`` exists, run.py runs it after the Python cases,
against the same Redis, as::

    node bench/js/run.mjs --events N --reps R [--quick]

with ``HOMING_REDIS_URL`` set (and ``HOMING_BENCH_PREFIX``, a key prefix it
should keep its keys under and delete afterwards). Contract for its stdout:
one JSON object per line and per figure,

    {"name": "js_e2e_worker_c10", "label": "JS Worker c=10 prefetch=100",
     "events": 20000, "rates": [21000.5, 20500.1, ...]}

``rates`` are events/s, one per timed repetition (after its own warm-up).
Optional fields fill the other columns: ``redis_us_per_event``,
``redis_us_per_call``, ``redis_cpu_pct``, ``client_cpu_pct`` (see measure.py
for what they mean; the Node process's own CPU goes in client_cpu_pct).
Lines that are not JSON objects are passed through to stderr as progress.
Each figure becomes a table row whose ratio is its median over the median
of this run's Python baseline. A non-zero exit fails the bench.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from report import Summary

JS_BENCH = Path(__file__).resolve().parent / "js" / "run.mjs"
OPTIONAL = ("redis_us_per_event", "redis_us_per_call", "redis_cpu_pct", "client_cpu_pct")


def run_js(url: str, prefix: str, events: int, reps: int, quick: bool,
           baseline_median: float) -> list[Summary]:
    """Rows from bench/js/run.mjs, or none if it does not exist yet."""
    if not JS_BENCH.exists():
        return []
    node = shutil.which("node")
    if node is None:
        print(f"bench: {JS_BENCH} exists but node is not on PATH; JS rows skipped",
              file=sys.stderr)
        return []
    argv = [node, str(JS_BENCH), "--events", str(events), "--reps", str(reps)]
    if quick:
        argv.append("--quick")
    env = {**os.environ, "HOMING_REDIS_URL": url, "HOMING_BENCH_PREFIX": prefix}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600,
                          cwd=JS_BENCH.parents[2])
    sys.stderr.write(proc.stderr)
    rows = []
    for line in proc.stdout.splitlines():
        try:
            fig = json.loads(line)
        except ValueError:
            fig = None
        if not isinstance(fig, dict):
            print(line, file=sys.stderr)
            continue
        rates = [float(r) for r in fig["rates"]]
        extra = {k: float(fig[k]) for k in OPTIONAL if fig.get(k) is not None}
        rows.append(Summary(name=fig["name"], label=fig.get("label", fig["name"]),
                            events=int(fig["events"]), rates=rates, source="node",
                            ratios=[statistics.median(rates) / baseline_median], **extra))
    if proc.returncode != 0:
        raise RuntimeError(f"{JS_BENCH.name} exited with {proc.returncode}")
    return rows

