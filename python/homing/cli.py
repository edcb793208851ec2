"""The ``homing`` command line: produce, inspect and administer queues, run workers and daemons.

Every command takes ``--redis-url`` and ``--prefix`` (environment ``HOMING_REDIS_URL`` and
``HOMING_PREFIX``), before the subcommand (``homing --prefix x stats``) or after it
(``homing stats --prefix x``). Errors reported by homing print as ``error: CODE: message``
on stderr and exit with status 2, like click's usage errors. See docs/cli.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import click

from .client import DEFAULT_URL
from .cliutil import (
    HomingGroup,
    Settings,
    clip,
    json_text,
    load_consumer,
    on_signals,
    payload_value,
    setup_logging,
    store,
    table,
)
from .daemons import Distributor, Scheduler
from .errors import HomingError
from .manifest import DEFAULT_PREFIX, POLICY_DEFAULTS
from .worker import Worker

log = logging.getLogger("homing.cli")
BATCH = 1000  # the largest batch a script accepts; bigger jobs loop
QUEUES = ("ready", "in_flight", "timers", "retrying", "expired", "dead")
TOTALS = ("enqueued", "timers", "cancelled", "delivered", "completed", "released", "failed",
          "expired", "retried", "dead", "requeued", "purged", "orphaned")


@click.group(cls=HomingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar="HOMING_REDIS_URL", default=DEFAULT_URL, show_default=True,
              callback=store("url"), expose_value=False, help="Redis (standalone or Cluster).")
@click.option("--prefix", envvar="HOMING_PREFIX", default=DEFAULT_PREFIX, show_default=True,
              callback=store("prefix"), expose_value=False, help="Key prefix of every key.")
@click.option("--log-level", envvar="HOMING_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Logging to stderr (workers and daemons).")
@click.version_option(package_name="homing")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """homing: guaranteed-delivery producer/consumer queues on Redis."""
    ctx.call_on_close(ctx.ensure_object(Settings).close)
    setup_logging(log_level)


# -- producing -----------------------------------------------------------------------


@main.command()
@click.argument("service")
@click.argument("payload")
@click.option("--key", help="Idempotency key: a repeat within idem_ttl_ms returns the first id.")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Enqueue N copies.")
@click.pass_obj
def enqueue(s: Settings, service: str, payload: str, key: str | None, count: int) -> None:
    """Enqueue PAYLOAD (JSON, or else a plain string) to SERVICE; prints the event id(s)."""
    if key is not None and count > 1:
        raise click.UsageError("--key names one event; it cannot be combined with --count")
    value, client = payload_value(payload), s.client()
    if count == 1:
        click.echo(client.enqueue(service, value, key=key))
        return
    for start in range(0, count, BATCH):
        for event_id in client.enqueue_many(service, [value] * min(BATCH, count - start)):
            click.echo(event_id)


def _parse_at(text: str) -> dt.datetime:
    try:  # Python 3.10's fromisoformat does not take the common "Z" suffix
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint="--at") from exc
    return when if when.tzinfo else when.astimezone()  # naive: the local time zone


@main.command()
@click.argument("service")
@click.argument("payload")
@click.option("--delay-ms", type=click.IntRange(min=0), help="Fire N ms from now (Redis clock).")
@click.option("--at", "at_text", metavar="ISO8601",
              help="Fire at this time, e.g. 2030-01-01T09:00:00Z (no zone: local time).")
@click.option("--key", help="Idempotency key.")
@click.pass_obj
def timer(s: Settings, service: str, payload: str, delay_ms: int | None, at_text: str | None,
          key: str | None) -> None:
    """Create a timer: PAYLOAD becomes ready on SERVICE later; prints the timer id."""
    if (delay_ms is None) == (at_text is None):
        raise click.UsageError("give exactly one of --delay-ms or --at")
    at = _parse_at(at_text) if at_text is not None else None
    click.echo(s.client().create_timer(service, payload_value(payload), delay_ms=delay_ms, at=at,
                                       key=key))


@main.command("cancel-timer")
@click.argument("service")
@click.argument("timer_id", metavar="ID")
@click.pass_obj
def cancel_timer(s: Settings, service: str, timer_id: str) -> None:
    """Cancel a pending timer; exit status 1 if it had already fired or never existed."""
    if s.client().cancel_timer(service, timer_id):
        click.echo(f"cancelled {timer_id}")
    else:
        click.echo(f"timer {timer_id} was not pending (already fired, or unknown)", err=True)
        sys.exit(1)


@main.command()
@click.argument("service")
@click.argument("event_id", metavar="ID")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait [default: forever].")
@click.pass_obj
def result(s: Settings, service: str, event_id: str, timeout: float | None) -> None:
    """Wait for the consumer's result of an event and print it as JSON."""
    click.echo(json_text(s.client().result(service, event_id, timeout=timeout)))


