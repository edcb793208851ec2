"""``homing recurring``: add, list and remove a service's recurring timers."""

from __future__ import annotations

import datetime as dt

import click

from .cliutil import (
    BATCH,
    HomingGroup,
    Settings,
    priority_option,
    read_payload,
    string_option,
    table,
)


@click.group(cls=HomingGroup)
def recurring() -> None:
    """Add, list or remove recurring timers (every N ms, or a cron expression in UTC)."""


def _when(ms: int) -> str:
    if ms < 0:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@recurring.command("add")
@click.argument("service")
@click.argument("name")
@click.argument("payload")
@click.option("--every-ms", type=click.IntRange(min=1), help="A tick every N ms from now.")
@click.option("--cron", help="A five-field cron expression in UTC ('*/5 * * * *', '@daily').")
@click.option("--skip-missed", is_flag=True,
              help="After downtime fire nothing for the missed ticks (default: fire once).")
@priority_option
@string_option
@click.pass_obj
def recurring_add(s: Settings, service: str, name: str, payload: str, every_ms: int | None,
                  cron: str | None, skip_missed: bool, priority: int, as_string: bool) -> None:
    """Register NAME on SERVICE, firing PAYLOAD on every tick; prints the next tick.

    Each tick enqueues the event NAME.<tick_ms>, once however many daemons run. The
    same NAME again updates the schedule (unchanged, it keeps its next tick; a new
    --priority alone keeps it too). --priority 0..9 is the level every tick's event
    fires into.
    """
    if (every_ms is None) == (cron is None):
        raise click.UsageError("give exactly one of --every-ms and --cron")
    nxt = s.client().recurring_put(service, name, read_payload(payload, as_string),
                                   every_ms=every_ms, cron=cron, catch_up=not skip_missed,
                                   priority=priority)
    click.echo(f"{name}: next tick at {_when(nxt)}")


@recurring.command("list")
@click.argument("service")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--count", type=click.IntRange(1, BATCH), default=100, show_default=True)
@click.pass_obj
def recurring_list(s: Settings, service: str, offset: int, count: int) -> None:
    """Show SERVICE's recurring timers by name."""
    page = s.client().recurring_list(service, offset, count)
    rows = [[r.name, r.spec, _when(r.next_ms), r.fired, r.skipped, r.priority]
            for r in page.schedules]
    if rows:
        click.echo(table(["name", "spec", "next tick", "fired", "skipped", "priority"], rows))
    click.echo(f"{len(rows)} shown (from {offset}) of {page.total} recurring timers")


@recurring.command("remove")
@click.argument("service")
@click.argument("name")
@click.pass_obj
def recurring_remove(s: Settings, service: str, name: str) -> None:
    """Remove recurring timer NAME from SERVICE (the events it fired stay)."""
    if not s.client().recurring_remove(service, name):
        raise click.ClickException(f"{service} has no recurring timer {name!r}")
    click.echo(f"removed {name}")
