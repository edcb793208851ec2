"""Redis Sentinel: a client on the primary that follows it when it moves.

redis-py's ``Sentinel.master_for`` asks the sentinels for the primary each
time a connection connects, and drops a connection that answers ``READONLY``
(the node it reached was demoted). That is not enough after a failover: a
connection to the old primary that stays open keeps writing there, and
after a manual ``SENTINEL FAILOVER`` the old primary accepts writes for
about ten seconds, until Sentinel converts it to a replica and the writes
are wiped (measured: 660 acknowledged writes lost that way). So each client
here also watches the sentinels: it subscribes to ``+switch-master`` on one
of them and asks for the primary's address every ``WATCH_EVERY`` seconds (a
notice may be missed while a sentinel restarts). When the address changes,
idle connections are closed and busy ones are closed as they are released,
so that the next call reconnects to the new primary. The remaining window
(the moment between the promotion and the notice) is what ``wait_replicas``
closes (docs/failover.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import InvalidArgumentError
from .urls import parse_sentinel

log = logging.getLogger("homing")
SWITCH = "+switch-master"
WATCH_EVERY = 1.0  # seconds between two checks of the primary's address
_SENTINEL_OPTIONS = ("socket_connect_timeout", "socket_timeout", "socket_keepalive",
                     "socket_keepalive_options", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile",
                     "ssl_cert_reqs", "ssl_ca_path", "ssl_ca_data", "ssl_check_hostname",
                     "ssl_password")


def _options(url: str, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The parsed URL, the data nodes' connection options, and the sentinels' own."""
    u = parse_sentinel(url)
    master = dict(kwargs)
    if not u.tls and any(k.startswith("ssl_") for k in master):
        raise InvalidArgumentError("ssl_* options need a rediss+sentinel:// URL (TLS)")
    master.setdefault("db", u.db)
    if u.username is not None:
        master.setdefault("username", u.username)
    if u.password is not None:
        master.setdefault("password", u.password)
    if u.tls:
        master["ssl"] = True
    sentinel = {k: master[k] for k in _SENTINEL_OPTIONS if k in master}
    if u.tls:
        sentinel["ssl"] = True
    if u.sentinel_password is not None:
        sentinel["password"] = u.sentinel_password
    return u, master, sentinel


def _ours(message: Any, name: str) -> bool:
    """Whether a +switch-master notice is about our master ("<name> <old ip> <old port> ...")."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return False
    data = message.get("data")
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return text.split(" ", 1)[0] == name


# -- sync ---------------------------------------------------------------------------


class SentinelRedis(redis.Redis):
    """``redis.Redis`` on the primary a set of sentinels names; see the module docstring."""

    homing_sentinel: redis.sentinel.Sentinel
    homing_master: str
    homing_watch: _Watch | None = None

    def close(self) -> None:
        if self.homing_watch is not None:
            self.homing_watch.stop()
        try:
            super().close()
        finally:
            for node in self.homing_sentinel.sentinels:
                node.close()

    def follow_master(self) -> bool:
        """Ask the sentinels for the primary now; True if it moved (connections dropped)."""
        pool = self.connection_pool
        before = pool.master_address
        after = pool.get_master_address()  # closes idle connections when it changed
        if before is not None and after != before:
            log.warning("Sentinel: master %s moved from %s:%s to %s:%s; reconnecting",
                        self.homing_master, *before, *after)
            return True
        return False


class _Watch(threading.Thread):
    """Follows +switch-master notices and polls the primary's address (a daemon thread)."""

    def __init__(self, client: SentinelRedis) -> None:
        super().__init__(name=f"homing-sentinel-{client.homing_master}", daemon=True)
        self.client = client
        self._stopped = threading.Event()
        self._pubsub: Any = None

    def stop(self) -> None:
        """End the thread without waiting for it: its subscription is closed under it
        (whatever that raises there ends the loop, since it is stopped)."""
        self._stopped.set()
        with contextlib.suppress(Exception):
            if self._pubsub is not None:
                self._pubsub.close()

    def check(self) -> None:
        # No primary mid-failover, or no sentinel answering: the next check will tell.
        with contextlib.suppress(Exception):
            self.client.follow_master()

    def run(self) -> None:
        which = 0
        while not self._stopped.is_set():
            nodes = self.client.homing_sentinel.sentinels
            pubsub = nodes[which % len(nodes)].pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            try:
                pubsub.subscribe(SWITCH)
                due = time.monotonic() + WATCH_EVERY
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=WATCH_EVERY)
                    if _ours(message, self.client.homing_master) or time.monotonic() >= due:
                        self.check()
                        due = time.monotonic() + WATCH_EVERY
            # Anything, not only redis-py's errors (a socket closed under it at close()
            # raises TypeError in hiredis): this thread must not die while the client lives.
            except Exception as exc:  # noqa: BLE001
                if self._stopped.is_set():
                    break
                log.debug("Sentinel watch on %s: %s; trying the next sentinel",
                          self.client.homing_master, exc)
                which += 1
                self.check()
                self._stopped.wait(WATCH_EVERY)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()


