"""Prometheus metrics for homing: queue gauges, service counters, handler and timer histograms.

Optional: ``pip install 'homing[metrics]'`` brings ``prometheus_client``, imported
only when this module is. ``homing worker --metrics-port`` and ``homing daemon
--metrics-port`` serve ``/metrics``; ``Metrics.asgi_app()`` mounts the same in an
ASGI application (the dashboard does), ``Metrics.exposition()`` gives the text
for any other server.

The queue numbers are read at scrape time, never cached, with the bounded
``stats`` script: one call per service (a few O(1) reads and the service's
small counters hash), for at most ``max_services`` services (registry order,
sorted), plus one SMEMBERS and one TIME per scrape. Every series is labelled
``service``; the names are listed in docs/operations.md#metrics. The counters
are the service's running totals kept in Redis by the scripts, so they are the
same whichever process is scraped: aggregate them with ``max by (service)``,
not ``sum``, when several workers export one service.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .errors import HomingError
from .types import Event

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("homing.metrics")

# (stats field, metric name suffix, help): gauges of the queue's parts, now.
GAUGES: tuple[tuple[str, str, str], ...] = (
    ("ready", "events_ready", "Events ready for delivery, at every priority level."),
    ("in_flight", "events_in_flight", "Events leased by a consumer (reserved or started)."),
    ("timers", "events_timers", "Timers not yet due."),
    ("retrying", "events_retrying", "Events waiting out a retry backoff."),
    ("expired", "events_expired_pending",
     "Reclaimed leases waiting for the distributor (retry or dead letter)."),
    ("dead", "events_dead", "Dead letters kept (never dropped without a purge)."),
    ("results", "results_kept", "Results of completed events kept for result_ttl_ms."),
)
# (counter field of the service's counters hash, metric name, help): running totals.
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("enqueued", "events_enqueued", "Events added (enqueue, enqueue_many)."),
    ("timers", "timers_created", "Timers created."),
    ("delivered", "events_delivered", "Deliveries (leases handed out)."),
    ("completed", "events_completed", "Events completed (acknowledged)."),
    ("failed", "events_failed", "Handler failures reported (fail)."),
    ("retried", "events_retried", "Events sent to a retry backoff (after a failure or an expiry)."),
    ("dead", "events_dead_lettered", "Events moved to the dead letters."),
    ("expired", "leases_expired", "Started leases that expired and were reclaimed."),
    ("stale_acks", "stale_acks_refused",
     "Completions refused because the lease was no longer the consumer's (fencing)."),
    ("requeued", "events_requeued", "Dead letters requeued."),
    ("released", "events_released", "Events released unstarted by a worker shutting down."),
    ("returned", "leases_returned", "Reserved leases that ran out unstarted (no attempt charged)."),
    ("snoozed", "events_snoozed",
     "Snoozes granted: events a handler asked for again later, uncharged."),
)
HANDLER_BUCKETS = (.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600)
# The timer lateness buckets (ms) the promote script counts in (lua/scripts/promote.lua).
LATE_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def _lateness(st: dict[str, Any]) -> tuple[list[tuple[str, float]], float]:
    """The promote script's lateness counters as cumulative Prometheus buckets, and the sum."""
    def num(name: str) -> float:
        v = st.get(f"total.{name}", 0)
        return float(v) if isinstance(v, (int, float)) else 0.0
    buckets, seen = [], 0.0
    for ms in LATE_BUCKETS_MS:
        seen += num(f"late_le_{ms}")
        buckets.append((f"{ms / 1000:g}", seen))
    buckets.append(("+Inf", seen + num("late_inf")))
    return buckets, num("late_sum_ms") / 1000


def _redis_now_ms(client: Client) -> int:
    """Redis TIME in ms: ages are measured on the clock the scripts stamp with."""
    got: Any = client.redis.time()
    if isinstance(got, dict):  # a Cluster answers per node: any of them will do
        got = next(iter(got.values()))
    secs, micros = got
    return int(secs) * 1000 + int(micros) // 1000


