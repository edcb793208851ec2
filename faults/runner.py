"""Run a tier of scenarios, print one row per scenario, write the results, judge.

Each scenario runs ``runs`` times in a fresh temporary directory with its own
Redis; the row is the sum over its runs (recovery: the worst run). The results
go to ``faults/results/latest.json`` and ``latest.md``; a complete full tier
also writes ``full.json``/``full.md``, the source of the table in
docs/guarantees.md (``python -m faults.report``). The closing line reads
``N passed, M failed`` (scenarios), and the exit status is 1 when any scenario
broke a promise the docs make.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .check import Verdict
from .harness import Run, RunTimeoutError, time_budget
from .procs import REPO
from .scenarios import Scenario

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("acknowledged", "lost", "recovered", "duplicated", "unexpected", "collateral",
           "token_reuse")
SUMMED = (*COLUMNS, "ok", "dead", "stuck", "forgotten", "stale_ack", "late_start", "early_timer",
          "unsure_delivered", "deliveries")
TIER_BUDGET_S = {"quick": 170, "full": 1140}


def one_run(sc: Scenario, index: int, root: Path, homing_path: str | None) -> dict[str, Any]:
    """One repetition: set up, drive, classify; an exception is a failed run, not a crash."""
    began = time.monotonic()
    run: Run | None = None
    v = Verdict()
    try:
        time_budget(sc.budget_s)
        run = Run(sc.name, index, root, mode=sc.mode, redis_extra=list(sc.redis_extra),
                  policy=sc.policy, ack=sc.ack, homing_path=homing_path,
                  topology=sc.topology)
        run.allow = set(sc.allow)
        sc.fn(run)
        time_budget(60)  # the verdict asks Redis once per event
        v = run.verdict()
    except (Exception, RunTimeoutError) as exc:  # noqa: BLE001 - reported as the run's failure
        v.problems.append(f"error: {type(exc).__name__}: {exc}")
        if run is not None:
            v.notes = run.notes
    finally:
        time_budget(0)
        if run is not None:
            run.close()
    out = dataclasses.asdict(v)
    out["wall_s"] = round(time.monotonic() - began, 1)
    return out


def total(sc: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The scenario's row: counts summed, recovery the worst, problems per run."""
    row: dict[str, Any] = {"scenario": sc.name, "doc": sc.doc, "mode": sc.mode,
                           "runs": len(runs), "allowed": sorted(sc.allow)}
    for name in SUMMED:
        row[name] = sum(r[name] for r in runs)
    recoveries = [r["recovery_s"] for r in runs if r["recovery_s"] is not None]
    row["recovery_s"] = round(max(recoveries), 2) if recoveries else None
    row["problems"] = [f"run {i}: {p}" for i, r in enumerate(runs) for p in r["problems"]]
    row["notes"] = [f"run {i}: {n}" for i, r in enumerate(runs) for n in r["notes"]]
    row["passed"] = not row["problems"]
    row["notes_in_docs"] = sc.notes_in_docs
    row["wall_s"] = round(sum(r["wall_s"] for r in runs), 1)
    row["per_run"] = runs
    return row


HEADER = ("scenario", "runs", *COLUMNS, "recovery_s")


def line(row: dict[str, Any]) -> str:
    """The printed row: the columns in HEADER order, then the judgement."""
    rec = "-" if row["recovery_s"] is None else f"{row['recovery_s']:.2f}"
    cells = [f"{row['scenario']:<22}", f"{row['runs']:>4}",
             *(f"{row[c]:>{max(len(c), 5)}}" for c in COLUMNS), f"{rec:>10}"]
    verdict = "ok" if row["passed"] else "FAIL " + "; ".join(row["problems"])[:300]
    return " ".join(cells) + "  " + verdict


def header() -> str:
    cells = [f"{'scenario':<22}", f"{'runs':>4}", *(f"{c:>{max(len(c), 5)}}" for c in COLUMNS),
             f"{'recovery_s':>10}"]
    return " ".join(cells)


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--", "lua", "python/homing", "javascript/src")
    return {"commit": git("rev-parse", "--short", "HEAD"), "homing_dirty": bool(dirty)}


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())


