"""Client.call / AsyncClient.call: any call of the manifest's call table by name.

Why: a new script with its typed header and its calls.json entry must be
callable from both ports with no hand-written code. The methods are such
calls with their arguments named; these tests drive the table directly,
including an entry no method knows (added to the table here, as the build
would add one).
"""

from __future__ import annotations

import asyncio
import copy

import pytest
from helpers import written_keys

import homing
from homing import ops
from homing.types import DeadPage, Event, Status


def test_call_by_name_gives_the_methods_values(client: homing.Client, service: str) -> None:
    eid = client.call("enqueue", service, payload={"n": 1}, id="e1")
    assert eid == "e1"
    assert client.call("enqueue_many", service, payloads=[2, 3], keys=["k", None]) != []
    [ev] = client.call("dequeue", service, count=1, lease_ms=5000)
    assert isinstance(ev, Event) and (ev.id, ev.payload, ev.attempt) == ("e1", {"n": 1}, 1)
    assert client.call("complete", service, id=ev.id, token=ev.token, result="done") is None
    st = client.call("status", service, id="e1")
    assert isinstance(st, Status) and (st.state, st.result) == ("done", "done")
    assert client.call("stats", service)["ready"] == 2
    assert client.call("configure", service, policy={"max_attempts": 1})["max_attempts"] == 1
    page = client.call("dead_list", service)  # offset and count: the table's defaults
    assert isinstance(page, DeadPage) and page.total == 0
    assert client.call("dead_requeue", service, count=5) == (0, 0)
    assert isinstance(client.call("beat", "", name="test:host:1"), int)


def test_unknown_names_and_arguments_are_refused_before_anything_is_written(
        client: homing.Client, service: str) -> None:
    with pytest.raises(homing.InvalidArgumentError, match="no call 'enqueue_one'"):
        client.call("enqueue_one", service, payload=1)
    with pytest.raises(homing.InvalidArgumentError, match="takes no argument colour"):
        client.call("enqueue", service, payload=1, colour="red")
    with pytest.raises(homing.InvalidArgumentError):
        client.call("dequeue", service, count=0)
    assert not any(written_keys(client, service).values()), "nothing was written"


@pytest.fixture
def new_call(monkeypatch: pytest.MonkeyPatch) -> str:
    """A call table entry no method knows: enqueue_many's, without its pick.

    Its reply is then the table's neutral records, {"items": [{id, added}]}:
    what a new script's entry gives before anyone writes a method for it.
    """
    entry = copy.deepcopy(ops.CALLS["enqueue_many"])
    del entry["pick"]
    entry["shape"] = {}  # what the build derives for an entry with no pick
    monkeypatch.setitem(ops.CALLS, "enqueue_added", entry)
    return "enqueue_added"


def test_an_entry_with_no_method_is_callable(client: homing.Client, service: str,
                                             new_call: str) -> None:
    out = client.call(new_call, service, payloads=["a", "b"], ids=["x1", "x2"], keys=["k", ""])
    assert out == {"items": [{"id": "x1", "added": True}, {"id": "x2", "added": True}]}
    again = client.call(new_call, service, payloads=["c"], ids=["x3"], keys=["k"])
    assert again == {"items": [{"id": "x1", "added": False}]}  # the key's first event
    assert client.stats(service)["ready"] == 2


def test_the_async_client_calls_by_name(redis_url: str, prefix: str, service: str,
                                        new_call: str) -> None:
    async def main() -> None:
        async with await homing.AsyncClient.from_url(redis_url, prefix=prefix) as c:
            assert await c.call("enqueue", service, payload=7, id="a1") == "a1"
            out = await c.call(new_call, service, payloads=[8], ids=["a2"])
            assert out == {"items": [{"id": "a2", "added": True}]}
            evs = await c.call("dequeue", service, count=2)
            assert sorted(e.payload for e in evs) == [7, 8]
            with pytest.raises(homing.InvalidArgumentError):
                await c.call("no_such_call", service)

    asyncio.run(main())
