"""The worker's fetcher: lease batches in reserve mode whenever slots are free.

Split from ``worker`` (over its size budget). The window rule: handled
events waiting for their ack count as free, so the next dequeue overlaps the
last batch's ``complete_many``, but the fetcher never holds more than two
windows (``concurrency + prefetch``) of leases.

When the service's limits (``rate_limit`` per ``rate_window_ms``,
``concurrency``: policy fields every worker shares, enforced by the dequeue
script) or its pause hold ready events back, the dequeue says for how long
(``Batch.wait_ms``): the fetcher sleeps that long, woken early only by stop.
Blocking on the ready queue would not do (it holds events, so it returns at
once), nor would the idle poll (a hundred workers polling a rate-limited
service every few ms would cost Redis more than the work).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .daemoncalls import send_hints
from .manifest import MAX_BATCH

if TYPE_CHECKING:
    from .worker import Worker


# How long the fetcher waits for a slot to take the events it just leased before
# its next call, when that call is the lease's wait (the queue was emptied).
HANDOFF_S = 0.002
# How long a batch's due-time hint (its lease deadline) may wait for the next
# dequeue to carry it while the window is full, before it is sent on its own
# (never longer than a tenth of the lease).
HINT_HOLD_S = 0.05


def fetch_loop(w: Worker) -> None:
    """The fetch thread of ``w`` until it stops."""
    try:
        _fetch(w)
    finally:
        w._parked = False
        kick_acker(w)


def kick_acker(w: Worker) -> None:
    """Wake the acker for the acks a slot queued while this thread waited for room.

    The slot that opens room queues its acks without waking the acker when the
    fetcher is parked on the room: woken together, the acker would take the
    GIL first to encode its batch (measured: ~1 ms), and the next dequeue, the
    round trip every slot waits on, would go out after it. Kicked here just
    before the dequeue, the acker encodes while that dequeue is in Redis.
    """
    if w._kick:
        with w._ack_cv:
            w._kick = False
            w._ack_cv.notify()


def _fetch(w: Worker) -> None:
    idle, pause = 0.001, [0.05]
    # The last dequeue emptied the ready queue: the next one waits for it first, in
    # the same round trip (ReadyWait.lease). A dequeue that filled its room did not.
    drained = False
    # The due-time index's hints of the batches leased (their lease deadlines), kept
    # back until the handlers have the events, then sent with the next dequeue, in
    # its round trip (Client.run_hinted, Client.dequeue_when_ready): on their own
    # only before a sleep, or once they waited HINT_HOLD_S for a full window.
    hints: list[tuple[str, int]] = []
    hinted_at = 0.0  # when the oldest of them was kept back
    while not w._stop.is_set():
        kick_acker(w)
        window = w.concurrency + w.prefetch
        w._room.clear()  # before the look: room opening after it sets it again
        held = len(w._held)
        # Overlap the next dequeue with the acks of the last batch, but never
        # hold more than two windows of leases at once.
        room = min(window - (held - w._acking), 2 * window - held)
        if room <= 0:
            if hints and time.monotonic() - hinted_at > min(HINT_HOLD_S, w._lease_s / 10):
                send_hints(w.client, hints)
            # Woken as soon as a slot hands its handled events to the acker or
            # the acker is done with a batch; 1 ms at most for any other way.
            w._parked = True
            w._room.wait(0.001)
            w._parked = False
            continue
        count = min(room, MAX_BATCH)
        args: dict[str, Any] = {"count": count, "reserve": True}
        if w.lease_ms is not None:
            args["lease_ms"] = w.lease_ms
        call = w.client.op("dequeue_batch", w.service, **args)
        block = drained and w._ready.can_lease()
        sent = time.monotonic()
        batch = w._retrying(
            "dequeue",
            (lambda c=call: w._ready.lease(c, hints)) if block
            else (lambda c=call: w.client.run_hinted(c, hints)),
            pause)
        if batch is None:
            drained = False
            continue  # refused: _retrying logged it and backed off
        events = batch.events
        drained = len(events) < count
        if events:
            idle = 0.001
            w._ready.woke_with_events()
            w._held.add(events, sent + w._lease_s)
            w.stats.add("received", len(events))
            w._todo.put_many(events)
            if len(hints) == 1:
                hinted_at = sent
            if drained and w._ready.can_lease():
                w._todo.wait_taken(HANDOFF_S)  # the queue is empty: let a handler start first
            continue  # the next dequeue carries the hint
        if not (drained and w._ready.can_lease()):
            send_hints(w.client, hints)  # a sleep comes next, no dequeue to carry them
        if batch.wait_ms > 0:
            w.stats.add("limited")
            w._stop.wait(batch.wait_ms / 1000)
        elif not block and not w._ready.can_lease() and w._ready.wait(idle):
            idle = min(idle * 2, w.poll_max)
    send_hints(w.client, hints)
