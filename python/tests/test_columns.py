"""The column-wise encoding of ``from`` lists (ops._zipped) against the row path.

Why: a bulk enqueue encodes its payloads, ids, keys and priorities a column at a
time (issue 10); the row path stays the reference that every port follows. For
the same arguments both must send the same ARGV, and a call the columns refuse
must be refused by the row path with the same error and text.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from homing import argtypes, ops
from homing.errors import HomingError

MP = 1024


def rows_only(name: str, **given: Any) -> Any:
    """ops.call with the column path switched off."""
    saved = ops._zipped
    ops._zipped = lambda *a: None  # type: ignore[assignment]
    try:
        return ops.call(name, "svc", MP, **given)
    finally:
        ops._zipped = saved  # type: ignore[assignment]


def outcome(fn: Any) -> Any:
    try:
        return ("ok", fn().args)
    except HomingError as exc:
        return ("raised", type(exc), str(exc))


GOOD: list[dict[str, Any]] = [
    {"payloads": [1, "two", {"n": 3}], "ids": ["a", "b", "c"]},
    {"payloads": [1, 2], "ids": ["a", "b"], "keys": ["k", None], "priorities": [0, 9]},
    {"payloads": [[1, [2]], None], "ids": ["a", "b"], "priorities": None},
    {"payloads": [{"deep": {"x": [1.5]}}, ()], "ids": ("a", "b")},
]
BAD: list[dict[str, Any]] = [
    {"payloads": [1, 2], "ids": ["a", "b"], "priorities": [10, 1]},
    {"payloads": [1, b"x" * 2000], "ids": ["a", "b"], "priorities": [0, 10]},
    {"payloads": [1, 2], "ids": ["a", "bad id"], "keys": [5, None]},
    {"payloads": [1, {(1, 2): 3}], "ids": ["a", "b"]},
    {"payloads": [math.nan, 2], "ids": ["a", "b"], "priorities": [1.5, 0]},
    {"payloads": [1, 2], "ids": ["a"]},
    {"payloads": [], "ids": []},
    {"payloads": list(range(1001))},
    {"payloads": "abc"},
]


@pytest.mark.parametrize("given", GOOD + BAD)
def test_columns_send_and_refuse_as_the_rows_do(given: dict[str, Any]) -> None:
    # A generator can be read once (and this one is shared by every run of the
    # test): both paths get the same lists.
    a = {k: list(v) if hasattr(v, "__next__") else v for k, v in given.items()}
    assert outcome(lambda: ops.call("enqueue_many", "svc", MP, **a)) == \
        outcome(lambda: rows_only("enqueue_many", **a))


def test_new_ids_fill_the_id_column() -> None:
    args = ops.call("enqueue_many", "svc", MP, payloads=[1, 2, 3]).args
    assert args[1] == 3
    ids = args[2::4]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)
    assert args[4::4] == ["", "", ""] and args[5::4] == [0, 0, 0]


def test_the_column_path_is_the_one_taken() -> None:
    """Not only equal results: the call goes through the columns (a refusal there would
    silently fall back to rows, so the fast path must be seen to run)."""
    spec = next(s for s in ops.CALLS["enqueue_many"]["args"] if s["type"] == "list")
    flat = ops._zipped(spec, {"payloads": [1, 2], "ids": ["a", "b"]}, MP)
    assert flat is not None and flat[0] == 2 and flat[1::4] == ["a", "b"]
    assert len(argtypes.column_encoders(spec)) == len(spec["fields"])


def _items_spec(call: str) -> dict[str, Any]:
    return next(s for s in ops.CALLS[call]["args"] if s["type"] == "list")


def _row_encoder(spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The list encoder of spec with its column path refusing everything: the rows."""
    def refusing(s: dict[str, Any]) -> list[Any]:
        def column(col: Any, n: int, mp: int) -> list[Any]:
            raise HomingError("columns off")
        return [column for _ in s["fields"]]
    with monkeypatch.context() as m:
        m.setattr(argtypes, "column_encoders", refusing)
        return argtypes._list(spec)


ITEMS: list[Any] = [
    [("a", 1, None), ("b", 2, {"r": 1})],
    [["a", 1], ["b", 2, None]],
    [("a", 2**53 - 1, b"x")],
    [("a", 1, None), ("bad id", 2, None)],
    [("a", 1.5, None), ("b", -1, None)],
    [("a", 1, None), ("b", "5", b"x" * 2000)],
    [("a", 1, None), "not an item"],
    [("a",)],
    [],
]


@pytest.mark.parametrize("items", ITEMS)
def test_item_columns_encode_and_refuse_as_the_rows_do(items: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _items_spec("complete_many")
    rows = _row_encoder(spec, monkeypatch)
    cols = argtypes._list(spec)

    def run(enc: Any) -> Any:
        try:
            return ("ok", enc(items, "items", MP))
        except HomingError as exc:
            return ("raised", type(exc), str(exc))

    assert run(cols) == run(rows)


def test_rows_come_back_rebuilt_from_their_columns() -> None:
    out = argtypes._list(_items_spec("complete_many"))([("a", 7, None), ("b", 8, 5)], "items", MP)
    assert [r[:2] for r in out] == [["a", 7], ["b", 8]]
    assert out[0][2] == b"" and out[1][2] != b""