# -- inspecting and administering ----------------------------------------------------


@main.command()
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def stats(s: Settings, services: tuple[str, ...], as_json: bool) -> None:
    """Queue lengths and running totals per service (all registered services by default)."""
    client = s.client()
    data = {name: client.stats(name) for name in (services or client.services())}
    if as_json:
        click.echo(json_text(data, indent=2))
        return
    if not data:
        click.echo(f"no services registered under prefix {s.prefix!r}")
        return
    click.echo(table(["service", *(q.replace("_", " ") for q in QUEUES)],
                      [[name, *(st[q] for q in QUEUES)] for name, st in data.items()]))
    found = {k[6:] for st in data.values() for k in st if k.startswith("total.")}
    totals = [t for t in TOTALS if t in found] + sorted(found - set(TOTALS))
    if totals:
        click.echo("\ntotals since the service was created")
        click.echo(table(["service", *totals],
                          [[name, *(st.get(f"total.{t}", 0) for t in totals)]
                           for name, st in data.items()]))


def _policy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for field in reversed(POLICY_DEFAULTS):
        kind = float if field == "backoff_jitter" else int
        f = click.option(f"--{field.replace('_', '-')}", field, type=kind, default=None,
                         help=f"Default {POLICY_DEFAULTS[field]}.")(f)
    return f


@main.command()
@click.argument("service")
@_policy_options
@click.option("--reset", multiple=True, type=click.Choice(list(POLICY_DEFAULTS)),
              help="Remove an override (back to the default); repeatable.")
@click.pass_obj
def configure(s: Settings, service: str, reset: tuple[str, ...], **fields: float | None) -> None:
    """Override SERVICE's policy; prints the effective policy (no options: just print it)."""
    changes: dict[str, float | None] = {k: v for k, v in fields.items() if v is not None}
    changes.update(dict.fromkeys(reset))
    client = s.client()
    if changes:
        policy = client.configure(service, **changes)
    else:  # read-only: stats does not create the service the way configure would
        policy = {k[7:]: v for k, v in client.stats(service).items() if k.startswith("policy.")}
    for name, value in policy.items():
        click.echo(f"{name:<16} {value}")


@main.group()
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
        with click.progressbar(length=total, label=f"{verb} {service}", file=sys.stderr) as bar:
            while done < total:
                n, remaining = action(service, count=min(BATCH, total - done))
                if n == 0:
                    break
                done += n
                bar.update(n)
    click.echo(f"{verb} {done} dead letters of {service}; {remaining} remain")


def _selection(ids: tuple[str, ...], all_: bool) -> None:
    if bool(ids) == all_:
        raise click.UsageError("name the dead letters' IDS, or give --all (not both)")


@dead.command("requeue")
@click.argument("service")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue every dead letter.")
@click.pass_obj
def dead_requeue(s: Settings, service: str, ids: tuple[str, ...], all_: bool) -> None:
    """Move dead letters back to SERVICE's ready queue, attempts reset."""
    _selection(ids, all_)
    client = s.client()
    total = client.dead_list(service, 0, 1).total if all_ else 0
    _bulk(s, service, ids, total, "requeued", client.dead_requeue)


@dead.command("purge")
@click.argument("service")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Purge every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def dead_purge(s: Settings, service: str, ids: tuple[str, ...], all_: bool, yes: bool) -> None:
    """Delete dead letters of SERVICE for good (asks first unless --yes)."""
    _selection(ids, all_)
    client = s.client()
    total = client.dead_list(service, 0, 1).total if all_ else 0
    if not yes:
        click.confirm(f"Delete {total if all_ else len(ids)} dead letters of {service} for good?",
                      abort=True)
    _bulk(s, service, ids, total, "purged", client.dead_purge)


# -- running -------------------------------------------------------------------------


@main.command()
@click.argument("target", metavar="MODULE:CONSUMER")
@click.option("--service", required=True, help="The service to consume.")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Handler threads, each with its own consumer instance and state.")
@click.option("--prefetch", type=click.IntRange(1, BATCH), default=100, show_default=True,
              help="Events leased ahead of the handlers.")
