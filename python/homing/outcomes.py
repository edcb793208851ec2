"""How a worker reports what happened to each event: acknowledgements, fails, releases.

Split from ``worker`` (a mixin of ``Worker``, sharing its state) because these
are the paths that must survive a Redis in trouble: acknowledgements are
batched by one thread and resent after a lost connection, items a full Redis
refused are kept and sent again, and every outcome settles its lease once so
that it is counted once and never sent twice.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .consumer import Reject, Snooze
from .errors import (
    ConnectionLostError,
    CorruptEnvelopeError,
    HomingError,
    InvalidArgumentError,
    NotReplicatedError,
    ReadOnlyError,
    RedisFullError,
    StaleLeaseError,
)
from .holding import Held, Inbox, Lease, WorkerStats
from .manifest import MAX_BATCH, MAX_REASON
from .types import Event

log = logging.getLogger("homing.worker")
UNREPLICATED_EVERY = 60.0  # seconds between two warnings about unreplicated acknowledgements


def cut_reason(text: str) -> str:
    """text cut to ``limits.reason_bytes`` bytes of UTF-8, on a character boundary.

    The cap is in bytes, as fail.lua applies it: cutting characters would send
    up to four times the cap for the script to cut again. A character the cut
    would split is dropped whole, so the reason stays valid text.
    """
    data = text.encode("utf-8", "replace")  # a lone surrogate becomes '?'
    if len(data) <= MAX_REASON:
        return data.decode("utf-8")
    return data[:MAX_REASON].decode("utf-8", "ignore")


def _text(exc: BaseException) -> str:
    """str(exc), or a stand-in: an exception whose __str__ raises must still fail its
    event, not take its handler slot down (as the JavaScript worker does)."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - whatever its __str__ raises
        return "(an exception that cannot be shown as text)"


