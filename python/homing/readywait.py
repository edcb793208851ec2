"""An idle worker's wait for its service's ready queue: blocking, not polling.

``Client.wait_ready`` (``BLMOVE ready ready RIGHT RIGHT``) returns the moment
anything pushes an id onto the ready queue: an enqueue, a promote of a due
timer or retry, a release, a lease returned unstarted. It changes nothing (the
id it pops goes straight back where it was), needs no marker key that every
script would have to push, and costs Redis no command while it waits. The
worker dequeues as soon as it returns, so a handler starts within a round
trip or two of an event becoming ready.

``lease`` is that wait and the dequeue in one round trip (one pipeline:
Redis runs the dequeue the moment the BLMOVE returns), which the fetcher uses
whenever its last dequeue emptied the queue: an idle worker then receives the
event itself, not a sign to ask for it.

Falls back to the old sleep-and-poll (``poll_max``) where the wait is refused
(an ACL without BLMOVE, a Redis before 6.2), and when the queue keeps looking
non-empty while dequeues find nothing (which would otherwise spin).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from . import ops
from .client import Client
from .errors import ConnectionLostError, HomingError, ReadOnlyError, RedisFullError

log = logging.getLogger("homing.worker")
BLOCK_S = 0.1  # one wait; Redis ends it on its next 100 ms tick, so a stop waits <= ~0.2 s


class ReadyWait:
    """The fetcher's wait after an empty dequeue."""

    def __init__(self, client: Client, service: str, stop: threading.Event) -> None:
        self.client, self.service, self.stop = client, service, stop
        self.blocking = True
        self.waits = 0  # blocking waits made, for tests: an idle worker makes few
        self._nonempty = False  # the last wait said "ready" and the dequeue still found none

    def wait(self, idle: float) -> bool:
        """Wait for the next event; True if it slept ``idle`` instead (poll backoff)."""
        if not self.blocking or self._nonempty:
            self._nonempty = False
            self.stop.wait(idle)
            return True
        try:
            self.waits += 1
            self._nonempty = self.client.wait_ready(self.service, BLOCK_S)
        except (ConnectionLostError, ReadOnlyError, RedisFullError):
            # The server's trouble, not the wait's: the dequeue's retry loop deals with
            # an outage, its READONLY clock with a replica; a full Redis refuses BLMOVE
            # (it may grow a list) until it is drained.
            self.stop.wait(idle)
            return True
        except HomingError as exc:
            log.warning("worker %s: cannot block on its ready queue (%s): polling every "
                        "%.3g s at most instead", self.service, exc, 0.05)
            self.blocking = False
        return False

    def can_lease(self) -> bool:
        """Whether ``lease`` blocks (not after a wait that found nothing to lease)."""
        return self.blocking and not self._nonempty

    def lease(self, call: ops.Call, hints: list[tuple[str, int]]) -> Any:
        """Block until the ready queue has something (at most BLOCK_S), then run
        ``call`` (the dequeue) at once, in the same round trip; its parsed reply.
        ``hints``: see ``Client.dequeue_when_ready``."""
        self.waits += 1
        ready, batch = self.client.dequeue_when_ready(self.service, BLOCK_S, call, hints)
        if isinstance(ready, (ConnectionLostError, ReadOnlyError, RedisFullError)):
            self._nonempty = True  # the BLMOVE's trouble: the next wait is a poll's sleep
        elif isinstance(ready, HomingError):
            log.warning("worker %s: cannot block on its ready queue (%s): polling every "
                        "%.3g s at most instead", self.service, ready, 0.05)
            self.blocking = False
        elif ready and not batch.events and not batch.wait_ms:
            self._nonempty = True  # "ready", yet nothing to lease: do not spin on it
        return batch

    def woke_with_events(self) -> None:
        self._nonempty = False
