"""Pausing a service: nothing is handed out, everything else goes on (vectors: dequeue.json)."""

from __future__ import annotations

from homing import Client


def test_pause_and_resume_from_the_cli(cli, client: Client, service: str) -> None:
    held_id = client.enqueue(service, "held")
    (held,) = client.dequeue(service)
    waiting = client.enqueue(service, "waits")
    r = cli("pause", service)
    assert r.exit_code == 0 and f"paused {service}" in r.stdout
    assert client.dequeue(service, 10) == []
    assert client.enqueue(service, "still taken")  # producers go on
    client.complete(service, held.id, held.token)  # a lease already out completes
    assert client.status(service, held_id).state in ("done", "unknown")
    r = cli("stats", service)
    assert f"{service} (paused)" in r.stdout, r.stdout
    assert client.stats(service)["policy.paused"] == 1
    r = cli("resume", service)
    assert r.exit_code == 0 and f"resumed {service}" in r.stdout
    assert [e.id for e in client.dequeue(service, 10)][0] == waiting
    assert client.stats(service)["policy.paused"] == 0
    assert "(paused)" not in cli("stats", service).stdout
