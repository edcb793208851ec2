"""What a handler may say about the event it holds besides done or failed: snooze, progress.

Split from ``client`` (over its size budget) as two small mixins, one for the
sync ``Client`` and one for the ``AsyncClient``, built on their ``run`` and
``op``: both calls come from the call table (lua/scripts/snooze.lua,
progress.lua), so nothing here parses a reply.

- ``snooze`` hands the event back to come again after ``delay_ms`` without
  charging the delivery as an attempt (Oban's ``{:snooze, s}``): a handler
  that finds an outside resource not ready yet is not pushed towards the
  dead letters for it. It is bounded by the service's ``max_snoozes`` policy
  (default 100): past it the event is dead-lettered with the reason, so an
  event cannot snooze for ever unnoticed. Its due time is hinted to the
  due-time index like a fail's retry (``due.due_of``), so the scheduler wakes
  on time.
- ``progress`` records a whole percentage 0..100 in the event's record,
  fenced by the lease token like ``complete``: ``status`` and the dashboard
  show it, and it goes when the record goes (nothing to clean up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ops
from .types import FailOutcome


class HandlingCalls:
    """Client.snooze and Client.progress (mixed into the sync ``Client``)."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    def snooze(self, service: str, event_id: str, token: int, delay_ms: int) -> FailOutcome:
        """Ask for a leased event again in ``delay_ms`` ms, not charged as an attempt.

        Returns ``FailOutcome("snoozed", due_ms)``, or ``FailOutcome("dead",
        died_ms)`` when the event had used up the service's ``max_snoozes``.
        Raises StaleLeaseError if the lease was lost, like ``complete``.
        """
        return self.run(self.op("snooze", service, id=event_id, token=token,
                                delay_ms=delay_ms))

    def progress(self, service: str, event_id: str, token: int, value: int) -> int:
        """Record how far the handler got with a leased event: a whole percent 0..100.

        Shown by ``status`` (``Status.progress``) and the dashboard; fenced by
        the lease token (StaleLeaseError once the lease was lost).
        """
        return self.run(self.op("progress", service, id=event_id, token=token, value=value))


class AsyncHandlingCalls:
    """AsyncClient.snooze and AsyncClient.progress; see ``HandlingCalls``."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        async def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    async def snooze(self, service: str, event_id: str, token: int,
                     delay_ms: int) -> FailOutcome:
        """As ``Client.snooze``."""
        return await self.run(self.op("snooze", service, id=event_id, token=token,
                                      delay_ms=delay_ms))

    async def progress(self, service: str, event_id: str, token: int, value: int) -> int:
        """As ``Client.progress``."""
        return await self.run(self.op("progress", service, id=event_id, token=token,
                                      value=value))
