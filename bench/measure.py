"""Timing one benchmark sample, with what Redis and this process spent meanwhile.

A rate alone cannot say where the time went, so every sample also records
the Redis server's CPU (``INFO cpu``), the server-side time of the commands
the case issues at top level (``INFO commandstats``: for homing that is
EVALSHA, whose time includes every ``redis.call`` the script makes), and this
process's own CPU time (all threads). Deltas only: nothing is reset on the
server, so pointing the bench at a Redis that others use changes no one's
statistics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """One timed repetition of one case."""

    events: int
    seconds: float = 0.0
    client_cpu: float = 0.0
    redis_cpu: float = 0.0
    commands: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def redis_usec(self) -> int:
        return sum(c["usec"] for c in self.commands.values())


def _redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _command_stats(r: Any, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    stats = r.info("commandstats")
    out = {}
    for name in names:
        s = stats.get(f"cmdstat_{name}", {})
        out[name] = {"calls": int(s.get("calls", 0)), "usec": int(s.get("usec", 0))}
    return out


@contextmanager
def measured(r: Any, events: int, commands: tuple[str, ...]) -> Iterator[Sample]:
    """Time the with-block as one sample of ``events`` events.

    ``commands`` are the top-level commands the case sends. Commands that a
    script calls are counted by Redis under their own names as well, so only
    top-level ones are summed or the script's work would be counted twice.
    """
    sample = Sample(events)
    cmd0, cpu0 = _command_stats(r, commands), _redis_cpu(r)
    proc0, wall0 = time.process_time(), time.perf_counter()
    yield sample
    sample.seconds = time.perf_counter() - wall0
    sample.client_cpu = time.process_time() - proc0
    sample.redis_cpu = _redis_cpu(r) - cpu0
    cmd1 = _command_stats(r, commands)
    sample.commands = {
        name: {k: cmd1[name][k] - cmd0[name][k] for k in ("calls", "usec")} for name in commands
    }
