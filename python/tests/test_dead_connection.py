"""Dead connections are noticed: a worker whose Redis link silently stops forwarding reconnects.

A partition looks like nothing to a client: no FIN, no reset, only silence.
redis-py 5 waits for such a reply for ever by default, and the issue's worker
logged nothing for the whole partition. homing sets its own connection
defaults (connection.with_defaults: a 10 s socket timeout, TCP keepalive, a
health check), so a call stuck on a dead connection ends within ~10 s, the
worker logs it, reconnects, and finishes. The test puts the worker behind a
loopback proxy (in this file: the fault suite's faults/proxy.py is the same
idea) that turns every connection it carries into a black hole for longer
than the lease. The connections cut stay dead after the network heals, as
ones whose peer state was lost would, so only homing's own timeouts can end
them. Events whose leases ended meanwhile are delivered again: counted, and
none may be lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import homing
from homing.connection import SOCKET_TIMEOUT, keepalive_options
from homing.daemons import run_daemons

HOST = "127.0.0.1"


class BlackHoleProxy:
    """Forwards HOST:port to a Redis until ``cut()``; then every connection it carries,
    and every one made until ``heal()``, swallows bytes for good."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._cut = False
        self._pipes: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="test-proxy")

    def start(self) -> BlackHoleProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pipe: dict[str, Any] = {"dark": self._cut, "writers": [writer]}
        self._pipes.append(pipe)
        try:
            if not pipe["dark"]:
                up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
                pipe["writers"].append(up_writer)
                await asyncio.gather(self._pump(reader, up_writer, pipe),
                                     self._pump(up_reader, writer, pipe))
            else:
                await self._pump(reader, None, pipe)
        except OSError:
            pass
        finally:
            for w in pipe["writers"]:
                with contextlib.suppress(Exception):
                    w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None,
                    pipe: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if not pipe["dark"] and writer is not None:
                    writer.write(data)
                    await writer.drain()
        for w in pipe["writers"]:  # one side closed: so does the other
            with contextlib.suppress(Exception):
                w.close()

    def cut(self) -> None:
        def go() -> None:
            self._cut = True
            for pipe in self._pipes:
                pipe["dark"] = True
        self._loop.call_soon_threadsafe(go)

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        for pipe in self._pipes:
            for w in pipe["writers"]:
                self._loop.call_soon_threadsafe(w.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def proxy(standalone_server: Any) -> Iterator[BlackHoleProxy]:
    p = BlackHoleProxy(standalone_server.port).start()
    try:
        yield p
    finally:
        p.stop()


def test_connections_get_homings_timeouts_and_keepalive(standalone_server: Any,
                                                        prefix: str) -> None:
    with homing.Client.from_url(standalone_server.url, prefix=prefix) as c:
        kw = c.redis.connection_pool.connection_kwargs
        assert kw["socket_timeout"] == SOCKET_TIMEOUT == 10
        assert kw["socket_connect_timeout"] == 5
        assert kw["socket_keepalive"] is True
        assert kw["health_check_interval"] == 5
        opts = kw["socket_keepalive_options"]
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert opts[socket.TCP_KEEPIDLE] == 5
        assert opts == keepalive_options()
    with homing.Client.from_url(standalone_server.url, prefix=prefix, socket_timeout=3,
                                socket_keepalive=False, health_check_interval=0) as c:
        kw = c.redis.connection_pool.connection_kwargs
        assert (kw["socket_timeout"], kw["socket_keepalive"], kw["health_check_interval"]) == (
            3, False, 0), "what the caller passes wins"
        assert "socket_keepalive_options" not in kw


@pytest.mark.cluster
def test_cluster_connections_get_the_timeouts(cluster_servers: Any, prefix: str) -> None:
    with homing.Client.from_url(cluster_servers.url, prefix=prefix) as c:
        node = c.redis.get_default_node()
        kw = c.redis.get_redis_connection(node).connection_pool.connection_kwargs
        assert kw["socket_timeout"] == SOCKET_TIMEOUT and kw["socket_keepalive"] is True


class Counter(homing.Consumer):
    handled: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        with self.lock:
            self.handled[event.id] += 1
        time.sleep(0.005)
        return state


@pytest.mark.timeout(60)
def test_worker_notices_a_black_hole_and_reconnects(standalone_server: Any, proxy: BlackHoleProxy,
                                                    prefix: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    service = "dead-" + uuid.uuid4().hex[:6]
    Counter.handled = collections.Counter()
    direct = homing.Client.from_url(standalone_server.url, prefix=prefix)
    behind = homing.Client.from_url(f"redis://{HOST}:{proxy.port}/0", prefix=prefix)
    # status answers done for completions without a result (done_ttl_ms)
    direct.configure(service, done_ttl_ms=600_000)
    worker = homing.Worker(behind, service, Counter, concurrency=2, prefetch=20, lease_ms=2000)
    stop = threading.Event()
    daemons = threading.Thread(target=run_daemons, args=(direct, stop),
                               kwargs={"interval": 0.02}, daemon=True)
    ids: list[str] = []
    try:
        worker.start()
        daemons.start()
        ids += direct.enqueue_many(service, list(range(200)))
        time.sleep(0.5)
        cut_at = time.time()
        proxy.cut()
        ids += direct.enqueue_many(service, list(range(200)))  # they wait for the worker
        time.sleep(3.0)  # longer than the 2 s lease
        proxy.heal()  # new connections get through; the ones cut stay dead
        end = time.monotonic() + 25
        while time.monotonic() < end and any(
                direct.status(service, i).state != "done" for i in ids[-5:]):
            time.sleep(0.1)
        left = [i for i in ids if direct.status(service, i).state != "done"]
        done_at = time.time()
    finally:
        worker.stop()
        worker.shutdown()
        stop.set()
        daemons.join(10)
        behind.close()
        direct.close()
    lost_link = [r for r in caplog.records if r.name == "homing.worker"
                 and "could not be reached" in r.getMessage() and r.created >= cut_at]
    assert lost_link, "the worker never logged the dead connection"
    noticed = lost_link[0].created - cut_at
    redelivered = sum(n - 1 for n in Counter.handled.values())
    print(f"noticed after {noticed:.1f} s, all done {done_at - cut_at:.1f} s after the cut; "
          f"{len(ids)} events, {redelivered} delivered again, worker stats {worker.stats}")
    assert noticed <= SOCKET_TIMEOUT + 2, f"noticed only after {noticed:.1f} s"
    assert left == [], f"{len(left)} events never completed"
    assert set(Counter.handled) == set(ids)
