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
    """Per slot, the event it is running and since when (time.monotonic).

    ``begin`` and ``end`` run around every handler, so they take no lock: each
    is one store into the slot's own entry, atomic under the GIL. A slot is
    hung while the entry ``overdue`` reported is still its current one, so a
    handler that returns as it is reported frees its slot all the same (a
    locked ``end`` was a visible share of a slot's time per event).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # between overdue() and hung() (the watch thread)
        # slot -> (event, since) or None; the slot loop stores into it directly.
        self.running: dict[int, tuple[Event, float] | None] = {}
        self._hung: dict[int, tuple[Event, float]] = {}  # slot -> the entry reported

    def begin(self, slot: int, ev: Event, now: float | None = None) -> None:
        # A handler that just began cannot be overdue yet.
        self.running[slot] = (ev, time.monotonic() if now is None else now)

    def end(self, slot: int) -> None:
        """The handler returned: the slot is free again, hung or not."""
        self.running[slot] = None

    def current(self, slot: int) -> Event | None:
        """The event the slot is handling right now, if any."""
        entry = self.running.get(slot)
        return None if entry is None else entry[0]

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
            for slot, entry in list(self.running.items()):
                if entry is not None and self._hung.get(slot) is not entry \
                        and now - entry[1] > timeout:
                    self._hung[slot] = entry
                    out.append(entry[0])
        return out

    def hung(self) -> int:
        """How many slots run a handler past its timeout right now."""
        with self._lock:
            return sum(1 for slot, entry in self._hung.items()
                       if self.running.get(slot) is entry)