@click.option("--lease-ms", type=click.IntRange(min=1), help="[default: the service's policy]")
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds running handlers get to finish on SIGTERM/SIGINT.")
@click.pass_obj
def worker(s: Settings, target: str, service: str, concurrency: int, prefetch: int,
           lease_ms: int | None, grace: float) -> None:
    """Run a consumer class against SERVICE until SIGTERM/SIGINT, then stop gracefully."""
    factory = load_consumer(target)
    w = Worker(s.client(), service, factory, concurrency=concurrency, prefetch=prefetch,
               lease_ms=lease_ms, grace=grace)
    log.info("worker %s on %s (pid %d, concurrency %d)", target, service, os.getpid(), concurrency)
    with on_signals(w.stop):
        st = w.run()
    errors = "".join(f" {code}={n}" for code, n in sorted(st.errors.items()))
    click.echo(f"worker {service} stopped: received={st.received} completed={st.completed} "
               f"failed={st.failed} released={st.released} lost={st.lost}{errors}")


def _run_daemons(s: Settings, kinds: Sequence[type[Scheduler | Distributor]],
                 interval: float) -> None:
    client = s.client()
    client.services()  # fail fast on a wrong URL; later outages are retried by the loops
    stop = threading.Event()
    daemons = [kind(client, interval=interval) for kind in kinds]
    threads = [threading.Thread(target=d.run, args=(stop,), name=f"homing-{d.name}", daemon=True)
               for d in daemons]
    with on_signals(stop.set):
        for t in threads:
            t.start()
        while not stop.wait(0.5) and all(t.is_alive() for t in threads):
            pass
        crashed = not stop.is_set()  # a loop died of an unexpected error (logged by threading)
        stop.set()
        for t in threads:
            t.join()
    for d in daemons:
        click.echo(f"{d.name} stopped after moving {d.moved} events")
    if crashed:
        raise click.ClickException("a daemon stopped unexpectedly; see the traceback above")


_interval = click.option("--interval", type=click.FloatRange(min=0.001), default=0.05,
                         show_default=True, help="Seconds to sleep when a sweep found nothing.")


@main.command()
@_interval
@click.pass_obj
def scheduler(s: Settings, interval: float) -> None:
    """Promote due timers and retries and reclaim expired leases, until SIGTERM/SIGINT."""
    _run_daemons(s, [Scheduler], interval)


@main.command()
@_interval
@click.pass_obj
def distributor(s: Settings, interval: float) -> None:
    """Route reclaimed events to retry backoff or dead letters, until SIGTERM/SIGINT."""
    _run_daemons(s, [Distributor], interval)


@main.command()
@_interval
@click.pass_obj
def daemon(s: Settings, interval: float) -> None:
    """Run a scheduler and a distributor, until SIGTERM/SIGINT."""
    _run_daemons(s, [Scheduler, Distributor], interval)


@main.command()
@click.option("--duration", type=click.FloatRange(min=1), help="Seconds [default: until Ctrl-C].")
@click.option("--host", default="127.0.0.1", show_default=True, help="The weather site's host.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="The weather site's port (0: any free port).")
@click.option("--rate", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Weather reports per second.")
@click.option("--kill-every", type=click.IntRange(min=0), default=20, show_default=True,
              help="Kill the consumer mid-event after every N reports it handled (0: never).")
@click.pass_obj
def demo(s: Settings, duration: float | None, host: str, port: int, rate: float,
         kill_every: int) -> None:
    """The weather-station demo: a producer, a web site, a consumer process killed mid-event."""
    from .demo.run import run_demo  # only the demo needs http.server and subprocess

    sys.exit(run_demo(s.client(), s.url, s.prefix, duration=duration, host=host, port=port,
                      rate=rate, kill_every=kill_every))


def _unavailable(name: str, exc: ImportError) -> click.Command:
    @click.command(name, help=f"(unavailable: {exc})")
    def command() -> None:
        raise click.ClickException(f"the {name} command cannot be loaded: {exc}")
    return command


# The conformance runner lives in homing/conformance/ and is developed separately. The rest
# of the CLI must work without it (before it lands, or in a trimmed install), so a missing
# module is not an error; a module that exists but fails to import still gets a command that
# says why instead of a silently missing one.
try:
    from .conformance.command import conformance as _conformance
except ImportError as _exc:
    if _exc.name not in ("homing.conformance", "homing.conformance.command"):
        main.add_command(_unavailable("conformance", _exc))
else:
    main.add_command(_conformance)
