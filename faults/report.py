"""Regenerate the fault table in docs/guarantees.md from the suite's own results.

    python -m faults.report                 # from faults/results/full.json
    python -m faults.report results.json    # from another results file
    python -m faults.report --merge faults/results/latest.json   # see below

``--merge`` takes the rows of a run of some scenarios alone (``--only``) into
full.json, replacing those scenarios' rows (or adding them, in the suite's
order), and says so under the table with that run's date and commit; then it
rewrites the table. A full ``make faults`` writes full.json afresh.

The table sits between ``<!-- faults:begin -->`` and ``<!-- faults:end -->``;
everything between the markers is replaced, so the figures are never typed in.
Without the markers, a section carrying them is appended.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .procs import REPO
from .runner import RESULTS, markdown

DOC = REPO / "docs" / "guarantees.md"
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"
SECTION = """
## Measured: the fault suite

`make faults` breaks workers, daemons, the network and Redis itself and checks
every event against these promises ([docs/faults.md](faults.md) says how). The
table below is written by `python -m faults.report` from the suite's last
complete run; losses the persistence mode allows are counted, not hidden.

"""


def write_docs(report: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the table between the markers with ``report``'s."""
    text = doc.read_text()
    block = f"{BEGIN}\n{markdown(report)}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n" + SECTION + block + "\n"
    doc.write_text(text)
    print(f"wrote the fault table into {doc}")


def merge(full: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """``full`` with ``part``'s rows in place of (or next to) its own, in suite order."""
    from .scenarios import SCENARIOS
    order = {sc.name: i for i, sc in enumerate(SCENARIOS)}
    rows = {r["scenario"]: r for r in full["scenarios"]}
    names = [r["scenario"] for r in part["scenarios"]]
    rows.update({r["scenario"]: r for r in part["scenarios"]})
    merged = [m for m in full.get("merged", []) if not set(m["scenarios"]) <= set(names)]
    merged.append({"started": part["started"], "git": part["git"], "scenarios": names})
    out = {**full, "merged": merged,
           "scenarios": sorted(rows.values(), key=lambda r: order.get(r["scenario"], 999))}
    out["failed"] = sum(1 for r in out["scenarios"] if not r["passed"])
    out["passed"] = len(out["scenarios"]) - out["failed"]
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--merge"] and len(argv) == 2:
        from .runner import write
        full = json.loads((RESULTS / "full.json").read_text())
        report = merge(full, json.loads(Path(argv[1]).read_text()))
        write(report, "full")
        write_docs(report)
        return 0
    source = Path(argv[0]) if argv else RESULTS / "full.json"
    if not source.exists():
        print(f"{source} not found: run `make faults` first", file=sys.stderr)
        return 1
    write_docs(json.loads(source.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
