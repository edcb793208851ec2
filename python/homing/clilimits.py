"""``homing limits``: a service's rate and concurrency limits, shown and set.

The limits are policy fields (``rate_limit`` per ``rate_window_ms``,
``concurrency``; 0 is no limit) that the dequeue script enforces across every
worker by the Redis clock (``homing.limits``). ``homing configure SERVICE
--rate-limit N`` sets them like any policy field; this command shows them
beside what is in flight, and ``homing stats`` lists the services that have any.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from .cliutil import Settings, json_text, table
from .types import Limits


def rate_text(rate_limit: int, window_ms: int) -> str:
    """``10 per 1000 ms``, or ``none``."""
    return f"{rate_limit} per {window_ms} ms" if rate_limit else "none"


def limits_table(data: dict[str, dict[str, Any]]) -> str | None:
    """The services of a ``stats`` run with a limit, one row each; None when none has one."""
    rows = [[name, rate_text(int(st["policy.rate_limit"]), int(st["policy.rate_window_ms"])),
             int(st["policy.concurrency"]) or "none", st["in_flight"]]
            for name, st in data.items()
            if st.get("policy.rate_limit") or st.get("policy.concurrency")]
    if not rows:
        return None
    return table(["service", "rate limit", "concurrency", "in flight"], rows)


def _show(service: str, lim: Limits) -> None:
    conc = f"{lim.concurrency} at once" if lim.concurrency else "none"
    click.echo(f"{service}{' (paused)' if lim.paused else ''}\n"
               f"  rate limit   {rate_text(lim.rate_limit, lim.rate_window_ms)}\n"
               f"  concurrency  {conc}\n"
               f"  in flight    {lim.in_flight}\n"
               f"  ready        {lim.ready}")


@click.command()
@click.argument("service")
@click.option("--rate-limit", type=click.IntRange(min=0),
              help="Most events handed out per window across every worker (0: no limit).")
@click.option("--rate-window-ms", type=click.IntRange(min=1), help="The rate's window in ms.")
@click.option("--concurrency", type=click.IntRange(min=0),
              help="Most events leased at once across every worker (0: no limit).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def limits(s: Settings, service: str, rate_limit: int | None, rate_window_ms: int | None,
           concurrency: int | None, as_json: bool) -> None:
    """Show SERVICE's rate and concurrency limits (set the ones given first).

    Enforced by Redis for every worker together: at most RATE-LIMIT events
    start per RATE-WINDOW-MS (a sliding window), at most CONCURRENCY are
    leased at once. Workers held back sleep until the next slot.
    """
    client = s.client()
    if rate_limit is None and rate_window_ms is None and concurrency is None:
        lim = client.limits(service)  # read-only: stats does not create the service
    else:
        lim = client.set_limits(service, rate_limit=rate_limit, rate_window_ms=rate_window_ms,
                                concurrency=concurrency)
    if as_json:
        click.echo(json_text(asdict(lim)))
    else:
        _show(service, lim)
