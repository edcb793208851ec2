"""Edges of the Python API found in review: what is refused before anything is written."""

from __future__ import annotations

import math

import msgpack
import pytest
from helpers import written_keys

import homing
from homing import envelope


@pytest.mark.parametrize("payload", [
    {(1, 2): "tuple key"}, {None: 1}, {b"k": 1}, {True: 1}, {"ok": [{1.5: "float key"}]},
    [msgpack.ExtType(5, b"x")],
])
def test_payloads_no_client_could_read_back_are_refused(
        client: homing.Client, service: str, payload: object) -> None:
    with pytest.raises(homing.PayloadNotEncodableError):
        client.enqueue(service, payload)
    assert not any(written_keys(client, service).values()), "nothing was written"


def test_text_and_integer_keys_round_trip() -> None:
    payload = {"a": {1: [{"b": -2}]}, 7: "seven"}
    assert envelope.decode(envelope.encode(payload)) == payload


@pytest.mark.parametrize("value", [True, math.nan, math.inf, "1000"])
def test_configure_refuses_what_is_not_a_finite_number(
        client: homing.Client, service: str, value: object) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        client.configure(service, lease_ms=value)  # type: ignore[arg-type]


def test_binary_replies_are_required(redis_url: str) -> None:
    with pytest.raises(homing.InvalidArgumentError):
        homing.Client.from_url(redis_url, decode_responses=True)


def test_per_item_errors_read_on_one_line(client: homing.Client, service: str) -> None:
    errors = client.complete_many(service, [("nope", 1, None)])
    assert isinstance(errors[0], homing.UnknownEventError)
    assert "\n" not in str(errors[0]) and "  " not in str(errors[0])


def test_every_error_class_is_exported() -> None:
    names = {cls.__name__ for cls in homing.errors.BY_CODE.values()}
    assert names <= set(homing.__all__)
    assert "BY_CODE" not in homing.__all__ and not hasattr(homing, "annotations")
