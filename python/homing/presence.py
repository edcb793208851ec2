"""Worker beats: what a running Worker tells Redis about itself, and reading it back.

Daemons have had a beat (``beat``, the global hash ``daemons``) so that ``homing
stats`` can warn when none runs. Workers get one too, for the dashboard: which
workers are alive, where they run, how many events they hold, and (from a
sample of the held ids) which worker holds a given event. The ``worker_beat``
script keeps the hash bounded by itself: every beat deletes silent fields from a
sample of 8, so a reader is not needed to prune it.

The call itself is the manifest's ``worker_beat`` (``Client.worker_beat``);
this module names the worker, reads the beats back and parses them.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import HomingError
from .manifest import global_key

log = logging.getLogger("homing.worker")
HELD_SAMPLE = 50  # held ids sent per beat: enough to name holders, small enough to poll
FORGET_MS = 3_600_000  # a worker silent this long (and for 3 of its beats) is pruned


@dataclass(frozen=True)
class WorkerBeat:
    """One worker's last beat as the dashboard shows it (ages by the Redis clock)."""

    name: str
    service: str
    host: str
    pid: int
    concurrency: int
    held: int
    held_ids: tuple[str, ...]
    every_ms: int
    stopped: bool
    age_s: float

    @property
    def alive(self) -> bool:
        """Beating on time: within three of its own beats (and at least 5 s)."""
        return not self.stopped and self.age_s <= max(3 * self.every_ms / 1000, 5.0)


def parse_beat(name: str, value: str, now_ms: int) -> WorkerBeat | None:
    """A field of the workers hash; None for a value this version cannot read."""
    parts = value.split(";", 8)
    if len(parts) != 9:
        return None
    try:
        beat, every, pid, conc, held = (int(p) for p in parts[:5])
    except ValueError:
        return None
    ids = tuple(parts[7].split()) if parts[7] else ()
    return WorkerBeat(name, parts[6], parts[8], pid, conc, held, ids, every, parts[5] == "1",
                      max(0.0, (now_ms - beat) / 1000))


def read_workers(client: Any, limit: int = 1000) -> list[WorkerBeat]:
    """Every worker's last beat, alive ones first; at most ``limit`` (HSCAN-bounded read).

    HSCAN rather than HGETALL: a hash the beats keep bounded should stay small, but a
    page the dashboard polls must not become an O(N) read if it did not.
    """
    r = client.redis
    key = global_key(client.prefix, "workers")
    sec, usec = r.time()
    now = sec * 1000 + usec // 1000
    out: list[WorkerBeat] = []
    cursor = 0
    while len(out) < limit:
        cursor, page = r.hscan(key, cursor, count=200)
        for field, value in page.items():
            b = parse_beat(_s(field), _s(value), now)
            if b is not None and len(out) < limit:
                out.append(b)
        if not cursor:
            break
    return sorted(out, key=lambda b: (not b.alive, b.service, b.name))


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class Presence:
    """A Worker's beat: its name, and one call per heartbeat, after the lease extensions.

    A failed beat is logged and skipped, never retried: leases matter, the dashboard's
    view of a worker does not, so it must not hold up an extend or stop a loop.
    """

    def __init__(self, client: Any, service: str, concurrency: int) -> None:
        self.client, self.service, self.concurrency = client, service, concurrency
        # At most 255 bytes (the script refuses more), cut on a character.
        self.host = socket.gethostname().encode()[:255].decode("utf-8", "ignore")
        self.pid = os.getpid()
        self.name = f"{service}:{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"[:256]

    def beat(self, held: Sequence[tuple[str, int]], every_s: float,
             stopped: bool = False) -> None:
        ids = list(dict.fromkeys(event_id for event_id, _ in held))[:HELD_SAMPLE]
        try:
            self.client.worker_beat(self.name, self.service, self.host, self.pid,
                                    self.concurrency, len(held), int(every_s * 1000),
                                    stopped, ids)
        except HomingError as exc:
            log.debug("worker beat of %s skipped: %s", self.name, exc)
