"""The GIL switch interval a Worker or the daemons set (``homing.latency``).

Lowered to 1 ms only where it is still CPython's default: a process that chose
its own keeps it. Each test puts back what it found.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

import homing
from homing import Consumer, Worker, latency
from homing.daemons import run_daemons


@pytest.fixture
def interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class Nothing(Consumer):
    def handle_event(self, event: object, state: object) -> object:
        return state


def test_the_default_is_lowered_a_chosen_one_kept(interval: None) -> None:
    sys.setswitchinterval(latency.CPYTHON_DEFAULT_S)
    latency.quicker_switches()
    assert sys.getswitchinterval() == pytest.approx(latency.SWITCH_S)
    sys.setswitchinterval(0.002)
    latency.quicker_switches()
    assert sys.getswitchinterval() == pytest.approx(0.002)


def test_a_worker_lowers_it_when_it_starts(client: homing.Client, service: str,
                                          interval: None) -> None:
    sys.setswitchinterval(latency.CPYTHON_DEFAULT_S)
    w = Worker(client, service, Nothing)
    w.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(latency.SWITCH_S)
    finally:
        w.stop()
        w.shutdown()


def test_the_daemons_lower_it_and_keep_a_chosen_one(client: homing.Client,
                                                   interval: None) -> None:
    for before, after in ((latency.CPYTHON_DEFAULT_S, latency.SWITCH_S), (0.01, 0.01)):
        sys.setswitchinterval(before)
        stop = threading.Event()
        seen: list[float] = []

        def started(daemons: object, threads: object, stop: threading.Event = stop,
                    seen: list[float] = seen) -> None:
            seen.append(sys.getswitchinterval())
            stop.set()

        run_daemons(client, stop, started=started)
        assert seen == [pytest.approx(after)]


def test_one_full_collection_at_the_first_start_only(client: homing.Client, service: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The young process's first full collection, at start rather than on a due
    timer later; once per process (a test run starts hundreds of workers)."""
    calls: list[int] = []
    monkeypatch.setattr(latency, "_collected", False)
    monkeypatch.setattr(latency.gc, "collect", lambda *a: calls.append(1) or 0)
    latency.collect_now()
    assert calls == [1]
    w = Worker(client, service, Nothing)
    w.start()
    try:
        assert calls == [1]  # not again
    finally:
        w.stop()
        w.shutdown()
    monkeypatch.setattr(latency, "_collected", False)
    stop = threading.Event()
    run_daemons(client, stop, started=lambda daemons, threads: stop.set())
    assert calls == [1, 1]
