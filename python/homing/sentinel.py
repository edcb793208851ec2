"""Redis Sentinel: a client on the primary that follows it when it moves.

redis-py's ``Sentinel.master_for`` asks the sentinels for the primary each
time a connection connects, and drops a connection that answers ``READONLY``
(the node it reached was demoted). That is not enough after a failover: a
connection to the old primary that stays open keeps writing there, and
after a manual ``SENTINEL FAILOVER`` the old primary accepts writes for
about ten seconds, until Sentinel converts it to a replica and the writes
are wiped (measured: 660 acknowledged writes lost that way). So each client
here also watches the sentinels, one subscription per sentinel (only the
leader of a failover announces its steps):

- ``+failover-state-send-slaveof-noone``: the leader is promoting a replica.
  The client points at that replica at once (for ``PIN_FOR`` seconds, or
  until the failover ends or aborts), so nothing more is written to the old
  primary; until the promotion lands, a call meets READONLY, which writes
  nothing and is retried. Sentinel itself names the new primary only about a
  second later (``+switch-master``, after it polled the replica's INFO),
  and writes the old primary takes in that second are lost.
- ``+switch-master``, a failover's abort, and a poll of the primary's address
  every ``WATCH_EVERY`` seconds (a notice may be missed while a sentinel
  restarts): the client follows what the sentinels say.

When the address changes, idle connections are closed and busy ones as they
are released, so that the next call reconnects to the new primary. What may
still be lost (a write in flight to the old primary at that moment, and
everything on a primary that dies before replicating it) is what
``wait_replicas`` narrows (docs/failover.md).
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
PROMOTING = "+failover-state-send-slaveof-noone"
ABORTS = ("-failover-abort-not-elected", "-failover-abort-no-good-slave",
          "+failover-end-for-timeout")
CHANNELS = (SWITCH, PROMOTING, *ABORTS)
WATCH_EVERY = 1.0  # seconds between two polls of the primary's address
PIN_FOR = 10.0  # seconds a replica being promoted stands for the primary, at most
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


class Pin:
    """A replica being promoted, standing in for the primary until ``until`` (monotonic)."""

    def __init__(self) -> None:
        self.master: str | None = None
        self.address: tuple[str, int] | None = None
        self.until = 0.0

    def get(self, master: str) -> tuple[str, int] | None:
        if self.master == master and time.monotonic() < self.until:
            return self.address
        return None

    def set(self, master: str, address: tuple[str, int]) -> None:
        self.master, self.address, self.until = master, address, time.monotonic() + PIN_FOR

    def clear(self) -> None:
        self.until = 0.0


def notice(message: Any, master: str, pin: Pin) -> bool:
    """Act on a sentinel's event about ``master``; True if the primary should be re-read.

    Events name their master after an ``@`` (``slave <ip:port> <ip> <port> @ <master>
    ...``), after ``master`` (``master <name> <ip> <port>``), or first (+switch-master).
    """
    if not isinstance(message, dict) or message.get("type") != "message":
        return False
    channel, data = (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                     for v in (message.get("channel"), message.get("data")))
    words = data.split()
    if "@" in words:
        name = words[words.index("@") + 1] if words.index("@") + 1 < len(words) else ""
    elif words[:1] == ["master"]:
        name = words[1] if len(words) > 1 else ""
    else:
        name = words[0] if words else ""
    if name != master:
        return False
    if channel == PROMOTING and len(words) >= 4 and words[3].isdigit():
        pin.set(master, (words[2], int(words[3])))
    else:
        pin.clear()
    return True


def _rotate(nodes: list[Any]) -> None:
    with contextlib.suppress(IndexError):  # another thread may be reordering it too
        nodes.append(nodes.pop(0))


def _moved(master: str, before: Any, after: Any) -> bool:
    if before is not None and after != before:
        log.warning("Sentinel: master %s moved from %s:%s to %s:%s; reconnecting",
                    master, *before, *after)
        return True
    return False


# -- sync ---------------------------------------------------------------------------


class PinnedSentinel(redis.sentinel.Sentinel):
    """redis-py's Sentinel, answering with a replica being promoted while one is pinned."""

    pin: Pin

    def discover_master(self, service_name: str) -> Any:
        return self.pin.get(service_name) or super().discover_master(service_name)


class SentinelRedis(redis.Redis):
    """``redis.Redis`` on the primary a set of sentinels names; see the module docstring."""

    homing_sentinel: PinnedSentinel
    homing_master: str
    homing_watches: list[_Watch] = []  # noqa: RUF012 - set per instance by connect()

    def close(self) -> None:
        for watch in self.homing_watches:
            watch.stop()
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
        return _moved(self.homing_master, before, after)

    def stale_primary(self) -> None:
        """The primary the sentinels named answered READONLY: ask another sentinel next.

        Right after a failover a sentinel that has not heard of it yet (they
        gossip every 2 s) still names the old primary, and redis-py keeps
        asking the sentinel that answered last.
        """
        _rotate(self.homing_sentinel.sentinels)
        with contextlib.suppress(Exception):
            self.connection_pool.disconnect(inuse_connections=False)