class QueueCollector(Collector):
    """Reads every service's stats at scrape time (bounded) and reports gauges and counters."""

    def __init__(self, client: Client, services: Sequence[str] | None = None, *,
                 max_services: int = 100, namespace: str = "homing") -> None:
        self.client = client
        self.fixed = None if services is None else list(services)
        self.max_services = max_services
        self.ns = namespace

    def _services(self) -> tuple[list[str], int]:
        names = self.fixed if self.fixed is not None else self.client.services()
        return sorted(names)[:self.max_services], len(names)

    def describe(self) -> list[Any]:
        return []  # names depend on nothing static; collected on demand only

    def collect(self) -> Iterator[Any]:
        ns = self.ns
        up = GaugeMetricFamily(f"{ns}_redis_up", "1 when the last scrape could read Redis.")
        try:
            services, registered = self._services()
            now_ms = _redis_now_ms(self.client) if services else 0
        except HomingError as exc:
            log.warning("metrics: cannot read the registry: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        except Exception as exc:  # a lost connection surfaces as redis-py's own errors here
            log.warning("metrics: cannot read Redis: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        gauges = {f: GaugeMetricFamily(f"{ns}_{name}", doc, labels=["service"])
                  for f, name, doc in GAUGES}
        age = GaugeMetricFamily(
            f"{ns}_oldest_ready_age_seconds",
            "Age of the event next in line (from its creation, Redis clock); 0 when none is "
            "ready.", labels=["service"])
        counters = {f: CounterMetricFamily(f"{ns}_{name}", doc, labels=["service"])
                    for f, name, doc in COUNTERS}
        late = HistogramMetricFamily(
            f"{ns}_timer_lateness_seconds", "How late timers became ready: the scheduler's "
            "promote time minus the due time, both Redis clock (counted in Redis by the "
            "promote script, for every scheduler).", labels=["service"])
        failed = 0
        for service in services:
            try:
                st = self.client.stats(service)
            except HomingError as exc:  # one broken service must not blank the others
                log.warning("metrics: stats of %s: %s", service, exc)
                failed += 1
                continue
            for f, fam in gauges.items():
                fam.add_metric([service], float(st.get(f, 0)))
            created = st.get("oldest_ready_created_ms", -1)
            age.add_metric([service], max(0.0, (now_ms - created) / 1000) if created >= 0 else 0.0)
            for f, fam in counters.items():
                value = st.get(f"total.{f}", 0)
                fam.add_metric([service], float(value) if isinstance(value, (int, float)) else 0.0)
            late.add_metric([service], *_lateness(st))
        up.add_metric([], 1 if failed == 0 else 0)
        yield up
        yield from gauges.values()
        yield age
        yield from counters.values()
        yield late
        count = GaugeMetricFamily(f"{ns}_services", "Services registered, and how many "
                                  "this scrape reported (at most max_services).",
                                  labels=["kind"])
        count.add_metric(["registered"], registered)
        count.add_metric(["reported"], len(services) - failed)
        yield count


class Metrics:
    """One process's homing metrics in one registry: queue numbers and the timer
    lateness read from Redis, and the handler duration histogram a worker feeds."""

    def __init__(self, client: Client, services: Sequence[str] | None = None, *,
                 max_services: int = 100, registry: CollectorRegistry | None = None) -> None:
        """``services``: the services to report (None: every registered one, at most
        ``max_services``). ``registry``: prometheus_client's (default: a new one; pass
        ``prometheus_client.REGISTRY`` to add the process metrics)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self.queues = QueueCollector(client, services, max_services=max_services)
        self.registry.register(self.queues)
        self.handler_seconds = Histogram(
            "homing_handler_duration_seconds", "Time a handler ran, by outcome (ok: returned; "
            "error: raised).", ["service", "outcome"], buckets=HANDLER_BUCKETS,
            registry=self.registry)
    # -- feeding -------------------------------------------------------------------

    def handler_timer(self) -> Callable[[Event], AbstractContextManager[Any]]:
        """An instrument for ``Worker.instruments``: times every handler run."""
        hist = self.handler_seconds

        @contextmanager
        def timed(ev: Event) -> Iterator[None]:
            start = time.perf_counter()
            outcome = "error"
            try:
                yield
                outcome = "ok"
            finally:
                hist.labels(ev.service, outcome).observe(time.perf_counter() - start)
        return timed

    def instrument_worker(self, worker: Any) -> None:
        """Time the handlers of ``worker`` (a homing.Worker)."""
        worker.instruments.append(self.handler_timer())

    # -- serving -------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type, for any HTTP server."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def asgi_app(self) -> Any:
        """An ASGI app serving the exposition (mount it at ``/metrics``)."""
        from prometheus_client import make_asgi_app

        return make_asgi_app(self.registry)


def metrics_app(client: Client, services: Sequence[str] | None = None, *,
                max_services: int = 100) -> Any:
    """An ASGI app for ``/metrics`` of every registered service (for the dashboard)."""
    return Metrics(client, services, max_services=max_services).asgi_app()


_FOR_DASHBOARD: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()
_FOR_DASHBOARD_LOCK = threading.Lock()


def dashboard_metrics(client: Client) -> tuple[bytes, str]:
    """The dashboard's /metrics hook (homing.web.app.metrics_provider): the exposition of
    every registered service (at most 100), one Metrics kept per client."""
    with _FOR_DASHBOARD_LOCK:
        metrics = _FOR_DASHBOARD.get(client)
        if metrics is None:
            metrics = _FOR_DASHBOARD[client] = Metrics(client)
    return metrics.exposition()
