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
    """Leased events waiting for a free slot, taken one at a time without a lock.

    Slots take events with ``items.popleft()`` (atomic under the GIL): a slot
    that is free takes the next event, so none waits behind a slow handler in
    another slot's share, and a slot that finds events waiting takes them with
    no lock round at all. The condition is used only to sleep on an empty
    inbox and to wake a sleeping slot, at most one at a time: ``put_many``
    wakes one, and a slot that takes an event while more wait wakes the next
    (``spread``), so slow handlers fill every slot within a wake-up each, while
    quick ones are all run by the first slot awake (measured: shares of
    1/concurrency made one slot take 30 ever smaller shares per batch of 110,
    a lock round and an acknowledgement hand-over each, while its peers waited
    for the GIL).
    """

    def __init__(self) -> None:
        self.items: collections.deque[Event] = collections.deque()
        self._cv = threading.Condition()
        self.idle = 0  # slots sleeping in wait() (changed under _cv; read without it)
        self.waking = False  # a slot was woken and has not come back from its wait yet
        self.fresh = False  # events were put that no slot has taken from yet
        self._taken = threading.Event()  # a slot took from the last put_many

    def put_many(self, events: list[Event]) -> None:
        with self._cv:
            self._taken.clear()
            self.fresh = True
            self.items.extend(events)
            self._wake()

    def _wake(self) -> None:
        """Wake one sleeping slot, unless one is on its way already (under _cv)."""
        if self.idle and not self.waking:
            self.waking = True
            self._cv.notify()

    def took(self) -> None:
        """The first event of a put was taken (for ``wait_taken``)."""
        self.fresh = False
        self._taken.set()

    def spread(self) -> None:
        """A slot took an event and more wait: wake one more slot to take them."""
        with self._cv:
            if self.items:
                self._wake()

    def wait(self, timeout: float) -> None:
        """Sleep until events are put (or a peer spreads them), at most timeout s."""
        with self._cv:
            if self.items:
                return
            self.idle += 1
            try:
                self._cv.wait(timeout)
            finally:
                # Woken or timed out, this slot is back: the next put or spread may
                # wake another (at worst one wake-up too many, never one too few).
                self.idle -= 1
                self.waking = False

    def wait_taken(self, timeout: float) -> None:
        """Wait (at most timeout s) until a slot has taken from the last put.

        For the fetcher, before its next call: a woken slot thread needs the GIL,
        and the fetcher building that call holds it (measured: the hand-off took
        twice as long with the pipelined lease built meanwhile)."""
        self._taken.wait(timeout)

    def drain(self) -> list[Event]:
        """Take every waiting event (popped one at a time: each is either taken by a
        slot or drained here, never both)."""
        out = []
        pop = self.items.popleft
        while True:
            try:
                out.append(pop())
            except IndexError:
                return out
