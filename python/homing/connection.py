"""Connecting to Redis (standalone, Cluster or Sentinel), and turning Redis errors into
homing errors.

How a script call is sent (NOSCRIPT, WAIT, Cluster retries) is in ``scripting``;
Sentinel in ``sentinel``; the URL forms beyond redis-py's in ``urls``.

**Dead connections.** Unless the caller passes its own, every connection gets
a connect timeout of 5 s, a socket timeout of 10 s (no homing call blocks in
Redis: the longest wait is a ``WAIT``, whose timeout must stay below it), TCP
keepalive probes after 5 s idle every 2 s, 3 of them (where the platform has
the options), and a PING before a command on a connection idle for 5 s. A
peer that vanished without a FIN or a reset (a partition, a dead host) is
noticed within about 10 s, by the call that was waiting or by the next one,
instead of never: redis-py 5 waits for ever by default.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from . import sentinel
from .errors import (
    ConnectionLostError,
    HomingError,
    InvalidArgumentError,
    PermissionDeniedError,
    ReadOnlyError,
    RedisFullError,
    ScriptError,
    WrongTypeError,
    error_for,
)
from .lane import drop_lane
from .manifest import ERROR_REPLY_RE, GLOBAL_KEYS, Script, global_key, service_key
from .scripting import demoted, refused_unrun
from .urls import is_sentinel, seed_urls

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# Redis's reply to a write it refuses under maxmemory + noeviction (redis-py
# strips the 'OOM' code from the message, a script's pcall keeps it).
_OOM = "command not allowed when used memory"
# Replies to the SELECT that redis-py sends on connecting for a URL's /N: out of
# range, or any N but 0 on a Cluster node.
# An ACL refusal: a plain command's NOPERM reply, or Redis 7.0's wording inside
# a script (which names no command: ACL LOG does).
_NO_PERMISSION = ("NOPERM", "can't run this command or subcommand",
                  "has no permissions to run", "has no permissions to access")
_BAD_DB = ("DB index is out of range", "SELECT is not allowed in cluster mode")


def is_bad_database(exc: Exception) -> bool:
    """Whether a reply refuses the URL's database index (it comes with any first command)."""
    return any(marker in str(exc) for marker in _BAD_DB)

# Everything a redis-py call can raise: translated, so that callers (the
# daemons and the worker) only ever see HomingError.
REDIS_ERRORS = (RedisError, OSError)


def translate(exc: Exception, key: str | None = None) -> HomingError:
    """A typed homing error for a Redis error reply or a lost connection.

    ``key`` names the key a plain command (not a script) was sent for, so that
    a WRONGTYPE reply says which key someone else wrote over.
    """
    text = str(exc)
    if isinstance(exc, (AuthenticationError, AuthorizationError, NoPermissionError)) or any(
            t in text for t in _NO_PERMISSION):
        # Before the connection errors: redis-py raises a refused AUTH as one.
        return PermissionDeniedError(f"Redis refused the user: {exc}")
    if demoted(exc) or text.startswith(("READONLY", "WAIT cannot be used with replica")):
        # Before the connection errors: Sentinel's connection raises READONLY as one.
        return ReadOnlyError(f"the server is a read-only replica (a failover moved the "
                             f"primary); nothing was written: {exc}")
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLostError(f"Redis could not be reached: {exc}")
    if text.startswith("NOREPLICAS"):
        # min-replicas-to-write: the primary refused the first write of the script
        # (homing's scripts validate before writing), so nothing was written.
        return ConnectionLostError(f"the primary refused the write: fewer replicas than "
                                   f"min-replicas-to-write are in sync; nothing was written, "
                                   f"retry later: {exc}")
    if refused_unrun(exc):
        return ConnectionLostError(f"the Redis Cluster refused the call (a slot migrating or "
                                   f"a failover under way; nothing was run): {exc}")
    m = ERROR_REPLY_RE.fullmatch(text)  # 'HOMING <CODE> <message>' (keys.json error_reply)
    if m:
        return error_for(m.group(1), m.group(2))
    if _OOM in text:
        # Redis refused the call before it wrote anything (a plain command, or
        # a script whose memory class is 'grows'): say so in homing's terms.
        return RedisFullError(f"Redis is full, nothing was written: {exc}")
    if text.startswith("WRONGTYPE"):
        # The registry, hints and beats are plain commands, not scripts: Redis's
        # own reply is the type guard there.
        where = f"key {key}" if key else "a homing key"
        return WrongTypeError(f"{where} holds a value of the wrong Redis type (another program "
                              f"wrote it); nothing was written: {exc}")
    if is_bad_database(exc):
        return InvalidArgumentError(
            f"the database index of the Redis URL is out of range on this server ({exc}); "
            "a Redis Cluster has only database 0")
    return ScriptError(f"Redis refused a homing script: {exc}")


