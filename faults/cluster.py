"""A private Redis Cluster with replicas (3 masters + 3 replicas) and the faults it takes.

python/tests/servers.py's cluster has no replicas, so nothing can fail over;
this one is built the same way (free port pairs, ``redis-cli --cluster create``,
each node in its own directory) with ``--cluster-replicas 1``. A whole homing
service lives in one slot (its keys share the ``{service}`` hash tag), so the
faults aim at the master of that slot: killed, paused past
``cluster-node-timeout``, or its slot moved by hand, slowly, key batch by key
batch (``CLUSTER SETSLOT ... MIGRATING/IMPORTING``, ``MIGRATE``, ``SETSLOT
NODE``), so that clients meet ``ASK`` and ``TRYAGAIN`` for seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis
from redis.crc import key_slot

from .procs import MODES, RedisServer
from .topology import (
    HOST,
    TopologyError,
    ask,
    free_port,
    info,
    server,
    synced_replica,
    until,
)

NODE_TIMEOUT_MS = 2000
NODE_ARGS = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]


def _pair_port() -> int:
    """A free port P whose bus port P + 10000 is free too (as servers.py does)."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind((HOST, port + 10000))
            except OSError:
                continue
        return port
    raise TopologyError("no free port pair for a cluster node")


class ClusterSet:
    """``masters`` masters with one replica each; ``seeds`` names the users' seed nodes."""

    watch = True  # redis-py's cluster client reads the slot's master, ASK followed

    def __init__(self, root: Path, mode: str = "always", extra: list[str] | None = None,
                 masters: int = 3) -> None:
        opts = dict(MODES[mode])
        base = [*NODE_ARGS, *opts.get("extra", []), *(extra or [])]
        self.nodes: list[RedisServer] = []
        for _ in range(2 * masters):
            port = _pair_port()
            self.nodes.append(server(root / f"node-{port}", opts, base, port=port))
        self.masters = masters
        self.seeds: list[RedisServer] = []

    @property
    def url(self) -> str:
        """The users' URL: every seed node (one seed: a plain URL)."""
        seeds = self.seeds or [self.nodes[0]]
        return "redis://" + ",".join(f"{HOST}:{n.port}" for n in seeds) + "/0"

    def start(self) -> ClusterSet:
        try:
            for node in self.nodes:
                node.start()
            cmd = [shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
                   *(f"{HOST}:{n.port}" for n in self.nodes), "--cluster-replicas", "1",
                   "--cluster-yes"]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
            if res.returncode != 0:
                raise TopologyError(f"cluster create failed: {res.stdout[-500:]}{res.stderr}")
            if not until(self._converged, 30, step=0.2):
                raise TopologyError("the cluster did not converge within 30 s")
        except BaseException:
            self.stop()
            raise
        return self

    def _converged(self) -> bool:
        for node in self.nodes:
            ci = ask(node.port, "CLUSTER", "INFO")
            fields = dict(line.split(":", 1) for line in ci.split() if ":" in line)
            if fields.get("cluster_state") != "ok" or int(
                    fields.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
        return all(synced_replica(r.port) for r in self.replicas())

    # -- who is who -----------------------------------------------------------------

    def by_port(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def owner(self, slot: int, via: RedisServer | None = None) -> RedisServer | None:
        """The master serving ``slot`` by the first live node's view (``via`` first)."""
        for node in ([via] if via else []) + self.nodes:
            if not node.alive():
                continue
            try:
                for start, end, master, *_ in ask(node.port, "CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return self.by_port(int(master[1]))
            except (redis.RedisError, OSError):
                continue
        return None

    def replicas(self) -> list[RedisServer]:
        return [n for n in self.nodes
                if n.alive() and info(n.port, "replication").get("role") == "slave"]

    def others(self, node: RedisServer) -> list[RedisServer]:
        """The masters other than ``node``."""
        return [n for n in self.nodes if n is not node and n.alive()
                and info(n.port, "replication").get("role") == "master"]

    def judge_url(self) -> str:
        """A seed for the harness's client: a live master (it learns the rest)."""
        node = next(n for n in self.nodes
                    if n.alive() and info(n.port, "replication").get("role") == "master")
        return node.url

    def failed_over(self, slot: int, old: RedisServer) -> bool:
        """Another node serves ``slot`` by every live master's view, and the cluster is ok."""
        views = {self.owner(slot, via=m) for m in self.others(old)}
        if len(views) != 1 or views == {old} or None in views:
            return False
        new = views.pop()
        assert new is not None
        ci = ask(new.port, "CLUSTER", "INFO")
        return "cluster_state:ok" in ci

    def rejoined(self, node: RedisServer) -> bool:
        return node.alive() and synced_replica(node.port)

    def pause(self, node: RedisServer, stop: bool) -> None:
        """SIGSTOP (``stop``) or SIGCONT one node, by its PID."""
        proc = node._proc  # noqa: SLF001 - the test helper keeps the Popen there
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGSTOP if stop else signal.SIGCONT)

    def node_id(self, node: RedisServer) -> str:
        return str(ask(node.port, "CLUSTER", "MYID"))

    def migrate(self, slot: int, src: RedisServer, dst: RedisServer, *, batch: int,
                pause_s: float, sleep: Callable[[float], None] = time.sleep,
                log: list[str] | None = None) -> int:
        """Move ``slot`` from ``src`` to ``dst`` by hand, ``batch`` keys per MIGRATE, a pause
        between batches; returns how many keys moved. ``sleep`` lets the run tick."""
        src_id, dst_id = self.node_id(src), self.node_id(dst)
        ask(dst.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        ask(src.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            keys = ask(src.port, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            ask(src.port, "MIGRATE", HOST, dst.port, "", 0, 5000, "KEYS", *keys, timeout=10)
            moved += len(keys)
            if log is not None:
                log.append(f"{time.time():.3f} moved {keys}")
            sleep(pause_s)
        else:
            raise TopologyError(f"slot {slot} still had keys on {src.port} after 60 s")
        for node in (dst, src, *[n for n in self.others(dst) if n is not src]):
            ask(node.port, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return moved

    def errors(self, *kinds: str) -> dict[str, int]:
        """Error replies of these kinds (``ASK``, ``TRYAGAIN``) the live nodes have sent."""
        out = dict.fromkeys(kinds, 0)
        for node in self.nodes:
            stats = info(node.port, "errorstats") if node.alive() else {}
            for kind in kinds:
                out[kind] += int(stats.get(f"errorstat_{kind}", {}).get("count", 0))
        return out

    def stop(self) -> None:
        for node in self.nodes:
            self.pause(node, False)
            node.kill()

    def describe(self) -> str:
        return "cluster nodes " + ", ".join(str(n.port) for n in self.nodes)


def slot_of(service: str) -> int:
    """The slot of every key of ``service`` (``<prefix>:{<service>}:<name>``)."""
    return key_slot(service.encode())


def started(root: Path, mode: str, extra: list[str] | None) -> ClusterSet:
    return ClusterSet(root, mode, extra).start()
