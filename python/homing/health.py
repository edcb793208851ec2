"""The HTTP endpoints of ``homing worker`` and ``homing daemon``: health probes and /metrics.

``--health-port`` serves:

- ``/healthz`` and ``/readyz``: 200 while the process is connected to Redis (a
  PING answered now) and its loops are beating (a worker's threads alive and not
  hung, a daemon's beat written to Redis within ``stale_after`` seconds); 503
  otherwise, with the reason as text. For readiness probes and for alerting.
- ``/livez``: 200 while the loops are beating, whatever Redis does. For liveness
  probes: restarting a worker does not bring Redis back, and a worker that waits
  out an outage by itself is healthier than one restarted in a loop.

``--metrics-port`` serves ``/metrics`` (homing.metrics); the same port for both
is allowed, and then one server answers all four paths. The server is the
standard library's, in a daemon thread: nothing here needs the metrics extra.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import InvalidArgumentError

log = logging.getLogger("homing.health")

Check = Callable[[], str | None]  # None when fine, else why not


class Health:
    """What the probes report: Redis reachable now, and the process's own loops beating."""

    def __init__(self, client: Any, beating: Check) -> None:
        self.client = client
        self.beating = beating

    def live(self) -> str | None:
        return self.beating()

    def ready(self) -> str | None:
        why = self.beating()
        if why:
            return why
        try:
            self.client.redis.ping()
        except Exception as exc:  # any failure to reach Redis is "not ready", said plainly
            return f"redis unreachable: {type(exc).__name__}: {exc}"
        return None


def worker_beating(worker: Any) -> Check:
    """A homing.Worker beats while its threads run and it has not stopped or hung."""
    def check() -> str | None:
        if worker.hung:
            return "every handler slot is hung past the handler timeout"
        if worker._stop.is_set():
            return "stopping"
        dead = [t.name for t in worker._threads if not t.is_alive()]
        if not worker._threads:
            return "not started"
        if dead:
            return f"threads stopped: {', '.join(dead)}"
        return None
    return check


def daemons_beating(daemons: list[Any], threads: list[threading.Thread],
                    stale_after: float = 10.0) -> Check:
    """Daemons beat while their threads run and each wrote its beat to Redis lately."""
    def check() -> str | None:
        dead = [t.name for t in threads if not t.is_alive()]
        if dead:
            return f"threads stopped: {', '.join(dead)}"
        now = time.monotonic()
        late = [d.name for d in daemons if now - d.beat_at > stale_after]
        if late:
            return f"no beat written for {stale_after:g} s: {', '.join(late)}"
        return None
    return check


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        routes = self.server.routes
        path = self.path.split("?", 1)[0]
        if path not in routes:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        try:
            status, body, ctype = routes[path]()
        except Exception as exc:  # a probe must answer, never hang up
            log.exception("health: %s failed", path)
            status, body, ctype = 500, f"{type(exc).__name__}: {exc}\n".encode(), "text/plain"
        self._send(status, body, ctype)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("health: " + fmt, *args)


def _probe(check: Check) -> Callable[[], tuple[int, bytes, str]]:
    def route() -> tuple[int, bytes, str]:
        why = check()
        if why is None:
            return 200, b"ok\n", "text/plain; charset=utf-8"
        return 503, f"unhealthy: {why}\n".encode(), "text/plain; charset=utf-8"
    return route


class Endpoints:
    """The HTTP servers of one process, on one or two ports; ``close()`` stops them."""

    def __init__(self, *, host: str = "0.0.0.0", health: Health | None = None,  # noqa: S104
                 health_port: int | None = None, metrics: Any = None,
                 metrics_port: int | None = None) -> None:
        routes_by_port: dict[int, dict[str, Callable[[], tuple[int, bytes, str]]]] = {}
        if health is not None and health_port is not None:
            routes = routes_by_port.setdefault(health_port, {})
            routes["/healthz"] = routes["/readyz"] = _probe(health.ready)
            routes["/livez"] = _probe(health.live)
        if metrics is not None and metrics_port is not None:
            routes_by_port.setdefault(metrics_port, {})["/metrics"] = \
                lambda: (200, *metrics.exposition())
        self.servers: list[ThreadingHTTPServer] = []
        for port, routes in routes_by_port.items():
            srv = ThreadingHTTPServer((host, port), _Handler)
            srv.daemon_threads = True
            srv.routes = routes  # type: ignore[attr-defined]
            threading.Thread(target=srv.serve_forever, name=f"homing-http-{port}",
                             daemon=True).start()
            self.servers.append(srv)
            log.info("serving %s on %s:%d", ", ".join(sorted(routes)), host,
                     srv.server_address[1])

    def ports(self) -> list[int]:
        """The bound ports (useful with port 0)."""
        return [s.server_address[1] for s in self.servers]

    def close(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()


def serve(client: Any, beating: Check, *, host: str, health_port: int | None,
          metrics_port: int | None, services: list[str] | None = None,
          worker: Any = None) -> tuple[Endpoints | None, Any]:
    """What ``--health-port`` / ``--metrics-port`` start: the endpoints and the Metrics
    (None without a metrics port). Metrics need the extra: a clear error without it."""
    metrics = None
    if metrics_port is not None:
        try:
            from prometheus_client import REGISTRY

            from .metrics import Metrics
        except ImportError as exc:
            # A HomingError: the command line shows it as one line, exit status 2.
            raise InvalidArgumentError("--metrics-port needs prometheus_client: "
                                       "pip install 'homing[metrics]'") from exc
        metrics = Metrics(client, services, registry=REGISTRY)
        if worker is not None:
            metrics.instrument_worker(worker)
    if health_port is None and metrics is None:
        return None, None
    health = Health(client, beating) if health_port is not None else None
    return Endpoints(host=host, health=health, health_port=health_port, metrics=metrics,
                     metrics_port=metrics_port), metrics
