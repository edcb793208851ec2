"""What the dashboard reads from Redis, and the in-process history behind its charts.

The dashboard polls, so every read here is bounded: per service one ``stats``
script call (the lengths the CLI shows) plus O(1) reads (LINDEX, HGET, ZSCORE,
ZRANGE 0 0); lists are capped (``MAX_SERVICES``, a page of dead letters, an
HSCAN-bounded read of the worker beats). Nothing here writes: a read-only
dashboard must not even prune (the beats prune themselves).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .. import envelope
from ..client import Client
from ..errors import HomingError
from ..manifest import global_key, service_key
from ..presence import WorkerBeat, read_workers
from ..stored import created_ms, data_envelope, record_fields

MAX_SERVICES = 500  # services shown (and sampled) at most; the rest are counted
HISTORY_S = 3600.0  # the charts' window: the last hour
QUEUES = ("ready", "in_flight", "timers", "retrying", "expired", "dead")
DAEMON_SILENCE = 10.0  # a daemon beats every second; silent this long, it is shown as such


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def now_ms(client: Client) -> int:
    """The Redis clock: every age shown is measured against it, never the browser's."""
    sec, usec = client.redis.time()
    return int(sec) * 1000 + int(usec) // 1000


def preview(raw: bytes | None, width: int = 200) -> str:
    """A payload as short text for a table cell (escaped by the templates, never here)."""
    if not raw:
        return "(no payload)"
    try:
        value = envelope.decode(raw)
    except HomingError:
        return f"(not a homing envelope: {len(raw)} bytes)"
    import json

    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= width else text[:width - 1] + "…"


def services(client: Client) -> tuple[list[str], int]:
    """The first MAX_SERVICES registered services, sorted, and how many there are."""
    names = client.services()
    return names[:MAX_SERVICES], len(names)


def oldest_ready_age(stats: dict[str, Any], now: int) -> float | None:
    """Seconds since the event next in line was created; None if none is ready.

    From the ``stats`` reply the caller already has: its ``oldest_ready_created_ms``
    is read by the stats script (the first of prio, else the ready list's tail past
    the wake marker, from its record or, for an event never delivered, its payload's
    prefix), so the dashboard keeps no second copy of that rule and makes no extra
    round trips for it.
    """
    created = stats.get("oldest_ready_created_ms", -1)
    if not isinstance(created, (int, float)) or created < 0:
        return None
    return max(0.0, (now - created) / 1000)


@dataclass
class Sample:
    at: float  # time.monotonic() of the sample
    values: dict[str, float]


class History:
    """Bounded per-service samples of the last hour, kept in this process (not in Redis).

    At most ``MAX_SERVICES`` services and ``HISTORY_S / every`` samples each; a
    service gone from the registry is dropped. Rates (enqueued and completed per
    second) come from the last two samples' running totals.
    """

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.lock = threading.Lock()
        self.samples: dict[str, collections.deque[Sample]] = {}
        self.maxlen = max(2, int(HISTORY_S / every))

    def add(self, service: str, stats: dict[str, Any], oldest: float | None,
            at: float | None = None) -> None:
        values = {q: float(stats.get(q, 0)) for q in QUEUES}
        for total in ("enqueued", "completed", "delivered", "dead"):
            v = stats.get(f"total.{total}", 0)
            values[f"total.{total}"] = float(v) if isinstance(v, (int, float)) else 0.0
        values["oldest"] = oldest if oldest is not None else 0.0
        with self.lock:
            dq = self.samples.setdefault(service, collections.deque(maxlen=self.maxlen))
            dq.append(Sample(time.monotonic() if at is None else at, values))

    def keep_only(self, names: list[str]) -> None:
        with self.lock:
            for gone in set(self.samples) - set(names):
                del self.samples[gone]

    def rate(self, service: str, total: str) -> float | None:
        """Per second over the last two samples; None until there are two."""
        with self.lock:
            dq = self.samples.get(service)
            if not dq or len(dq) < 2:
                return None
            a, b = dq[-2], dq[-1]
        dt = b.at - a.at
        if dt <= 0:
            return None
        return max(0.0, (b.values[f"total.{total}"] - a.values[f"total.{total}"]) / dt)

    def series(self, service: str, name: str) -> list[float]:
        with self.lock:
            return [s.values.get(name, 0.0) for s in self.samples.get(service, ())]

    def rate_series(self, service: str, total: str) -> list[float]:
        with self.lock:
            dq = list(self.samples.get(service, ()))
        out = []
        for a, b in zip(dq, dq[1:], strict=False):
            dt = b.at - a.at
            key = f"total.{total}"
            out.append(max(0.0, (b.values[key] - a.values[key]) / dt) if dt > 0 else 0.0)
        return out


