"""The asyncio client: the same operations as ``Client``, awaited.

Both clients execute the same ``ops.Call`` objects, so they cannot differ in
arguments, errors or reply parsing; only the I/O differs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

from . import due, durability, ops, scripting, tracing
from .clientbase import (
    DEFAULT_URL,
    DEFAULT_WAIT_TIMEOUT_MS,
    ClientBase,
    ResultWait,
    _given,
    per_item,
    raise_first,
    wait_option,
    wait_refusal,
)
from .connection import REDIS_ERRORS, SOCKET_TIMEOUT, connect_async, drop_idle_async, translate
from .errors import HomingError, RedisFullError, ServiceNotEmptyError
from .groups import AsyncGroupCalls
from .handling import AsyncHandlingCalls
from .limits import AsyncLimitCalls
from .manifest import DEFAULT_MAX_PAYLOAD, DEFAULT_PREFIX, SCRIPTS, global_key, service_key
from .types import (
    DeadPage,
    DistributeResult,
    Event,
    FailOutcome,
    PromoteResult,
    RecurringPage,
    Status,
)


class AsyncClient(ClientBase, AsyncHandlingCalls, AsyncGroupCalls, AsyncLimitCalls):
    """asyncio counterpart of ``homing.Client``; see it for each method's contract."""

    @classmethod
    async def from_url(cls, url: str = DEFAULT_URL, *, cluster: bool | None = None,
                       prefix: str = DEFAULT_PREFIX, max_payload: int = DEFAULT_MAX_PAYLOAD,
                       require_durable: bool = False, wait_replicas: int = 0,
                       wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS,
                       **redis_kwargs: Any) -> AsyncClient:
        """As ``Client.from_url``: durability settings read at once unless ``cluster`` is given."""
        wait_option(wait_replicas, wait_timeout_ms,
                    redis_kwargs.get("socket_timeout", SOCKET_TIMEOUT))
        client = cls(await connect_async(url, cluster=cluster, **redis_kwargs), prefix=prefix,
                     max_payload=max_payload, require_durable=require_durable,
                     wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms)
        try:
            if cluster is None or require_durable:
                await client.check_durability()
            if client.wait is not None:
                await client._check_wait()
        except BaseException:
            await client.close()
            raise
        return client

    async def _check_wait(self) -> None:
        """As ``Client._check_wait``."""
        try:
            await self.redis.execute_command("WAIT", 0, 0)
        except REDIS_ERRORS as exc:
            err = wait_refusal(exc)
            if err is not None:
                raise err from exc

    async def check_durability(
            self, require: bool | None = None) -> list[durability.NodeDurability]:
        """As ``Client.check_durability``."""
        reports = self._durability
        if reports is None:
            try:
                reports = await durability.read_async(self.redis)
            except REDIS_ERRORS as exc:
                raise translate(exc) from exc
        return self._durability_known(reports, require)

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, call: ops.Call) -> Any:
        """Execute one operation, as ``Client.run`` (see ``scripting``)."""
        script, keys, register = self._prepare(call)
        if self._durability is None:
            await self.check_durability()
        known = not register or await self._is_registered(call.service)
        try:
            reply, acked = await scripting.call_async(self.redis, script, keys, call.args,
                                                      self._wait_for(call.script),
                                                      self._touch_for(script, keys))
        except Exception as exc:
            err = self._failed(exc)
            if self._reconnect_after(err):
                await drop_idle_async(self.redis)
            if err is exc:
                raise
            raise err from exc
        if not known:  # the SADD only after the script succeeded, as in Client.run
            try:
                await self.register(call.service)
            except HomingError as exc:
                self._unregistered(call.service, exc)
        await self._index(call, reply)
        return self._settled(call, reply, acked)

    async def _index(self, call: ops.Call, reply: Any) -> None:
        """The due-time index's hint, as in ``Client._index``: never raised."""
        at = due.due_of(call.script, reply)
        if at is not None:
            await self.hint_due(call.service, at)

    async def hint_due(self, service: str, at: int) -> None:
        """As ``Client.hint_due``: lower service's due-time entry, wake the schedulers."""
        key = global_key(self.prefix, "due")
        try:
            if await self.redis.zadd(key, {service: at}, lt=True, ch=True):
                await self.redis.publish(due.channel(self.prefix), service)
        except REDIS_ERRORS as exc:
            self._hint_failed(service, translate(exc, key))

    async def forget(self, service: str) -> int:
        """As ``Client.forget``: ServiceNotEmptyError (nothing written) while it holds anything."""
        deleted = await self.run(due.forget(service))
        registry, index = global_key(self.prefix, "services"), global_key(self.prefix, "due")
        try:
            await self.redis.srem(registry, service)
            await self.redis.zrem(index, service)
        except REDIS_ERRORS as exc:
            raise translate(exc, registry) from exc
        self._registered.pop(service, None)
        script = SCRIPTS["forget"]
        # What the script checked, and the records (the script leaves meta to record.lua's
        # scripts: every event has its data beside its record).
        held = [k for k, name in zip(self._keys.keys(script, service), script.keys, strict=True)
                if name not in ("seq", "config", "counters")]
        held.append(service_key(self.prefix, service, "meta"))
        try:
            written = await self.redis.exists(*held)
        except REDIS_ERRORS as exc:
            raise translate(exc, held[0]) from exc
        if written:
            await self.register(service)
            raise ServiceNotEmptyError(f"{service} was written to while it was being "
                                       "forgotten; it stays registered")
        return deleted

    async def _is_registered(self, service: str) -> bool:
        key = self._registry_key(service)
        try:
            return self._seen(service, await self.redis.sismember(key, service))
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc

    async def register(self, service: str) -> None:
        key = self._registry_key(service)
        try:
            try:
                await self.redis.sadd(key, service)
            except REDIS_ERRORS as exc:
                # As in Client.register: a full Redis refuses even a SADD with
                # nothing to add; already a member is all that was needed.
                if not (isinstance(translate(exc), RedisFullError)
                        and await self.redis.sismember(key, service)):
                    raise
        except REDIS_ERRORS as exc:
            err = self._failed(exc, key)
            if self._reconnect_after(err):
                await drop_idle_async(self.redis)
            raise err from exc
        self._readonly_since = None
        self._registered[service] = time.monotonic()

    async def call(self, name: str, service: str, /, **args: Any) -> Any:
        """Any call of the manifest's call table by name, as ``Client.call``."""
        return await self.run(self.op(name, service, **args))

    async def enqueue(self, service: str, payload: Any, *, key: str | None = None,
                      id: str | None = None, priority: int = 0) -> str:  # noqa: A002
        # The span, and the trace context the envelope carries: homing.tracing.
        given = {"payload": payload, "key": key, "id": id, "priority": priority}
        if tracing.quiet():  # no span to make: the lean path (see homing.hotpath)
            return await self.run(self.hot("enqueue", service, given))
        with tracing.producing(service, "enqueue", 1, carry=id is None) as span:
            event_id = await self.run(self.hot("enqueue", service, given))
            tracing.sent(span, [event_id])
        return event_id

    async def enqueue_many(self, service: str, payloads: Iterable[Any], *,
                           keys: Sequence[str | None] | None = None,
                           ids: Sequence[str] | None = None,
                           priority: int | Sequence[int] | None = None) -> list[str]:
        payloads, levels = per_item(priority, payloads)
        count = len(payloads) if isinstance(payloads, (list, tuple)) else 0
        with tracing.producing(service, "enqueue", count, carry=ids is None):
            return await self.run(self.op("enqueue_many", service, payloads=payloads,
                                          keys=keys, ids=ids, priorities=levels))

    async def create_timer(self, service: str, payload: Any, *, delay_ms: float | None = None,
                           at: dt.datetime | float | None = None, key: str | None = None,
                           id: str | None = None, priority: int = 0) -> str:  # noqa: A002
        with tracing.producing(service, "create_timer", 1, carry=id is None) as span:
            timer_id = await self.run(self.op("create_timer", service, payload=payload,
                                              delay_ms=delay_ms,
                                              at_ms=None if at is None else ops.at_ms(at),
                                              key=key, priority=priority, **_given(id=id)))
            tracing.sent(span, [timer_id])
        return timer_id

    async def cancel_timer(self, service: str, timer_id: str) -> bool:
        return await self.run(self.op("cancel_timer", service, id=timer_id))

    async def cancel(self, service: str, event_id: str) -> tuple[bool, str]:
        """Cancel a queued event: ready, waiting out a retry, or a pending timer.

        Returns ``(True, state it left)`` or ``(False, why not)``: a leased or
        reserved event is left to its holder, a dead letter to ``dead_purge``, a
        recurring timer to ``recurring_remove``; ``"unknown"`` for no such event.
        O(1) whatever the queue's length: a ready event's id stays in the ready
        list as a dead copy that dequeue skips (docs/architecture.md).
        """
        return await self.run(self.op("cancel", service, id=event_id))

    async def status(self, service: str, event_id: str) -> Status:
        return await self.run(self.op("status", service, id=event_id))

    async def result(self, service: str, event_id: str, timeout: float | None = None) -> Any:
        wait = ResultWait(service, event_id, timeout)
        while True:
            settled, value = wait.check(await self.status(service, event_id))
            if settled:
                return value
            await asyncio.sleep(value)

    async def dequeue(self, service: str, count: int = 1, *, lease_ms: int | None = None,
                      reserve: bool = False) -> list[Event]:
        return await self.run(self.op("dequeue", service, count=count, **_given(lease_ms=lease_ms),
                                  reserve=reserve))

    async def start(self, service: str,
                    items: Sequence[tuple[str, int]]) -> list[int | HomingError]:
        return await self.run(self.op("start", service, items=items))

    async def complete(self, service: str, event_id: str, token: int, result: Any = None) -> None:
        raise_first(await self.complete_many(service, [(event_id, token, result)]))

    async def complete_many(self, service: str,
                            items: Sequence[tuple[str, int, Any]]) -> list[HomingError | None]:
        return await self.run(self.op("complete_many", service, items=items))

    async def extend_lease(self, service: str, event_id: str, token: int,
                           lease_ms: int | None = None) -> int:
        out = (await self.extend_many(service, [(event_id, token)], lease_ms))[0]
        if isinstance(out, HomingError):
            raise out
        return out

    async def extend_many(self, service: str, items: Sequence[tuple[str, int]],
                          lease_ms: int | None = None) -> list[int | HomingError]:
        return await self.run(self.op("extend_many", service, items=items,
                                      **_given(lease_ms=lease_ms)))

    async def fail(self, service: str, event_id: str, token: int, reason: str = "", *,
                   dead: bool = False, delay_ms: int | None = None) -> FailOutcome:
        return await self.run(self.op("fail", service, id=event_id, token=token, reason=reason,
                               dead=dead, delay_ms=delay_ms))

    async def release(self, service: str,
                      items: Sequence[tuple[str, int]]) -> list[HomingError | None]:
        return await self.run(self.op("release", service, items=items))

    # -- recurring timers ----------------------------------------------------

    async def recurring_put(self, service: str, name: str, payload: Any, *,
                      every_ms: int | None = None, cron: str | None = None,
                      catch_up: bool = True, priority: int = 0) -> int:
        """Register the recurring timer ``name``: every ``every_ms`` or by ``cron`` (UTC).

        Each tick fires the event ``<name>.<tick_ms>`` carrying ``payload``,
        once however many daemons run, never before its time by the Redis
        clock. The same name again is the same schedule (unchanged: it keeps
        its next tick). ``catch_up``: after downtime one event stands for the
        missed ticks (True) or they fire nothing (False). Each occurrence
        fires into the ``priority`` level (0..9, as for ``enqueue``); the same
        schedule again with another level keeps its next tick. Returns the
        next tick, ms since the epoch.
        """
        return await self.run(self.op("recurring_put", service, name=name, payload=payload,
                                every_ms=every_ms, cron=cron or "", catch_up=catch_up,
                                priority=priority))

    async def recurring_remove(self, service: str, name: str) -> bool:
        """Remove the recurring timer ``name``; False if there was none."""
        return await self.run(self.op("recurring_remove", service, name=name))

    async def recurring_list(self, service: str, offset: int = 0,
                             count: int = 100) -> RecurringPage:
        """A page of the service's recurring timers, by name."""
        return await self.run(self.op("recurring_list", service, offset=offset, count=count))

    async def services(self) -> list[str]:
        key = global_key(self.prefix, "services")
        try:
            members = await self.redis.smembers(key)
        except REDIS_ERRORS as exc:
            raise translate(exc, key) from exc
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def stats(self, service: str) -> dict[str, Any]:
        return await self.run(self.op("stats", service))

    async def configure(self, service: str, **policy: float | None) -> dict[str, float]:
        return await self.run(self.op("configure", service, policy=policy))

    async def pause(self, service: str) -> None:
        """Pause a service: ``dequeue`` hands out nothing until ``resume``.

        Producers still enqueue, timers still fire, and leases already out run to
        completion (the policy field ``paused``, shown by ``stats``).
        """
        await self.configure(service, paused=1)

    async def resume(self, service: str) -> None:
        """Resume a paused service."""
        await self.configure(service, paused=None)

    async def dead_list(self, service: str, offset: int = 0, count: int = 100) -> DeadPage:
        return await self.run(self.op("dead_list", service, offset=offset, count=count))

    async def dead_requeue(self, service: str, ids: Sequence[str] | None = None,
                           count: int = 100) -> tuple[int, int]:
        return await self.run(self.op("dead_requeue", service, ids=ids, count=count))

    async def dead_purge(self, service: str, ids: Sequence[str] | None = None,
                         count: int = 100) -> tuple[int, int]:
        return await self.run(self.op("dead_purge", service, ids=ids, count=count))

    async def promote(self, service: str, limit: int = 1000) -> PromoteResult:
        return await self.run(self.op("promote", service, limit=limit))

    async def distribute(self, service: str, limit: int = 1000) -> DistributeResult:
        return await self.run(self.op("distribute", service, limit=limit))
