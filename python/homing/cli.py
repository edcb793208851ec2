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
from collections.abc import Callable
from typing import Any

import click

from . import clistats, durability, health
from .clidead import dead
from .client import DEFAULT_URL
from .cligroups import group
from .clilimits import limits, limits_table
from .clirecurring import recurring
from .cliservices import services
from .cliutil import (
    BATCH,
    REQUIRE_DURABLE_HELP,
    HomingGroup,
    Interrupted,
    Settings,
    json_text,
    load_consumer,
    on_signals,
    priority_option,
    read_payload,
    require_durable,
    setup_logging,
    store,
    string_option,
    table,
)
from .conformance.command import conformance
from .daemons import run_daemons
from .errors import HomingError
from .manifest import DEFAULT_PREFIX, POLICY, POLICY_DEFAULTS
from .web.command import dashboard
from .worker import Worker

log = logging.getLogger("homing.cli")
INTERRUPTED = 130  # exit status of a worker stopped by a second signal (128 + SIGINT)
HUNG = 3  # exit status of a worker that stopped itself: every slot hung past the timeout


@click.group(cls=HomingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--redis-url", envvar="HOMING_REDIS_URL", default=DEFAULT_URL, show_default=True,
              callback=store("url"), expose_value=False, help="Redis (standalone or Cluster).")
@click.option("--prefix", envvar="HOMING_PREFIX", default=DEFAULT_PREFIX, show_default=True,
              callback=store("prefix"), expose_value=False, help="Key prefix of every key.")
@click.option("--tls-ca", envvar="HOMING_TLS_CA", type=click.Path(exists=True, dir_okay=False),
              callback=store("tls_ca"), expose_value=False,
              help="CA certificate (PEM) to verify the server by; with a rediss:// URL.")
@click.option("--tls-cert", envvar="HOMING_TLS_CERT", type=click.Path(exists=True, dir_okay=False),
              callback=store("tls_cert"), expose_value=False,
              help="Client certificate (PEM), for a server that requires one.")
@click.option("--tls-key", envvar="HOMING_TLS_KEY", type=click.Path(exists=True, dir_okay=False),
              callback=store("tls_key"), expose_value=False,
              help="The client certificate's private key (PEM).")
@click.option("--require-durable", envvar="HOMING_REQUIRE_DURABLE", is_flag=True,
              callback=require_durable, expose_value=False, help=REQUIRE_DURABLE_HELP)
@click.option("--wait-replicas", envvar="HOMING_WAIT_REPLICAS", type=click.IntRange(0, 1000),
              default=0, show_default=True, callback=store("wait_replicas"), expose_value=False,
              help="After each write a producer or an acknowledgement makes, WAIT until N "
                   "replicas have it; fewer is a NOT_REPLICATED error for producers "
                   "(docs/failover.md).")
@click.option("--wait-timeout-ms", envvar="HOMING_WAIT_TIMEOUT_MS",
              type=click.IntRange(1, 86_400_000), default=1000, show_default=True,
              callback=store("wait_timeout_ms"), expose_value=False,
              help="How long each WAIT may take (below the 10 s socket timeout).")
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
@priority_option
@string_option
@click.pass_obj
def enqueue(s: Settings, service: str, payload: str, key: str | None, count: int,
            priority: int, as_string: bool) -> None:
    """Enqueue PAYLOAD to SERVICE; prints the event id(s).

    PAYLOAD is JSON ('{"city": "Oslo"}', 42, '"text"'); a word that does not look like
    JSON (hello) is sent as a plain string. '-' reads it from stdin, '@FILE' from a file.
    --priority 0..9: ready events of a higher level are delivered first.
    """
    if key is not None and count > 1:
        raise click.UsageError("--key names one event; it cannot be combined with --count")
    value, client = read_payload(payload, as_string), s.client()
    if count == 1:
        click.echo(client.enqueue(service, value, key=key, priority=priority))
        return
    for start in range(0, count, BATCH):
        for event_id in client.enqueue_many(service, [value] * min(BATCH, count - start),
                                            priority=priority):
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
@priority_option
@string_option
@click.pass_obj
def timer(s: Settings, service: str, payload: str, delay_ms: int | None, at_text: str | None,
          key: str | None, priority: int, as_string: bool) -> None:
    """Create a timer: PAYLOAD becomes ready on SERVICE later; prints the timer id.

    PAYLOAD is read as for enqueue: JSON, '-' for stdin, '@FILE' for a file.
    """
    if (delay_ms is None) == (at_text is None):
        raise click.UsageError("give exactly one of --delay-ms or --at")
    at = _parse_at(at_text) if at_text is not None else None
    value = read_payload(payload, as_string)
    click.echo(s.client().create_timer(service, value, delay_ms=delay_ms, at=at, key=key,
                                       priority=priority))


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
@click.pass_obj
def cancel(s: Settings, service: str, event_id: str) -> None:
    """Cancel a queued event (ready, waiting for a retry, or a timer); exit 1 if it was not."""
    done, state = s.client().cancel(service, event_id)
    if done:
        click.echo(f"cancelled {event_id} ({state})")
    else:
        click.echo(f"{event_id} was not cancelled: it is {state}", err=True)
        sys.exit(1)


