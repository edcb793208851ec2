"""``homing conformance``: check a Redis (or Valkey, or a managed service) before trusting it.

Runs the packaged vectors in a key prefix of their own (a fresh
``homing-conformance-<random>`` unless ``--prefix`` names one), deletes only
the keys it created, prints a pass/fail table per operation, and exits 1 if
any vector failed, 2 if the suite could not run at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from redis.exceptions import RedisError

from ..errors import HomingError


@click.command("conformance")
@click.option("--redis-url", required=True, envvar="HOMING_REDIS_URL",
              help="Redis to check: a standalone server or any node of a Cluster.")
@click.option("--prefix", default=None,
              help="Key prefix to run in; it must not hold a homing registry already. "
                   "Default: a fresh homing-conformance-<random>.")
@click.option("--filter", "filters", multiple=True, metavar="OP",
              help="Run only this operation (repeatable; 'envelope' for the wire vectors).")
@click.option("--vectors", "vectors_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Run the files of this conformance/ directory instead of "
                                 "the packaged copy (for writing vectors).")
@click.option("--verbose", is_flag=True, help="List every vector, not only the failures.")
def conformance(redis_url: str, prefix: str | None, filters: tuple[str, ...],
                vectors_dir: Path | None, verbose: bool) -> None:
    """Run homing's conformance vectors against a Redis and print a pass/fail table."""
    # Imported here so that loading the CLI stays cheap and never fails on the suite.
    from ..manifest import check_prefix
    from .loader import VectorFileError, load_suite
    from .report import render
    from .runner import PrefixInUseError, run_suite

    try:
        if prefix is not None:
            check_prefix(prefix)
        suite = load_suite(vectors_dir)
        known = {"envelope", *suite.operations()}
        unknown = [f for f in filters if f not in known]
        if unknown:
            raise click.BadParameter(f"unknown operation {', '.join(unknown)}; known: "
                                     f"{', '.join(sorted(known))}", param_hint="--filter")
        report = run_suite(redis_url, suite, prefix=prefix, operations=filters)
    except (VectorFileError, PrefixInUseError, HomingError, RedisError, OSError) as exc:
        # The suite could not run at all (as opposed to vectors failing): exit 2.
        code = getattr(exc, "code", type(exc).__name__)
        click.echo(f"error: {code}: {exc}", err=True)
        sys.exit(2)
    click.echo(render(report, verbose=verbose))
    sys.exit(0 if report.passed else 1)
