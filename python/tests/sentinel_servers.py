"""A private Sentinel set-up for the failover tests: a primary, replicas and three sentinels.

Everything runs on free ports of 127.0.0.1 in a temporary directory, never on a
shared Redis, through servers.RedisServer (and its cleanup layers: a sentinel
never outlives the tests either). A sentinel is ``redis-server <conf>
--sentinel``: no separate binary. The timings are short so that a failover
takes about two seconds instead of the thirty a production configuration
waits (``down-after-milliseconds`` 1000, ``failover-timeout`` 5000):

    with SentinelServers(Path("/tmp/x")) as s:
        s.url                      # redis+sentinel://127.0.0.1:P1,...,127.0.0.1:P3/mymaster/0
        s.failover()               # SENTINEL FAILOVER; returns once the replica took over
        s.master()                 # the RedisServer that is the primary now
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from servers import HOST, RedisServer, RedisServerError

MASTER_NAME = "mymaster"
QUORUM = 2
# A full resync starts at once (Redis waits 5 s by default for more replicas to
# share a diskless transfer), and a primary stopped with SIGTERM waits at most 1 s
# (not 10) for lagging replicas to catch up.
FAST_SYNC = ("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "1")


class SentinelNode(RedisServer):
    """One sentinel process: redis-server in sentinel mode, with its config file in tmpdir.

    Sentinel rewrites its config file (the master it learnt, the other
    sentinels), so the file is written once and kept across restarts.
    """

    def __init__(self, tmpdir: Path, master_port: int, *, down_after_ms: int,
                 failover_timeout_ms: int, index: int) -> None:
        super().__init__(tmpdir)
        self.conf = self.tmpdir / "sentinel.conf"
        self.myid = f"{index + 1:040x}"  # set, so that the others can be told of it up front
        self._lines = [
            f"sentinel myid {self.myid}",
            f"sentinel monitor {MASTER_NAME} {HOST} {master_port} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]

    def know(self, others: list[SentinelNode], replicas: list[RedisServer]) -> None:
        """Tell this sentinel of its peers and the replicas before it starts.

        Without this they find each other by hello messages (every 2 s) and the
        replicas by INFO (every 10 s): seconds a test would spend waiting.
        """
        self._lines += [f"sentinel known-sentinel {MASTER_NAME} {HOST} {o.port} {o.myid}"
                        for o in others if o is not self]
        self._lines += [f"sentinel known-replica {MASTER_NAME} {HOST} {r.port}" for r in replicas]

    def _argv(self) -> list[str]:
        if not self.conf.exists():
            self.tmpdir.mkdir(parents=True, exist_ok=True)
            self.conf.write_text("\n".join(self._lines) + "\n")
        argv = super()._argv()
        # RedisServer's data-node options (--save, --appendonly...) mean nothing
        # to a sentinel; keep the ones it understands, after the config file.
        keep = ["--port", str(self.port), "--bind", HOST, "--dir", str(self.tmpdir),
                "--daemonize", "no", "--logfile", str(self.logfile)]
        return [argv[0], str(self.conf), "--sentinel", *keep]


class SentinelServers:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels watching them."""

    def __init__(self, tmpdir: Path, *, replicas: int = 1, sentinels: int = 3,
                 appendonly: bool = True, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 5000) -> None:
        self.tmpdir = Path(tmpdir)
        self.data: list[RedisServer] = [RedisServer(self.tmpdir / "node-0", appendonly=appendonly,
                                                    appendfsync="always", extra=list(FAST_SYNC))]
        primary = self.data[0]
        for i in range(replicas):
            self.data.append(RedisServer(self.tmpdir / f"node-{i + 1}", appendonly=appendonly,
                                         appendfsync="always",
                                         extra=[*FAST_SYNC, "--replicaof", HOST,
                                                str(primary.port)]))
        self.sentinels = [SentinelNode(self.tmpdir / f"sentinel-{i}", primary.port,
                                       down_after_ms=down_after_ms,
                                       failover_timeout_ms=failover_timeout_ms, index=i)
                          for i in range(sentinels)]
        for s in self.sentinels:
            s.know(self.sentinels, self.data[1:])

    @property
    def url(self) -> str:
        """The homing URL: every sentinel, the master's name, database 0."""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def start(self) -> SentinelServers:
        try:
            for node in self.data:
                node.start()
            self.wait_replicated()
            for s in self.sentinels:
                s.start()
            self._wait_sentinels_agree()
        except BaseException:
            self.stop()
            raise
        return self

    def sentinel(self, index: int = 0) -> redis.Redis:
        s = self.sentinels[index]
        return redis.Redis(host=HOST, port=s.port, socket_timeout=2, decode_responses=True)

    def master_address(self) -> tuple[str, int]:
        """The primary as the first sentinel that answers names it."""
        for s in self.sentinels:
            if not s.alive():
                continue
            try:
                with redis.Redis(host=HOST, port=s.port, socket_timeout=2) as c:
                    host, port = c.sentinel_get_master_addr_by_name(MASTER_NAME)
                return (host.decode() if isinstance(host, bytes) else host, int(port))
            except (redis.RedisError, OSError):
                continue
        raise RedisServerError("no sentinel answered")

    def master(self) -> RedisServer:
        _, port = self.master_address()
        return next(n for n in self.data if n.port == port)

    def role(self, node: RedisServer) -> str:
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2,
                         decode_responses=True) as c:
            return c.info("replication")["role"]

    def wait_replicated(self, timeout: float = 10.0, want: int = 99) -> None:
        """Until every live replica of the primary (or ``want`` of them) is online and caught up.

        After a failover the old primary, while alive, stays a primary of its own
        until Sentinel converts it (about 10 s): it is not counted then.
        """
        end = time.monotonic() + timeout
        last: dict = {}
        goal: int | None = None  # the primary's offset when first read: writes may go on
        while time.monotonic() < end:
            try:
                master = self.master() if any(s.alive() for s in self.sentinels) else next(
                    n for n in self.data if n.alive() and self.role(n) == "master")
                with redis.Redis(host=HOST, port=master.port, socket_timeout=2,
                                 decode_responses=True) as c:
                    last = c.info("replication")
                live = min(sum(1 for n in self.data if n.alive()) - 1, want)
                online = [v for k, v in last.items() if k.startswith("slave")
                          and isinstance(v, dict) and v.get("state") == "online"]
                if goal is None:
                    goal = int(last.get("master_repl_offset", 0))
                if len(online) >= live and all(int(v["offset"]) >= goal for v in online):
                    return
            except (redis.RedisError, OSError, StopIteration):
                pass
            time.sleep(0.05)
        raise RedisServerError(f"replicas did not catch up within {timeout} s: {last}")

    def _wait_sentinels_agree(self, timeout: float = 15.0) -> None:
        """Until every sentinel knows the primary, its replicas and the other sentinels."""
        end = time.monotonic() + timeout
        last: list = []
        while time.monotonic() < end:
            try:
                last = []
                for i, s in enumerate(self.sentinels):
                    if not s.alive():
                        continue
                    with self.sentinel(i) as c:
                        last.append(c.sentinel_master(MASTER_NAME))
                want_replicas = sum(1 for n in self.data if n.alive()) - 1
                if last and all(int(m["num-other-sentinels"]) >= len(self.sentinels) - 1
                                and int(m["num-slaves"]) >= want_replicas
                                and not m.get("is_sdown") and not m.get("is_odown")
                                for m in last):
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise RedisServerError(f"sentinels did not agree within {timeout} s: {last}")

    def failover(self, timeout: float = 15.0) -> RedisServer:
        """SENTINEL FAILOVER, then wait until a replica is the primary; returns it."""
        old = self.master_address()
        with self.sentinel() as c:
            c.sentinel_failover(MASTER_NAME)
        return self.wait_new_master(old, timeout)

    def wait_new_master(self, old: tuple[str, int], timeout: float = 15.0) -> RedisServer:
        """Until the sentinels name a primary other than ``old`` and it says it is one."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                now = self.master_address()
                if now != old:
                    node = next(n for n in self.data if n.port == now[1])
                    if node.alive() and self.role(node) == "master":
                        return node
            except (redis.RedisError, OSError, RedisServerError):
                pass
            time.sleep(0.05)
        raise RedisServerError(f"no new primary within {timeout} s (was {old})")

    def demote(self, node: RedisServer) -> None:
        """Make a former primary a replica of the current one now, as Sentinel does ~10 s
        after a failover (the same REPLICAOF), so that tests need not wait for it."""
        master = self.master()
        with redis.Redis(host=HOST, port=node.port, socket_timeout=2) as c:
            c.replicaof(HOST, master.port)

    def restart_as_replica(self, node: RedisServer) -> None:
        """Start a stopped node again as a replica of the current primary (its data resyncs)."""
        master = self.master()
        node.extra = [*FAST_SYNC, "--replicaof", HOST, str(master.port)]
        node.start()

    def stop(self) -> None:
        # A SIGTERM that lands while a replica writes its initial AOF after a resync
        # is refused ("Writing initial AOF, can't exit") and never retried: wait 2 s,
        # not 10, before the kill.
        for node in [*self.sentinels, *self.data]:
            node.stop(timeout=2)

    def __enter__(self) -> SentinelServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