class HandlerTimeoutError(Exception):
    """A handler ran past the handler timeout: the event is failed with this reason."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"handler timed out after {round(seconds * 1000)} ms")


class Outcomes:
    """The outcome half of ``Worker``; its attributes are set by ``Worker.__init__``."""

    client: Any
    service: str
    stats: WorkerStats
    _held: Held
    _todo: Inbox
    _acks: collections.deque[tuple[str, int, Any]]
    _ack_cv: threading.Condition
    _room: threading.Event
    _stop: threading.Event
    _handlers_done: threading.Event
    _acking: int
    readonly_give_up: float
    gave_up: HomingError | None
    _unreplicated_told: float

    def _retrying(self, what: str, fn: Callable[[], Any], pause: list[float]) -> Any:
        """Run fn; on any homing error log, back off (0.05 s to 2 s) and return None.

        Not only lost connections: a BUSY server or a key someone broke must
        not end a worker thread silently while its leases expire. READONLY is
        retried until ``readonly_give_up`` (see ``_read_only``).
        """
        try:
            out = fn()
            pause[0] = 0.05
            return out
        except HomingError as exc:
            log.warning("%s: %s; retrying in %.2f s", what, exc, pause[0])
            if isinstance(exc, ReadOnlyError):
                self._read_only(exc)
            self._stop.wait(pause[0])
            pause[0] = min(pause[0] * 2, 2.0)
            return None

    def _read_only(self, exc: ReadOnlyError) -> None:
        """Stop once every write met READONLY for ``readonly_give_up`` seconds.

        Through Sentinel the client reconnects to the new primary within
        seconds; a plain URL on a demoted node would get READONLY for ever
        while this worker's events wait: better to exit and say why.
        """
        lasted = self.client.read_only_for()
        if lasted < self.readonly_give_up or self.gave_up is not None:
            return
        self.gave_up = ReadOnlyError(
            f"every write for {lasted:.0f} s was answered READONLY (readonly_give_up "
            f"{self.readonly_give_up:g} s): the Redis this worker uses is a replica now. "
            "Point it at the primary, or use a redis+sentinel:// URL to follow failovers "
            f"(docs/failover.md); last reply: {exc}")
        log.error("worker %s: %s", self.service, self.gave_up)
        self._stop.set()

    def _replicated_or_not(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args), taking a NotReplicatedError's result as the outcome.

        Its write happened on the primary: sending it again would be refused
        (the lease is spent) and count the event as lost. It is only less sure
        to survive a failover; counted as ``unreplicated`` and warned about at
        most once every UNREPLICATED_EVERY seconds.
        """
        try:
            return fn(*args)
        except NotReplicatedError as exc:
            self.stats.add("unreplicated")
            now = time.monotonic()
            if now - self._unreplicated_told >= UNREPLICATED_EVERY:
                self._unreplicated_told = now
                log.warning("%s: %s (taken as done; %d so far; said at most once a minute)",
                            self.service, exc, self.stats.unreplicated)
            return exc.result  # type: ignore[attr-defined]

    def _ack_now(self, ev: Event) -> None:
        """Acknowledge one event at once; on any trouble hand it to the acker."""
        try:
            err = self._replicated_or_not(self.client.complete_many, self.service,
                                          [(ev.id, ev.token, None)])[0]
        except HomingError:
            err = RedisFullError("not sent")  # the acker retries it like a refused one
        if err is None:
            self.stats.add("completed")
            self._held.drop((ev.id, ev.token))
        elif isinstance(err, RedisFullError):
            with self._ack_cv:
                self._acks.append((ev.id, ev.token, None))
                self._acking += 1
                self._ack_cv.notify()
        else:
            self.stats.add("lost")
            self.stats.error(err.code)
            self._held.drop((ev.id, ev.token))

    def _failed(self, ev: Event, exc: BaseException) -> None:
        # Retrying cannot fix a rejected event or an envelope that does not decode.
        dead = isinstance(exc, (Reject, CorruptEnvelopeError))
        reason = cut_reason(str(exc) if isinstance(exc, HandlerTimeoutError)
                            else f"{type(exc).__name__}: {_text(exc)}")
        if not self._held.settle((ev.id, ev.token)):
            # Its outcome is settled already (the consumer completed it, or the
            # heartbeat found the lease lost): there is nothing left to fail.
            log.warning("%s/%s raised after its outcome was settled: %s", self.service, ev.id,
                        reason)
            self._held.forget_settled((ev.id, ev.token))
            return
        if isinstance(exc, HandlerTimeoutError):
            self.stats.add("timed_out")
            log.error("%s/%s attempt %d: %s; failing it", self.service, ev.id, ev.attempt,
                      reason)
        elif not isinstance(exc, Reject):
            log.warning("%s/%s attempt %d failed: %s", self.service, ev.id, ev.attempt, reason,
                        exc_info=not isinstance(exc, HomingError))
        self._send_fail(ev, reason, dead)

    def _send_fail(self, ev: Event, reason: str, dead: bool) -> None:
        """Send the fail of a settled lease, retrying a lost connection, then drop it."""
        out = self._send_settled(ev, "fail", lambda: self.client.fail(
            self.service, ev.id, ev.token, reason, dead=dead))
        if out is not None:
            self.stats.add("failed")
            log.info("%s/%s -> %s", self.service, ev.id, out.action)
        self._held.drop((ev.id, ev.token))

    def _send_settled(self, ev: Event, what: str, send: Any) -> Any:
        """Send the outcome of a settled lease once: its reply, or None when it is not sent.

        A lost connection is retried (pausing 50 ms doubling to 2 s) until a
        stop; a lost lease counts as lost; any other refusal is logged and the
        lease left to expire, so the event is retried. Shared by fail and
        snooze, which differ only in the call and what its reply counts as.
        """
        pause = 0.05
        while True:
            try:
                return self._replicated_or_not(send)
            except StaleLeaseError:
                self.stats.add("lost")
                return None
            except ConnectionLostError:
                if self._stop.wait(pause) and pause >= 2.0:
                    return None  # shutting down: the lease will expire and be retried
                pause = min(pause * 2, 2.0)
            except HomingError as exc:  # the lease expires and the event is retried
                log.error("%s/%s: could not %s it: %s", self.service, ev.id, what, exc)
                self.stats.error(exc.code)
                return None

    def _snoozed(self, ev: Event, snooze: Snooze) -> None:
        """The handler returned or raised a Snooze: send it once, like a fail.

        Settled first, so the heartbeat stops extending the lease and a
        handler that also completed the event is not answered twice. A delay
        the client refuses (not a whole number of ms in 0..12 h) is the
        handler's bug: the event is failed with that reason instead (retried,
        charged), not left to its lease.
        """
        if not self._held.settle((ev.id, ev.token)):
            log.warning("%s/%s snoozed after its outcome was settled", self.service, ev.id)
            self._held.forget_settled((ev.id, ev.token))
            return
        try:  # built (and so checked) before anything is sent
            call = self.client.op("snooze", self.service, id=ev.id, token=ev.token,
                                  delay_ms=snooze.delay_ms)
        except InvalidArgumentError as exc:
            log.warning("%s/%s: the handler's snooze was refused (%s); failing it",
                        self.service, ev.id, exc)
            self._send_fail(ev, cut_reason(f"Snooze: {exc}"), False)
            return  # _send_fail dropped the lease
        out = self._send_settled(ev, "snooze", lambda: self.client.run(call))
        if out is not None:
            self.stats.add("snoozed" if out.action == "snoozed" else "failed")
            log.info("%s/%s -> %s (snooze)", self.service, ev.id, out.action)
        self._held.drop((ev.id, ev.token))

    def progress_for(self, event: Event, value: int) -> int:
        """``Consumer.progress``: the event's own token fences it."""
        return self.client.progress(event.service, event.id, event.token, value)

    def _ack_loop(self) -> None:
        pause = [0.05]
        full_pause = 0.05  # between resends of acks a full Redis refused
        while True:
            with self._ack_cv:
                while not self._acks and not self._handlers_done.is_set():
                    self._ack_cv.wait(0.1)
                if not self._acks and self._handlers_done.is_set():
                    return
                batch = [self._acks.popleft() for _ in range(min(len(self._acks), MAX_BATCH))]
            while True:
                errors = self._retrying(
                    "complete", lambda b=batch: self._replicated_or_not(
                        self.client.complete_many, self.service, b), pause)
                if errors is not None:
                    break
                if self._handlers_done.is_set() and pause[0] >= 2.0:
                    log.error("giving up %d completions: Redis unreachable; they will be "
                              "redelivered after their leases expire", len(batch))
                    errors = [ConnectionLostError("completion not sent")] * len(batch)
                    break
            # A full Redis refuses an ack whose result would grow it: kept, sent again
            # (its lease still extended), until the worker is shutting down and the
            # longest pause has passed: then it is left to its lease.
            giving_up = self._handlers_done.is_set() and full_pause >= 2.0
            full = [] if giving_up else [item for item, err in zip(batch, errors, strict=True)
                                         if isinstance(err, RedisFullError)]
            self._held.resend([(item[0], item[1]) for item in full])
            with self._ack_cv:
                self._acking -= len(batch) - len(full)
                self._acks.extend(full)
            resent = {(item[0], item[1]) for item in full}
            self._held.drop_many([(item[0], item[1]) for item in batch
                                  if (item[0], item[1]) not in resent])
            self._room.set()  # the fetcher's window has room again
            done = 0
            for item, err in zip(batch, errors, strict=True):
                if err is None:
                    done += 1
                elif (item[0], item[1]) not in resent:
                    self.stats.add("lost")
                    self.stats.error(err.code)
                    log.warning("completion refused: %s", err)
            if done:
                self.stats.add("completed", done)  # one lock round per batch, not per event
            if full:
                log.warning("%d completions refused by a full Redis; sending them again",
                            len(full))
                # A plain sleep, not _stop.wait: a stopping worker must still pause.
                time.sleep(full_pause)
                full_pause = min(full_pause * 2, 2.0)
            else:
                full_pause = 0.05
                pause[0] = min(pause[0] * 2, 2.0)

    def _release_unstarted(self) -> None:
        events = self._todo.drain()
        self._release([(ev.id, ev.token) for ev in events])

    def _release(self, items: list[Lease]) -> None:
        for i in range(0, len(items), MAX_BATCH):
            chunk = items[i:i + MAX_BATCH]
            try:
                refused = self.client.release(self.service, chunk)
                self.stats.add("released", sum(1 for err in refused if err is None))
            except HomingError as exc:
                log.warning("could not release %d events (%s); they return when their "
                            "leases expire", len(chunk), exc)
            self._held.drop_many(chunk)
