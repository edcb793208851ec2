"""The processes the suite owns: private redis-servers, workers and daemons.

Nothing here touches a shared Redis: servers come from python/tests/servers.py
(free loopback port, temporary directory, killed with their parent), and every
worker or daemon is a separate OS process started with PR_SET_PDEATHSIG, so a
harness that dies, even by SIGKILL, takes its children with it. An ``atexit``
hook kills whatever is still registered, by PID.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python" / "tests"))

# The test suite's private servers (and, for faults.topology, its port and binary helpers).
from servers import RedisServer, free_port  # noqa: E402, F401
from servers import _redis_server_binary as redis_server_binary  # noqa: E402, F401

FORBIDDEN_PORT = 6379  # somebody's real Redis: never ours
# Redis persistence per mode; "snapshot" takes its RDB files by hand (BGSAVE).
MODES: dict[str, dict] = {
    "always": {"appendonly": True, "appendfsync": "always"},
    "everysec": {"appendonly": True, "appendfsync": "everysec"},
    "rdb": {"appendonly": False, "extra": ["--save", "2 1"]},  # a snapshot every 2 s
    "snapshot": {"appendonly": False},
}

_live: dict[int, subprocess.Popen] = {}


def venv_python() -> str:
    """The repository's .venv interpreter (where homing is installed), else ours."""
    candidate = REPO / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


try:  # loaded here, not in the child: dlopen between fork and exec could deadlock
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: the atexit hook remains the safety net
    _LIBC = None


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel SIGKILLs it when the harness dies.

    The signal follows the thread that forked, so the harness forks from its main
    thread only (see ``faults.harness``).
    """
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _reap_all() -> None:
    for pid, proc in list(_live.items()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)  # a stopped process cannot die of SIGKILL's cleanup
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        _live.pop(pid, None)


atexit.register(_reap_all)


def redis_server(tmpdir: Path, mode: str = "always", extra: list[str] | None = None) -> RedisServer:
    """A private redis-server in ``tmpdir`` with the persistence of ``mode``, started."""
    opts = dict(MODES[mode])
    opts["extra"] = [*opts.get("extra", []), *(extra or [])]
    srv = RedisServer(tmpdir, **opts)
    if srv.port == FORBIDDEN_PORT:  # free_port() never hands it out while it is taken; be sure
        raise RuntimeError("refusing to run a private Redis on port 6379")
    return srv.start()


class Proc:
    """One child process with its output in a log file; stopped by PID only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path = REPO) -> None:
        self.name, self.argv, self.env, self.log, self.cwd = name, argv, env, log, cwd
        self.popen: subprocess.Popen | None = None
        self.exits: list[int] = []  # every exit status seen, restarts included
        self.started_at = 0.0

    def start(self) -> Proc:
        with open(self.log, "ab") as out:
            out.write(f"--- start {time.time():.3f} {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        _live[self.popen.pid] = self.popen
        self.started_at = time.time()
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else -1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def poll_exit(self) -> int | None:
        """The exit status once, when the process has ended since the last call."""
        if self.popen is None or self.popen.poll() is None:
            return None
        code = self.popen.returncode
        self.exits.append(code)
        _live.pop(self.popen.pid, None)
        self.popen = None
        return code

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL and reap: a crash, nothing flushed or released."""
        if self.popen is None:
            return
        if self.alive():
            self.signal(signal.SIGCONT)
            self.popen.kill()
        self.popen.wait(10)
        self.poll_exit()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL after ``timeout`` s."""
        if self.popen is None:
            return
        if self.alive():
            self.signal(signal.SIGCONT)
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.poll_exit()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
