"""Recurring timers: cron ticks computed in Lua agree with croniter; two daemons never double one.

The schedule rules live in lua/include/cron.lua and recurring.lua; the
conformance vectors (recurring_*.json) pin their replies. Here: the cron
arithmetic against an independent implementation on many expressions and
times, real daemon processes racing over one schedule, and the CLI.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from croniter import croniter

import homing
from homing import Client

EXPRESSIONS = [
    "* * * * *", "*/7 * * * *", "5 4 * * *", "0 */3 * * *", "15,45 9-17 * * mon-fri",
    "0 0 1 * *", "0 0 * * 0", "0 0 * * 7", "30 2 1-7 * 1", "0 12 13 * 5", "59 23 31 12 *",
    "0 0 29 2 *", "1-59/10 * * * *", "0 6 * jan,jul *", "0 0 L * *", "@daily", "@weekly",
    "@monthly", "@yearly", "@hourly", "0 9-17/2 * * 1-5", "0 0 31 * *", "*/15 3 * * sat,sun",
]


def _clock(client: Client, service: str, ms: int) -> None:
    client.redis.hset(f"{client.prefix}:{{{service}}}:config", "test_clock", ms)


def _oracle(expr: str, after_ms: int) -> int:
    base = dt.datetime.fromtimestamp(after_ms / 1000, dt.timezone.utc)
    nxt = croniter(expr, base, day_or=True).get_next(dt.datetime)
    return int(nxt.timestamp() * 1000)


@pytest.mark.parametrize("redis_url", ["standalone"], indirect=True)
def test_cron_ticks_agree_with_croniter(client: Client, service: str) -> None:
    """Every expression (L is not cron of ours: refused), at 40 random times from 1970 to 2100."""
    rng = random.Random(7)
    checked = 0
    for expr in EXPRESSIONS:
        if " L " in f" {expr} ":
            with pytest.raises(homing.InvalidArgumentError):
                client.recurring_put(service, "x", 1, cron=expr)
            continue
        for _ in range(40):
            after = rng.randrange(0, 4_102_444_800_000)  # up to 2100-01-01
            # Whole seconds and odd milliseconds alike: a tick is strictly after now.
            after -= after % rng.choice([1, 1000, 60_000])
            _clock(client, service, after)
            client.recurring_remove(service, "x")
            got = client.recurring_put(service, "x", 1, cron=expr)
            assert got == _oracle(expr, after), (expr, after)
            checked += 1
    assert checked == 40 * (len(EXPRESSIONS) - 1)


@pytest.mark.parametrize("redis_url", ["standalone"], indirect=True)
def test_every_ms_is_anchored_at_registration(client: Client, service: str) -> None:
    _clock(client, service, 5_000)
    assert client.recurring_put(service, "t", 1, every_ms=300) == 5_300
    _clock(client, service, 6_250)  # ticks 5300, 5600, 5900, 6200 missed: one event
    assert client.promote(service).timers == 1
    assert client.recurring_list(service).schedules[0].next_ms == 6_500
    assert [e.id for e in client.dequeue(service, 10)] == ["t.5300"]


def _daemon(redis_url: str, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "homing", "--redis-url", redis_url, "--prefix", prefix, "daemon"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})


@pytest.mark.timeout(60)
def test_two_daemons_never_double_a_tick(redis_url: str, prefix: str, client: Client,
                                         service: str) -> None:
    client.recurring_put(service, "beat", {"x": 1}, every_ms=100)
    procs = [_daemon(redis_url, prefix) for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while client.recurring_list(service).schedules[0].fired < 15:
            assert time.monotonic() < deadline, "the daemons fired too few ticks"
            assert all(p.poll() is None for p in procs), procs[0].stderr
            time.sleep(0.1)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=20)
    sched = client.recurring_list(service).schedules[0]
    ids = [e.id for e in client.dequeue(service, 1000)]
    ticks = sorted(int(i.split(".")[1]) for i in ids)
    assert len(ids) == len(set(ids)) == sched.fired, "each fired tick is one event, once"
    assert all(b > a for a, b in zip(ticks, ticks[1:], strict=False))
    assert all((t - ticks[0]) % 100 == 0 for t in ticks), "ticks fall on the schedule"
    assert client.stats(service)["total.recurring_fired"] == sched.fired


def test_the_cli_adds_lists_and_removes(cli, client: Client, service: str) -> None:
    r = cli("recurring", "add", service, "nightly", '{"job": "report"}', "--cron", "30 2 * * *")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("nightly: next tick at ")
    r = cli("recurring", "add", service, "fast", "x", "--every-ms", "1000", "--skip-missed")
    assert r.exit_code == 0, r.output
    r = cli("recurring", "list", service)
    assert r.exit_code == 0
    assert "cron 1 30 2 * * *" in r.stdout and "every 1000 0" in r.stdout
    assert "2 shown (from 0) of 2 recurring timers" in r.stdout
    r = cli("recurring", "add", service, "x", "1")
    assert r.exit_code == 2 and "exactly one of --every-ms and --cron" in r.output
    r = cli("recurring", "add", service, "x", "1", "--cron", "0 0 30 2 *")
    assert r.exit_code == 2 and "never fires" in r.stderr
    r = cli("recurring", "remove", service, "fast")
    assert r.exit_code == 0 and "removed fast" in r.stdout
    r = cli("recurring", "remove", service, "fast")
    assert r.exit_code == 1 and "has no recurring timer 'fast'" in r.stderr
    assert [s.name for s in client.recurring_list(service).schedules] == ["nightly"]

