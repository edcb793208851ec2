"""``homing dead``: list, requeue and purge a service's dead letters."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from .cliutil import BATCH, HomingGroup, Settings, clip, json_text, table
from .errors import ConnectionLostError, HomingError


@click.group(cls=HomingGroup)
def dead() -> None:
    """List, requeue or purge a service's dead letters."""


def _preview(letter: Any) -> str:
    if not letter.raw:
        return "<payload missing>"
    try:
        return clip(json_text(letter.payload), 40)
    except HomingError:
        return f"<corrupt: {len(letter.raw)} bytes>"


@dead.command("list")
@click.argument("service")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--count", type=click.IntRange(1, BATCH), default=20, show_default=True)
@click.pass_obj
def dead_list(s: Settings, service: str, offset: int, count: int) -> None:
    """Show a page of SERVICE's dead letters, oldest first."""
    page = s.client().dead_list(service, offset, count)
    rows = [[d.id, dt.datetime.fromtimestamp(d.died_ms / 1000, dt.timezone.utc)
             .strftime("%Y-%m-%d %H:%M:%SZ"), d.attempt, clip(d.reason, 40), _preview(d)]
            for d in page.letters]
    if rows:
        click.echo(table(["id", "died at", "attempt", "reason", "payload"], rows))
    click.echo(f"{len(rows)} shown (from {offset}) of {page.total} dead letters")


def _bulk(s: Settings, service: str, ids: Sequence[str], total: int, verb: str,
          action: Callable[..., tuple[int, int]]) -> None:
    """Run a bounded dead-letter script over ``ids``, or over the ``total`` oldest letters.

    ``--all`` stops after the number present when it began: letters that die meanwhile
    (perhaps the very events just requeued) are left for the next run, so it always ends.
    """
    done, remaining = 0, total
    if ids:
        for start in range(0, len(ids), BATCH):
            n, remaining = action(service, list(ids[start:start + BATCH]))
            done += n
    else:
        # The bar on a terminal only: piped, click prints just its label, a stray line.
        bar: Any = (click.progressbar(length=total, label=f"{verb} {service}", file=sys.stderr)
                    if sys.stderr.isatty() else contextlib.nullcontext())
        with bar:
            while done < total:
                n, remaining = action(service, count=min(BATCH, total - done))
                if n == 0:
                    break
                done += n
                if hasattr(bar, "update"):
                    bar.update(n)
    click.echo(f"{verb} {done} dead letters of {service}; {remaining} remain")
    if ids and done < len(ids):
        click.echo(f"warning: {len(ids) - done} of the named dead letters were not {verb}: "
                   "they left the dead letters meanwhile"
                   + (", or had no payload left to deliver (then they are gone)"
                      if verb == "requeued" else ""), err=True)


def _select(s: Settings, service: str, ids: tuple[str, ...], all_: bool,
            verb: str) -> tuple[list[str], list[str], int]:
    """(the named ids that are dead letters, those that are not, the --all total).

    Exits 0 with a message when --all finds nothing to do. The ones that are not
    dead letters are named in a warning: the scripts would skip them silently.
    """
    if bool(ids) == all_:
        raise click.UsageError("name the dead letters' IDS, or give --all (not both)")
    client = s.client()
    if all_:
        total = client.dead_list(service, 0, 1).total
        if total == 0:
            click.echo(f"no dead letters in {service}")
            sys.exit(0)
        return [], [], total
    dead: list[str] = []
    other: list[str] = []
    for event_id in dict.fromkeys(ids):  # once each, in the order given
        try:
            st = client.status(service, event_id)
        except ConnectionLostError:
            raise
        except HomingError:  # an unreadable record, say: the script decides
            dead.append(event_id)
            continue
        if st.state == "dead":
            dead.append(event_id)
        else:
            state = {"unknown": "no such event", "done": "completed"}.get(st.state, st.state)
            other.append(f"{event_id} ({state}" + (f": {st.detail})" if st.state == "pending"
                                                    else ")"))
    if other:
        click.echo(f"warning: not dead letters of {service}, not {verb}: {', '.join(other)}",
                   err=True)
    if not dead:
        click.echo(f"none of the named events is a dead letter of {service}; nothing {verb}",
                   err=True)
        sys.exit(1)
    return dead, other, 0


@dead.command("requeue")
@click.argument("service")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every dead letter.")
@click.pass_obj
def dead_requeue(s: Settings, service: str, ids: tuple[str, ...], all_: bool) -> None:
    """Move dead letters back to SERVICE's ready queue, attempts reset.

    Exit status 1 if a named ID was not a dead letter (the others are requeued).
    """
    named, other, total = _select(s, service, ids, all_, "requeued")
    _bulk(s, service, named, total, "requeued", s.client().dead_requeue)
    if other:
        sys.exit(1)


@dead.command("purge")
@click.argument("service")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Purge every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def dead_purge(s: Settings, service: str, ids: tuple[str, ...], all_: bool, yes: bool) -> None:
    """Delete dead letters of SERVICE for good (asks first unless --yes).

    Exit status 1 if a named ID was not a dead letter (the others are purged).
    """
    named, other, total = _select(s, service, ids, all_, "purged")
    if not yes:
        click.confirm(f"Delete {total or len(named)} dead letters of {service} for good?",
                      abort=True)
    _bulk(s, service, named, total, "purged", s.client().dead_purge)
    if other:
        sys.exit(1)
