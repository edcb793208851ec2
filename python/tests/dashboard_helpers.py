"""The dashboard under test: served in a thread by uvicorn, and a scene worth looking at.

Shared by test_dashboard.py (the browser tests), test_dashboard_http.py (the HTTP
level) and scripts/dashboard-screenshots.py (the images of docs/dashboard.md), so
that the screenshots show exactly what the tests check.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import homing
from homing.web import Auth, create_app

CHROMIUM = os.environ.get("HOMING_CHROMIUM", "/usr/bin/chromium")
VIEWS = ("overview", "service", "event", "daemons", "workers")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (the test extra has it)"
    if not Path(CHROMIUM).exists():
        return (f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it; "
                "HOMING_CHROMIUM names another binary)")
    return None


class Served(str):
    """The base URL, with the app's shared state (``dashboard``) for tests that need its
    keys (a valid CSRF token on a read-only page, which renders no form)."""

    dashboard: Any


@contextlib.contextmanager
def serving(client: homing.Client, *, auth: Auth | None = None, read_only: bool = False,
            sample_every: float = 0.5) -> Iterator[Served]:
    """The dashboard app on a free loopback port; yields its base URL."""
    import uvicorn

    app = create_app(client, auth=auth, read_only=read_only, sample_every=sample_every)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-under-test", daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = Served(f"http://127.0.0.1:{port}")
    url.dashboard = app.state.dashboard
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


class Failing(homing.Consumer):
    """Rejects every event: it goes straight to the dead letters with this reason."""

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        raise homing.Reject(f"cannot handle {event.payload!r}")


class Holding(homing.Consumer):
    """Holds each event until released, so that a lease and its holder can be shown."""

    release = threading.Event()

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        self.release.wait(30)
        return state


XSS = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"


def scene(client: homing.Client, service: str) -> dict[str, Any]:
    """Dead letters (one with an XSS payload and reason), ready events and a timer.

    Returns the ids the tests look for. Dead letters are made the way production
    makes them: a worker whose consumer rejects them.
    """
    dead_ids = [client.enqueue(service, {"city": "Oslo", "n": i}) for i in range(3)]
    xss_id = client.enqueue(service, XSS)
    with worker(client, service, Failing):
        deadline = time.monotonic() + 20
        while client.dead_list(service, 0, 1).total < 4:
            if time.monotonic() > deadline:
                raise AssertionError("the dead letters did not arrive")
            time.sleep(0.02)
    ready_ids = client.enqueue_many(service, [{"city": "Bergen", "n": i} for i in range(5)])
    timer_id = client.create_timer(service, {"forecast": "Oslo"}, delay_ms=3_600_000)
    return {"dead": dead_ids, "xss": xss_id, "ready": ready_ids, "timer": timer_id}


@contextlib.contextmanager
def worker(client: homing.Client, service: str, consumer: type[homing.Consumer],
           **options: Any) -> Iterator[homing.Worker]:
    w = homing.Worker(client, service, consumer, grace=1, **{"lease_ms": 5000, **options})
    w.start()
    try:
        yield w
    finally:
        w.stop()
        w.shutdown()


def screenshot_dir() -> Path | None:
    """docs/img when HOMING_WRITE_SCREENSHOTS=1 (make dashboard-screenshots), else None."""
    if os.environ.get("HOMING_WRITE_SCREENSHOTS") != "1":
        return None
    return Path(__file__).resolve().parents[2] / "docs" / "img"
