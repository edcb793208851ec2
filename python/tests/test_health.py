"""Health probes and /metrics of `homing worker` and `homing daemon` (--health-port,
--metrics-port), against a private redis-server that the tests kill and bring back."""

from __future__ import annotations

import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for
from servers import RedisServer, free_port
from test_cli import homing_argv, stop

import homing


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of GET path; a refused connection is status 0."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def status_becomes(port: int, path: str, want: int, timeout: float = 30) -> str:
    got: list[tuple[int, str]] = []

    def check() -> bool:
        got.append(get(port, path))
        return got[-1][0] == want
    wait_for(check, timeout=timeout, pause=0.1)
    return got[-1][1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as s:
        yield s


CONSUMER = """
from homing import Consumer

class Echo(Consumer):
    def handle_event(self, event, state):
        return state
"""


def test_worker_health_follows_redis_and_metrics_are_served(server: RedisServer,
                                                           tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(textwrap.dedent(CONSUMER))
    client = homing.Client.from_url(server.url, prefix="h")
    hp, mp = free_port(), free_port()
    proc = subprocess.Popen(
        homing_argv(server.url, "h", "worker", "echo:Echo", "--service", "jobs",
                    "--health-port", str(hp), "--metrics-port", str(mp),
                    "--http-host", "127.0.0.1", "--grace", "1"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert status_becomes(hp, "/healthz", 200) == "ok\n"
        assert get(hp, "/readyz")[0] == 200 and get(hp, "/livez")[0] == 200
        client.configure("jobs", done_ttl_ms=600_000)  # result() reads what the consumer gave
        ids = client.enqueue_many("jobs", [1, 2, 3])
        for i in ids:
            client.result("jobs", i, timeout=20)
        body = status_becomes(mp, "/metrics", 200)
        assert 'homing_handler_duration_seconds_count{outcome="ok",service="jobs"} 3.0' in body
        assert 'homing_events_completed_total{service="jobs"} 3.0' in body
        assert 'homing_events_ready{service="jobs"} 0.0' in body
        assert "process_cpu_seconds_total" in body  # the default registry's process metrics
        assert get(mp, "/healthz")[0] == 404  # two ports: each serves its own paths

        server.kill()
        why = status_becomes(hp, "/healthz", 503)
        assert "redis unreachable" in why
        assert get(hp, "/livez")[0] == 200  # the worker itself still beats: no restart
        assert 'homing_redis_up 0.0' in get(mp, "/metrics")[1]

        server.start()  # same port, empty (no persistence)
        status_becomes(hp, "/healthz", 200)
        client.enqueue("jobs", 4)  # and it works again
        wait_for(lambda: client.stats("jobs").get("total.completed") == 1, timeout=30)
    finally:
        code, out, err = stop(proc)
        client.close()
    assert code == 0, err
    assert get(hp, "/healthz")[0] == 0  # the endpoints close with the worker


def test_daemon_health_and_timer_lateness(server: RedisServer, tmp_path: Path) -> None:
    client = homing.Client.from_url(server.url, prefix="d")
    port = free_port()
    proc = subprocess.Popen(
        homing_argv(server.url, "d", "daemon", "--health-port", str(port),
                    "--metrics-port", str(port), "--http-host", "127.0.0.1"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status_becomes(port, "/healthz", 200)
        client.create_timer("alarms", "wake", delay_ms=50)
        wait_for(lambda: client.stats("alarms")["ready"] == 1, timeout=20)

        def fired() -> bool:
            body = get(port, "/metrics")[1]
            return 'homing_timer_lateness_seconds_count{service="alarms"} 1.0' in body
        wait_for(fired, timeout=20)
        body = get(port, "/metrics")[1]
        assert 'homing_events_ready{service="alarms"} 1.0' in body  # all services: a daemon
        server.kill()
        status_becomes(port, "/healthz", 503)
        server.start()
        status_becomes(port, "/healthz", 200)
        time.sleep(0.2)
    finally:
        code, out, err = stop(proc)
        client.close()
    assert code == 0, err


def test_metrics_port_without_the_extra_is_a_clear_error(server: RedisServer,
                                                         tmp_path: Path) -> None:
    # A Python that cannot import prometheus_client (a stub module that raises).
    (tmp_path / "prometheus_client.py").write_text("raise ImportError('not installed')\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(homing_argv(server.url, "x", "daemon", "--metrics-port",
                                   str(free_port())), cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: INVALID_ARGUMENT: --metrics-port needs prometheus_client: "
        "pip install 'homing[metrics]'")
