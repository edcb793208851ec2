"""The pass/fail table that ``homing conformance`` prints."""

from __future__ import annotations

from .runner import Report


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render(report: Report, *, verbose: bool = False) -> str:
    """A per-operation table, the failures in detail, and a one-line verdict."""
    ops: dict[str, list[int]] = {}
    for r in report.results:
        counts = ops.setdefault(r.operation, [0, 0])
        counts[0 if r.passed else 1] += 1
    width = max([len("operation"), *(len(op) for op in ops)])
    lines = [f"homing conformance on {report.server} (prefix {report.prefix})", ""]
    lines.append(f"{'operation':<{width}}  {'vectors':>7}  {'passed':>6}  {'failed':>6}  result")
    lines.append(f"{'-' * width}  -------  ------  ------  ------")
    for op, (ok, bad) in ops.items():
        verdict = "PASS" if bad == 0 else "FAIL"
        lines.append(f"{op:<{width}}  {ok + bad:>7}  {ok:>6}  {bad:>6}  {verdict}")
    failures = [r for r in report.results if not r.passed]
    shown = report.results if verbose else failures
    if shown:
        lines += ["", "vectors:" if verbose else "failures:"]
        for r in shown:
            mark = "ok  " if r.passed else "FAIL"
            lines.append(f"  {mark} {r.operation}: {r.name}")
            if r.detail:
                lines.append(f"       {r.detail}")
    total = len(report.results)
    lines.append("")
    if not total:
        lines.append("FAIL: no vectors ran (check --filter)")
    elif failures:
        failed_ops = sum(1 for _, bad in ops.values() if bad)
        lines.append(f"FAIL: {len(failures)} of {total} vectors failed "
                     f"in {failed_ops} of {_n(len(ops), 'operation')}")
    else:
        lines.append(f"PASS: all {total} vectors passed in {_n(len(ops), 'operation')}")
    return "\n".join(lines)
