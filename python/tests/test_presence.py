"""Worker beats (homing.presence, script worker_beat): what a running Worker leaves in Redis.

On both topologies: the beat's only key is the global ``<prefix>:workers`` hash.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import running, wait_for

import homing
from homing.errors import InvalidArgumentError, InvalidNameError
from homing.manifest import global_key
from homing.presence import parse_beat, read_workers


class Holding(homing.Consumer):
    release = threading.Event()

    def handle_event(self, event: homing.Event, state: Any) -> Any:
        self.release.wait(20)
        return state


def mine(client: homing.Client, name: str) -> Any:
    return next((w for w in read_workers(client) if w.name == name), None)


def test_a_worker_beats_while_it_runs_and_says_when_it_stopped(client: homing.Client,
                                                               service: str) -> None:
    Holding.release.clear()
    ids = client.enqueue_many(service, ["a", "b"])
    w = homing.Worker(client, service, Holding, concurrency=2, lease_ms=3000, grace=5)
    try:
        with running(w):
            name = w._presence.name
            beat = wait_for(lambda: (b := mine(client, name)) is not None and b.held == 2 and b)
            assert beat.alive and not beat.stopped
            assert (beat.service, beat.concurrency, beat.every_ms) == (service, 2, 1000)
            assert sorted(beat.held_ids) == sorted(ids)
            Holding.release.set()
    finally:
        Holding.release.set()
    last = mine(client, name)
    assert last is not None and last.stopped and not last.alive and last.held == 0


def test_silent_workers_are_pruned_by_another_beat(client: homing.Client, service: str) -> None:
    for i in range(5):
        client.worker_beat(f"gone-{i}", service, "h", i, 1, 0, every_ms=0)
    client.worker_beat("slow", service, "h", 9, 1, 0, every_ms=3_600_000)
    # Each beat samples up to 8 other fields: these 6 are all looked at.
    pruned = client.worker_beat("new", service, "h", 10, 1, 0, every_ms=1000, forget_ms=0)
    assert pruned == 5
    assert sorted(w.name for w in read_workers(client)) == ["new", "slow"]


def test_a_beat_with_bad_input_writes_nothing(client: homing.Client, service: str) -> None:
    with pytest.raises(InvalidArgumentError):
        client.worker_beat("", service, "h", 1, 1, 0, 1000)
    with pytest.raises(InvalidArgumentError):
        client.worker_beat("w", service, "h", 1, 0, 0, 1000)  # concurrency >= 1
    with pytest.raises(InvalidArgumentError):
        client.worker_beat("w", service, "h" * 256, 1, 1, 0, 1000)
    with pytest.raises(InvalidNameError):
        client.worker_beat("w", service, "h", 1, 1, 1, 1000, ids=["not an id"])
    assert not client.redis.exists(global_key(client.prefix, "workers"))


def test_a_value_this_version_cannot_read_is_skipped() -> None:
    assert parse_beat("w", "garbage", 0) is None
    b = parse_beat("w", "1000;3000;7;2;1;0;svc;e1 e2;host;with;semicolons", 4000)
    assert b is not None and b.host == "host;with;semicolons" and b.held_ids == ("e1", "e2")
    assert b.age_s == 3.0 and b.alive
