"""A private Sentinel deployment: a primary, a replica and three sentinels, all on loopback.

Every process is the suite's own (free ports, the run's directory, killed by
PID); the sentinels are ``redis-server <conf> --sentinel``. The data servers
take their replication from the command line only, so a server that returns
after a crash comes back as a primary, as a restarted box without a config
rewrite would, until Sentinel reconfigures it as a replica. Users get a
``redis+sentinel://`` URL; the harness's own client (the judge) talks to the
current primary directly, so the verdict does not lean on the Sentinel support
under test.
"""

from __future__ import annotations

from pathlib import Path

import redis

from .procs import MODES, Proc, RedisServer, redis_server_binary
from .topology import HOST, TopologyError, ask, free_port, role, server, synced_replica, until

MASTER = "faults"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
SENTINELS = 3


class SentinelSet:
    """Two data servers (``a`` starts as the primary) and three sentinels monitoring them."""

    watch = False  # around a failover no one server's lease set is the truth

    def __init__(self, root: Path, mode: str = "always", extra: list[str] | None = None) -> None:
        self.root = root
        opts = dict(MODES[mode])
        base = [*opts.get("extra", []), *(extra or [])]
        self.a = server(root / "a", opts, base)
        self.b = server(root / "b", opts, [*base, "--replicaof", HOST, str(self.a.port)])
        self.servers: list[RedisServer] = [self.a, self.b]
        self.sentinels: list[Proc] = []
        self.ports: list[int] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> SentinelSet:
        try:
            self.a.start()
            self.b.start()
            for n in range(SENTINELS):
                self.sentinels.append(self._sentinel(n))
            if not until(self._ready, 30):
                raise TopologyError("the sentinels did not find each other and the replica "
                                    "within 30 s")
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinel(self, n: int) -> Proc:
        port = free_port()
        folder = self.root / f"sentinel{n}"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"  # Sentinel rewrites it: one writable file each
        conf.write_text("\n".join([
            f"port {port}", f"bind {HOST}", "daemonize no", f"dir {folder}",
            f"sentinel monitor {MASTER} {HOST} {self.a.port} 2",
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER} 1", ""]))
        self.ports.append(port)
        return Proc(f"sentinel{n}", [redis_server_binary(), str(conf), "--sentinel"], {},
                    folder / "sentinel.log").start()

    def _ready(self) -> bool:
        for port in self.ports:
            reply = ask(port, "SENTINEL", "MASTER", MASTER)
            if isinstance(reply, list):
                reply = dict(zip(reply[::2], reply[1::2], strict=True))
            fields = reply
            if (int(fields["num-other-sentinels"]) < SENTINELS - 1
                    or int(fields["num-slaves"]) < 1):
                return False
        return synced_replica(self.b.port)

    # -- what the sentinels say ---------------------------------------------------

    def named(self) -> set[int]:
        """The primary's port per sentinel that answers (one port once they agree)."""
        ports = set()
        for port in self.ports:
            try:
                addr = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            except (redis.RedisError, OSError):
                continue
            if addr:
                ports.add(int(addr[1]))
        return ports

    def master(self) -> RedisServer:
        ports = self.named()
        for srv in self.servers:
            if srv.port in ports:
                return srv
        raise TopologyError(f"the sentinels name {ports}, none of ours")

    def other(self, srv: RedisServer) -> RedisServer:
        return self.b if srv is self.a else self.a

    def judge_url(self) -> str:
        return self.master().url

    def switched(self, old: RedisServer) -> bool:
        """Every sentinel names the other server, and it acts as the primary."""
        new = self.other(old)
        return self.named() == {new.port} and role(new.port) == "master"

    def demoted(self, srv: RedisServer) -> bool:
        """``srv`` is a replica with its link to the primary up."""
        return synced_replica(srv.port)

    # -- faults ---------------------------------------------------------------------

    def failover(self) -> bool:
        """``SENTINEL FAILOVER``; False while Sentinel has no good replica yet (retry)."""
        try:
            ask(self.ports[0], "SENTINEL", "FAILOVER", MASTER)
            return True
        except redis.ResponseError as exc:
            if "NOGOODSLAVE" in str(exc) or "INPROG" in str(exc):
                return False
            raise

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.kill()
        for srv in self.servers:
            srv.kill()

    def describe(self) -> str:
        return f"data servers {self.a.port} (first primary), {self.b.port}; sentinels {self.ports}"


def started(root: Path, mode: str, extra: list[str] | None) -> SentinelSet:
    return SentinelSet(root, mode, extra).start()
