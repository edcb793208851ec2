"""The consumer behaviour, after the original system's ``gen_queue_consumer``.

A consumer is a class with two callbacks::

    class WeatherConsumer(Consumer):
        def init(self):
            return {"seen": 0}                    # -> initial state

        def handle_event(self, event, state):    # -> new state
            post_to_site(event.payload)
            self.complete(event.service, event.id, result="posted")
            return {"seen": state["seen"] + 1}

``homing worker module:WeatherConsumer --service weather`` runs it. The
consumer may call ``self.complete(service, id, result)`` itself, as in the
original API; if it returns without doing so, the runner completes the event
for it (with no result). If it raises, the event is failed and retried after
the service's backoff, or dead-lettered when its attempts are used up;
raising ``Reject`` dead-letters it at once. ``handle_event`` may also be an
``async def``.
"""

from __future__ import annotations

from typing import Any, Protocol

from .types import Event


class Reject(Exception):  # noqa: N818 - a signal to the runner, not an error
    """Raise from handle_event to dead-letter the event at once (no retry)."""


class _Acker(Protocol):
    def complete_for(self, service: str, event_id: str, result: Any) -> None: ...


class Consumer:
    """Base class of consumers; override ``init`` and ``handle_event``."""

    _acker: _Acker | None = None

    def init(self) -> Any:
        """Return the initial state (called once per concurrent slot)."""
        return None

    def handle_event(self, event: Event, state: Any) -> Any:
        """Handle one event and return the new state."""
        raise NotImplementedError

    def complete(self, service: str, event_id: str, result: Any = None) -> None:
        """Acknowledge an event this consumer holds, optionally with a result.

        The runner knows the lease token, so the consumer names the event as
        in the original API. Raises StaleLeaseError if the lease was lost (the
        event expired and went to another consumer).
        """
        if self._acker is None:
            raise RuntimeError("complete() is available while the consumer runs under a Worker")
        self._acker.complete_for(service, event_id, result)
