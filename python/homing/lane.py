"""A lean send path for script calls on a standalone client: one held connection.

Why: a single ``enqueue`` (what a web request does) is one round trip, and
redis-py's generic command layer spends more CPU on it than the round trip
itself (measured: ~75 us of Python per ``evalsha`` against ~25 us for the same
bytes through the connection's own send and read): pool checkout and return
under a lock, a readiness ``select`` on every checkout, retry wrappers,
observability hooks, response callbacks. A script reply needs none of that.

What is kept, and how:

- **NOSCRIPT**: the reply error is raised as redis-py's NoScriptError (its
  parser maps it), so ``scripting`` resends with EVAL exactly as before.
- **Reconnects**: before each send the connection is checked as the pool
  checks one it hands out (a socket the server closed is replaced: the call
  still runs after a restart); any error other than a Redis error reply (a lost or timed
  out connection, an interrupt half way) disconnects the held connection,
  whose next send connects again; nothing is ever resent here, as redis-py is
  configured not to (see ``connection.connect``): a call whose reply was lost
  may have run. ``drop_idle`` drops the held connection too.
- **Dead-connection defaults**: the connection is the pool's own, with the
  pool's timeouts and keepalive, and ``send_packed_command`` still PINGs a
  connection idle past ``health_check_interval``.
- **Cluster routing, Sentinel**: not here. Only a plain ``redis.Redis`` gets a
  lane; a RedisCluster (routing, MOVED/ASK) and the Sentinel client (its
  demotion handling) keep redis-py's path.
- **Threads**: one call at a time holds the lane; a call that finds it busy
  (the worker's threads, a producer shared by threads) takes redis-py's
  pooled path instead of waiting, so nothing is serialised behind it.
- **fork**: a child never uses its parent's socket: the lane notices the pid
  changed and takes a fresh connection from the (reset) pool.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import redis
from redis.exceptions import ResponseError

_LANES: weakref.WeakKeyDictionary[Any, Lane] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


class Lane:
    """One pooled connection held for script calls, with the rules above."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.lock = threading.Lock()
        self.conn: Any = None
        self.pid = os.getpid()

    def call(self, *args: Any) -> Any:
        """Send one command and read its reply; ``BUSY`` if another call holds the lane."""
        if not self.lock.acquire(blocking=False):
            return BUSY
        try:
            conn = self.conn
            if conn is None or self.pid != os.getpid():
                # After a fork the parent's connection is left alone (not closed:
                # that would shut the parent's socket) and the child takes its own.
                conn = self.conn = self.pool.get_connection()
                self.pid = os.getpid()
            try:
                # As the pool checks a connection it hands out: a socket the
                # server closed (a restart, a timeout) or with stray data is
                # replaced before anything is sent, so such a call still runs.
                # One poll() per call, a fraction of what the pool path costs.
                try:
                    stale = conn._sock is not None and conn.can_read()
                except (redis.ConnectionError, OSError):
                    stale = True
                if stale:
                    conn.disconnect()
                conn.send_packed_command(_pack(conn, args))
                return conn.read_response()
            except ResponseError:
                raise  # a reply: the connection is in step
            except BaseException:
                conn.disconnect()
                raise
        finally:
            self.lock.release()

    def drop(self) -> None:
        """Close the held connection (after an error elsewhere, or at close)."""
        with self.lock:
            if self.conn is not None and self.pid == os.getpid():
                self.conn.disconnect()


BUSY = object()


def _pack(conn: Any, args: tuple[Any, ...]) -> Any:
    """The command's bytes: hiredis's packer itself when the connection packs with it.

    Why: redis-py's hiredis serializer first copies the arguments through a
    generator that turns each bytearray or memoryview into bytes (~0.3 us per
    argument here: ~90 us of the ~180 a complete_many of 100 items, 300
    arguments, cost to pack). A script call's arguments are str, bytes and
    numbers only; anything hiredis refuses goes through redis-py's own packer,
    which converts or raises as it always did.
    """
    if hiredis is not None and type(getattr(conn, "_command_packer", None)) is \
            redis.connection.HiredisRespSerializer:
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
    return conn.pack_command(*args)


try:
    import hiredis
except ImportError:  # no hiredis: redis-py packs in Python
    hiredis = None


def lane_for(r: Any) -> Lane | None:
    """The lane of a plain standalone client, made on first use; None for any other."""
    if type(r) is not redis.Redis:
        return None
    lane = _LANES.get(r)
    if lane is None:
        with _LOCK:
            lane = _LANES.get(r)
            if lane is None:
                lane = _LANES[r] = Lane(r.connection_pool)
    return lane


def drop_lane(r: Any) -> None:
    """Disconnect r's lane, if it has one (drop_idle calls this)."""
    lane = _LANES.get(r)
    if lane is not None:
        lane.drop()
