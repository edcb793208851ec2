"""Starting, killing and restarting the demo's consumer processes.

The consumer runs as ``homing worker homing.demo.consumer:WeatherConsumer`` in a process of
its own, as it would in production, so that the demo can SIGKILL it: no handler, no
graceful release, no acknowledgement, exactly like a crashed machine. Its lease then
expires, the scheduler reclaims the event and puts it back at the front of the queue,
and the fresh consumer gets it again. Its attempt stays 1: the killed worker had not
told Redis it started the event, so the crash is not charged (the next delivery is
marked started first, so a consumer that keeps dying on it is; see docs/worker.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import consumer
from .site import WeatherSite
from .weatherman import SERVICE


class Supervisor:
    """One consumer process at a time, killed mid-event every ``kill_every`` reports."""

    def __init__(self, url: str, prefix: str, site: WeatherSite, workdir: Path,
                 kill_every: int, say: Callable[[str], None]) -> None:
        self.url = url
        self.prefix = prefix
        self.site = site
        self.workdir = workdir
        self.kill_every = kill_every
        self.say = say
        self.proc: subprocess.Popen[bytes] | None = None
        self.marker: Path | None = None
        self.generation = 0
        self.kills = 0
        self.waiting: dict[str, float] = {}  # killed event id -> when it was killed
        self.redelivered: dict[str, int] = {}  # killed event id -> attempt that got posted

    def spawn(self, stall: bool = True) -> None:
        """Start a consumer process; with ``stall`` it hangs on its ``kill_every``-th report."""
        self.generation += 1
        self.marker = self.workdir / f"stalled-{self.generation}.json"
        env = dict(os.environ)
        env.update({
            consumer.SITE_ENV: self.site.url,
            consumer.STALL_ENV: str(self.kill_every if stall else 0),
            consumer.MARKER_ENV: str(self.marker),
            consumer.PARENT_ENV: str(os.getpid()),
        })
        argv = [sys.executable, "-m", "homing", "--redis-url", self.url, "--prefix", self.prefix,
                "--log-level", "warning", "worker", "homing.demo.consumer:WeatherConsumer",
                "--service", SERVICE, "--concurrency", "2", "--prefetch", "4", "--grace", "3"]
        # A session of its own: a Ctrl-C in the terminal reaches the demo only, and the demo
        # decides how its consumers stop.
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def poll(self, stall: bool = True) -> None:
        """Kill a consumer that stalled mid-event, replace dead ones, report redeliveries."""
        if self.proc is not None and self.marker is not None and self.marker.exists():
            info = json.loads(self.marker.read_text(encoding="utf-8"))
            self.proc.kill()  # SIGKILL: no cleanup of any kind, like a power cut
            self.proc.wait()
            self.kills += 1
            self.waiting[info["event_id"]] = time.monotonic()
            text = (f"killed consumer pid {info['pid']} half-way through posting event "
                    f"{info['event_id']} ({info['city']} report #{info['seq']}, attempt "
                    f"{info['attempt']}); waiting for redelivery...")
            self.say(text)
            self.site.note(text)
            self.spawn(stall)
        elif self.proc is not None and self.proc.poll() is not None:
            self.say(f"consumer pid {self.proc.pid} exited with status {self.proc.returncode}; "
                     "starting another")
            self.spawn(stall)
        for event_id, killed_at in list(self.waiting.items()):
            attempt = self.site.attempt_of(event_id)
            if self.site.was_redelivered(event_id):
                del self.waiting[event_id]
                self.redelivered[event_id] = attempt
                text = (f"event {event_id} redelivered and posted (attempt {attempt}), "
                        f"{time.monotonic() - killed_at:.1f} s after the kill")
                self.say(text)
                self.site.note(text)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: the worker releases what it holds and lets handlers finish."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if self.marker is not None and self.marker.exists():
            proc.kill()  # hung on purpose: it would never finish
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.say(f"consumer pid {proc.pid} did not stop within {timeout:.0f} s; killing it")
            proc.kill()
            proc.wait()