class KeyCache:
    """The KEYS list of each (script, service), built once: it is on every call's path."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._cache: dict[tuple[str, str], list[str]] = {}

    def keys(self, script: Script, service: str) -> list[str]:
        k = (script.name, service)
        found = self._cache.get(k)
        if found is None:
            found = [global_key(self.prefix, name) if name in GLOBAL_KEYS
                     else service_key(self.prefix, service, name) for name in script.keys]
            if len(self._cache) < 10000:
                self._cache[k] = found
        return found




def is_cluster_url(client: redis.Redis) -> bool:
    """Ask the server whether it runs in cluster mode (INFO cluster).

    A server that refuses INFO (an ACL, a managed service) is taken as standalone;
    a URL whose database does not exist is refused here, when connecting, instead
    of as a puzzling error of the first call.
    """
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except ResponseError as exc:
        if is_bad_database(exc):
            raise translate(exc) from exc
        return False


def _from_url(factory: Any, url: str, **kwargs: Any) -> Any:
    """redis-py's from_url, with its verdict on a malformed URL typed.

    redis-py raises ValueError for a malformed URL, and RedisClusterException for
    a database index given to a Cluster.
    """
    try:
        return factory(url, **kwargs)
    except (ValueError, RedisClusterException) as exc:
        raise InvalidArgumentError(f"invalid Redis URL: {exc}") from exc


def _binary(kwargs: dict[str, Any]) -> None:
    """Replies must stay bytes: envelopes are binary, and a reply that failed to
    decode after a dequeue would leave its events leased by nobody."""
    if kwargs.setdefault("decode_responses", False):
        raise InvalidArgumentError("homing needs decode_responses=False (payloads are binary)")


CONNECT_TIMEOUT = 5.0
SOCKET_TIMEOUT = 10.0
HEALTH_CHECK_INTERVAL = 5
# TCP keepalive: first probe after 5 s idle, then every 2 s, 3 probes: a dead peer
# is dropped within about 11 s even on a connection no call is waiting on.
KEEPALIVE = (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3))


def keepalive_options() -> dict[int, int]:
    """The TCP keepalive options this platform has (macOS lacks TCP_KEEPIDLE, for one)."""
    return {getattr(socket, name): value for name, value in KEEPALIVE if hasattr(socket, name)}


def with_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    """homing's connection settings under what the caller passed (see the module docstring)."""
    _binary(kwargs)
    kwargs.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT)
    kwargs.setdefault("socket_keepalive", True)
    if kwargs["socket_keepalive"]:
        kwargs.setdefault("socket_keepalive_options", keepalive_options())
    kwargs.setdefault("health_check_interval", HEALTH_CHECK_INTERVAL)
    return kwargs


def _seed_nodes(node_class: Any, seeds: list[str], given: Any) -> list[Any]:
    """Cluster startup nodes: the caller's ``startup_nodes``, then the URL's other seeds."""
    nodes = list(given or [])
    for seed in seeds:
        opts = redis.connection.parse_url(seed)
        nodes.append(node_class(opts.get("host", "localhost"), opts.get("port", 6379)))
    return nodes


def _not_a_cluster(seeds: list[str]) -> None:
    if len(seeds) > 1:
        raise InvalidArgumentError(
            "several hosts in a redis:// URL are the seed nodes of a Redis Cluster, and this "
            "server is not a Cluster node: give one host, or a redis+sentinel:// URL")


def _reachable_first(seeds: list[str], reached: str) -> list[str]:
    return [reached, *(s for s in seeds if s != reached)]


