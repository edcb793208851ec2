"""Private redis-server processes for the test suite.

Tests never touch a shared Redis: every session starts its own servers on free
ports in temporary directories, and isolates tests by key prefix instead of
flushing. This module has no pytest dependency so it can also be used from
scripts or a REPL:

    with RedisServer(Path("/tmp/x"), appendonly=True) as srv:
        redis.Redis.from_url(srv.url).set("k", "v")
        srv.kill()      # crash it ...
        srv.restart()   # ... and come back with the AOF reloaded

Cleanup happens in three layers, so a redis-server never outlives the tests:
``stop()``/context managers in the normal case, an ``atexit`` hook if a
fixture's teardown is skipped, and (Linux) PR_SET_PDEATHSIG so the kernel kills
the server even when the test process dies without running atexit (SIGKILL,
or pytest-timeout's ``os._exit``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 20.0
INSTALL_HINT = (
    "The tests need local Redis 7 binaries (redis-server, redis-cli). "
    "Install them with `apt-get install redis-server` (Debian/Ubuntu), "
    "`brew install redis` (macOS), or run `make redis-check`."
)

CLUSTER_NODE_ARGS = [
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",  # relative to each node's own --dir
    "--cluster-node-timeout", "2000",
]  # fmt: skip

# Every process we launch, until it has been waited for (see _reap_all).
_live: set[subprocess.Popen] = set()


class RedisServerError(RuntimeError):
    """A private redis-server could not be found, started or clustered."""


def free_port() -> int:
    """Return a TCP port that is free right now on 127.0.0.1.

    There is an unavoidable race until redis binds it; RedisServer retries
    with a new port if an auto-chosen one turns out to be taken.
    """
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_cluster_port() -> int:
    """A free port P whose cluster bus port P + 10000 is free and valid too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 <= 65535 and _port_is_free(port + 10000):
            return port
    raise RedisServerError("could not find a free port pair for a cluster node")


def _redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise RedisServerError("redis-server was not found on PATH. " + INSTALL_HINT)
    return path


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGKILLed when our parent dies.

    Caveat: the signal fires when the *thread* that forked exits, so start
    servers from the main thread (as the fixtures do), not from a pool.
    """
    with contextlib.suppress(OSError):  # not glibc Linux: atexit remains the safety net
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _reap_all() -> None:
    for proc in list(_live):
        proc.kill()
        proc.wait()
        _live.discard(proc)


atexit.register(_reap_all)


class RedisServer:
    """One redis-server process bound to 127.0.0.1, with its data in ``tmpdir``.

    The port is chosen once and kept across restarts, so clients can reconnect
    and an AOF written before ``kill()``/``stop()`` is reloaded by ``restart()``.
    """

    def __init__(
        self,
        tmpdir: Path,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.tmpdir = Path(tmpdir)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra = list(extra or [])
        self._auto_port = port is None
        self.port = free_port() if port is None else port
        self.logfile = self.tmpdir / "redis.log"
        self._proc: subprocess.Popen | None = None
        self._started_once = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self) -> list[str]:
        return [
            _redis_server_binary(),
            "--port", str(self.port),
            "--bind", HOST,
            "--dir", str(self.tmpdir),
            "--save", "",  # no RDB snapshots: durability under test is the AOF's
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",  # we must own the process to stop/kill it
            "--logfile", str(self.logfile),
            *self.extra,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Launch the server and block until it answers PING (or raise)."""
        if self.alive():
            return self
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self._launch()
            if self._wait_ready():
                self._started_once = True
                return self
            code = self._proc.poll()
            self._reap()
            # An auto-chosen port can be grabbed by someone else between
            # free_port() and bind: pick another. Never once started, since
            # restart() must come back on the same port.
            port_taken = "already in use" in self.log_tail()
            if not (port_taken and self._auto_port and not self._started_once):
                break
            self.port = free_port()
        state = "timed out" if code is None else f"exited with code {code}"
        raise RedisServerError(
            f"redis-server on port {self.port} did not answer PING ({state}, "
            f"limit {START_TIMEOUT:.0f}s). Last lines of {self.logfile}:\n{self.log_tail()}"
        )

    def _launch(self) -> None:
        # Config errors go to stderr before redis opens its logfile, so send
        # stdout/stderr there too (both append, so nothing is overwritten).
        with open(self.logfile, "ab") as log:
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a terminal Ctrl-C reaches pytest, not redis
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        _live.add(self._proc)

    def _wait_ready(self) -> bool:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    return False  # exited early (port taken, bad config): fail fast
                try:
                    if client.ping():  # raises BusyLoadingError while the AOF loads
                        return True
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.05)
            return False
        finally:
            client.close()

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        except OSError:
            return "(no log file)"

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown (SIGTERM: flushes and fsyncs the AOF, no RDB since save is off)."""
        if self.alive():
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reap()

    def kill(self) -> None:
        """Simulate a crash: SIGKILL, no chance to flush anything."""
        if self.alive():
            self._proc.kill()
        self._reap()

    def restart(self) -> RedisServer:
        """Stop if running, then start again on the same port and dir."""
        self.stop()
        return self.start()

    def _reap(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            _live.discard(self._proc)
            self._proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "alive" if self.alive() else "stopped"
        return f"<RedisServer {self.url} {state} dir={self.tmpdir}>"


class RedisClusterServers:
    """A 3-master, 0-replica Redis Cluster on 127.0.0.1, each node in ``tmpdir/node-PORT``."""

    def __init__(self, tmpdir: Path, *, masters: int = 3) -> None:
        self.tmpdir = Path(tmpdir)
        self.nodes: list[RedisServer] = []
        for _ in range(masters):
            port = _free_cluster_port()
            self.nodes.append(
                RedisServer(
                    self.tmpdir / f"node-{port}",
                    port=port,
                    extra=CLUSTER_NODE_ARGS,
                )
            )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def url(self) -> str:
        """Seed URL for redis.RedisCluster.from_url; the client discovers the rest."""
        return self.nodes[0].url

    def start(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            self._create()
            self._wait_converged()
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        cli = shutil.which("redis-cli")  # ships in the same package as redis-server
        if cli is None:
            raise RedisServerError("redis-cli was not found on PATH. " + INSTALL_HINT)
        cmd = [cli, "--cluster", "create", *(f"{HOST}:{n.port}" for n in self.nodes)]
        cmd += ["--cluster-replicas", "0", "--cluster-yes"]
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        if res.returncode != 0:
            raise RedisServerError(f"`{' '.join(cmd)}` failed:\n{res.stdout}\n{res.stderr}")

    def _wait_converged(self) -> None:
        """Poll until every node reports state ok, all slots assigned and all peers known.

        `--cluster create` returns once the config is sent, but gossip can take
        a moment; a test racing it would see CLUSTERDOWN or MOVED loops.
        """
        clients = [
            redis.Redis(host=HOST, port=n.port, socket_timeout=1, decode_responses=True)
            for n in self.nodes
        ]
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        last: list[dict] = []
        try:
            while time.monotonic() < deadline:
                try:
                    last = [c.cluster("INFO") for c in clients]
                except (redis.RedisError, OSError):
                    last = []
                if last and all(
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_slots_assigned", 0)) == 16384
                    and int(info.get("cluster_known_nodes", 0)) == len(self.nodes)
                    for info in last
                ):
                    return
                time.sleep(0.1)
        finally:
            for c in clients:
                c.close()
        raise RedisServerError(
            f"cluster on ports {[n.port for n in self.nodes]} did not converge within "
            f"{CLUSTER_TIMEOUT:.0f}s; last CLUSTER INFO: {last}"
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
