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
raising ``Reject`` dead-letters it at once. Returning or raising a
``Snooze(delay_ms)`` asks for the event again after that delay without it
counting as an attempt (Oban's ``{:snooze, s}``), up to the service's
``max_snoozes`` (default 100), after which a snooze dead-letters it.
``self.progress(event, 50)`` records how far the handler got (a whole
percentage 0..100), shown by ``status`` and the dashboard. ``handle_event``
may also be an ``async def``.
"""

from __future__ import annotations

from typing import Any, Protocol

from .types import Event


class Reject(Exception):  # noqa: N818 - a signal to the runner, not an error
    """Raise from handle_event to dead-letter the event at once (no retry)."""


_KEEP: Any = object()  # a returned Snooze without a state keeps the slot's state


class Snooze(Exception):  # noqa: N818 - a signal to the runner, not an error
    """Return or raise from handle_event to get the event again in ``delay_ms``, uncharged.

    Why both: raising reads naturally deep inside a handler ("not yet"),
    returning keeps the handler's control flow plain, and a returned Snooze
    may carry the slot's next state (``Snooze(5000, state=new)``; without one
    the state is kept). The delivery does not count as an attempt, so a
    handler waiting on something outside (a rate limit, a file not there yet)
    is not pushed towards the dead letters; past the service's
    ``max_snoozes`` the event is dead-lettered instead, with the reason.
    """

    def __init__(self, delay_ms: int, state: Any = _KEEP) -> None:
        super().__init__(f"snooze {delay_ms} ms")
        self.delay_ms = delay_ms
        self.state = state

    def next_state(self, state: Any) -> Any:
        """The state the slot goes on with: the one given, else ``state``."""
        return state if self.state is _KEEP else self.state


class _Acker(Protocol):
    def complete_for(self, service: str, event_id: str, result: Any) -> None: ...
    def progress_for(self, event: Event, value: int) -> int: ...


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

    def progress(self, event: Event, value: int) -> int:
        """Record how far this handler got with ``event``: a whole percentage 0..100.

        Fenced by the event's lease token (StaleLeaseError once the lease was
        lost); ``status`` and the dashboard show it. Returns the value stored.
        """
        if self._acker is None:
            raise RuntimeError("progress() is available while the consumer runs under a Worker")
        return self._acker.progress_for(event, value)
