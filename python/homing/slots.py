"""A worker's handler slots: take the inbox's events one by one, ack them together.

Split from ``worker`` (over its size budget) because this is the per-event
hot path: with a no-op handler the slot thread cost 15-19 us of CPU per event
(measured on a loaded VM where the whole bare dequeue + complete_many loop
costs ~25), so everything here that can be done per run of events is, and
what must be done per event takes no lock:

- the hand-off: a free slot takes the next waiting event with one atomic
  ``popleft`` (``Inbox``), and wakes one sleeping peer if more wait; quick
  handlers are all run by the first slot awake, slow ones spread over every
  slot, and no event waits behind a slow handler while another slot is free;
- the start check is one lock-free read of the lease's local deadline
  (``Held.open``) against one clock reading per event, which also stamps the
  watchdog's entry and times the ack flush;
- the instruments (``observe.prepare``) are prepared per run of events: with
  tracing idle (no SDK, no trace in progress) an event that carries no trace
  context costs one byte test instead of a span's machinery;
- settling and queueing the acks of handled events is one lock round each
  when the inbox is found empty, and also once ``FLUSH_S`` has passed, so that
  slow handlers still acknowledge each event as it ends;
- the fetcher is woken when that opens room in its window, instead of
  finding out on its next 1 ms look.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from . import observe
from .consumer import Consumer, Snooze
from .errors import HomingError
from .outcomes import HandlerTimeoutError
from .types import Event

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("homing.worker")

# A lease with less than this share of its length left is not started: the
# next beat might not come in time to keep it.
START_MARGIN = 0.1
# A slot queues the acks of fast handlers together, at most this long (s)
# after the first of them; a handler slower than this acks on its own.
FLUSH_S = 0.002


def slot_loop(w: Worker, slot: int, consumer: Consumer, state: Any,
              loop: asyncio.AbstractEventLoop | None) -> None:
    """The thread of one slot until the worker stops."""
    w._slot_of[threading.get_ident()] = slot  # complete_for finds its event by it
    opened = w._held.open.get  # lease -> local deadline; one atomic read, no lock
    # The watchdog's entry of this slot, stored here as Watchdog.begin and end
    # would (a call each per event was a visible share of this loop).
    running = w._watch.running
    stopped = w._stop.is_set
    clock = time.monotonic
    inbox = w._todo
    items = inbox.items
    # Atomic: each event is either started here or released by a shutdown's
    # drain, never both.
    take = items.popleft
    handled = w._pending[slot]  # release_held() flushes it too
    wrap = observe.prepare(w.instruments)
    margin = START_MARGIN * w._lease_s
    flushed = clock()
    try:
        while not stopped():
            try:
                ev = take()
            except IndexError:
                if handled:
                    ack_handled(w, handled)
                inbox.wait(0.05)
                wrap = observe.prepare(w.instruments)
                margin = START_MARGIN * w._lease_s
                flushed = clock()
                continue
            if inbox.fresh:
                inbox.took()
            if items and inbox.idle and not inbox.waking:
                inbox.spread()  # more wait: a sleeping peer takes the next while this runs
            now = clock()
            if now - flushed > FLUSH_S:
                # Slow handlers: ack what is done, look at the instruments again.
                if handled:
                    ack_handled(w, handled)
                wrap = observe.prepare(w.instruments)
                margin = START_MARGIN * w._lease_s
                flushed = now
            lease = (ev.id, ev.token)
            ends = opened(lease)
            if (ends is None or now > ends - margin or ev.must_start) \
                    and not may_start(w, ev, lease, ends, now, margin):
                continue
            running[slot] = (ev, now)  # Watchdog.begin
            try:
                state = handle(w, consumer, ev, lease, state, loop, handled, wrap)
            finally:
                running[slot] = None  # Watchdog.end
        if handled:
            ack_handled(w, handled)
    finally:
        if loop is not None:
            loop.close()


def ack_handled(w: Worker, handled: list[tuple[str, int]]) -> None:
    """Queue the completions of handled events (no result) for the acker, at once."""
    leases = handled[:]
    handled.clear()
    settled = w._held.settle_handled(leases)
    if settled:
        with w._ack_cv:
            if w._parked:
                w._kick = True  # the fetcher wakes the acker once its dequeue is out
            elif not w._acks:  # the acker takes the whole deque when it wakes
                w._ack_cv.notify()
            w._acks.extend([(event_id, token, None) for event_id, token in settled])
            w._acking += len(settled)
    w._room.set()  # handled events need no slot any more: the fetcher may lease more


def may_start(w: Worker, ev: Event, lease: tuple[str, int], ends: float | None, now: float,
              margin: float) -> bool:
    """Whether to run ev, off the fast path: its lease is gone or about to run out, or
    it must be marked started first."""
    if ends is None:
        # Settled meanwhile: the heartbeat found its lease lost (reclaimed).
        w._held.drop(lease)
        w._room.set()
        return False
    if now > ends - margin:
        # Its lease ran out while it waited (an outage, a stall): it may be
        # someone else's by now. Not run; released in case it was not reclaimed.
        w.stats.add("expired_unstarted")
        w._release([lease])
        return False
    if not ev.must_start:
        return True
    try:
        out = w.client.start(w.service, [lease])[0]
    except HomingError as exc:
        out = exc
    if isinstance(out, HomingError):
        # Not marked, so not run: the lease expires and it comes back.
        log.warning("%s/%s not started: %s", w.service, ev.id, out)
        if w._held.settle(lease):
            w.stats.add("lost")
        w._held.drop(lease)
        return False
    return True


def handle(w: Worker, consumer: Consumer, ev: Event, lease: tuple[str, int], state: Any,
           loop: asyncio.AbstractEventLoop | None, handled: list[tuple[str, int]],
           wrap: observe.Prepared | None) -> Any:
    """Run one event; a plain success is appended to ``handled`` (acked by the caller)."""
    try:
        scope = None if wrap is None else wrap(ev)
        if scope is None:
            new_state = consumer.handle_event(ev, state)
            # A handler that hands its state back is not awaitable: skip the check.
            if new_state is not state and inspect.isawaitable(new_state):
                new_state = _run_async(w, new_state, loop)
        else:
            with scope:
                new_state = consumer.handle_event(ev, state)
                if new_state is not state and inspect.isawaitable(new_state):
                    new_state = _run_async(w, new_state, loop)
    except asyncio.TimeoutError:  # an async handler cancelled at its timeout
        w._failed(ev, HandlerTimeoutError(w._timeout_s))
        return state
    except Snooze as snooze:  # raised: the same as returned (below)
        new_state = snooze
    # BaseException too: SystemExit or CancelledError from a handler must not
    # take its slot down while the event stays leased and heartbeaten.
    except BaseException as exc:  # noqa: BLE001
        w._failed(ev, exc)
        return state
    if isinstance(new_state, Snooze):
        w._snoozed(ev, new_state)
        return new_state.next_state(state)
    if not ev.must_start:
        handled.append(lease)  # settled with the slot's others (ack_handled)
    elif not w._held.settle(lease):  # the consumer completed it, or it was settled
        w._held.forget_settled(lease)
    else:
        w._ack_now(ev)  # charged already: do not leave it to a batch a crash may lose
    return new_state


def _run_async(w: Worker, awaitable: Any, loop: asyncio.AbstractEventLoop | None) -> Any:
    assert loop is not None, "handle_event returned an awaitable from a sync def"
    timeout = w._timeout_s or None
    return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))
