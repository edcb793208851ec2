"""Cancelling a queued event from the CLI (the script: conformance/vectors/cancel.json)."""

from __future__ import annotations

from homing import Client


def test_cancel_from_the_cli(cli, client: Client, service: str) -> None:
    a, b = client.enqueue_many(service, [1, 2])
    (held,) = client.dequeue(service)  # a
    r = cli("cancel", service, b)
    assert r.exit_code == 0 and f"cancelled {b} (ready)" in r.stdout
    r = cli("cancel", service, held.id)
    assert r.exit_code == 1 and "was not cancelled: it is leased" in r.stderr
    assert client.status(service, b).state == "unknown"
    assert client.status(service, held.id).detail == "leased"
