"""Group results: enqueue many events as one group and wait for all their results.

The producer/consumer with feedback of the original talk, for many events at
once: ``enqueue_group`` adds up to 1000 events in one atomic call (script
group_enqueue) and returns a ``Group``; ``wait_group`` returns every member's
result in order once all completed, or raises ``GroupFailedError`` naming the
first member that was dead-lettered or cancelled, without waiting for the
others. Memory is bounded: a group has at most the batch limit of members,
and their results are kept with the group, retired together ``result_ttl_ms``
after it finished (or removed at once with ``group_forget``), never one by
one (lua/include/group.lua has the layout).

Split from ``client`` (over its size budget) as two small mixins, one for the
sync ``Client`` and one for the ``AsyncClient``, built on their ``run`` and
``op``: every call comes from the call table, so nothing here parses a reply
beyond decoding the results. The wait polls ``group_result`` as the single
``result`` wait polls ``status``: from 2 ms, doubling to 100 ms (a fast group
answers quickly, a slow one costs few calls); while the group runs the reply
carries no results, so a poll costs little however large the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import envelope, ops, tracing
from .clientbase import per_item
from .errors import ResultTimeoutError
from .types import Group, GroupStatus

__all__ = ["AsyncGroupCalls", "GroupCalls", "GroupWait", "results_of"]


def results_of(reply: dict[str, Any]) -> list[Any] | None:
    """The members' decoded results of a group_result reply (None while it runs).

    A member completed without a result reads as None.
    """
    if not reply["finished"]:
        return None
    return [envelope.decode(x["raw_result"]) if x["raw_result"] else None
            for x in reply["items"]]


class GroupWait:
    """The producer's wait for a group, without I/O (shared by both clients).

    Feed it each ``group_result`` reply: it says whether the group finished
    (and its results) or how long to sleep before asking again. A failure is
    raised by the call itself (GroupFailedError), an unknown group likewise
    (UnknownGroupError).
    """

    def __init__(self, service: str, group: str, timeout: float | None) -> None:
        if timeout is not None:
            ops.seconds(timeout, "timeout")
        self.service, self.group, self.timeout = service, group, timeout
        self.end = None if timeout is None else time.monotonic() + timeout
        self.pause = 0.002

    def check(self, reply: dict[str, Any]) -> tuple[bool, Any]:
        """(True, results) once finished; (False, seconds to sleep) while it runs.

        Raises ResultTimeoutError once ``timeout`` seconds passed.
        """
        results = results_of(reply)
        if results is not None:
            return True, results
        left = None if self.end is None else self.end - time.monotonic()
        if left is not None and left <= 0:
            raise ResultTimeoutError(
                f"group {self.service}/{self.group} did not finish within {self.timeout} s")
        pause = self.pause if left is None else min(self.pause, left)
        self.pause = min(self.pause * 2, 0.1)
        return False, pause


def _group(reply: dict[str, Any]) -> Group:
    """A group_enqueue reply (the group's id, then one record per member) as a ``Group``."""
    return Group(reply["group"], [x["id"] for x in reply["items"]])


def _count(payloads: Iterable[Any]) -> int:
    return len(payloads) if isinstance(payloads, (list, tuple)) else 0


class GroupCalls:
    """Client.enqueue_group, group_status, group_result, wait_group, group_forget."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    def enqueue_group(self, service: str, payloads: Iterable[Any], *,
                      ids: Sequence[str] | None = None,
                      priority: int | Sequence[int] | None = None) -> Group:
        """Add up to 1000 events as one group in one atomic call; returns the ``Group``.

        Each member is an ordinary event for the consumers. Every id must be
        new (DuplicateIdError otherwise): a group has no idempotency keys.
        ``priority``: one level (0..9) for every member, or a list of one per
        payload, as for ``enqueue_many``.
        """
        payloads, levels = per_item(priority, payloads)
        with tracing.producing(service, "enqueue_group", _count(payloads),
                               carry=ids is None):
            return _group(self.run(self.op("enqueue_group", service, payloads=payloads,
                                           ids=ids, priorities=levels)))

    def group_status(self, service: str, group: str) -> GroupStatus:
        """Where a group stands now (UnknownGroupError once it is gone)."""
        return self.run(self.op("group_status", service, group=group))

    def group_result(self, service: str, group: str) -> list[Any] | None:
        """The members' results in order, or None while the group runs; looks once.

        Raises GroupFailedError once a member was dead-lettered or cancelled.
        """
        return results_of(self.run(self.op("group_result", service, group=group)))

    def wait_group(self, service: str, group: str, timeout: float | None = None) -> list[Any]:
        """Wait until every member completed; returns their results in order.

        Raises GroupFailedError at the first member dead-lettered or
        cancelled (the others may still run), ResultTimeoutError after
        ``timeout`` seconds, UnknownGroupError if the group is gone
        (forgotten, or retired ``result_ttl_ms`` after it finished).
        """
        wait = GroupWait(service, group, timeout)
        while True:
            done, value = wait.check(self.run(self.op("group_result", service, group=group)))
            if done:
                return value
            time.sleep(value)

    def group_forget(self, service: str, group: str) -> int:
        """Remove a group and its members' results now; returns how many results went."""
        return self.run(self.op("group_forget", service, group=group))


class AsyncGroupCalls:
    """The asyncio forms of ``GroupCalls``."""

    if TYPE_CHECKING:  # what the client it is mixed into provides
        async def run(self, call: ops.Call) -> Any: ...
        def op(self, call: str, service: str, /, **args: Any) -> ops.Call: ...

    async def enqueue_group(self, service: str, payloads: Iterable[Any], *,
                            ids: Sequence[str] | None = None,
                            priority: int | Sequence[int] | None = None) -> Group:
        """As ``Client.enqueue_group``."""
        payloads, levels = per_item(priority, payloads)
        with tracing.producing(service, "enqueue_group", _count(payloads),
                               carry=ids is None):
            return _group(await self.run(self.op("enqueue_group", service,
                                                 payloads=payloads, ids=ids,
                                                 priorities=levels)))

    async def group_status(self, service: str, group: str) -> GroupStatus:
        """As ``Client.group_status``."""
        return await self.run(self.op("group_status", service, group=group))

    async def group_result(self, service: str, group: str) -> list[Any] | None:
        """As ``Client.group_result``."""
        return results_of(await self.run(self.op("group_result", service, group=group)))

    async def wait_group(self, service: str, group: str,
                         timeout: float | None = None) -> list[Any]:
        """As ``Client.wait_group``."""
        wait = GroupWait(service, group, timeout)
        while True:
            done, value = wait.check(
                await self.run(self.op("group_result", service, group=group)))
            if done:
                return value
            await asyncio.sleep(value)

    async def group_forget(self, service: str, group: str) -> int:
        """As ``Client.group_forget``."""
        return await self.run(self.op("group_forget", service, group=group))
