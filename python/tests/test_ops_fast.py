"""The call layer's fast paths against the general ones they stand in for.

The list items' encoders (``argtypes._field``) take the common values of the hot
types at once and hand every other value to ``encode_arg``: what they accept,
convert and refuse must stay exactly the table's, for every list of the call
table. The direct records parse (``ops._record_rows``) must give what
``parse_reply`` and ``_shape`` give, for every call that has one.
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


SAMPLE = {"int": [0, 7, 1700000000000], "str": [b"a1", b"b2", b"c3"], "bool": [0, 1, 0],
          "bytes": [b"\x81\xa1n\x01", b"", b"raw"], "num": [b"1.5", 3, b"x"],
          "status": [b"q", b"d", b"x"]}


def reply_of(spec: dict[str, Any], rows: int) -> list[Any]:
    out = [SAMPLE[f["type"]][0] for f in spec["head"]]
    for i in range(rows):
        out += [SAMPLE[f["type"]][i % 3] for f in spec["each"]]
    return out


@pytest.mark.parametrize("name", sorted(ops._RECORD_ROWS))
def test_the_direct_records_parse_gives_what_the_general_one_gives(name: str) -> None:
    entry = ops.CALLS[name]
    fast = ops._RECORD_ROWS[name]
    for rows in (0, 1, 3):
        r = reply_of(entry["reply"], rows)
        want = ops._shape(entry, "svc", ops.parse_reply(entry["reply"], r, []))
        assert fast("svc", r) == want, (name, rows)
    short = reply_of(entry["reply"], 2)[:-1]  # a reply of the wrong length fails as before
    with pytest.raises(ValueError):
        ops._shape(entry, "svc", ops.parse_reply(entry["reply"], short, []))
    with pytest.raises(ValueError):
        fast("svc", short)


def test_the_hot_calls_have_a_direct_parse() -> None:
    assert {"dequeue", "dequeue_batch"} <= set(ops._RECORD_ROWS)
