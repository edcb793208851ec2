"""The call layer's compiled paths: the item encoders and the records parse.

The list items' encoders (``argtypes._field``) take the common values of the hot
types at once and hand every other value to ``encode_arg``: what they accept,
convert and refuse must stay exactly the table's, for every list of the call
table. A ``records`` reply has one parse, compiled per call (``ops._records``):
its values for each shape of the table, and its refusal of a reply cut short.
"""

from __future__ import annotations

from typing import Any

import pytest
from homing import argtypes, ops, types
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


def parse(name: str, reply: list[Any], **given: Any) -> Any:
    return ops.call(name, "svc", 1000, **given).parse(reply)


def test_dequeue_rows_are_events_with_the_head_merged() -> None:
    reply = [1700, 0, b"a1", 5, 1, b"raw1", 0, b"b2", 6, 2, b"raw2", 1]
    assert parse("dequeue", reply) == [
        types.Event("svc", "a1", 5, 1, 1700, b"raw1", must_start=False),
        types.Event("svc", "b2", 6, 2, 1700, b"raw2", must_start=True)]
    assert parse("dequeue", [1700, 250]) == []


def test_dequeue_batch_is_one_batch_of_events() -> None:
    reply = [1700, 40, b"a1", 5, 1, b"raw1", 1]
    assert parse("dequeue_batch", reply) == types.Batch(
        events=[types.Event("svc", "a1", 5, 1, 1700, b"raw1", must_start=True)], wait_ms=40)
    assert parse("dequeue_batch", [1700, 40]) == types.Batch(events=[], wait_ms=40)


def test_pages_hold_their_records() -> None:
    assert parse("dead_list", [9, b"a1", 17, 3, b"boom", b"", b"b2", 18, 4, b"", b"x"]) == \
        types.DeadPage(total=9, letters=[types.DeadLetter("a1", 17, 3, "boom", b""),
                                         types.DeadLetter("b2", 18, 4, "", b"x")])
    assert parse("recurring_list", [1, b"r", b"every 5 skip", 10, 2, 0, 3]) == \
        types.RecurringPage(total=1, schedules=[types.Recurring("r", "every 5 skip", 10, 2, 0, 3)])


def test_picked_and_neutral_rows() -> None:
    assert parse("enqueue_many", [b"a1", 1, b"b2", 0], payloads=[1, 2]) == ["a1", "b2"]
    assert parse("enqueue", [b"a1", 1], payload=1) == "a1"
    assert parse("due_take", [5, -1, 7, b"s1", b"s2"]) == {
        "now": 5, "next_due": -1, "next_claim": 7, "items": [{"service": "s1"}, {"service": "s2"}]}
    assert parse("group_result", [1, b"a1", b""], group="g") == {
        "finished": True, "items": [{"id": "a1", "raw_result": b""}]}


RECORDS_CALLS = sorted(n for n, e in ops.CALLS.items() if e["reply"]["kind"] == "records")


@pytest.mark.parametrize("name", RECORDS_CALLS)
def test_a_records_reply_of_the_wrong_length_is_refused(name: str) -> None:
    entry = ops.CALLS[name]
    parse = ops._records(entry)
    parse("svc", reply_of(entry["reply"], 3))  # whole rows parse
    head, each = len(entry["reply"]["head"]), len(entry["reply"]["each"])
    cut = [reply_of(entry["reply"], 2)[:-1]] if each > 1 else []  # a row cut short
    cut += [reply_of(entry["reply"], 0)[:-1]] if head else []  # the head cut short
    for r in cut:
        with pytest.raises(ValueError, match=r"^zip\(\) argument 2 is shorter than argument 1$"):
            parse("svc", r)


def test_the_hot_calls_parse_with_no_dict_per_row() -> None:
    assert ops.CALLS["dequeue_batch"]["reply"]["kind"] == "records"
    ops.call("dequeue_batch", "svc", 1000).parse([1, 0])
    assert "dequeue_batch" in ops._RECORD_PARSE  # compiled on first use, kept
