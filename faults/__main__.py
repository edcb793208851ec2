"""``python -m faults``: run the fault suite (``make faults``, ``make faults-quick``).

    python -m faults --tier quick             # a few scenarios, under 3 minutes
    python -m faults                          # the full tier, under 20 minutes
    python -m faults --only partition --runs 1 --keep
    python -m faults --write-docs             # full tier, then refresh docs/guarantees.md
    python -m faults --homing-path /tmp/old/python   # judge another checkout's homing
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", choices=("quick", "full"), default="full")
    parser.add_argument("--only", nargs="+", default=[], metavar="SCENARIO",
                        help="run only these scenarios")
    parser.add_argument("--runs", type=int, help="repetitions per scenario (overrides)")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--write-docs", action="store_true",
                        help="afterwards, regenerate the table in docs/guarantees.md")
    parser.add_argument("--homing-path", help="import homing from this directory instead")
    args = parser.parse_args(argv)
    if args.homing_path:  # before anything imports homing in this process
        args.homing_path = os.path.abspath(args.homing_path)
        sys.path.insert(0, args.homing_path)
    from . import report, runner, scenarios

    if args.list:
        for sc in scenarios.SCENARIOS:
            tier = "quick+full" if sc.quick else "full"
            print(f"{sc.name:<22} {tier:<10} {sc.doc}")
        return 0
    chosen = scenarios.find(args.only)
    if args.tier == "quick" and not args.only:
        chosen = [sc for sc in chosen if sc.quick]
    complete = not args.only and args.runs is None and not args.homing_path
    result = runner.run_tier(args.tier, chosen, runs=args.runs, keep=args.keep,
                             homing_path=args.homing_path, complete=complete)
    if args.write_docs:
        report.write_docs(result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
