#!/usr/bin/env python3
"""Run ``homing conformance`` against a private Redis 7 standalone server and a private
3-master Cluster (``make conformance``).

Why a script: the suite must pass on both topologies, and neither may be the
shared Redis of a developer's machine. The servers come from the test suite's
python/tests/servers.py (free ports, temporary directories, killed with this
process), and the command runs as a subprocess exactly as a user would run it.
Extra arguments are passed on (e.g. ``--filter dequeue --verbose``).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python" / "tests"))

from servers import RedisClusterServers, RedisServer  # noqa: E402


def run(url: str, extra: list[str]) -> int:
    # python -m homing.conformance is the same click command that `homing conformance` runs.
    cmd = [sys.executable, "-m", "homing.conformance", "--redis-url", url, *extra]
    return subprocess.run(cmd, check=False).returncode


def main(argv: list[str]) -> int:
    codes = {}
    with tempfile.TemporaryDirectory(prefix="homing-conformance-") as tmp:
        print("== Redis standalone", flush=True)
        with RedisServer(Path(tmp) / "standalone") as server:
            codes["standalone"] = run(server.url, argv)
        print("\n== Redis Cluster, 3 masters", flush=True)
        with RedisClusterServers(Path(tmp) / "cluster") as cluster:
            codes["cluster"] = run(cluster.url, argv)
    print("\n" + ", ".join(f"{k}: {'PASS' if c == 0 else 'FAIL'}" for k, c in codes.items()))
    return max(codes.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
