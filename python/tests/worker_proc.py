"""A worker process for the crash test: hangs in its first event so the test can SIGKILL it.

Usage: python worker_proc.py URL PREFIX SERVICE MARKER_FILE LEASE_MS

Its consumer writes "<id> <attempt>" to MARKER_FILE when it starts an event,
then sleeps far longer than any test waits. The heartbeat keeps the lease
alive meanwhile, so the event comes back only when the process is gone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import homing


class Hang(homing.Consumer):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def handle_event(self, event: homing.Event, state: object) -> object:
        self.marker.write_text(f"{event.id} {event.attempt}\n")
        time.sleep(3600)
        return state


def main() -> None:
    url, prefix, service, marker, lease_ms = sys.argv[1:6]
    client = homing.Client.from_url(url, prefix=prefix)
    worker = homing.Worker(client, service, lambda: Hang(Path(marker)), prefetch=1,
                           lease_ms=int(lease_ms))
    worker.run()


if __name__ == "__main__":
    main()
