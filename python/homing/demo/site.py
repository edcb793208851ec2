"""The weather web site that the consumer posts to (stdlib http.server, in a thread).

``POST /report`` takes one JSON report or forecast, ``GET /`` shows the current weather per
city (refreshing every 2 s), ``GET /api/reports`` returns the same as JSON. The site also
remembers every event id it was sent and the highest delivery attempt seen, which is how the
demo proves that nothing was lost and that killed events were redelivered.

The table keeps the newest report per city, so a redelivered report (older by then) would
never show in it: the page lists the latest redeliveries in a table of their own, highlighted
with their attempt, and highlights a city whose shown report was itself redelivered.
Forecasts are marked as coming from timers, with how long after their report they arrived.
"""

from __future__ import annotations

import html
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from string import Template
from typing import Any

REQUIRED = ("event_id", "attempt", "run", "kind", "city", "seq")


class WeatherSite:
    """The site's state and its HTTP server; ``run`` tells this demo run's posts apart."""

    def __init__(self, host: str, port: int, run: str) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.reports: dict[str, dict[str, Any]] = {}
        self.forecasts: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, int] = {}  # event id -> highest attempt posted
        self.redeliveries: set[str] = set()  # event ids posted by a second delivery
        self.posts = 0
        self.stale = 0  # posts left over from an earlier demo run on the same prefix
        self.broken = 0  # posts cut off half-way (a consumer killed mid-POST)
        self.notes: list[str] = []
        self.recent_redelivered: list[dict[str, Any]] = []  # the last few, newest last
        self._server = _Server((host, port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="homing-demo-site", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
        return f"http://{shown}:{port}/"

    def start(self) -> WeatherSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def note(self, text: str) -> None:
        """Show a line of what the demo did on the page."""
        with self.lock:
            self.notes = [*self.notes[-9:], f"{time.strftime('%H:%M:%S')} {text}"]

    def record(self, report: dict[str, Any]) -> None:
        with self.lock:
            self.posts += 1
            if report["run"] != self.run:
                self.stale += 1
                return
            eid = report["event_id"]
            self.attempts[eid] = max(self.attempts.get(eid, 0), int(report["attempt"]))
            report = {**report, "arrived": time.time()}
            if report.get("redelivered"):
                self.redeliveries.add(eid)
                self.recent_redelivered = [*self.recent_redelivered[-7:], report]
            table = self.forecasts if report["kind"] == "forecast" else self.reports
            # Delivery is at-least-once and not ordered: a report whose consumer was
            # killed comes back seconds later, after newer reports for the same city were
            # posted, and a report can even arrive twice (killed after the POST, before the
            # acknowledgement). So the site keeps the report with the highest sequence
            # number per city instead of the last one to arrive: a late redelivery never
            # overwrites newer weather, and a duplicate changes nothing.
            current = table.get(report["city"])
            if current is None or report["seq"] > current["seq"]:
                table[report["city"]] = report

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "reports": dict(self.reports), "forecasts": dict(self.forecasts),
                "posts": self.posts, "events": len(self.attempts),
                "redelivered": len(self.redeliveries),
                "stale": self.stale, "broken": self.broken, "notes": list(self.notes),
                "recent_redelivered": list(self.recent_redelivered),
            }

    def delivered(self, ids: list[str]) -> int:
        """How many of ids were posted at least once."""
        with self.lock:
            return sum(1 for i in ids if i in self.attempts)

    def attempt_of(self, event_id: str) -> int:
        with self.lock:
            return self.attempts.get(event_id, 0)

    def was_redelivered(self, event_id: str) -> bool:
        """Whether a redelivery of event_id was posted (see consumer._redelivered)."""
        with self.lock:
            return event_id in self.redeliveries

    def page(self) -> str:
        snap = self.snapshot()
        template = Template(resources.files(__package__).joinpath("static/index.html")
                            .read_text(encoding="utf-8"))
        redelivered = [_redelivered_row(r) for r in reversed(snap["recent_redelivered"])]
        return template.substitute(
            rows="\n".join(_city_row(city, snap["reports"].get(city, {}),
                                     snap["forecasts"].get(city, {}))
                           for city in sorted(snap["reports"].keys() | snap["forecasts"].keys()))
            or "<tr><td colspan=6>no reports yet</td></tr>",
            redelivered_rows="\n".join(redelivered)
            or "<tr class=none><td colspan=5>none yet: the demo kills a consumer every few "
               "reports</td></tr>",
            posts=snap["posts"], events=snap["events"], redelivered=snap["redelivered"],
            broken=snap["broken"],
            notes="\n".join(f"<li>{html.escape(n)}</li>" for n in reversed(snap["notes"])))


def _attempt_cell(r: dict[str, Any]) -> str:
    """The attempt, with a badge when this delivery was a redelivery."""
    if not r:
        return "<td class=\"n attempt\"></td>"
    badge = " <span class=badge>redelivered</span>" if r.get("redelivered") else ""
    return f"<td class=\"n attempt\">{html.escape(str(r.get('attempt', '')))}{badge}</td>"


def _forecast_cell(f: dict[str, Any]) -> str:
    """A forecast comes from a timer: say so, and how long after its report it arrived."""
    if not f:
        return "<td class=forecast></td>"
    late = ""
    if isinstance(f.get("reported_at"), (int, float)):
        late = f", {max(0.0, f['arrived'] - f['reported_at']):.1f} s after its report"
    return (f"<td class=forecast><span class=timer title=\"created with create_timer\">"
            f"timer{html.escape(late)}</span> {html.escape(str(f.get('text', '')))}</td>")


def _city_row(city: str, r: dict[str, Any], f: dict[str, Any]) -> str:
    cls = " class=redelivered" if r.get("redelivered") else ""
    esc = html.escape
    return (f"<tr{cls} data-city=\"{esc(city)}\"><td>{esc(city)}</td>"
            f"<td class=n>{esc(str(r.get('temp_c', '')))}</td>"
            f"<td class=n>{esc(str(r.get('seq', '')))}</td><td>{esc(str(r.get('time', '')))}</td>"
            f"{_attempt_cell(r)}{_forecast_cell(f)}</tr>")


def _redelivered_row(r: dict[str, Any]) -> str:
    esc = html.escape
    what = "forecast (timer)" if r.get("kind") == "forecast" else "report"
    return (f"<tr class=redelivered><td>{esc(str(r.get('city', '')))}</td><td>{esc(what)}</td>"
            f"<td class=n>{esc(str(r.get('seq', '')))}</td>{_attempt_cell(r)}"
            f"<td><code>{esc(str(r.get('event_id', ''))[:8])}</code></td></tr>")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A consumer killed while the site answered it is part of the show, not a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(site: WeatherSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the demo's own output tells the story

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/":
                self._send(200, site.page().encode(), "text/html; charset=utf-8")
            elif self.path == "/api/reports":
                self._send(200, json.dumps(site.snapshot()).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/report":
                self._send(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died half-way: nothing to store
                with site.lock:
                    site.broken += 1
                self.close_connection = True
                return
            try:
                report = json.loads(body)
                if not isinstance(report, dict) or any(k not in report for k in REQUIRED):
                    raise ValueError(f"a report needs {', '.join(REQUIRED)}")
            except ValueError as exc:
                self._send(400, f"bad report: {exc}\n".encode(), "text/plain")
                return
            site.record(report)
            self._send(200, b'{"ok": true}', "application/json")

    return Handler
