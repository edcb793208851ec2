"""Prometheus metrics (homing.metrics): the numbers a scrape shows are the ones in Redis."""

from __future__ import annotations

import threading
import urllib.request

import pytest
from helpers import freeze, running, wait_for

import homing
from homing.daemons import Scheduler
from homing.health import Endpoints

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from homing.metrics import Metrics  # noqa: E402


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape: (name, sorted labels) -> value."""
    text, ctype = metrics.exposition()
    assert ctype.startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def of(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_queue_gauges_and_counters_are_the_stats(client: homing.Client, service: str) -> None:
    client.configure(service, backoff_base_ms=60_000, backoff_jitter=0)
    clock = freeze(client, service)
    client.enqueue_many(service, [1, 2, 3, 4])
    client.create_timer(service, "t", delay_ms=60_000)
    a, b = client.dequeue(service, 2, lease_ms=1000)
    client.complete(service, a.id, a.token)
    client.fail(service, b.id, b.token, "boom")
    # A lease that runs out and is reclaimed; its consumer's late ack is refused.
    [c] = client.dequeue(service, lease_ms=1000)
    clock.advance(1000)
    client.promote(service)
    with pytest.raises(homing.StaleLeaseError):
        client.complete(service, c.id, c.token)
    client.distribute(service)
    st = client.stats(service)
    got = scrape(Metrics(client, [service]))
    assert of(got, "homing_events_ready", service=service) == st["ready"] == 1
    assert of(got, "homing_events_in_flight", service=service) == 0
    assert of(got, "homing_events_timers", service=service) == 1
    assert of(got, "homing_events_retrying", service=service) == st["retrying"] == 2
    assert of(got, "homing_events_dead", service=service) == 0
    assert of(got, "homing_events_enqueued_total", service=service) == 4
    assert of(got, "homing_events_delivered_total", service=service) == 3
    assert of(got, "homing_events_completed_total", service=service) == 1
    assert of(got, "homing_events_failed_total", service=service) == 1
    assert of(got, "homing_events_retried_total", service=service) == 2
    assert of(got, "homing_leases_expired_total", service=service) == 1
    assert of(got, "homing_stale_acks_refused_total", service=service) == 1
    assert of(got, "homing_timers_created_total", service=service) == 1
    assert of(got, "homing_redis_up") == 1


def test_oldest_ready_age_is_measured_on_the_redis_clock(client: homing.Client,
                                                         service: str) -> None:
    m = Metrics(client, [service])
    assert of(scrape(m), "homing_oldest_ready_age_seconds", service=service) == 0
    client.enqueue(service, "old")
    client.redis.hset(f"{client.prefix}:{{{service}}}:meta",  # created 90 s ago (Redis clock)
                      client.redis.lindex(f"{client.prefix}:{{{service}}}:ready", -1),
                      f"r|0|0|{_redis_ms(client) - 90_000}|0|")
    age = of(scrape(m), "homing_oldest_ready_age_seconds", service=service)
    assert 90 <= age < 120


def _redis_ms(client: homing.Client) -> int:
    secs, micros = client.redis.time()
    return secs * 1000 + micros // 1000


def test_every_registered_service_is_reported_up_to_the_bound(client: homing.Client) -> None:
    for name in ("m-a", "m-b", "m-c"):
        client.enqueue(name, 1)
    got = scrape(Metrics(client, max_services=2))
    assert of(got, "homing_events_ready", service="m-a") == 1
    assert of(got, "homing_events_ready", service="m-b") == 1
    assert ("homing_events_ready", (("service", "m-c"),)) not in got
    assert of(got, "homing_services", kind="registered") == 3
    assert of(got, "homing_services", kind="reported") == 2


def test_a_scrape_without_redis_says_so(tmp_path) -> None:
    from servers import RedisServer

    with RedisServer(tmp_path) as server:
        c = homing.Client.from_url(server.url, prefix="x")
        c.enqueue("svc", 1)
        m = Metrics(c)
        assert of(scrape(m), "homing_redis_up") == 1
        server.kill()
        got = scrape(m)
        assert of(got, "homing_redis_up") == 0
        assert ("homing_events_ready", (("service", "svc"),)) not in got
        server.start()
        wait_for(lambda: of(scrape(m), "homing_redis_up") == 1)
        c.close()


class Flaky(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        if event.payload == "bad":
            raise homing.Reject("bad")
        return state


def test_handler_duration_histogram_counts_every_run(client: homing.Client,
                                                     service: str) -> None:
    m = Metrics(client, [service])
    w = homing.Worker(client, service, Flaky)
    m.instrument_worker(w)
    client.enqueue_many(service, ["ok", "ok", "bad"])
    with running(w):
        wait_for(lambda: w.stats.completed == 2 and w.stats.failed == 1)
    got = scrape(m)
    assert of(got, "homing_handler_duration_seconds_count", service=service, outcome="ok") == 2
    assert of(got, "homing_handler_duration_seconds_count", service=service,
              outcome="error") == 1
    assert of(got, "homing_handler_duration_seconds_sum", service=service, outcome="ok") >= 0


def test_timer_lateness_histogram_from_the_scheduler(client: homing.Client,
                                                     service: str) -> None:
    clock = freeze(client, service)
    client.register(service)
    client.create_timer(service, "a", delay_ms=100)
    client.create_timer(service, "b", delay_ms=300)
    m = Metrics(client, [service])
    sched = Scheduler(client)
    clock.advance(350)
    assert sched.step() == 2
    got = scrape(m)
    assert of(got, "homing_timer_lateness_seconds_count", service=service) == 2
    assert of(got, "homing_timer_lateness_seconds_sum", service=service) == pytest.approx(0.3)
    assert of(got, "homing_timer_lateness_seconds_bucket", service=service, le="0.05") == 1
    assert of(got, "homing_timer_lateness_seconds_bucket", service=service, le="0.25") == 2
    assert of(got, "homing_timer_lateness_seconds_bucket", service=service, le="+Inf") == 2
    # Kept in Redis: another process (a dashboard, another daemon) reports the same.
    assert of(scrape(Metrics(client)), "homing_timer_lateness_seconds_count",
              service=service) == 2


def test_metrics_served_over_http_and_as_asgi(client: homing.Client, service: str) -> None:
    client.enqueue(service, 1)
    m = Metrics(client, [service])
    ep = Endpoints(host="127.0.0.1", metrics=m, metrics_port=0)
    try:
        [port] = ep.ports()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            body = r.read().decode()
    finally:
        ep.close()
    assert f'homing_events_ready{{service="{service}"}} 1.0' in body
    # The ASGI app the dashboard mounts answers the same, driven by hand (no server).
    app = m.asgi_app()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict) -> None:
        sent.append(msg)

    import asyncio
    scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
             "headers": []}
    t = threading.Thread(target=lambda: asyncio.run(app(scope, receive, send)))
    t.start()
    t.join(10)
    assert sent[0]["status"] == 200
    assert f'homing_events_ready{{service="{service}"}} 1.0' in sent[1]["body"].decode()


def test_keda_reads_the_ready_list_by_its_documented_name(client: homing.Client,
                                                          service: str) -> None:
    """docs/operations.md tells KEDA's Redis list scaler to read
    ``<prefix>:{<service>}:ready``: that exact key's LLEN is the ready count."""
    client.enqueue_many(service, list(range(7)))
    client.dequeue(service, 2)
    client.create_timer(service, "later", delay_ms=60_000)  # not ready: not counted
    name = f"{client.prefix}:{{{service}}}:ready"
    assert client.redis.type(name) == b"list"
    assert client.redis.llen(name) == 5 == client.stats(service)["ready"]
    assert of(scrape(Metrics(client, [service])), "homing_events_ready", service=service) == 5


def test_the_dashboard_serves_these_metrics(client: homing.Client, service: str) -> None:
    pytest.importorskip("starlette")
    httpx = pytest.importorskip("httpx")
    from dashboard_helpers import serving

    client.enqueue_many(service, [1, 2])
    with serving(client) as url:
        r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert f'homing_events_ready{{service="{service}"}} 2.0' in r.text
    assert "homing_timer_lateness_seconds_bucket" in r.text
