"""A worker process for the poison test: its handler kills the process on one payload.

Usage: python poison_proc.py URL PREFIX SERVICE LOG_FILE LEASE_MS

Every other event is completed (the runner batches its acks, so some of
them die unacknowledged with the process). Each start of a handler appends
"<id> <attempt>" to LOG_FILE first, so the test sees what ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import homing


class Poisoned(homing.Consumer):
    def __init__(self, log: Path) -> None:
        self.log = log

    def handle_event(self, event: homing.Event, state: object) -> object:
        with self.log.open("a") as f:
            f.write(f"{event.id} {event.attempt}\n")
        if event.payload == "poison":
            os._exit(17)  # no cleanup, no release: as a segfault or the OOM killer would
        return state


def main() -> None:
    url, prefix, service, log, lease_ms = sys.argv[1:6]
    client = homing.Client.from_url(url, prefix=prefix)
    homing.Worker(client, service, lambda: Poisoned(Path(log)), prefetch=100,
                  lease_ms=int(lease_ms)).run()


if __name__ == "__main__":
    main()
