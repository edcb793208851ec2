"""bench/run.py --quick runs end to end against a private Redis (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

RUN = Path(__file__).resolve().parents[2] / "bench" / "run.py"
ROWS = {
    "baseline": "baseline: redis-py LPUSH+RPOP, pipelined x100",
    "evalsha_floor": "floor: redis-py EVALSHA, trivial script",
    "enqueue_one": "Client.enqueue, one per call",
    "enqueue_many": "Client.enqueue_many, batches of 100",
    "enqueue_many_1000": "Client.enqueue_many, batches of 1000",
    "leased_enqueue_1000": "leased design: enqueue_many x1000",
    "e2e_worker_c1": "end-to-end Worker c=1 prefetch=100",
    "e2e_worker_c10": "end-to-end Worker c=10 prefetch=100",
    "e2e_client_loop": "end-to-end loop: dequeue 100 + complete_many",
    "leased_drain": "leased design: drain, dequeue 100 + complete",
}
FIGURES = {"mem_queued", "mem_completed", "flat_enqueue", "flat_drain", "mem_queued_large",
           # bench/timers.py's, on private servers of its own (quick: 200 services)
           "timer_p99", "timers_early", "timers_missing", "wake_p99", "idle_daemon_200"}


def test_bench_quick_prints_every_row(standalone_server, tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    # --no-js: this tests the Python bench; the JS hook has its own contract.
    argv = [sys.executable, str(RUN), "--quick", "--no-js", "--flat-backlog", "2000",
            "--out", str(out)]
    env = {**os.environ, "HOMING_REDIS_URL": standalone_server.url}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=env)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    table = proc.stdout.splitlines()
    for label in ROWS.values():
        assert any(line.startswith(label) for line in table), f"no row {label!r}\n{report}"
    doc = json.loads(out.read_text())
    results = {r["name"]: r for r in doc["results"]}
    assert set(results) == set(ROWS), report
    assert results["baseline"]["ratio"] == 1.0
    assert {f["name"] for f in doc["figures"]} == FIGURES, report
    assert any(g["goal"].startswith("single enqueue / redis-py EVALSHA") for g in doc["goals"])
    figures = {f["name"]: f for f in doc["figures"]}
    # Every timer was started, none early (a measured figure, not a speed bound).
    assert figures["timers_early"]["value"] == 0 and figures["timers_missing"]["value"] == 0, report
    assert figures["timer_p99"]["value"] > 0 and figures["idle_daemon_200"]["value"] > 0
    assert all(r["median"] > 0 and len(r["rates"]) == doc["reps"] for r in results.values())
    # The bench deletes everything it wrote (it shares the session server).
    r = redis.Redis.from_url(standalone_server.url)
    try:
        assert list(r.scan_iter(match="hbench-*")) == []
    finally:
        r.close()
