"""What the Sentinel and Cluster deployments share: ports, servers, probes, bounded waits.

A topology (``faults.sentinel.SentinelSet``, ``faults.cluster.ClusterSet``)
gives the run ``url`` (what homing's users get), ``judge_url()`` (what the
harness's own client uses to configure, count and judge), ``watch`` (whether
the lease watcher's views can be trusted there), ``describe()`` and
``stop()`` (every process by PID). Predicates never raise: a server that is
down answers False, so scenarios wait on them with ``Run.wait_until``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from .procs import FORBIDDEN_PORT, RedisServer
from .procs import free_port as _free_port

HOST = "127.0.0.1"


class TopologyError(RuntimeError):
    """A private deployment could not be set up or did not converge in time."""


def free_port() -> int:
    for _ in range(20):
        port = _free_port()
        if port != FORBIDDEN_PORT:
            return port
    raise TopologyError("no free port other than 6379")


def server(folder: Path, opts: dict[str, Any], extra: list[str],
           port: int | None = None) -> RedisServer:
    """A private redis-server (not started) with the persistence ``opts`` of a mode."""
    srv = RedisServer(folder, appendonly=opts.get("appendonly", False),
                 appendfsync=opts.get("appendfsync", "everysec"), port=port or free_port(),
                 extra=extra)
    if srv.port == FORBIDDEN_PORT:
        raise TopologyError("refusing to run a private Redis on port 6379")
    return srv


def ask(port: int, *args: Any, timeout: float = 1.0) -> Any:
    """One command to one server, on a fresh connection (replies decoded)."""
    r = redis.Redis(host=HOST, port=port, socket_timeout=timeout,
                    socket_connect_timeout=timeout, decode_responses=True)
    try:
        return r.execute_command(*args)
    finally:
        r.close()


def info(port: int, section: str) -> dict[str, Any]:
    """INFO ``section`` of one server; empty when it does not answer."""
    r = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1,
                    decode_responses=True)
    try:
        return r.info(section)
    except (redis.RedisError, OSError):
        return {}
    finally:
        r.close()


def role(port: int) -> str:
    """``master``, ``slave``, ``sentinel`` or ``down``."""
    try:
        return str(ask(port, "ROLE")[0])
    except (redis.RedisError, OSError):
        return "down"


def synced_replica(port: int) -> bool:
    """The server is a replica whose link to its primary is up."""
    rep = info(port, "replication")
    return rep.get("role") == "slave" and rep.get("master_link_status") == "up"


def until(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll ``pred`` (errors count as False) until it holds or ``timeout`` s passed."""
    end = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(step)
