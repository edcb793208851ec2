"""The list items' encoders (argtypes._field) against encode_arg, value by value.

The encoders take the common values of the hot types at once and hand every
other value to ``encode_arg``: what they accept, convert and refuse must stay
exactly the table's, for every list of the call table.
"""

from __future__ import annotations

from typing import Any

import pytest

from homing import argtypes, ops
from homing.errors import HomingError

VALUES: list[Any] = [
    None, 0, 1, 9, 10, -1, 2**53 - 1, 2**53, True, False, 5.0, 5.5, float("nan"), "5",
    "a" * 32, "$new_id", "bad id!", "", b"x", {"a": 1}, [1], ("t",), "abc", 12345,
]


def encode_or_error(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except HomingError as exc:
        return ("refused", type(exc), str(exc))


def list_fields() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}.{f['name']}", f) for name, entry in sorted(ops.CALLS.items())
            for a in entry["args"] if a["type"] == "list" for f in a["fields"]]


@pytest.mark.parametrize(("where", "field"), list_fields(), ids=[w for w, _ in list_fields()])
def test_each_field_encodes_as_encode_arg_does(where: str, field: dict[str, Any]) -> None:
    enc = argtypes._field(field)
    for v in VALUES:
        want = encode_or_error(lambda v=v: argtypes.encode_arg(
            field, field.get("default") if v is None else v, field["name"], 1000))
        got = encode_or_error(lambda v=v: enc(v, 1000))
        if field["type"] == "id" and want[0] == "ok" and v in (None, "$new_id"):
            assert got[0] == "ok" and len(got[1]) == 32, (where, v)  # a new random id
        else:
            assert got == want, (where, v)


def test_items_shorter_than_their_fields_take_the_defaults() -> None:
    spec = next(a for a in ops.CALLS["complete_many"]["args"] if a["name"] == "items")
    assert argtypes._items(spec, [("a1", 7)], "items", 1000) == [["a1", 7, b""]]
    with pytest.raises(HomingError):
        argtypes._items(spec, [("a1",)], "items", 1000)
    with pytest.raises(HomingError):
        argtypes._items(spec, ["a1"], "items", 1000)
