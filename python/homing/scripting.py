"""Sending one script call: EVALSHA, EVAL on NOSCRIPT, WAIT if asked, retries a Cluster allows.

Three things happen here, for the sync and the asyncio client alike:

- **NOSCRIPT**: the script cache is not persistent (a restart, a failover, a
  new Cluster node), so the call is repeated once with EVAL, which also puts
  the script back in that node's cache.
- **WAIT** (``wait_replicas``): after a write script, ``WAIT N T`` on the same
  connection, since WAIT counts the replicas that have every write *of its
  connection*: sent on another connection of the pool it would answer for
  that connection's writes, not this call's. So the script and the WAIT go
  out as one pipeline (one round trip) on one connection; on a Cluster, on a
  connection of the node that owns the service's slot, following MOVED and
  ASK here since that pipeline bypasses redis-py's Cluster routing.
- **An idempotent repeat** (an enqueue or timer sent again with the same id
  or key, the answer to a NotReplicatedError) writes nothing, and WAIT counts
  replicas up to the connection's last write. Redis 7.0 moves that mark with
  every script call, written or not (tested: test_failover_plain), but that
  is an implementation detail; so when the reply reports a repeat,
  ``HINCRBY <counters> <field> 0`` (no value changes, but Redis propagates
  it) and a second WAIT follow on the same node, which then cover the first
  send whichever connection made it.
- **READONLY through Sentinel**: the node the sentinels named was demoted
  (one that has not heard of a failover yet still names the old primary):
  nothing was written, so the call is sent again after asking another
  sentinel, ``STALE_TRIES`` times at most, pausing 50 ms doubling.
- **Calls a Cluster refused unrun**: ``TRYAGAIN`` (a multi-key call while the
  slot migrates and its keys are split between two nodes), ``CLUSTERDOWN``
  (during a failover) and redis-py's "TTL exhausted" (its own redirection
  loop, over MOVED, ASK and TRYAGAIN, ran out) all mean the script did not
  run, so sending it again is safe; unlike a lost reply, after which it may
  have run. They are retried with a backoff of 10 ms doubling to 200 ms for
  up to ``RETRY_BUDGET`` seconds, then raised as ConnectionLostError with
  the reason.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)

from .errors import ConnectionLostError
from .lane import BUSY, lane_for
from .manifest import Script

# Seconds a call may spend on Cluster refusals (TRYAGAIN, CLUSTERDOWN) before it fails.
RETRY_BUDGET = 5.0
FIRST_PAUSE = 0.01
MAX_PAUSE = 0.2
MAX_REDIRECTS = 16  # MOVED/ASK in a row before they are paced like refusals (redis-py's TTL)
STALE_TRIES = 5  # READONLY through Sentinel: 50 ms doubling, 1.55 s in all (the gossip's 2 s)
# What redis-py's Sentinel connection raises (a ConnectionError) for a READONLY reply.
DEMOTED = "The previous master is now a slave"


@dataclass(frozen=True)
class Wait:
    """``WAIT replicas timeout_ms`` after each write script (see ``Client.from_url``)."""

    replicas: int
    timeout_ms: int


@dataclass(frozen=True)
class Touch:
    """For a script with idempotent repeats: the counter to touch when a reply reports one.

    Its replies hold (id, flag) pairs from index 0, flag 0 for a repeat.
    """

    key: str
    field: str

    @staticmethod
    def repeated(reply: Any) -> bool:
        return isinstance(reply, list) and any(flag == 0 for flag in reply[1::2])


def refused_unrun(exc: BaseException) -> bool:
    """Whether a Cluster answered that it did not run the call (safe to send again)."""
    if isinstance(exc, (TryAgainError, ClusterDownError, SlotNotCoveredError)):
        return True
    return isinstance(exc, ClusterError) and "TTL exhausted" in str(exc)


class _Backoff:
    """The retry pacing of refused calls: 10 ms doubling to 200 ms, within the budget."""

    def __init__(self) -> None:
        self.pause = FIRST_PAUSE
        self.end: float | None = None

    def next(self, exc: BaseException) -> float:
        """The pause before the next attempt; raises ConnectionLostError past the budget."""
        now = time.monotonic()
        if self.end is None:
            self.end = now + RETRY_BUDGET
        if now + self.pause > self.end:
            raise ConnectionLostError(
                f"the Redis Cluster kept refusing the call for {RETRY_BUDGET:g} s (a slot "
                f"migrating or a failover under way; nothing was run): {exc}") from exc
        pause, self.pause = self.pause, min(self.pause * 2, MAX_PAUSE)
        return pause


def demoted(exc: BaseException) -> bool:
    """A READONLY reply (plain, from a script, or as redis-py's Sentinel connection says it)."""
    return isinstance(exc, ReadOnlyError) or DEMOTED in str(exc)


def _is_cluster(r: Any) -> bool:
    return isinstance(r, (redis.RedisCluster, redis.asyncio.RedisCluster))


def _replies(results: list[Any]) -> tuple[Any, Any]:
    """The script's reply and WAIT's, from a pipeline's results (ASKING's first, if sent)."""
    return results[-2], results[-1]


def _checked(reply: Any, acked: Any) -> tuple[Any, int]:
    if isinstance(reply, Exception):
        raise reply
    if isinstance(acked, Exception):
        # A WAIT cut short because this primary was just demoted ("UNBLOCKED ...
        # master -> replica"): the script ran here, and no replica is known to have
        # it; the caller's NotReplicatedError says exactly that.
        if str(acked).startswith("UNBLOCKED"):
            return reply, 0
        raise acked
    return reply, int(acked)


# -- sync ---------------------------------------------------------------------------


def call(r: Any, script: Script, keys: list[str], args: list[Any],
         wait: Wait | None = None, touch: Touch | None = None) -> tuple[Any, int | None]:
    """Run a script; returns its raw reply and, with ``wait``, how many replicas acknowledged.

    Raises redis-py's errors (the caller translates them), and ConnectionLostError
    once a Cluster has refused the call for longer than the budget.
    """
    backoff = _Backoff()
    ask: tuple[str, int] | None = None
    redirects = stale = 0
    while True:
        try:
            if wait is None:
                return _plain(r, script, keys, args), None
            reply, acked = _waited(r, script, keys, args, wait, ask)
            if touch is not None and touch.repeated(reply):
                acked = _touched(r, touch, wait)
            return reply, acked
        except (AskError, MovedError) as exc:  # only from the WAIT pipeline
            # (redis-py follows redirections itself); bounded like its own loop
            if isinstance(exc, AskError):
                ask = (exc.host, exc.port)
            else:
                ask = None
                r.nodes_manager.initialize()
            redirects += 1
            if redirects > MAX_REDIRECTS:
                time.sleep(backoff.next(exc))
        except Exception as exc:
            if demoted(exc) and hasattr(r, "stale_primary") and stale < STALE_TRIES:
                r.stale_primary()
                time.sleep(0.05 * 2 ** stale)
                stale += 1
                continue
            if not refused_unrun(exc):
                raise
            ask = None
            time.sleep(backoff.next(exc))


def _plain(r: Any, script: Script, keys: list[str], args: list[Any]) -> Any:
    lane = lane_for(r)  # a standalone client's lean path (see homing.lane)
    if lane is not None:
        try:
            reply = lane.call("EVALSHA", script.sha1, len(keys), *keys, *args)
        except NoScriptError:
            reply = lane.call("EVAL", script.source, len(keys), *keys, *args)
            if reply is BUSY:  # another thread took the lane in between
                reply = r.eval(script.source, len(keys), *keys, *args)
            return reply
        if reply is not BUSY:
            return reply
    try:
        return r.evalsha(script.sha1, len(keys), *keys, *args)
    except NoScriptError:
        return r.eval(script.source, len(keys), *keys, *args)


def _node_client(r: Any, keys: list[str], ask: tuple[str, int] | None) -> Any:
    """The redis.Redis to pipeline on: r itself, or the Cluster node of the keys' slot."""
    if not _is_cluster(r):
        return r
    node = r.get_node(host=ask[0], port=ask[1]) if ask else (
        r.get_node_from_key(keys[0]) if keys else r.get_default_node())
    if node is None:
        r.nodes_manager.initialize()
        raise ClusterDownError("the node to send the call to is not in the slot map yet")
    return r.get_redis_connection(node)


def _touch_commands(touch: Touch, wait: Wait) -> list[tuple[Any, ...]]:
    return [("HINCRBY", touch.key, touch.field, 0), ("WAIT", wait.replicas, wait.timeout_ms)]


def _touch_acked(results: list[Any]) -> int:
    """WAIT's count after the touch; 0 when either failed (nothing is vouched for then)."""
    bumped, acked = results
    if isinstance(bumped, Exception) or isinstance(acked, Exception):
        return 0
    return int(acked)


def _touched(r: Any, touch: Touch, wait: Wait) -> int:
    try:
        pipe = _node_client(r, [touch.key], None).pipeline(transaction=False)
        for command in _touch_commands(touch, wait):
            pipe.execute_command(*command)
        return _touch_acked(pipe.execute(raise_on_error=False))
    except redis.RedisError:
        return 0  # the script's write stands; only its replication is unknown


def _waited(r: Any, script: Script, keys: list[str], args: list[Any], wait: Wait,
            ask: tuple[str, int] | None) -> tuple[Any, int]:
    client = _node_client(r, keys, ask)
    for source in (False, True):
        pipe = client.pipeline(transaction=False)
        if ask:
            pipe.execute_command("ASKING")
        if source:
            pipe.eval(script.source, len(keys), *keys, *args)
        else:
            pipe.evalsha(script.sha1, len(keys), *keys, *args)
        pipe.execute_command("WAIT", wait.replicas, wait.timeout_ms)
        reply, acked = _replies(pipe.execute(raise_on_error=False))
        if not (isinstance(reply, NoScriptError) and not source):
            return _checked(reply, acked)
    raise AssertionError("unreachable")


# -- asyncio ------------------------------------------------------------------------


async def call_async(r: Any, script: Script, keys: list[str], args: list[Any],
                     wait: Wait | None = None,
                     touch: Touch | None = None) -> tuple[Any, int | None]:
    """call() for a redis.asyncio client."""
    backoff = _Backoff()
    ask: tuple[str, int] | None = None
    redirects = stale = 0
    while True:
        try:
            if wait is None:
                return await _plain_async(r, script, keys, args), None
            reply, acked = await _waited_async(r, script, keys, args, wait, ask)
            if touch is not None and touch.repeated(reply):
                acked = await _touched_async(r, touch, wait)
            return reply, acked
        except (AskError, MovedError) as exc:  # only from the WAIT pipeline
            # (redis-py follows redirections itself); bounded like its own loop
            if isinstance(exc, AskError):
                ask = (exc.host, exc.port)
            else:
                ask = None
                await r.nodes_manager.initialize()
            redirects += 1
            if redirects > MAX_REDIRECTS:
                await asyncio.sleep(backoff.next(exc))
        except Exception as exc:
            if demoted(exc) and hasattr(r, "stale_primary") and stale < STALE_TRIES:
                await r.stale_primary()
                await asyncio.sleep(0.05 * 2 ** stale)
                stale += 1
                continue
            if not refused_unrun(exc):
                raise
            ask = None
            await asyncio.sleep(backoff.next(exc))


async def _plain_async(r: Any, script: Script, keys: list[str], args: list[Any]) -> Any:
    try:
        return await r.evalsha(script.sha1, len(keys), *keys, *args)
    except NoScriptError:
        return await r.eval(script.source, len(keys), *keys, *args)


async def _touched_async(r: Any, touch: Touch, wait: Wait) -> int:
    commands = _touch_commands(touch, wait)
    try:
        if _is_cluster(r):
            return _touch_acked(await _cluster_pipeline(r, [touch.key], None, commands))
        pipe = r.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return _touch_acked(await pipe.execute(raise_on_error=False))
    except redis.RedisError:
        return 0


async def _waited_async(r: Any, script: Script, keys: list[str], args: list[Any], wait: Wait,
                        ask: tuple[str, int] | None) -> tuple[Any, int]:
    for source in (False, True):
        head = [("ASKING",)] if ask else []
        run = (("EVAL", script.source) if source else ("EVALSHA", script.sha1))
        commands = [*head, (*run, len(keys), *keys, *args), ("WAIT", wait.replicas,
                                                             wait.timeout_ms)]
        if _is_cluster(r):
            results = await _cluster_pipeline(r, keys, ask, commands)
        else:
            pipe = r.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            results = await pipe.execute(raise_on_error=False)
        reply, acked = _replies(results)
        if not (isinstance(reply, NoScriptError) and not source):
            return _checked(reply, acked)
    raise AssertionError("unreachable")


async def _cluster_pipeline(r: Any, keys: list[str], ask: tuple[str, int] | None,
                            commands: list[tuple[Any, ...]]) -> list[Any]:
    """Commands on one connection of one node of an asyncio RedisCluster.

    The asyncio RedisCluster has no per-node redis.asyncio.Redis to pipeline on;
    its ClusterNode runs a pipeline of PipelineCommands on one connection
    (what its own ClusterPipeline does per node).
    """
    from redis.asyncio.cluster import PipelineCommand

    node = r.get_node(host=ask[0], port=ask[1]) if ask else (
        r.get_node_from_key(keys[0]) if keys else r.get_default_node())
    if node is None:
        await r.nodes_manager.initialize()
        raise ClusterDownError("the node to send the call to is not in the slot map yet")
    pipeline = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
    await node.execute_pipeline(pipeline)
    return [c.result for c in pipeline]
