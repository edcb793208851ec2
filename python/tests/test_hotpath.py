"""The compiled single-call path (``homing.hotpath``) against ``ops.call`` it stands in for.

A hot call must accept, encode and refuse exactly as the table's general path
does, for every value it guards (a bad service name, id, key, priority, a NaN
or oversize payload, an unknown argument): the same error type and text, and
the same ARGV. Ids made for the caller differ by nature, so they are compared
by form (a UUID4's hex).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

import homing
from homing import argtypes, hotpath, ops
from homing.errors import HomingError

PAYLOADS: list[Any] = [{"a": 1}, b"x" * 10, None, float("nan"), object(), "x" * 2000,
                       {(1, 2): 3}]
KEYS: list[Any] = [None, "k", 5, b"k", "", "x" * 300]
IDS: list[Any] = [None, "abc", "a b", 5, "$new_id", "", "x" * 200]
PRIORITIES: list[Any] = [0, 9, 10, -1, 5.0, 5.5, True, None, "1", float("nan"), 2**64]
SERVICES: list[Any] = ["svc", "bad:svc", "a{b}", 5, "", None]


def outcome(fn: Any, made_id: bool) -> Any:
    try:
        c = fn()
    except (HomingError, TypeError, ValueError) as exc:
        return ("refused", type(exc), str(exc))
    args = list(c.args)
    if made_id:
        assert uuid.UUID(hex=args[2]).version == 4 and uuid.UUID(hex=args[2]).hex == args[2]
        args[2] = "<new id>"
    return ("ok", c.script, c.service, args)


def test_enqueue_encodes_and_refuses_as_ops_call() -> None:
    services = hotpath.Services()
    for p, k, i, pr, svc in itertools.product(PAYLOADS, KEYS, IDS, PRIORITIES, SERVICES):
        given = {"payload": p, "key": k, "id": i, "priority": pr}
        made = i in (None, "$new_id")
        want = outcome(lambda: ops.call("enqueue", svc, 1000, **given), made)  # noqa: B023
        got = outcome(lambda: hotpath.call("enqueue", svc, 1000, services, given), made)  # noqa: B023
        assert got == want, (given, svc)


@pytest.mark.parametrize("given", [{}, {"payload": 1}, {"payload": 1, "bogus": 2},
                                   {"payload": 1, "priority": 3}, {"bogus": 1},
                                   {"payload": 1, "items": [[1]]}])
def test_other_shapes_as_ops_call(given: dict[str, Any]) -> None:
    made = "id" not in given
    want = outcome(lambda: ops.call("enqueue", "s", 1000, **given), made)
    assert outcome(lambda: hotpath.call("enqueue", "s", 1000, hotpath.Services(), given),
                   made) == want


def test_the_id_parse_and_a_reply_of_another_length() -> None:
    c = hotpath.call("enqueue", "s", 1000, hotpath.Services(), {"payload": 1})
    assert c.parse([b"abc", 1]) == "abc" and c.parse([b"abc", 0]) == "abc"
    general = ops.call("enqueue", "s", 1000, payload=1)
    for other in ([b"abc"], [b"a", 1, b"b", 1], [], None):  # what the general parse makes
        assert parsed(lambda: c.parse(other)) == parsed(lambda: general.parse(other))  # noqa: B023


def parsed(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - whatever it is, both must raise it
        return ("raised", type(exc))


def test_fast_ids_are_uuid4_hex() -> None:
    for _ in range(2000):
        u = argtypes.new_id()
        parsed = uuid.UUID(hex=u)
        assert parsed.hex == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_service_checked_once_is_still_refused_when_bad() -> None:
    services = hotpath.Services(bound=1)
    assert services.check("ok") == "ok" and services.check("other") == "other"
    for bad in ("a:b", "{x}", 5, None):
        with pytest.raises(homing.InvalidNameError):
            services.check(bad)