@main.command()
@click.argument("service")
@click.argument("event_id", metavar="ID")
@click.option("--timeout", type=click.FloatRange(min=0), help="Seconds to wait [default: forever].")
@click.pass_obj
def result(s: Settings, service: str, event_id: str, timeout: float | None) -> None:
    """Wait for the consumer's result of an event and print it as JSON."""
    click.echo(json_text(s.client().result(service, event_id, timeout=timeout)))


@main.command()
@click.argument("service")
@click.argument("event_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(s: Settings, service: str, event_id: str, as_json: bool) -> None:
    """Where an event stands now (no waiting); exit 1 if homing has no trace of it."""
    st = s.client().status(service, event_id)
    if as_json:
        out: dict[str, Any] = {"state": st.state}
        if st.state == "done":
            out["result"] = st.result
        elif st.state in ("dead", "pending"):
            out.update(detail=st.detail, attempt=st.attempt)
            if st.state == "pending":
                out.update(snoozes=st.snoozes, progress=st.progress, priority=st.priority)
        click.echo(json_text(out))
    elif st.state == "done":
        click.echo(f"done: {json_text(st.result)}")
    elif st.state == "dead":
        click.echo(f"dead: {st.detail} (attempt {st.attempt})")
    elif st.state == "pending":
        click.echo(f"pending: {st.detail} (attempt {st.attempt}, snoozes {st.snoozes}, "
                   f"progress {st.progress}%, priority {st.priority})")
    if st.state == "unknown":
        if not as_json:
            click.echo(f"{event_id} is unknown to {service} (never enqueued, or its "
                       "result is no longer kept)", err=True)
        sys.exit(1)


# -- inspecting and administering ----------------------------------------------------


@main.command()
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def stats(s: Settings, services: tuple[str, ...], as_json: bool) -> None:
    """Queue lengths and running totals per service (all registered services by default).

    The last line says whether Redis keeps what it acknowledges (eviction policy,
    persistence). Warnings go to stderr: a service that is not registered, a test
    clock, no daemon.
    """
    client = s.client()
    data = {name: client.stats(name) for name in (services or client.services())}
    reports = client.check_durability()
    if as_json:
        click.echo(json_text(clistats.for_json(data, reports), indent=2))
    elif not data:
        click.echo(f"no services registered under prefix {s.prefix!r}")
    else:
        queues = clistats.QUEUES
        # A paused service says so beside its name: its ready events wait for resume.
        click.echo(table(["service", *(q.replace("_", " ") for q in queues)],
                         [[name + (" (paused)" if st.get("policy.paused") else ""),
                           *(st[q] for q in queues)] for name, st in data.items()]))
        if (limited := limits_table(data)) is not None:
            click.echo(f"\nlimits, across every worker\n{limited}")
        for title, text in clistats.totals_tables(data):
            click.echo(f"\n{title}\n{text}")
    if not as_json:
        click.echo(f"\n{durability.summary(reports)}")
    for line in clistats.warnings(client, s.prefix, services, data):
        click.echo(line, err=True)


@main.command()
@click.argument("service")
@click.pass_obj
def pause(s: Settings, service: str) -> None:
    """Pause SERVICE: workers get nothing until resume; producers, timers and leases go on."""
    s.client().pause(service)
    click.echo(f"paused {service}")


@main.command()
@click.argument("service")
@click.pass_obj
def resume(s: Settings, service: str) -> None:
    """Resume a paused SERVICE."""
    s.client().resume(service)
    click.echo(f"resumed {service}")


def _policy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """One option per policy field of lua/keys.json, typed by the field's ``whole``.

    The range is left to the configure script, which refuses out-of-range values
    with INVALID_ARGUMENT and writes nothing (one rule, for every client).
    """
    for field, spec in reversed(POLICY.items()):
        kind = int if spec["whole"] else float
        f = click.option(f"--{field.replace('_', '-')}", field, type=kind, default=None,
                         help=f"{spec['doc'][0].upper()}{spec['doc'][1:]}. "
                              f"Default {spec['default']}.")(f)
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


main.add_command(dead)
main.add_command(group)
main.add_command(limits)
main.add_command(dashboard)  # homing.web.command: imports the web extra only when it runs
main.add_command(recurring)
main.add_command(services)


# -- running -------------------------------------------------------------------------

_readonly_give_up = click.option(
    "--readonly-give-up", envvar="HOMING_READONLY_GIVE_UP", type=click.FloatRange(min=0),
    default=60.0, show_default=True,
    help="Seconds of nothing but READONLY replies (the Redis is a replica) before giving up "
         "with exit status 2, instead of retrying for ever.")


def _http_options(f: Any) -> Any:
    """--health-port, --metrics-port, --http-host (docs/operations.md)."""
    f = click.option("--http-host", envvar="HOMING_HTTP_HOST", default="0.0.0.0",  # noqa: S104
                     show_default=True, help="Address the health and metrics ports bind.")(f)
    f = click.option("--metrics-port", envvar="HOMING_METRICS_PORT", type=click.IntRange(0, 65535),
                     help="Serve Prometheus /metrics on this port (needs homing[metrics]).")(f)
    return click.option("--health-port", envvar="HOMING_HEALTH_PORT",
                        type=click.IntRange(0, 65535),
                        help="Serve /healthz, /readyz (200 while connected and beating, else "
                             "503) and /livez on this port.")(f)


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
@click.option("--handler-timeout-ms", type=click.IntRange(0, 86_400_000),
              help="Fail an event whose handler runs longer; 0: no limit "
                   "[default: the service's handler_timeout_ms policy]")
@_readonly_give_up
@_http_options
@click.pass_obj
def worker(s: Settings, target: str, service: str, concurrency: int, prefetch: int,
           lease_ms: int | None, grace: float, handler_timeout_ms: int | None,
           readonly_give_up: float, health_port: int | None, metrics_port: int | None,
           http_host: str) -> None:
    """Run a consumer class against SERVICE until SIGTERM/SIGINT, then stop gracefully.

    A second signal stops at once: the events still held are released (redelivered
    next), the summary is printed and the exit status is 130. A worker whose handlers
    all hang past the handler timeout stops by itself with exit status 3, so that its
    supervisor restarts it. One that met only READONLY for --readonly-give-up seconds
    (a replica) stops, prints the summary and an error line, and exits with status 2.
    """
    factory = load_consumer(target)
    timeout = None if handler_timeout_ms is None else handler_timeout_ms / 1000
    w = Worker(s.client(), service, factory, concurrency=concurrency, prefetch=prefetch,
               lease_ms=lease_ms, grace=grace, handler_timeout=timeout,
               readonly_give_up=readonly_give_up)
    endpoints, _ = health.serve(w.client, health.worker_beating(w), host=http_host,
                                health_port=health_port, metrics_port=metrics_port,
                                services=[service], worker=w)
    log.info("worker %s on %s (pid %d, concurrency %d)", target, service, os.getpid(), concurrency)
    how = "stopped"
    try:
        with on_signals(w.stop, interrupt_again=True):
            w.run()
    except Interrupted as exc:  # a third signal now exits at once, without releasing
        log.warning("%s again: releasing the events still held and exiting", exc)
        how = "interrupted"
        w.release_held()
    except HomingError:
        if w.gave_up is None:
            raise
        how = "gave up"
    if endpoints is not None:
        endpoints.close()
    if w.hung and how == "stopped":
        how = "hung"
    st = w.stats
    errors = "".join(f" {code}={n}" for code, n in sorted(st.errors.items()))
    unreplicated = f" unreplicated={st.unreplicated}" if st.unreplicated else ""
    click.echo(f"worker {service} {how}: received={st.received} completed={st.completed} "
               f"failed={st.failed} released={st.released} lost={st.lost} "
               f"timed_out={st.timed_out}{unreplicated}{errors}")
    if w.gave_up is not None:
        raise w.gave_up  # one line on stderr and exit 2, as every homing error
    if how == "interrupted":
        sys.exit(INTERRUPTED)
    if how == "hung":
        sys.exit(HUNG)


def _run_daemons(s: Settings, scheduler: bool, distributor: bool, interval: float,
                 readonly_give_up: float, http: dict[str, Any]) -> None:
    """The daemon commands: ``daemons.run_daemons`` until SIGTERM/SIGINT, its health and
    metrics ports beside it, then what each daemon moved."""
    client = s.client()
    client.services()  # fail fast on a wrong URL; later outages are retried by the loops
    stop = threading.Event()
    endpoints: list[Any] = []

    def started(daemons: list[Any], threads: list[threading.Thread]) -> None:
        served, _ = health.serve(
            client, health.daemons_beating(daemons, threads), host=http["http_host"],
            health_port=http["health_port"], metrics_port=http["metrics_port"])
        endpoints.append(served)

    try:
        with on_signals(stop.set):
            run_daemons(client, stop, scheduler=scheduler, distributor=distributor,
                        interval=interval, readonly_give_up=readonly_give_up, started=started,
                        report=lambda d: click.echo(f"{d.name} stopped after moving "
                                                    f"{d.moved} events"))
    except RuntimeError as exc:  # a loop died of an unexpected error (logged by threading)
        raise click.ClickException(f"{exc}; see the traceback above") from exc
    finally:
        for served in endpoints:
            if served is not None:
                served.close()


_interval = click.option(
    "--interval", type=click.FloatRange(min=0.001), default=0.05, show_default=True,
    help="Seconds between the distributor's looks for hints, and between the scheduler's looks "
         "at a service on a test clock. (The scheduler otherwise sleeps until the next due "
         "time, woken when earlier work is added.)")


@main.command()
@_interval
@_readonly_give_up
@_http_options
@click.pass_obj
def scheduler(s: Settings, interval: float, readonly_give_up: float, **http: Any) -> None:
    """Promote due timers and retries and reclaim expired leases, until SIGTERM/SIGINT."""
    _run_daemons(s, True, False, interval, readonly_give_up, http)


@main.command()
@_interval
@_readonly_give_up
@_http_options
@click.pass_obj
def distributor(s: Settings, interval: float, readonly_give_up: float, **http: Any) -> None:
    """Route reclaimed events to retry backoff or dead letters, until SIGTERM/SIGINT."""
    _run_daemons(s, False, True, interval, readonly_give_up, http)


@main.command()
@_interval
@_readonly_give_up
@_http_options
@click.pass_obj
def daemon(s: Settings, interval: float, readonly_give_up: float, **http: Any) -> None:
    """Run a scheduler and a distributor, until SIGTERM/SIGINT."""
    _run_daemons(s, True, True, interval, readonly_give_up, http)


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
    """The weather-station demo: a producer, a web site, a consumer process killed mid-event.

    It runs under its own prefix, homing-demo, unless --prefix or HOMING_PREFIX names one.
    """
    from .demo.run import DEMO_PREFIX, run_demo  # only the demo needs http.server etc.

    if "prefix" not in s.explicit:  # keep the demo's keys apart from real services
        s.prefix = DEMO_PREFIX
    sys.exit(run_demo(s.client(), s.url, s.prefix, duration=duration, host=host, port=port,
                      rate=rate, kill_every=kill_every))


main.add_command(conformance)
