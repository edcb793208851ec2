"""The neutral client vocabulary of ``calls.json``, mapped onto ``homing.Client``.

Each function takes the client, the service and the step's decoded arguments,
and returns the neutral form that vectors compare with: plain lists, dicts,
numbers and strings, a per-item failure as ``{"$error": CODE}``. The runner
goes through the public client API, not ``ops`` directly, because that API is
what a user trusts with their messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import envelope
from ..client import Client
from ..errors import HomingError
from ..types import Event, FailOutcome, Group, GroupStatus, Status


def payload_of(raw: bytes) -> Any:
    """A decoded payload, or ``{"$error": code}`` when the bytes are not an envelope."""
    try:
        return envelope.decode(raw)
    except HomingError as exc:
        return {"$error": exc.code}


def _item(outcome: Any) -> Any:
    return {"$error": outcome.code} if isinstance(outcome, HomingError) else outcome


def _event(e: Event) -> dict[str, Any]:
    return {"id": e.id, "token": e.token, "attempt": e.attempt, "deadline_ms": e.deadline_ms,
            "must_start": e.must_start, "payload": payload_of(e.raw)}


def _batch(c: Client, s: str, a: dict[str, Any]) -> Any:
    b = c.dequeue_batch(s, a.get("count", 1), lease_ms=a.get("lease_ms"),
                        reserve=a.get("reserve", False))
    return {"wait_ms": b.wait_ms, "events": [_event(e) for e in b.events]}


def _status(st: Status) -> dict[str, Any]:
    if st.state == "done":
        return {"state": "done", "result": payload_of(st.raw_result) if st.raw_result else None}
    if st.state == "dead":
        return {"state": st.state, "detail": st.detail, "attempt": st.attempt}
    if st.state == "pending":
        return {"state": st.state, "detail": st.detail, "attempt": st.attempt,
                "snoozes": st.snoozes, "progress": st.progress, "priority": st.priority}
    return {"state": st.state}


def _timer(c: Client, s: str, a: dict[str, Any]) -> Any:
    at = a.get("at_ms")
    return c.create_timer(s, a["payload"], delay_ms=a.get("delay_ms"),
                          at=None if at is None else at / 1000, key=a.get("key"), id=a["id"],
                          priority=a.get("priority", 0))


def _pairs(a: dict[str, Any]) -> list[tuple[str, int]]:
    return [(i["id"], i["token"]) for i in a["items"]]


def _dead_page(c: Client, s: str, a: dict[str, Any]) -> Any:
    page = c.dead_list(s, a.get("offset", 0), a.get("count", 100))
    letters = [{"id": d.id, "died_ms": d.died_ms, "attempt": d.attempt, "reason": d.reason,
                "payload": payload_of(d.raw)} for d in page.letters]
    return {"total": page.total, "letters": letters}


def _promote(c: Client, s: str, a: dict[str, Any]) -> Any:
    r = c.promote(s, a.get("limit", 1000))
    return {"timers": r.timers, "retries": r.retries, "expired": r.expired, "more": r.more,
            "next_due_ms": r.next_due_ms, "returned": r.returned}


def _distribute(c: Client, s: str, a: dict[str, Any]) -> Any:
    r = c.distribute(s, a.get("limit", 1000))
    return {"retried": r.retried, "dead": r.dead, "more": r.more}


def _outcome(o: FailOutcome) -> dict[str, Any]:
    return {"action": o.action, "at_ms": o.at_ms}


def _fail(c: Client, s: str, a: dict[str, Any]) -> Any:
    return _outcome(c.fail(s, a["id"], a["token"], a.get("reason", ""),
                           dead=a.get("dead", False), delay_ms=a.get("delay_ms")))


def _group(g: Group) -> dict[str, Any]:
    return {"group": g.id, "ids": g.event_ids}


def _group_status(st: GroupStatus) -> dict[str, Any]:
    return {"total": st.total, "done": st.done, "failed": st.failed,
            "finished_ms": st.finished_ms}


def _recurring_page(c: Client, s: str, a: dict[str, Any]) -> Any:
    page = c.recurring_list(s, a.get("offset", 0), a.get("count", 100))
    return {"total": page.total, "schedules": [
        {"name": r.name, "spec": r.spec, "next_ms": r.next_ms, "fired": r.fired,
         "skipped": r.skipped, "priority": r.priority} for r in page.schedules]}


Impl = Callable[[Client, str, dict[str, Any]], Any]

CALLS: dict[str, Impl] = {
    "enqueue": lambda c, s, a: c.enqueue(s, a["payload"], key=a.get("key"), id=a["id"],
                                         priority=a.get("priority", 0)),
    "enqueue_many": lambda c, s, a: c.enqueue_many(s, a["payloads"], keys=a.get("keys"),
                                                   ids=a["ids"], priority=a.get("priorities")),
    "create_timer": _timer,
    "cancel_timer": lambda c, s, a: c.cancel_timer(s, a["id"]),
    "cancel": lambda c, s, a: dict(zip(("cancelled", "state"), c.cancel(s, a["id"]),
                                       strict=True)),
    "dequeue": lambda c, s, a: [_event(e) for e in c.dequeue(s, a.get("count", 1),
                                                             lease_ms=a.get("lease_ms"),
                                                             reserve=a.get("reserve", False))],
    "dequeue_batch": _batch,
    "start": lambda c, s, a: [_item(o) for o in c.start(s, _pairs(a))],
    "complete": lambda c, s, a: c.complete(s, a["id"], a["token"], a.get("result")),
    "complete_many": lambda c, s, a: [
        _item(o) for o in c.complete_many(
            s, [(i["id"], i["token"], i.get("result")) for i in a["items"]])],
    "extend_lease": lambda c, s, a: c.extend_lease(s, a["id"], a["token"], a.get("lease_ms")),
    "extend_many": lambda c, s, a: [_item(o) for o in c.extend_many(s, _pairs(a),
                                                                    a.get("lease_ms"))],
    "fail": _fail,
    "snooze": lambda c, s, a: _outcome(c.snooze(s, a["id"], a["token"], a["delay_ms"])),
    "progress": lambda c, s, a: c.progress(s, a["id"], a["token"], a["value"]),
    "release": lambda c, s, a: [_item(o) for o in c.release(s, _pairs(a))],
    "status": lambda c, s, a: _status(c.status(s, a["id"])),
    # Zero timeout: look once, never wait, so no vector depends on timing.
    "result": lambda c, s, a: c.result(s, a["id"], timeout=0),
    "enqueue_group": lambda c, s, a: _group(c.enqueue_group(s, a["payloads"], ids=a["ids"],
                                                            priority=a.get("priorities"))),
    "group_status": lambda c, s, a: _group_status(c.group_status(s, a["group"])),
    "group_result": lambda c, s, a: c.group_result(s, a["group"]),
    "group_forget": lambda c, s, a: c.group_forget(s, a["group"]),
    "stats": lambda c, s, a: c.stats(s),
    "configure": lambda c, s, a: c.configure(s, **a["policy"]),
    "dead_list": _dead_page,
    "dead_requeue": lambda c, s, a: list(c.dead_requeue(s, a.get("ids"), a.get("count", 100))),
    "dead_purge": lambda c, s, a: list(c.dead_purge(s, a.get("ids"), a.get("count", 100))),
    "promote": _promote,
    "distribute": _distribute,
    # A daemon's beat: no service; the time it records is the Redis clock, never frozen.
    "beat": lambda c, s, a: c.beat(a["name"]),
    # A worker's beat: the service is data (the one it consumes); returns how many it pruned.
    "worker_beat": lambda c, s, a: c.worker_beat(
        a["name"], a["service"], a["host"], a["pid"], a["concurrency"], a["held"], a["every_ms"],
        a.get("stopped", False), a.get("ids", []), forget_ms=a.get("forget_ms", 3_600_000)),
    "recurring_put": lambda c, s, a: c.recurring_put(
        s, a["name"], a["payload"], every_ms=a.get("every_ms"), cron=a.get("cron"),
        catch_up=a.get("catch_up", True), priority=a.get("priority", 0)),
    "recurring_remove": lambda c, s, a: c.recurring_remove(s, a["name"]),
    "recurring_list": _recurring_page,
    # The due-time index (global key due, no service); due_take's reply holds the
    # Redis time, so vectors run it as a raw script and check the index ($due).
    "due_take": lambda c, s, a: list(c.due_take(a.get("limit", 100), a.get("claim_ms", 5000))),
    "due_settle": lambda c, s, a: c.due_settle(
        a["claim"], [(i["service"], -1 if i["next_due"] in ("", None) else i["next_due"])
                     for i in a["items"]]),
    "forget": lambda c, s, a: c.forget(s),
}
