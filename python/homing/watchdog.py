"""The handler timeout: which slots run an event for too long, and which are hung.

A Python thread cannot be killed, so a handler past its timeout keeps its
thread; what the worker can do is stop holding the event for it: fail the
event (it is retried or dead-lettered by the service's policy, like any
failure), stop extending its lease, and drop whatever the handler reports
later. The slot counts as hung until its handler returns. A worker whose
slots are all hung can do no more work, so it stops and says so (``homing
worker`` exits 3), and its supervisor restarts it.
"""

from __future__ import annotations

import threading
import time

from .types import Event


class Watchdog:
    """Per slot, the event it is running and since when (time.monotonic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[Event, float]] = {}
        self._hung: set[int] = set()

    def begin(self, slot: int, ev: Event) -> None:
        # No lock: one dict store is atomic, each slot writes only its own
        # entry, and a handler that just began cannot be overdue yet.
        self._running[slot] = (ev, time.monotonic())

    def end(self, slot: int) -> None:
        """The handler returned: the slot is free again, hung or not.

        Under the lock, so that ``overdue`` never reports a handler that has
        already returned."""
        with self._lock:
            self._running.pop(slot, None)
            self._hung.discard(slot)

    def overdue(self, timeout: float) -> list[Event]:
        """Events whose handlers have run past ``timeout`` s and were not yet reported.

        Each is reported once: its slot is marked hung until the handler returns.
        A little slack past the timeout lets an async handler be cancelled at the
        timeout by its own event loop first (its slot is then free, not hung).
        """
        timeout += max(0.05, timeout / 10)
        now = time.monotonic()
        out = []
        with self._lock:
            for slot, (ev, since) in list(self._running.items()):  # begin() takes no lock
                if slot not in self._hung and now - since > timeout:
                    self._hung.add(slot)
                    out.append(ev)
        return out

    def hung(self) -> int:
        """How many slots run a handler past its timeout right now."""
        with self._lock:
            return len(self._hung)
