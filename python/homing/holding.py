"""What a Worker holds: its counts, its leases, and the events waiting for a slot.

Leases are keyed by ``(event id, token)``, never by id alone: after a stall,
the same event can come back to the same worker under a new token while the
first handler still runs, and the two deliveries must not share a record (the
new lease would go unextended and its completion dropped).

Each lease also carries the worker's own idea of when it ends, by the
monotonic clock: the time just before the call that set it (the dequeue, or
the last extend that succeeded) plus the lease length. The real deadline is
later than that, so an event whose local deadline passed may already be
someone else's and is never started (the outage case: events that waited out
their lease in the inbox would otherwise all be handled twice).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from .types import Event

Lease = tuple[str, int]


@dataclass
class WorkerStats:
    """Counts since the worker started; read them from any thread."""

    received: int = 0
    completed: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0
    snoozed: int = 0  # events whose handlers returned or raised a Snooze
    timed_out: int = 0  # handlers failed by the handler timeout
    expired_unstarted: int = 0  # events not started: their lease had run out meanwhile
    unreplicated: int = 0  # acknowledgements fewer replicas confirmed than wait_replicas asks
    limited: int = 0  # empty dequeues after which the fetcher slept the limits' (or pause's) wait
    errors: collections.Counter = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add to a count (several threads count at once)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1


class Held:
    """The leases a worker holds, and which of them have an outcome on its way.

    ``open`` maps each lease with no outcome yet to its local deadline;
    ``settling`` holds leases whose outcome (complete, fail, or lost) is being
    sent or is known: the heartbeat stops extending them, and an extend refused
    for one of them is the expected race with its acknowledgement. A held
    lease is in exactly one of the two.

    Writers take the lock. A slot's check before it starts an event is one
    ``open.get`` and takes none: a single dict read is atomic under the GIL,
    and a lease leaves ``open`` only by being settled or dropped, so the read
    sees it either still open or already gone, as a locked read would (the
    lock was a visible share of a slot's time per event).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[Lease, float] = {}  # lease -> local deadline (time.monotonic)
        self.settling: set[Lease] = set()
        # Settled leases whose acknowledgement a full Redis refused: it is sent
        # again, so the heartbeat must keep the lease alive meanwhile.
        self.resending: set[Lease] = set()

    def add(self, events: list[Event], ends: float) -> None:
        # Built outside the lock; one update inside it.
        fresh = dict.fromkeys([(ev.id, ev.token) for ev in events], ends)
        with self.lock:
            self.open.update(fresh)

    def renew(self, leases: list[Lease], ends: float) -> None:
        """Extended: their local deadline moves to ``ends`` (if still open)."""
        with self.lock:
            for lease in leases:
                if lease in self.open:
                    self.open[lease] = ends

    def open_until(self, lease: Lease) -> float | None:
        """The local deadline of a lease held with no outcome yet; None otherwise."""
        return self.open.get(lease)

    def settle(self, lease: Lease) -> bool:
        """Mark an outcome as on its way; False if one already is (or it is not held)."""
        with self.lock:
            if self.open.pop(lease, None) is None:
                return False
            self.settling.add(lease)
            return True

    def settle_handled(self, leases: list[Lease]) -> list[Lease]:
        """settle() for a batch of handled leases, in one lock round: returns those
        settled here; the others (settled elsewhere: the consumer completed them,
        the heartbeat lost them) are forgotten as forget_settled() does."""
        out = []
        with self.lock:
            pop = self.open.pop
            for lease in leases:
                if pop(lease, None) is not None:
                    out.append(lease)
                elif lease not in self.resending:
                    self.settling.discard(lease)
            self.settling.update(out)
        return out

    def resend(self, leases: list[Lease]) -> None:
        """Their acknowledgement goes out again: keep extending them until then."""
        with self.lock:
            self.resending.update(lease for lease in leases
                                  if lease in self.settling or lease in self.open)

    def drop_many(self, leases: list[Lease]) -> None:
        with self.lock:
            pop = self.open.pop
            for lease in leases:
                pop(lease, None)
            self.settling.difference_update(leases)
            if self.resending:
                self.resending.difference_update(leases)

    def drop(self, lease: Lease) -> None:
        self.drop_many([lease])

    def forget_settled(self, lease: Lease) -> None:
        """A handler is done with a lease whose outcome was settled elsewhere: drop
        it, unless an acknowledgement for it is still to be resent (the acker
        drops it then)."""
        with self.lock:
            if lease not in self.resending:
                self.open.pop(lease, None)
                self.settling.discard(lease)

    def unsettled(self) -> list[Lease]:
        """Leases to keep alive: held with no outcome on its way, or an ack to resend."""
        with self.lock:
            return list(self.open.keys() | self.resending)

    def is_open(self, lease: Lease) -> bool:
        return lease in self.open

    def token_of(self, event_id: str) -> int | None:
        """The newest open token held for an id (a consumer names events by id)."""
        with self.lock:
            tokens = [t for i, t in self.open if i == event_id]
        return max(tokens, default=None)

    def __len__(self) -> int:
        with self.lock:  # a lease moving from open to settling is counted once
            return len(self.open) + len(self.settling)


class Inbox:
    """Leased events waiting for a free slot: handed over a batch at a time.

    A batch costs one lock round and one wake-up per waiting slot, not one
    per event as ``queue.Queue.put`` would (measured: the per-event hand-off
    was a visible share of the worker's time at high throughput).
    """

    def __init__(self) -> None:
        self._items: collections.deque[Event] = collections.deque()
        self._cv = threading.Condition()
        self._taken = threading.Event()  # a slot took a share since the last put_many

    def put_many(self, events: list[Event]) -> None:
        with self._cv:
            self._taken.clear()
            self._items.extend(events)
            self._cv.notify(len(events))

    def wait_taken(self, timeout: float) -> None:
        """Wait (at most timeout s) until a slot has taken a share of the last put.

        For the fetcher, before its next call: a woken slot thread needs the GIL,
        and the fetcher building that call holds it (measured: the hand-off took
        twice as long with the pipelined lease built meanwhile)."""
        self._taken.wait(timeout)

    def get(self, timeout: float) -> Event | None:
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
            return self._items.popleft() if self._items else None

    def get_share(self, slots: int, timeout: float) -> list[Event]:
        """A slot's share of what waits: a 1/slots part (at least one event), so
        that one lock round and one wake-up serve several events while every
        slot still gets work. Empty after ``timeout`` s with nothing waiting."""
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
            n = min(len(self._items), max(1, -(-len(self._items) // slots)))
            if n:
                self._taken.set()
            return [self._items.popleft() for _ in range(n)]

    def drain(self) -> list[Event]:
        with self._cv:
            items = list(self._items)
            self._items.clear()
            return items