def connect(url: str, **kwargs: Any) -> SentinelRedis:
    """A client on the primary of a ``redis+sentinel://`` URL, watching for failovers.

    ``kwargs`` are the data nodes' redis-py options (homing's defaults already
    in); the sentinels get the socket and TLS ones, no retries, and the URL's
    ``sentinel_password``.
    """
    u, master, sentinel_kwargs = _options(url, kwargs)
    sentinel_kwargs["retry"] = Retry(NoBackoff(), 0)
    sentinel = redis.sentinel.Sentinel(u.sentinels, sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(u.master, redis_class=SentinelRedis, **master)
    client.homing_sentinel = sentinel
    client.homing_master = u.master
    client.homing_watch = _Watch(client)
    client.homing_watch.start()
    return client


# -- asyncio ------------------------------------------------------------------------


class AsyncSentinelRedis(redis.asyncio.Redis):
    """The asyncio counterpart of SentinelRedis; its watch is a task on the client's loop."""

    homing_sentinel: redis.asyncio.sentinel.Sentinel
    homing_master: str
    homing_watch: asyncio.Task[None] | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self.homing_watch is not None:
            self.homing_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.homing_watch
        try:
            await super().aclose(close_connection_pool)
        finally:
            for node in self.homing_sentinel.sentinels:
                with contextlib.suppress(Exception):
                    await node.aclose()

    async def follow_master(self) -> bool:
        """As SentinelRedis.follow_master. asyncio pools do not drop a busy connection to
        the old primary on release by themselves: it is marked to reconnect (redis-py 6+)."""
        pool = self.connection_pool
        before = pool.master_address
        after = await pool.get_master_address()
        if before is not None and after != before:
            log.warning("Sentinel: master %s moved from %s:%s to %s:%s; reconnecting",
                        self.homing_master, *before, *after)
            mark = getattr(pool, "update_active_connections_for_reconnect", None)
            if mark is not None:
                await mark()
            return True
        return False


async def _watch_async(client: AsyncSentinelRedis) -> None:
    async def check() -> None:
        with contextlib.suppress(Exception):  # as the sync _Watch.check
            await client.follow_master()

    which = 0
    while True:
        nodes = client.homing_sentinel.sentinels
        pubsub = nodes[which % len(nodes)].pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(SWITCH)
            due = time.monotonic() + WATCH_EVERY
            while True:
                message = await pubsub.get_message(timeout=WATCH_EVERY)
                if _ours(message, client.homing_master) or time.monotonic() >= due:
                    await check()
                    due = time.monotonic() + WATCH_EVERY
        except Exception as exc:  # noqa: BLE001 - as the sync _Watch.run; CancelledError ends it
            log.debug("Sentinel watch on %s: %s; trying the next sentinel",
                      client.homing_master, exc)
            which += 1
            await check()
            await asyncio.sleep(WATCH_EVERY)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()


async def connect_async(url: str, **kwargs: Any) -> AsyncSentinelRedis:
    """connect() for asyncio."""
    u, master, sentinel_kwargs = _options(url, kwargs)
    sentinel_kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
    sentinel = redis.asyncio.sentinel.Sentinel(u.sentinels, sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(u.master, redis_class=AsyncSentinelRedis, **master)
    client.homing_sentinel = sentinel
    client.homing_master = u.master
    client.homing_watch = asyncio.get_running_loop().create_task(_watch_async(client))
    return client
