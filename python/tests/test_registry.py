"""The service registry and the daemons' beats.

The registry is how the scheduler and distributor find services; it sits in
its own slot, beside the scripts. These tests pin that a lost registry heals
itself (a Redis that lost its data must not strand new timers or leases), and
that daemons leave a beat that ``homing stats`` can check.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import running, running_daemons, wait_for

import homing
import homing.clientbase
from homing.consumer import Consumer
from homing.manifest import global_key


def _registry(client: homing.Client) -> set[str]:
    return set(client.services())


def test_producer_registers_again_after_the_registry_is_lost(
        client: homing.Client, service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client.enqueue(service, 1)
    client.redis.delete(global_key(client.prefix, "services"))  # a Redis that lost its data
    client.enqueue(service, 2)
    assert service not in _registry(client), "within REGISTER_EVERY the SADD is not repeated"
    monkeypatch.setattr(homing.clientbase, "REGISTER_EVERY", 0.0)
    client.create_timer(service, 3, delay_ms=1)
    assert service in _registry(client)


def test_async_producer_registers_again(redis_url: str, prefix: str, service: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(homing.clientbase, "REGISTER_EVERY", 0.0)

    async def go() -> set[str]:
        async with await homing.AsyncClient.from_url(redis_url, prefix=prefix) as ac:
            await ac.enqueue(service, 1)
            await ac.redis.delete(global_key(prefix, "services"))
            await ac.enqueue(service, 2)
        with homing.Client.from_url(redis_url, prefix=prefix) as c:
            return set(c.services())

    assert service in asyncio.run(go())


class _Slow(Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        return state


def test_worker_registers_its_service(client: homing.Client, service: str) -> None:
    worker = homing.Worker(client, service, _Slow, lease_ms=300)
    with running(worker):
        assert service in _registry(client), "registered on start"
        client.redis.delete(global_key(client.prefix, "services"))
        wait_for(lambda: service in _registry(client), timeout=5)  # and with each heartbeat


def test_daemons_leave_a_beat(client: homing.Client) -> None:
    assert client.daemons() == {}
    with running_daemons(client):
        beats = wait_for(lambda: client.daemons() if len(client.daemons()) == 2 else None)
    assert sorted(name.split(":")[0] for name in beats) == ["distributor", "scheduler"]
    assert all(0 <= age < 5 for age in beats.values())


def test_stale_beats_are_forgotten(client: homing.Client) -> None:
    client.redis.hset(global_key(client.prefix, "daemons"), "scheduler:gone:1", 1)
    assert client.daemons(forget_after=3600) == {}
    assert client.redis.hlen(global_key(client.prefix, "daemons")) == 0
