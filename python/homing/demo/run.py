"""``homing demo``: wire the weatherman, the site, the consumer process and the daemons.

The story it prints: reports flow from the weatherman through homing to the site; every
``kill_every`` reports the consumer process is SIGKILLed half-way through a POST and a
fresh one started; the event it held comes back and is posted. At the end
(``duration``, or Ctrl-C) the demo stops producing, waits until every event it sent was
posted, stops the consumer gracefully and prints the summary: nothing sent is lost.
"""

from __future__ import annotations

import errno
import logging
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import click

from ..client import Client
from ..cliutil import safe_url
from ..daemons import Distributor, Scheduler
from .site import WeatherSite
from .supervisor import Supervisor
from .weatherman import SERVICE, Weatherman

# A short lease and backoff make the redelivery visible within seconds; many attempts keep
# an event that is unlucky enough to be killed more than once out of the dead letters.
POLICY = {"lease_ms": 2000, "backoff_base_ms": 200, "backoff_max_ms": 1000,
          "backoff_jitter": 0.2, "max_attempts": 20}
DRAIN_TIMEOUT = 20.0  # seconds to wait for the last events (forecast timers fire after 3 s)
# The demo's own key prefix unless one is given: it reconfigures its service, which must
# never be a real service of the same name under the default prefix.
DEMO_PREFIX = "homing-demo"


def say(text: str) -> None:
    click.echo(f"[demo {time.strftime('%H:%M:%S')}] {text}")


def run_demo(client: Client, url: str, prefix: str, *, duration: float | None, host: str,
             port: int, rate: float, kill_every: int) -> int:
    """Run the demo; returns the exit status (1 if any event sent was not delivered)."""
    run = uuid.uuid4().hex[:8]
    logging.getLogger("homing.daemons").setLevel(logging.WARNING)  # the demo tells the story
    say(f"Redis {safe_url(url)}, key prefix {prefix!r}"
        + (" (the demo's own; --prefix to change it)" if prefix == DEMO_PREFIX else "")
        + f": service {SERVICE!r} gets a 2 s lease and a short backoff")
    try:  # before anything is written: a taken port must not leave the service changed
        site = WeatherSite(host, port, run).start()
    except OSError as exc:
        hint = (f"port {port} is in use; --port 0 picks a free one"
                if exc.errno == errno.EADDRINUSE else "--port 0 picks a free port")
        raise click.BadParameter(f"cannot serve the weather site on {host}:{port}: {exc} "
                                 f"({hint})", param_hint="--port") from exc
    client.configure(SERVICE, **POLICY)
    before = _totals(client)
    say(f"weather site: {site.url}  (open it in a browser; it refreshes every 2 s)")
    interrupts = _Interrupts()
    stop_daemons, stop_producing = threading.Event(), threading.Event()
    daemons = [Scheduler(client), Distributor(client)]
    threads = [threading.Thread(target=d.run, args=(stop_daemons,), daemon=True) for d in daemons]
    weatherman = Weatherman(client, run, rate)
    threads.append(threading.Thread(target=weatherman.run, args=(stop_producing,), daemon=True))
    with tempfile.TemporaryDirectory(prefix="homing-demo-") as tmp, interrupts:
        sup = Supervisor(url, prefix, site, Path(tmp), kill_every, say)
        try:
            sup.spawn()
            for t in threads:
                t.start()
            say(f"weatherman sends {rate:g} reports/s to service {SERVICE!r} (prefix "
                f"{prefix!r}); " + (f"running {duration:g} s" if duration else "Ctrl-C to stop"))
            end = time.monotonic() + duration if duration else float("inf")
            while time.monotonic() < end and not interrupts.count:
                sup.poll()
                time.sleep(0.1)
            stop_producing.set()
            threads[-1].join()
            sent = weatherman.sent
            say(f"stopped producing after {len(sent)} events; waiting (at most "
                f"{DRAIN_TIMEOUT:.0f} s) until each one reached the site")
            drain_end = time.monotonic() + DRAIN_TIMEOUT
            while (site.delivered(sent) < len(sent) and time.monotonic() < drain_end
                   and interrupts.count < 2):
                sup.poll(stall=False)
                time.sleep(0.1)
            sup.poll(stall=False)
        finally:
            sup.stop()
            stop_daemons.set()
            for t in threads[:-1]:
                t.join(5)
            site.stop()
    return _summary(client, site, sup, sent, before)


class _Interrupts:
    """Count SIGINT/SIGTERM: the first one ends production, a second one the wait."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        say("interrupted: finishing up" if self.count == 1 else "interrupted again: giving up")

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._saved.items():
            signal.signal(sig, old)


def _totals(client: Client) -> dict[str, int]:
    return {k[6:]: int(v) for k, v in client.stats(SERVICE).items() if k.startswith("total.")}


def _summary(client: Client, site: WeatherSite, sup: Supervisor, sent: list[str],
             before: dict[str, int]) -> int:
    snap = site.snapshot()
    delivered = site.delivered(sent)
    lost = len(sent) - delivered
    after = _totals(client)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("expired", "retried", "dead")}
    say(f"consumers killed mid-event: {sup.kills}; killed events redelivered and posted: "
        f"{len(sup.redelivered)}; still waiting: {len(sup.waiting)}")
    say(f"site: {snap['posts']} posts, {snap['broken']} cut off half-way, "
        f"{snap['posts'] - snap['stale'] - snap['events']} duplicates "
        f"(at-least-once), latest report per city kept by sequence number")
    say(f"homing this run: {delta['expired']} leases expired, {delta['retried']} retried, "
        f"{delta['dead']} dead-lettered")
    click.echo(f"summary: sent={len(sent)} delivered={delivered} "
               f"redelivered={snap['redelivered']} lost={lost}")
    if lost:
        say(f"LOST {lost} events: homing failed its guarantee (or the wait was cut short)")
    return 1 if lost else 0