def sample_all(client: Client, history: History) -> None:
    """One sampling round: every shown service's stats and oldest-ready age."""
    names, _ = services(client)
    now = now_ms(client)
    for name in names:
        try:
            st = client.stats(name)
            history.add(name, st, oldest_ready_age(st, now))
        except HomingError:
            continue  # a broken service must not stop the others' charts
    history.keep_only(names)


@dataclass
class ServiceRow:
    name: str
    stats: dict[str, Any]
    oldest: float | None
    enqueued_rate: float | None
    completed_rate: float | None
    error: str = ""


def overview(client: Client, history: History) -> tuple[list[ServiceRow], int]:
    """One row per shown service, read now (the history adds only the rates)."""
    names, total = services(client)
    now = now_ms(client)
    rows = []
    for name in names:
        try:
            st = client.stats(name)
            oldest = oldest_ready_age(st, now)
        except HomingError as exc:
            rows.append(ServiceRow(name, {}, None, None, None, str(exc)))
            continue
        rows.append(ServiceRow(name, st, oldest, history.rate(name, "enqueued"),
                               history.rate(name, "completed")))
    return rows, total


@dataclass
class EventView:
    service: str
    id: str
    state: str
    detail: str = ""
    attempt: int = 0
    snoozes: int = 0  # pending: snoozes taken (bounded by max_snoozes)
    progress: int = 0  # pending: the handler's last reported percentage
    token: int | None = None
    created_ms: int | None = None
    lease_deadline_ms: int | None = None
    due_ms: int | None = None  # a timer's or a retry's due time
    holders: list[WorkerBeat] = field(default_factory=list)
    result: str | None = None
    payload: str | None = None
    now_ms: int = 0


def event(client: Client, service: str, event_id: str) -> EventView:
    """An event by id: its status (the ``result`` script), then O(1) reads for the rest."""
    st = client.status(service, event_id)
    now = now_ms(client)
    view = EventView(service, event_id, st.state, st.detail, st.attempt, st.snoozes,
                     st.progress, now_ms=now)
    if st.state == "done":
        view.result = preview(st.raw_result) if st.raw_result else "(no result)"
    r = client.redis

    def key(name: str) -> str:
        return service_key(client.prefix, service, name)

    meta = r.hget(key("meta"), event_id)
    # An event never delivered has no record: its data value carries its creation.
    raw = r.hget(key("data"), event_id)
    parts = record_fields(meta)
    if len(parts) >= 4 and parts[2].isdigit():
        view.token = int(parts[2]) or None
    view.created_ms = created_ms(meta, raw)
    deadline = r.zscore(key("leases"), event_id)
    view.lease_deadline_ms = None if deadline is None else int(deadline)
    due = r.zscore(key("timers"), event_id)
    if due is None:
        due = r.zscore(key("retry"), event_id)
    view.due_ms = None if due is None else int(due)
    if st.state != "done":
        view.payload = preview(data_envelope(raw)[0], 2000) if raw is not None else None
    if view.lease_deadline_ms is not None:
        view.holders = [w for w in read_workers(client)
                        if w.service == service and event_id in w.held_ids]
    return view


@dataclass
class DaemonRow:
    name: str
    age_s: float


@dataclass
class LagRow:
    service: str
    timer_lag_s: float  # how overdue the most overdue timer is (0: none due)
    retry_lag_s: float
    expired: int  # reclaimed leases the distributor has not routed yet


def daemons(client: Client, names: list[str]) -> tuple[list[DaemonRow], list[LagRow]]:
    """Beats (a plain HGETALL of the few daemon names, no pruning: read-only) and lag.

    Lag per service: how far past due the earliest timer and retry are (ZRANGE 0 0,
    O(log N)) and how many reclaimed leases wait for a distributor (LLEN).
    """
    r = client.redis
    now = now_ms(client)
    beats = r.hgetall(global_key(client.prefix, "daemons"))
    rows = sorted((DaemonRow(_s(k), max(0.0, (now - int(v)) / 1000)) for k, v in beats.items()
                   if _s(v).isdigit()), key=lambda d: d.name)
    lags = []
    for name in names:
        def lag(kind: str, name: str = name) -> float:
            first = r.zrange(service_key(client.prefix, name, kind), 0, 0, withscores=True)
            return max(0.0, (now - first[0][1]) / 1000) if first else 0.0

        lags.append(LagRow(name, lag("timers"), lag("retry"),
                           int(r.llen(service_key(client.prefix, name, "expired")))))
    return rows, lags


def workers(client: Client) -> list[WorkerBeat]:
    return read_workers(client)