def run_tier(tier: str, scenarios: list[Scenario], *, runs: int | None, keep: bool,
             homing_path: str | None, complete: bool) -> dict[str, Any]:
    """Run every scenario (``runs`` overrides each one's count), printing rows as they end."""
    root = Path(tempfile.mkdtemp(prefix="homing-faults-"))
    # homing's warnings in this process (the durability warnings each run's client logs
    # on purpose) go to a file, not between the rows.
    logger = logging.getLogger("homing")
    logger.addHandler(logging.FileHandler(root / "harness.log"))
    logger.propagate = False
    began, started = time.monotonic(), dt.datetime.now(dt.timezone.utc)
    rows: list[dict[str, Any]] = []
    print(f"fault suite, {tier} tier: {len(scenarios)} scenarios, artefacts in {root}",
          flush=True)
    print(header(), flush=True)
    for sc in scenarios:
        count = runs or (1 if tier == "quick" else sc.runs)
        results = []
        for i in range(count):
            if time.monotonic() - began > TIER_BUDGET_S[tier]:
                results.append({**dataclasses.asdict(Verdict()), "wall_s": 0.0,
                                "problems": ["skipped: the tier's time budget is spent"]})
                continue
            results.append(one_run(sc, i, root, homing_path))
        rows.append(total(sc, results))
        print(line(rows[-1]), flush=True)
    wall = round(time.monotonic() - began, 1)
    failed = sum(1 for r in rows if not r["passed"])
    report = {"tier": tier, "complete": complete, "started": started.isoformat(timespec="seconds"),
              "wall_s": wall, "git": _git(), "redis": _redis_version(),
              "python": platform.python_version(), "homing_path": homing_path,
              "passed": len(rows) - failed, "failed": failed, "scenarios": rows}
    write(report, "latest")
    if tier == "full" and complete:
        write(report, "full")
    if failed or keep:
        print(f"artefacts kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wall time {wall:.0f} s; results in {RESULTS / 'latest.json'}")
    print(f"{len(rows) - failed} passed, {failed} failed", flush=True)
    return report


def markdown(report: dict[str, Any]) -> str:
    """The results as a markdown table (also what docs/guarantees.md embeds)."""
    cols = ("runs", "acknowledged", "lost", "forgotten", "recovered", "duplicated",
            "unexpected", "collateral", "token_reuse", "stale_ack", "late_start", "recovery_s")
    names = [c.replace("_", " ") for c in cols]
    out = ["| scenario | " + " | ".join(names) + " | result |",
           "|---|" + "---:|" * len(cols) + "---|"]
    for row in report["scenarios"]:
        cells = ["-" if row[c] is None else str(row[c]) for c in cols]
        result = "pass" if row["passed"] else "**fail**"
        out.append(f"| {row['scenario']} | " + " | ".join(cells) + f" | {result} |")
    out.append("")
    groups: dict[str, list[str]] = {}
    for row in report["scenarios"]:
        allowed = ", ".join(a.replace("_", " ") for a in row["allowed"]) or "nothing"
        groups.setdefault(allowed, []).append(row["scenario"])
    out.append("Allowed by the docs (counted, never failing): " + "; ".join(
        f"{', '.join(names)}: {allowed}" for allowed, names in groups.items()) + ".")
    noted = [row for row in report["scenarios"] if row.get("notes_in_docs") and row["notes"]]
    if noted:
        out.append("")
    for row in noted:
        out.append(f"- {row['scenario']}: " + "; ".join(row["notes"]) + ".")
    failures = [row for row in report["scenarios"] if not row["passed"]]
    if failures:
        out.append("")
    for row in failures:
        shown = "; ".join(row["problems"][:3])
        more = f" (+{len(row['problems']) - 3} more)" if len(row["problems"]) > 3 else ""
        out.append(f"- {row['scenario']}: {shown}{more}")
    git = report["git"]
    state = " plus uncommitted changes" if git.get("homing_dirty") else ""
    out.append("")
    out.append(f"{report['tier']} tier, {report['started']}, commit {git.get('commit')}{state}, "
               f"Redis {report['redis']}, {report['wall_s']:.0f} s; "
               f"{report['passed']} passed, {report['failed']} failed.")
    for m in report.get("merged", []):
        state = " plus uncommitted changes" if m["git"].get("homing_dirty") else ""
        out.append(f"Rows {', '.join(m['scenarios'])} from a run of those scenarios alone, "
                   f"{m['started']}, commit {m['git'].get('commit')}{state}, merged in.")
    return "\n".join(out) + "\n"


def write(report: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(report))
