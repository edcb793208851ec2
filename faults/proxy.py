"""A loopback TCP proxy that can partition its clients from Redis.

The partition scenario puts one worker behind this proxy. ``partition()``
turns every connection into a black hole: bytes in both directions are read
and dropped, and new connections are accepted but never reach Redis, the way
a dead link looks to a client (no FIN, no reset, only silence until its socket
timeout). ``heal()`` closes the connections that lost bytes (their RESP streams
are broken, as a TCP connection would be reset after a long partition) and
forwards new ones again. The proxy runs its own asyncio loop in a daemon thread.

``events`` records, with times, what a client did while the link was dark: a
new connection (``accept-dark``: maybe only a pool growing) or closing one of
its own (``client-closed``: it gave up on a dead connection, by a socket
timeout or a health check). A client that closes none before the partition
heals never noticed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

HOST = "127.0.0.1"
CHUNK = 65536


class _Pipe:
    """One client connection and its upstream; ``dark`` drops everything."""

    def __init__(self, dark: bool) -> None:
        self.dark = dark
        self.ours = False  # closed by the proxy (heal, stop), not by the client
        self.writers: list[asyncio.StreamWriter] = []

    def close(self) -> None:
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.close()


class Proxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target_port> until ``stop()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._pipes: set[_Pipe] = set()
        self._dark = False
        self._server: asyncio.base_events.Server | None = None
        self.events: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="faults-proxy",
                                        daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def _call(self, coro: object, timeout: float = 10.0) -> object:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pipe = _Pipe(self._dark)
        pipe.writers.append(writer)
        self._pipes.add(pipe)
        if pipe.dark:
            self.events.append((time.time(), "accept-dark"))
        try:
            if pipe.dark:  # a partitioned network: the connection never gets through
                await self._pump(reader, None, pipe, client=True)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
            except OSError:
                return
            pipe.writers.append(up_writer)
            await asyncio.gather(self._pump(reader, up_writer, pipe, client=True),
                                 self._pump(up_reader, writer, pipe))
        finally:
            pipe.close()
            self._pipes.discard(pipe)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None,
                    pipe: _Pipe, client: bool = False) -> None:
        with contextlib.suppress(Exception):
            while True:
                try:
                    data = await reader.read(CHUNK)
                except OSError:
                    data = b""
                if not data:
                    if client and pipe.dark and not pipe.ours:
                        self.events.append((time.time(), "client-closed"))
                    break
                if pipe.dark or writer is None:
                    continue  # dropped on the floor: the partition
                writer.write(data)
                await writer.drain()
        pipe.close()

    async def _set_dark(self, dark: bool) -> None:
        self._dark = dark
        for pipe in list(self._pipes):
            if dark:
                pipe.dark = True
            elif pipe.dark:
                pipe.ours = True
                pipe.close()

    def partition(self) -> None:
        """Cut every client off from Redis, silently, until ``heal()``."""
        self._call(self._set_dark(True))

    def noticed(self, since: float, until: float) -> float | None:
        """Seconds from ``since`` to the first sign, before ``until``, that a client
        noticed its dead connection; None if none did."""
        signs = [t for t, what in self.events if since <= t < until and what == "client-closed"]
        return round(min(signs) - since, 2) if signs else None

    def heal(self) -> None:
        """Reset the connections the partition broke; new connections get through."""
        self._call(self._set_dark(False))

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
            for pipe in list(self._pipes):
                pipe.ours = True
                pipe.close()

        with contextlib.suppress(Exception):
            self._call(_close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
