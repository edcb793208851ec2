"""The call layer's compiled paths, against the values the table says they give.

Each argument spec of the table has one encoder, made on its first use
(``argtypes._encoder``): top-level arguments and a list's item fields alike, so
the hot types (an exact int in range taken at once) are checked here by their
rules and texts. A ``records`` reply has one parse, compiled per call
(``ops._records``): its values for each shape of the table, and its refusal of
a reply cut short.
"""

from __future__ import annotations

import enum
import re
from typing import Any

import pytest

from homing import argtypes, envelope, ops, types
from homing.errors import HomingError, InvalidArgumentError, PayloadTooLargeError


class Level(enum.IntEnum):
    FIVE = 5


TOKEN = {"type": "token", "name": "token", "min": 0, "max": 2**53 - 1}
WHOLE = {"type": "whole", "name": "count", "min": 1, "max": 1000}
MS = {"type": "ms", "name": "delay_ms", "min": 0, "max": 2**53 - 1}


@pytest.mark.parametrize(("spec", "value", "want"), [
    (TOKEN, 0, 0), (TOKEN, 2**53 - 1, 2**53 - 1), (TOKEN, Level.FIVE, 5), (WHOLE, 1, 1),
    (WHOLE, 5.0, 5), (WHOLE, Level.FIVE, 5), (MS, 0, 0), (MS, 5.9, 5), (MS, 2**53 - 1, 2**53 - 1),
])
def test_a_number_is_sent_as_an_exact_int(spec: dict[str, Any], value: Any, want: int) -> None:
    got = argtypes.encode_arg(spec, value, spec["name"], 1000)
    assert got == want and type(got) is int  # an IntEnum would go out as "<Level.FIVE: 5>"


@pytest.mark.parametrize(("spec", "value", "shown"), [
    (TOKEN, -1, "-1"), (TOKEN, 2**53, "9007199254740992"), (TOKEN, 5.0, "5.0"),
    (TOKEN, True, "True"), (TOKEN, "5", "'5'"), (WHOLE, 0, "0"), (WHOLE, 1001, "1001"),
    (WHOLE, 5.5, "5.5"), (WHOLE, False, "False"), (MS, -1, "-1"), (MS, float("nan"), "nan"),
    (MS, float("inf"), "inf"), (MS, None, "None"),
])
def test_a_number_out_of_its_rule_is_refused_by_the_tables_text(
        spec: dict[str, Any], value: Any, shown: str) -> None:
    want = argtypes.REFUSALS[spec["type"]].format(what="x", value=shown, **spec)
    with pytest.raises(InvalidArgumentError) as exc:
        argtypes.encode_arg(spec, value, "x", 1000)
    assert str(exc.value) == want


def test_list_items_take_their_defaults_and_each_fields_rule() -> None:
    spec = next(a for a in ops.CALLS["complete_many"]["args"] if a["name"] == "items")
    enc = argtypes._encoder(spec)
    assert enc([("a1", 7)], "items", 1000) == [["a1", 7, b""]]
    assert enc([["a1", 7, None], ("b2", Level.FIVE, 1)], "items", 1000) == [
        ["a1", 7, b""], ["b2", 5, envelope.encode(1)]]
    new = enc([("$new_id", 1)], "items", 1000)[0][0]
    assert len(new) == 32 and new != "$new_id"  # a new random id
    for bad, text in [([("a1",)], "items items are (id, token, result), the first 2 required"),
                      (["a1"], "items items are"), ([("a1", 5.0)], "token must be a lease token"),
                      ([("bad id!", 1)], "invalid event id"), ("ab", "items takes a list of")]:
        with pytest.raises(HomingError, match=f"^{re.escape(text)}"):
            enc(bad, "items", 1000)
    with pytest.raises(PayloadTooLargeError):
        enc([("a1", 1, "x" * 2000)], "items", 1000)


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
