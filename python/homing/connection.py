"""Connecting to Redis, running scripts, and turning Redis errors into homing errors.

Scripts run with EVALSHA; on NOSCRIPT (a restart, a failover, a new cluster
node: the script cache is not persistent) the call is repeated once with
EVAL, which also puts the script back in that node's cache. This works the
same on a standalone server and on Cluster, where each node has its own cache.
"""

from __future__ import annotations

import re
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
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

from .errors import (
    ConnectionLostError,
    HomingError,
    InvalidArgumentError,
    PermissionDeniedError,
    RedisFullError,
    ScriptError,
    WrongTypeError,
    error_for,
)
from .manifest import GLOBAL_KEYS, Script, global_key, service_key

_HOMING_ERR = re.compile(r"^HOMING (\w+) (.*?)(?: script: \w+, on @user_script:\d+\.)?$", re.S)
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
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLostError(f"Redis could not be reached: {exc}")
    m = _HOMING_ERR.match(text)
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


def connect(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """A redis-py client for url: standalone, or RedisCluster when the server is a cluster node.

    ``cluster=None`` asks the server. Responses stay bytes: payloads are binary.
    redis-py's own retries are turned off (``retry`` may still be passed): a
    command whose reply was lost may have run, and running ``dequeue`` again
    would lease events nobody holds. The worker and daemons retry themselves,
    after a lost connection, with calls that are safe to repeat. (MOVED and
    ASK redirections on Cluster are still followed.)
    """
    _binary(kwargs)
    kwargs.setdefault("retry", Retry(NoBackoff(), 0))
    if cluster is None:
        probe = _from_url(redis.Redis.from_url, url, **kwargs)
        try:
            cluster = is_cluster_url(probe)
        except CONNECTION_ERRORS as exc:
            raise translate(exc) from exc
        finally:
            probe.close()
    if cluster:
        return _from_url(redis.RedisCluster.from_url, url, **kwargs)
    return _from_url(redis.Redis.from_url, url, **kwargs)


async def connect_async(url: str, *, cluster: bool | None = None, **kwargs: Any) -> Any:
    """The asyncio counterpart of connect()."""
    _binary(kwargs)
    kwargs.setdefault("retry", AsyncRetry(NoBackoff(), 0))
    if cluster is None:
        probe = _from_url(redis.asyncio.Redis.from_url, url, **kwargs)
        try:
            info = await probe.info("cluster")
            cluster = bool(info.get("cluster_enabled"))
        except ResponseError as exc:
            if is_bad_database(exc):
                raise translate(exc) from exc
            cluster = False
        except CONNECTION_ERRORS as exc:
            raise translate(exc) from exc
        finally:
            await probe.aclose()
    if cluster:
        client = _from_url(redis.asyncio.RedisCluster.from_url, url, **kwargs)
        # Learn the topology before anyone uses the client: on a cold async
        # RedisCluster, concurrent first commands each start a refresh that
        # recycles connections under commands already sent, and redis-py then
        # sends them again, so one script call could run twice.
        try:
            await client.initialize()
        except CONNECTION_ERRORS as exc:
            await client.aclose()
            raise translate(exc) from exc
        return client
    return _from_url(redis.asyncio.Redis.from_url, url, **kwargs)
