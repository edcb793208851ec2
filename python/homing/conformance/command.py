"""``homing conformance``: check a Redis (or Valkey, or a managed service) before trusting it.

Runs the packaged vectors in a key prefix of their own (a fresh
``homing-conformance-<random>`` unless ``--prefix`` names one), deletes only
the keys it created, prints a pass/fail table per operation, and exits 1 if
any vector failed, 2 if the suite could not run at all (printed as
``error: CODE: message``, like every homing command).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..connection import translate
from ..errors import HomingError


def _cannot_run(exc: Exception) -> str:
    """The line for a suite that could not run: ``CODE: message`` for homing's own
    errors (codes of lua/errors.json only), else a plain message, never a class name."""
    from .loader import VectorFileError
    from .runner import PrefixInUseError

    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        exc = translate(exc)
    if isinstance(exc, HomingError):
        return f"{exc.code}: {exc}"
    if isinstance(exc, PrefixInUseError):
        return str(exc)
    if isinstance(exc, VectorFileError):
        return f"bad vector file: {exc}"
    return f"Redis refused a command: {exc}"  # NOPERM, say


@click.command("conformance")
@click.option("--redis-url", envvar="HOMING_REDIS_URL", show_envvar=True, metavar="URL",
              help="Redis to check: a standalone server or any node of a Cluster. "
                   "There is no default (the suite writes to it): give it here, before "
                   "the subcommand, or in the environment.")
@click.option("--prefix", default=None,
              help="Key prefix to run in; it must not hold a homing registry already. "
                   "Default: a fresh homing-conformance-<random>.")
@click.option("--filter", "filters", multiple=True, metavar="OP",
              help="Run only this operation (repeatable; 'envelope' for the wire vectors).")
@click.option("--vectors", "vectors_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Run the files of this conformance/ directory instead of "
                                 "the packaged copy (for writing vectors). They run as they "
                                 "are: check them first with `python3 conformance/build.py "
                                 "--root DIR --check`.")
@click.option("--verbose", is_flag=True, help="List every vector, not only the failures.")
def conformance(redis_url: str | None, prefix: str | None, filters: tuple[str, ...],
                vectors_dir: Path | None, verbose: bool) -> None:
    """Run homing's conformance vectors against a Redis and print a pass/fail table."""
    if not redis_url:
        raise click.UsageError("name the Redis to check: give --redis-url URL or set "
                               "HOMING_REDIS_URL (there is no default, as the suite writes "
                               "to it)")
    # Imported here so that loading the CLI stays cheap and never fails on the suite.
    from ..manifest import check_prefix
    from . import durability
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
        click.echo(f"error: {_cannot_run(exc)}", err=True)
        sys.exit(2)
    click.echo(render(report, verbose=verbose))
    click.echo(durability.render(redis_url))
    sys.exit(0 if report.passed else 1)
