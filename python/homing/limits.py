"""Rate and concurrency limits of a service, across every worker: the client calls.

The limits are policy fields (lua/keys.json ``policy``), set with
``configure`` like any other and enforced by the dequeue script itself, by
the Redis clock, so a hundred workers together respect them and no worker
has to trust another's clock:

- ``rate_limit`` events handed out per ``rate_window_ms`` (a sliding window:
  the per-service log ``starts`` holds one entry per lease of the window);
- ``concurrency`` leases out at once (``ZCARD leases``; a worker's reserved
  prefetch counts, as it is leased).

0 is no limit. When a limit, or the pause, holds ready events back, the
dequeue reply says how long to wait (``wait_ms``); ``dequeue_batch`` returns
it with the events (``Batch``), and the workers sleep that long rather than
poll. Split from ``client`` (over its size budget) as mixins, like
``handling``; nothing here parses a reply: it all comes from the call table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ops
from .types import Batch, Limits

LIMIT_FIELDS = ("rate_limit", "rate_window_ms", "concurrency")


def limits_of(stats: dict[str, Any]) -> Limits:
    """The ``Limits`` in a ``stats`` reply (its ``policy.*`` fields and queue lengths)."""
    return Limits(rate_limit=int(stats["policy.rate_limit"]),
                  rate_window_ms=int(stats["policy.rate_window_ms"]),
                  concurrency=int(stats["policy.concurrency"]),
                  paused=bool(stats["policy.paused"]),
                  in_flight=int(stats["in_flight"]), ready=int(stats["ready"]))


def limit_policy(rate_limit: int | None, rate_window_ms: int | None,
                 concurrency: int | None) -> dict[str, int | None]:
    """The configure pairs for the limits given (0 lifts one; None leaves it as it is)."""
    given = {"rate_limit": rate_limit, "rate_window_ms": rate_window_ms,
             "concurrency": concurrency}
    # 0 lifts a limit: remove the override rather than store the default.
    return {k: (None if v == 0 and k != "rate_window_ms" else v)
            for k, v in given.items() if v is not None}


class LimitCalls:
    """Client.dequeue_batch, Client.limits and Client.set_limits (mixed into ``Client``)."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    def dequeue_batch(self, service: str, count: int = 1, *, lease_ms: int | None = None,
                      reserve: bool = False) -> Batch:
        """As ``dequeue``, with the reply's ``wait_ms``: sleep that long when no events came.

        ``wait_ms`` is above 0 only when ready events were held back by the
        service's ``rate_limit``, its ``concurrency`` or its pause.
        """
        args: dict[str, Any] = {"count": count, "reserve": reserve}
        if lease_ms is not None:
            args["lease_ms"] = lease_ms
        return self.run(self.op("dequeue_batch", service, **args))

    def limits(self, service: str) -> Limits:
        """The service's limits (0: none), whether it is paused, and its leases out now."""
        return limits_of(self.run(self.op("stats", service)))

    def set_limits(self, service: str, *, rate_limit: int | None = None,
                   rate_window_ms: int | None = None,
                   concurrency: int | None = None) -> Limits:
        """Set the limits given (0 lifts one, None leaves it): ``configure`` of their fields."""
        policy = limit_policy(rate_limit, rate_window_ms, concurrency)
        if policy:
            self.run(self.op("configure", service, policy=policy))
        return self.limits(service)


class AsyncLimitCalls:
    """AsyncClient.dequeue_batch, limits and set_limits; see ``LimitCalls``."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        async def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    async def dequeue_batch(self, service: str, count: int = 1, *,
                            lease_ms: int | None = None, reserve: bool = False) -> Batch:
        """As ``Client.dequeue_batch``."""
        args: dict[str, Any] = {"count": count, "reserve": reserve}
        if lease_ms is not None:
            args["lease_ms"] = lease_ms
        return await self.run(self.op("dequeue_batch", service, **args))

    async def limits(self, service: str) -> Limits:
        """As ``Client.limits``."""
        return limits_of(await self.run(self.op("stats", service)))

    async def set_limits(self, service: str, *, rate_limit: int | None = None,
                         rate_window_ms: int | None = None,
                         concurrency: int | None = None) -> Limits:
        """As ``Client.set_limits``."""
        policy = limit_policy(rate_limit, rate_window_ms, concurrency)
        if policy:
            await self.run(self.op("configure", service, policy=policy))
        return await self.limits(service)