class _Watch(threading.Thread):
    """Listens to one sentinel's failover events (a daemon thread); the first also polls."""

    def __init__(self, client: SentinelRedis, index: int) -> None:
        super().__init__(name=f"homing-sentinel-{client.homing_master}-{index}", daemon=True)
        self.client, self.index = client, index
        # Kept: discover_master reorders the Sentinel's list (the one that answered first).
        self.node = client.homing_sentinel.sentinels[index]
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
        sentinel = self.client.homing_sentinel
        while not self._stopped.is_set():
            pubsub = self.node.pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            try:
                pubsub.subscribe(*CHANNELS)
                due = time.monotonic() + WATCH_EVERY
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=WATCH_EVERY)
                    polled = self.index == 0 and time.monotonic() >= due
                    if notice(message, self.client.homing_master, sentinel.pin) or polled:
                        self.check()
                        due = time.monotonic() + WATCH_EVERY
            # Anything, not only redis-py's errors (a socket closed under it at close()
            # raises TypeError in hiredis): this thread must not die while the client lives.
            except Exception as exc:  # noqa: BLE001
                if self._stopped.is_set():
                    break
                log.debug("Sentinel watch %d on %s: %s", self.index, self.client.homing_master,
                          exc)
                if self.index == 0:
                    self.check()
                self._stopped.wait(WATCH_EVERY)  # that sentinel is down: try it again later
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
    sentinel = PinnedSentinel(u.sentinels, sentinel_kwargs=sentinel_kwargs)
    sentinel.pin = Pin()
    client = sentinel.master_for(u.master, redis_class=SentinelRedis, **master)
    client.homing_sentinel = sentinel
    client.homing_master = u.master
    client.homing_watches = [_Watch(client, i) for i in range(len(sentinel.sentinels))]
    for watch in client.homing_watches:
        watch.start()
    return client


# -- asyncio ------------------------------------------------------------------------


class AsyncPinnedSentinel(redis.asyncio.sentinel.Sentinel):
    """PinnedSentinel for asyncio."""

    pin: Pin

    async def discover_master(self, service_name: str) -> Any:
        return self.pin.get(service_name) or await super().discover_master(service_name)


class AsyncSentinelRedis(redis.asyncio.Redis):
    """The asyncio counterpart of SentinelRedis; its watches are tasks on the client's loop."""

    homing_sentinel: AsyncPinnedSentinel
    homing_master: str
    homing_watches: list[asyncio.Task[None]] = []  # noqa: RUF012 - set by connect_async()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        for task in self.homing_watches:
            task.cancel()
        for task in self.homing_watches:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
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
        if not _moved(self.homing_master, before, after):
            return False
        mark = getattr(pool, "update_active_connections_for_reconnect", None)
        if mark is not None:
            await mark()
        return True

    async def stale_primary(self) -> None:
        """As SentinelRedis.stale_primary."""
        _rotate(self.homing_sentinel.sentinels)
        with contextlib.suppress(Exception):
            await self.connection_pool.disconnect(inuse_connections=False)


async def _watch_async(client: AsyncSentinelRedis, index: int) -> None:
    """_Watch.run for asyncio (cancelled by aclose)."""
    sentinel = client.homing_sentinel
    node = sentinel.sentinels[index]  # kept: discover_master reorders the list

    async def check() -> None:
        with contextlib.suppress(Exception):  # as the sync _Watch.check
            await client.follow_master()

    while True:
        pubsub = node.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*CHANNELS)
            due = time.monotonic() + WATCH_EVERY
            while True:
                message = await pubsub.get_message(timeout=WATCH_EVERY)
                polled = index == 0 and time.monotonic() >= due
                if notice(message, client.homing_master, sentinel.pin) or polled:
                    await check()
                    due = time.monotonic() + WATCH_EVERY
        except Exception as exc:  # noqa: BLE001 - as the sync _Watch.run; CancelledError ends it
            log.debug("Sentinel watch %d on %s: %s", index, client.homing_master, exc)
            if index == 0:
                await check()
            await asyncio.sleep(WATCH_EVERY)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()


async def connect_async(url: str, **kwargs: Any) -> AsyncSentinelRedis:
    """connect() for asyncio."""
    u, master, sentinel_kwargs = _options(url, kwargs)
    sentinel_kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
    sentinel = AsyncPinnedSentinel(u.sentinels, sentinel_kwargs=sentinel_kwargs)
    sentinel.pin = Pin()
    client = sentinel.master_for(u.master, redis_class=AsyncSentinelRedis, **master)
    client.homing_sentinel = sentinel
    client.homing_master = u.master
    loop = asyncio.get_running_loop()
    client.homing_watches = [loop.create_task(_watch_async(client, i))
                             for i in range(len(sentinel.sentinels))]
    return client
