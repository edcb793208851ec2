"""``homing group``: look at and forget a service's groups (``enqueue_group``).

Small on purpose, beside cli.py (at its size budget): ``status`` shows where
a group stands, ``forget`` removes it with its members' results at once
instead of waiting for the pruner (``result_ttl_ms`` after it finished).
"""

from __future__ import annotations

import datetime as dt
import sys

import click

from .cliutil import HomingGroup, Settings, json_text


@click.group(cls=HomingGroup)
def group() -> None:
    """Look at or forget a service's groups (enqueue_group)."""


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@group.command("status")
@click.argument("service")
@click.argument("gid", metavar="GID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def group_status(s: Settings, service: str, gid: str, as_json: bool) -> None:
    """Where group GID of SERVICE stands; exit 1 if a member failed.

    Prints how many members completed, the first member dead-lettered or
    cancelled, and when the group finished. An unknown group (never created,
    forgotten, or retired) is an error (exit 2, UNKNOWN_GROUP).
    """
    st = s.client().group_status(service, gid)
    state = "failed" if st.failed else "done" if st.finished else "running"
    if as_json:
        click.echo(json_text({"state": state, "total": st.total, "done": st.done,
                              "failed": st.failed or None, "finished_ms": st.finished_ms}))
    else:
        line = f"{state}: {st.done} of {st.total} completed"
        if st.failed:
            line += f", first failure {st.failed}"
        if st.finished:
            line += f", finished {_when(st.finished_ms)}"
        click.echo(line)
    if st.failed:
        sys.exit(1)


@group.command("forget")
@click.argument("service")
@click.argument("gid", metavar="GID")
@click.pass_obj
def group_forget(s: Settings, service: str, gid: str) -> None:
    """Remove group GID of SERVICE and its members' results now.

    Members still queued stay queued and complete as events outside any group.
    """
    removed = s.client().group_forget(service, gid)
    click.echo(f"forgot group {gid} of {service} ({removed} member results removed)")

