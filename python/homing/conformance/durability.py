"""The server settings that bound homing's promises, checked beside the vectors.

The vectors prove a server runs homing's scripts right; they cannot prove it
keeps what it acknowledged. docs/guarantees.md names the settings that decide
that, and ``homing conformance`` reports them, so that "check a server before
trusting it" also covers durability. Warnings only: a test server may
rightly run without persistence. Managed services often refuse CONFIG; what
INFO shows is used then, and the rest reported as unknown, never guessed.
The reading is homing.durability's, the one clients and workers warn from.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.exceptions import RedisError

from .. import durability
from ..errors import HomingError

# setting -> (value that keeps the promises, why it matters)
EXPECTED: dict[str, tuple[str, str]] = {
    "appendonly": ("yes", "without the AOF a crash loses everything since the last snapshot"),
    "appendfsync": ("always", "'everysec' may lose about 1 s of acknowledged writes on a crash"),
    "maxmemory-policy": ("noeviction",
                         "an eviction policy may silently delete queue keys under memory pressure"),
}


def read_settings(url: str) -> dict[str, str | None]:
    """The node's settings (None where neither CONFIG GET nor INFO shows them)."""
    # A plain connection to the node named: CONFIG is per node even on Cluster.
    r: Any = redis.Redis.from_url(url, decode_responses=True)
    try:
        [node] = durability.read(r)
    finally:
        r.close()
    return {name: node.settings.get(name) for name in EXPECTED}


def notes(settings: dict[str, str | None]) -> list[str]:
    """One line per setting: 'ok', a warning, or unknown."""
    lines = []
    for name, (want, why) in EXPECTED.items():
        have = settings.get(name)
        if have is None:
            lines.append(f"  ?    {name}: unknown (CONFIG GET refused); want {want}")
        elif have == want:
            lines.append(f"  ok   {name} {have}")
        else:
            lines.append(f"  WARN {name} {have}: want {want}: {why}")
    return lines


def render(url: str) -> str:
    """The durability section of the conformance report (see docs/guarantees.md)."""
    try:
        settings = read_settings(url)
    except (RedisError, HomingError) as exc:
        return f"\ndurability: could not read the settings ({exc})"
    body = notes(settings)
    verdict = ("this node is set up to keep what it acknowledges"
               if all(line.startswith("  ok") for line in body)
               else "the vectors passing does not make this server durable: see docs/guarantees.md")
    return "\n".join(["", "durability (this node; warnings do not fail the suite):", *body,
                      f"  -> {verdict}"])
