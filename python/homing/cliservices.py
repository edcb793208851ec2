"""``homing services``: the registry, with what each service holds and its last activity,
and ``homing services forget NAME`` for a service that holds nothing (a typo'd name)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .client import Client
from .cliutil import HomingGroup, Settings, json_text, table
from .connection import REDIS_ERRORS, translate
from .manifest import service_key
from .stored import created_ms

# What a service may hold, as `homing stats` names it; any of it refuses `forget`.
HOLDS = ("ready", "in_flight", "timers", "retrying", "expired", "dead", "results")


def last_activity(client: Client, service: str, st: dict[str, Any]) -> int | None:
    """The latest trace of activity homing keeps, in ms (Redis clock), or None.

    homing keeps no "last touched" time (a field written by every script would
    cost the hot path a command), so this is the latest of what the data says:
    the last lease handed out (the fencing sequence holds now_ms * 1000), the
    newest completion still kept (its prune time minus result_ttl_ms), the
    newest keyed enqueue (likewise with idem_ttl_ms), the newest dead letter,
    and the creation of the newest ready event among the ready list's head and
    the first and last in ``prio`` (the events waiting at a priority level: the
    newest of a level other than the lowest waiting one is missed, a price of
    reading two members instead of the level layout's nine ranges).
    """
    k = {name: service_key(client.prefix, service, name)
         for name in ("seq", "results_at", "idem_at", "dead", "ready", "meta", "data", "prio")}
    r = client.redis
    try:
        pipe = r.pipeline(transaction=False)
        pipe.get(k["seq"])
        pipe.zrange(k["results_at"], -1, -1, withscores=True)
        pipe.zrange(k["idem_at"], -1, -1, withscores=True)
        pipe.zrange(k["dead"], -1, -1, withscores=True)
        pipe.lindex(k["ready"], 0)
        pipe.zrange(k["prio"], 0, 0)
        pipe.zrange(k["prio"], -1, -1)
        seq, results, idem, dead, head, first, last = pipe.execute()
        # The head may be the wake marker (no valid id: it has no record).
        newest = [i for i in [head, *first, *last] if i is not None]
        # An event never delivered has no record: its data value carries its creation.
        created: list[tuple[Any, Any]] = []
        if newest:  # both in one round trip
            pipe = r.pipeline(transaction=False)
            pipe.hmget(k["meta"], newest)
            pipe.hmget(k["data"], newest)
            created = list(zip(*pipe.execute(), strict=True))
    except REDIS_ERRORS as exc:
        raise translate(exc, k["seq"]) from exc
    seen: list[float] = []
    if seq is not None and int(seq) >= 10**15:  # a clock-based token, not a tiny test one
        seen.append(int(seq) / 1000)
    if results:
        seen.append(results[0][1] - st.get("policy.result_ttl_ms", 0))
    if idem:
        seen.append(idem[0][1] - st.get("policy.idem_ttl_ms", 0))
    if dead:
        seen.append(dead[0][1])
    for rec, data in created:
        when = created_ms(rec, data)
        if when is not None:
            seen.append(when)
    return int(max(seen)) if seen else None


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group(cls=HomingGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def services(ctx: click.Context, as_json: bool) -> None:
    """List the registered services: what each holds and its last activity.

    The daemons sweep every registered service (slowly: see docs/architecture.md);
    `homing services forget NAME` removes one that holds nothing.
    """
    if ctx.invoked_subcommand is not None:
        return
    s: Settings = ctx.obj
    client = s.client()
    rows = []
    for name in client.services():
        st = client.stats(name)
        rows.append({"service": name, **{h: st[h] for h in HOLDS},
                     "last_activity_ms": last_activity(client, name, st)})
    if as_json:
        click.echo(json_text(rows, indent=2))
    elif not rows:
        click.echo(f"no services registered under prefix {s.prefix!r}")
    else:
        click.echo(table(["service", *(h.replace("_", " ") for h in HOLDS), "last activity"],
                         [[r["service"], *(r[h] for h in HOLDS), _when(r["last_activity_ms"])]
                          for r in rows]))


@services.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.pass_obj
def forget(s: Settings, names: tuple[str, ...]) -> None:
    """Remove services that hold nothing from the registry (and their policy, totals).

    Refused (SERVICE_NOT_EMPTY, exit 2, nothing written) for a service that
    still holds events, timers, dead letters, results or idempotency keys.
    """
    client = s.client()
    registered = set(client.services())
    for name in names:
        client.forget(name)
        click.echo(f"forgot {name}" if name in registered else f"{name} was not registered")
