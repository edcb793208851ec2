"""Rules of the call layer that every port keeps alike (issue 9: no drift).

Why: a review found the Erlang port ignoring an argument name the table does
not list, refusing a fraction of an ``ms`` slot and sending ``''`` for missing
text, where Python and JavaScript did otherwise; another found a lease token
checked three ways (Erlang took 5.0, JavaScript "5"). The rules are now the same in
the three ports and worded by the table (the manifest's ``refusals``); these
tests pin Python's side. JavaScript's are test/call-refusals.test.js, Erlang's
argv_tests (which compare its ARGV and words with Python's over argv.py's
CASES).
"""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from helpers import key, written_keys

import homing
from homing import ops
from homing.manifest import MANIFEST

TEXT: dict[str, str] = MANIFEST["refusals"]
BEAT = {"name": "w", "service": "s", "pid": 1, "concurrency": 1, "held": 0, "every_ms": 1000}


def refused(call: str, /, **args: Any) -> str:
    with pytest.raises(homing.InvalidArgumentError) as info:
        ops.call(call, "svc", 1000, **args)
    return str(info.value)


def argv(call: str, /, **args: Any) -> list[Any]:
    return ops.call(call, "svc", 1000, **args).args


def test_an_argument_name_the_table_does_not_list_is_refused_in_the_tables_words() -> None:
    assert refused("dequeue", bogus=1) == TEXT["unknown"].format(what="dequeue", names="bogus")
    # every unknown name, sorted, whatever the order given
    assert refused("dequeue", count=1, colour="red", bogus=1) == \
        "dequeue takes no argument bogus, colour"
    assert refused("enqueue", payload=1, prority=3) == "enqueue takes no argument prority"


def test_an_unknown_argument_writes_nothing(client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError, match="takes no argument prority"):
        client.call("enqueue", service, payload=1, prority=3)
    assert not any(written_keys(client, service).values()), "nothing was written"


@pytest.mark.parametrize("value, sent", [(1.5, 1), (0.999, 0), (1500.7, 1500), (-0.0, 0),
                                         (7.0, 7), (2**53 - 1, 2**53 - 1)])
def test_an_ms_argument_drops_its_fraction(value: float, sent: int) -> None:
    """ms (create_timer's delay_ms and at_ms, worker_beat's every_ms): truncated."""
    assert argv("create_timer", payload=1, id="t1", delay_ms=value)[4] == sent
    assert argv("create_timer", payload=1, id="t1", at_ms=value)[5] == sent


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5, -1, 1e300, 2.0**53,
                                   "5", True])
def test_an_ms_argument_that_is_no_finite_number_in_range_is_refused(value: Any) -> None:
    assert refused("create_timer", payload=1, id="t1", delay_ms=value) == \
        TEXT["ms"].format(what="delay_ms", value=repr(value))


@pytest.mark.parametrize("call, args", [("dequeue", {}), ("snooze", {"id": "e1", "token": 1})])
@pytest.mark.parametrize("value", [1500.7, 1.5, math.nan, math.inf])
def test_a_whole_argument_refuses_a_fraction(call: str, args: dict[str, Any],
                                             value: float) -> None:
    """lease_ms and snooze's delay_ms are whole (bounded by max_lease): no fraction."""
    what = "lease_ms" if call == "dequeue" else "delay_ms"
    assert refused(call, **args, **{what: value}) == \
        TEXT["whole"].format(what=what, min=0, max=43200000, value=repr(value))


def test_text_missing_or_none_is_refused_never_sent_empty() -> None:
    assert refused("worker_beat", **BEAT) == "host must be text, got None"
    assert refused("worker_beat", **BEAT, host=None) == "host must be text, got None"
    assert refused("fail", id="e1", token=1, reason=None) == "reason must be text, got None"
    assert refused("recurring_put", name="r", payload=1, cron=None) == \
        "cron must be text, got None"
    assert refused("beat") == "name must be 1..256 bytes of text, got None"
    # left out, a text with a default takes it (fail's reason: '')
    assert argv("fail", id="e1", token=1)[2] == ""
    assert argv("worker_beat", **BEAT, host="h")[2] == "h"


class _Tok(enum.IntEnum):
    FIVE = 5


@pytest.mark.parametrize("token, sent", [(0, 0), (5, 5), (2**53 - 1, 2**53 - 1), (_Tok.FIVE, 5)])
def test_a_token_is_an_int_sent_in_decimal(token: int, sent: int) -> None:
    """As dequeue hands tokens out; an int subclass is sent as its number, not its repr."""
    assert argv("complete", id="e1", token=token)[3] == sent
    assert type(argv("start", items=[("e1", token)])[2]) is int


@pytest.mark.parametrize("token", [5.0, 5.5, -0.0, True, False, "5", b"5", None, -1, 2**53,
                                   math.nan])
def test_a_token_that_is_no_int_in_range_is_refused(token: Any) -> None:
    """No float, even whole (Erlang refuses it too; JavaScript alone cannot tell 5.0 from 5),
    no bool, no text (JavaScript refuses "5" too)."""
    text = TEXT["token"].format(what="token", value=repr(token))
    assert refused("complete", id="e1", token=token) == text
    assert refused("fail", id="e1", token=token) == text
    assert refused("release", items=[("e1", token)]) == text


def test_a_refused_token_writes_nothing(client: homing.Client, service: str) -> None:
    client.enqueue(service, "job", id="e1")
    ev = client.dequeue(service)[0]
    seen = [(n, client.redis.dump(key(client, service, n))) for n in ("meta", "counters")]
    for token in (float(ev.token), str(ev.token)):
        with pytest.raises(homing.InvalidArgumentError, match="must be a lease token"):
            client.complete(service, ev.id, token)  # type: ignore[arg-type]
    assert [(n, client.redis.dump(key(client, service, n))) for n, _ in seen] == seen, \
        "nothing was written (no stale_acks either: nothing was sent)"
    client.complete(service, ev.id, ev.token)  # the token dequeue handed out is taken back