def connect(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """A redis-py client for url: standalone, RedisCluster, or on Sentinel's primary.

    ``cluster=None`` asks the server (each seed of ``redis://h1:p1,h2:p2`` in
    turn, until one answers). Responses stay bytes: payloads are binary.
    redis-py's own retries are turned off (``retry`` may still be passed): a
    command whose reply was lost may have run, and running ``dequeue`` again
    would lease events nobody holds. The worker and daemons retry themselves,
    after a lost connection, with calls that are safe to repeat. (MOVED and
    ASK redirections on Cluster are still followed.) Timeouts and keepalive:
    see the module docstring.
    """
    with_defaults(kwargs)
    kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    if is_sentinel(url):
        if cluster:
            raise InvalidArgumentError("a redis+sentinel:// URL names a primary, not a Cluster")
        return sentinel.connect(url, **kwargs)
    seeds = seed_urls(url)
    if cluster is None and kwargs.get("startup_nodes"):
        cluster = True  # startup_nodes are Cluster seeds: no probe, which would need one up
    if cluster is None:
        last: Exception | None = None
        for seed in seeds:
            probe = _from_url(redis.Redis.from_url, seed, **kwargs)
            try:
                cluster = is_cluster_url(probe)
            except CONNECTION_ERRORS as exc:
                last = exc  # a seed that is down: try the next one
                continue
            finally:
                probe.close()
            seeds = _reachable_first(seeds, seed)
            break
        else:
            assert last is not None
            raise translate(last) from last
    if cluster:
        kwargs["startup_nodes"] = _seed_nodes(ClusterNode, seeds[1:],
                                              kwargs.get("startup_nodes"))
        # RedisCluster's constructor reads COMMAND from a random primary: with one
        # down (a seed, a master mid-failover) it must try another, which only
        # its cluster-level retry does. Safe for that read; the client's own
        # calls get ``retry`` (none by default) once it is built.
        retry = kwargs.pop("retry")
        client = _from_url(redis.RedisCluster.from_url, seeds[0], retry=Retry(NoBackoff(), 10),
                           **kwargs)
        client.set_retry(retry)
        return client
    _not_a_cluster(seeds)
    return _from_url(redis.Redis.from_url, url, **kwargs)


async def connect_async(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """The asyncio counterpart of connect()."""
    from redis.asyncio.cluster import ClusterNode as AsyncClusterNode

    with_defaults(kwargs)
    kwargs.setdefault("retry", AsyncRetry(NoBackoff(), 0))
    if is_sentinel(url):
        if cluster:
            raise InvalidArgumentError("a redis+sentinel:// URL names a primary, not a Cluster")
        return await sentinel.connect_async(url, **kwargs)
    seeds = seed_urls(url)
    if cluster is None and kwargs.get("startup_nodes"):
        cluster = True  # startup_nodes are Cluster seeds: no probe, which would need one up
    if cluster is None:
        last: Exception | None = None
        for seed in seeds:
            probe = _from_url(redis.asyncio.Redis.from_url, seed, **kwargs)
            try:
                info = await probe.info("cluster")
                cluster = bool(info.get("cluster_enabled"))
            except ResponseError as exc:
                if is_bad_database(exc):
                    raise translate(exc) from exc
                cluster = False
            except CONNECTION_ERRORS as exc:
                last = exc
                continue
            finally:
                await probe.aclose()
            seeds = _reachable_first(seeds, seed)
            break
        else:
            assert last is not None
            raise translate(last) from last
    if cluster:
        kwargs["startup_nodes"] = _seed_nodes(AsyncClusterNode, seeds[1:],
                                              kwargs.get("startup_nodes"))
        client = _from_url(redis.asyncio.RedisCluster.from_url, seeds[0], **kwargs)
        # Learn the topology before anyone uses the client: on a cold async
        # RedisCluster, concurrent first commands each start a refresh that
        # recycles connections under commands already sent, and redis-py then
        # sends them again, so one script call could run twice.
        try:
            await _initialize_cluster(client)
        except CONNECTION_ERRORS as exc:
            await client.aclose()
            raise translate(exc) from exc
        return client
    _not_a_cluster(seeds)
    return _from_url(redis.asyncio.Redis.from_url, url, **kwargs)


async def _initialize_cluster(client: Any) -> None:
    """``initialize()`` of an asyncio RedisCluster, surviving a primary that is down.

    redis-py reads COMMAND from its default node, the first primary of the slot
    map; when that node is down (a stopped seed, a master not yet failed over)
    the others are asked instead. (Uses redis-py's ``_initialize`` flag: there
    is no public way to finish an initialisation done by hand.)
    """
    try:
        await client.initialize()
        return
    except CONNECTION_ERRORS as exc:
        error: Exception = exc
    manager = client.nodes_manager
    await manager.initialize()
    for node in manager.get_nodes_by_server_type("primary"):
        try:
            await client.commands_parser.initialize(node)
        except CONNECTION_ERRORS as exc:
            error = exc
            continue
        manager.default_node = node
        client._initialize = False
        return
    raise error


def drop_idle(r: Any) -> None:
    """Close the idle connections of a standalone or Sentinel client's pool.

    After READONLY or a lost connection the others are likely dead or
    demoted too: each would otherwise fail one call before it reconnects,
    and through Sentinel a new connection asks for the primary again. Busy
    connections are left to their calls. A RedisCluster refreshes its own.
    """
    pool = getattr(r, "connection_pool", None)
    if pool is not None:
        with contextlib.suppress(Exception):  # best effort, on the error path already
            pool.disconnect(inuse_connections=False)
            drop_lane(r)  # the held connection of the lean send path (homing.lane)


async def drop_idle_async(r: Any) -> None:
    """drop_idle() for a redis.asyncio client."""
    pool = getattr(r, "connection_pool", None)
    if pool is not None:
        with contextlib.suppress(Exception):
            await pool.disconnect(inuse_connections=False)
