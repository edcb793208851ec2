"""WeatherConsumer: POSTs each weather event to the weather site.

Run it like any consumer: ``homing worker homing.demo.consumer:WeatherConsumer --service
weather``. It is configured by environment variables, set by the demo:

- ``HOMING_DEMO_SITE``: the site's base URL (default http://127.0.0.1:8080/).
- ``HOMING_DEMO_STALL_AFTER=N``: on the N-th report this process handles (first deliveries
  only), send half the POST body and then hang, after writing ``HOMING_DEMO_MARKER`` (a
  JSON file naming the pid and event). That is the moment the demo SIGKILLs the process:
  the event was taken and half-done, and homing must deliver it again.
- ``HOMING_DEMO_PARENT_PID``: die with the demo (Linux), so a crashed demo leaves no
  consumer behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import itertools
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..consumer import Consumer
from ..types import Event

SITE_ENV = "HOMING_DEMO_SITE"
STALL_ENV = "HOMING_DEMO_STALL_AFTER"
MARKER_ENV = "HOMING_DEMO_MARKER"
PARENT_ENV = "HOMING_DEMO_PARENT_PID"

_handled = itertools.count(1)  # reports handled by this process, over all slots
_stall_lock = threading.Lock()
_stalled = False


def _die_with_parent() -> None:
    """SIGTERM this process when the demo dies (Linux), however it dies.

    The kernel may send the signal more than once (once per thread of the dying demo);
    the second SIGTERM then stops the worker at once instead of gracefully: it releases
    what it still holds (redelivered next) and exits with status 130. That is fine with
    the demo gone.
    """
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a graceful stop
    if os.getppid() != int(parent):  # the demo died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


_die_with_parent()


def _redelivered(event: Event) -> bool:
    """Whether this event was delivered before: a retry, or back from a dead consumer.

    A consumer killed mid-event had not told Redis it started (the worker's fast
    path), so its event comes back with the same attempt number, marked
    ``must_start``; a retry after a failure has a higher attempt.
    """
    return event.attempt > 1 or event.must_start


def _should_stall(event: Event, report: dict[str, Any], stall_after: int) -> bool:
    """True once per process: for the first eligible report from the N-th one on."""
    global _stalled
    if not stall_after or report.get("kind") != "report":
        return False
    n = next(_handled)
    # Redeliveries never stall, so the demo always makes progress.
    if n < stall_after or _redelivered(event):
        return False
    with _stall_lock:
        if _stalled:
            return False
        _stalled = True
        return True


class WeatherConsumer(Consumer):
    """Posts each event to the site, then completes it with the site's answer."""

    def init(self) -> dict[str, int]:
        self.site = os.environ.get(SITE_ENV, "http://127.0.0.1:8080/")
        self.stall_after = int(os.environ.get(STALL_ENV) or 0)
        return {"posted": 0}

    def handle_event(self, event: Event, state: dict[str, int]) -> dict[str, int]:
        report = dict(event.payload, event_id=event.id, attempt=event.attempt,
                      redelivered=_redelivered(event))
        body = json.dumps(report).encode()
        if _should_stall(event, report, self.stall_after):
            self._post_half_and_hang(event, report, body)
        request = urllib.request.Request(urljoin(self.site, "report"), data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        # Any failure raises: the worker fails the event and homing retries it later.
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        self.complete(event.service, event.id, result={"site": answer, "attempt": event.attempt})
        return {"posted": state["posted"] + 1}

    def _post_half_and_hang(self, event: Event, report: dict[str, Any], body: bytes) -> None:
        """Start the POST, stop half-way through the body, and wait to be killed."""
        url = urlsplit(self.site)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=60)
        conn.putrequest("POST", "/report")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        marker = os.environ.get(MARKER_ENV)
        if marker:  # write then rename, so the demo never reads half a file
            info = {"pid": os.getpid(), "event_id": event.id, "attempt": event.attempt,
                    "city": report["city"], "seq": report["seq"]}
            with open(marker + ".tmp", "w", encoding="utf-8") as f:
                json.dump(info, f)
            os.replace(marker + ".tmp", marker)
        time.sleep(3600)  # the heartbeat keeps the lease alive until the process is killed
        raise RuntimeError("nobody killed this consumer")
