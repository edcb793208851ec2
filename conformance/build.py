#!/usr/bin/env python3
"""Copy the conformance files into the Python package, or check that the copy is current.

Why a copy: ``homing conformance`` must run from a plain ``pip install``, where
the repository's ``conformance/`` directory does not exist, so the package
ships the same files under ``homing/conformance/data/``. This directory stays
the one source; the copy is generated, and ``--check`` (run by the tests)
fails when someone edits a vector without running this.

Standard library only, like lua/build.py.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "python" / "homing" / "conformance" / "data"


def sources() -> dict[str, Path]:
    """Relative path -> file, for every file the package carries."""
    files = [HERE / n for n in ("schema.json", "calls.json", "envelopes.json", "coverage.json")]
    files += sorted((HERE / "vectors").glob("*.json"))
    return {str(p.relative_to(HERE)): p for p in files}


def stale(out: Path) -> list[str]:
    """What differs between this directory and the copy in out (missing, changed, extra)."""
    want = sources()
    have = {str(p.relative_to(out)) for p in out.rglob("*.json")} if out.exists() else set()
    problems = [f"extra {n}" for n in sorted(have - set(want))]
    for name, src in want.items():
        dst = out / name
        if not dst.exists():
            problems.append(f"missing {name}")
        elif dst.read_bytes() != src.read_bytes():
            problems.append(f"changed {name}")
    return problems


def sync(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for name, src in sources().items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the packaged copy")
    ap.add_argument("--check", action="store_true", help="only report whether it is current")
    ns = ap.parse_args(argv)
    if ns.check:
        problems = stale(ns.out)
        for p in problems:
            print(f"conformance/build.py: {ns.out}: {p}; run 'python3 conformance/build.py'",
                  file=sys.stderr)
        return 1 if problems else 0
    sync(ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
