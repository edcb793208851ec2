"""Regenerate the fault table in docs/guarantees.md from the suite's own results.

    python -m faults.report                 # from faults/results/full.json
    python -m faults.report results.json    # from another results file

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


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else RESULTS / "full.json"
    if not source.exists():
        print(f"{source} not found: run `make faults` first", file=sys.stderr)
        return 1
    write_docs(json.loads(source.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
