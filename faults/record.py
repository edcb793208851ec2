"""What the suite records outside homing: the producers' ledger and the consumers' deliveries.

The ledger knows every enqueue the harness attempted and how it ended:
*acknowledged* (the call returned an id), *refused* (a typed error that says
nothing was written), or *unsure* (the connection died before the reply, so the
event may or may not exist). It is kept in memory and mirrored line by line to
``producers.jsonl`` for post-mortems. Deliveries are read back from the
workers' own files (see ``faults.consumer``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import homing
import redis
from homing.errors import ConnectionLostError, HomingError, NotReplicatedError

# No reply, too few replicas (written on the primary all the same), or an untyped
# error (a client bug): the event may exist.
UNSURE = (ConnectionLostError, NotReplicatedError)


@dataclass
class Ledger:
    """Every enqueue attempt's outcome; thread-safe."""

    path: Path
    acked: dict[str, float] = field(default_factory=dict)  # id -> time the reply came
    refused: dict[str, str] = field(default_factory=dict)  # id -> error class
    unsure: dict[str, str] = field(default_factory=dict)  # id -> error class
    timers: dict[str, tuple[float, int]] = field(default_factory=dict)  # id -> (sent ms, delay)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _write(self, **fields: Any) -> None:
        with open(self.path, "a") as out:
            out.write(json.dumps(fields) + "\n")

    def outcome(self, event_id: str, exc: BaseException | None) -> None:
        """Book the end of one attempt: acknowledged, refused or unsure."""
        now = time.time()
        with self._lock:
            if exc is None:
                self.acked[event_id] = now
                self._write(id=event_id, r="ack", t=now)
            elif isinstance(exc, UNSURE) or not isinstance(exc, HomingError):
                self.unsure[event_id] = type(exc).__name__
                self._write(id=event_id, r="unsure", err=type(exc).__name__, t=now)
            else:
                self.refused[event_id] = type(exc).__name__
                self._write(id=event_id, r="refused", err=type(exc).__name__, t=now)

    def timer(self, event_id: str, sent_ms: float, delay_ms: int) -> None:
        with self._lock:
            self.timers[event_id] = (sent_ms, delay_ms)


def enqueue_batch(client: homing.Client, ledger: Ledger, service: str, ids: list[str],
                  payloads: list[Any]) -> BaseException | None:
    """One atomic enqueue_many, booked for every id; returns the error if there was one."""
    try:
        client.enqueue_many(service, payloads, ids=ids)
        err: BaseException | None = None
    except HomingError as exc:
        err = exc
    for event_id in ids:
        ledger.outcome(event_id, err)
    return err


class Producer(threading.Thread):
    """Enqueue ``payload(n)`` under ids ``<tag>-<n>`` at ``rate`` per second until stopped.

    No retries: a reply lost to a crash is booked unsure, never guessed. With
    ``delay(n)`` it creates timers instead and books their earliest legal time.
    ``client_kw`` goes to ``Client.from_url`` (e.g. ``wait_replicas``).
    """

    def __init__(self, url: str, prefix: str, service: str, ledger: Ledger, tag: str, *,
                 rate: float, payload: Callable[[int], Any], limit: int = 10**9,
                 delay: Callable[[int], int] | None = None,
                 client_kw: dict[str, Any] | None = None) -> None:
        super().__init__(name=f"faults-producer-{tag}", daemon=True)
        self.client = homing.Client.from_url(url, prefix=prefix, socket_timeout=5,
                                             **(client_kw or {}))
        self.service, self.ledger, self.tag = service, ledger, tag
        self.rate, self.payload, self.limit, self.delay = rate, payload, limit, delay
        self.sent = 0
        self.untyped: list[str] = []  # errors that were not HomingError: a client bug
        self.stopping = threading.Event()

    def run(self) -> None:
        begin = time.monotonic()
        try:
            for n in range(self.limit):
                if self.stopping.is_set():
                    break
                self._one(n)
                self.sent += 1
                wait = begin + (n + 1) / self.rate - time.monotonic()
                if wait > 0 and self.stopping.wait(wait):
                    break
        finally:
            self.client.close()

    def _one(self, n: int) -> None:
        event_id = f"{self.tag}-{n}"
        err: BaseException | None = None
        try:
            if self.delay is None:
                self.client.enqueue(self.service, self.payload(n), id=event_id)
            else:
                delay_ms = self.delay(n)
                sent_ms = time.time() * 1000
                self.client.create_timer(self.service, self.payload(n), delay_ms=delay_ms,
                                         id=event_id)
                self.ledger.timer(event_id, sent_ms, delay_ms)
        except HomingError as exc:
            err = exc
            if not isinstance(exc, UNSURE):
                self.stopping.wait(0.05)  # e.g. a full Redis: do not spin on refusals
        except Exception as exc:  # noqa: BLE001 - booked and reported, the producer goes on
            err = exc
            self.untyped.append(f"{type(exc).__name__}: {exc}")
        self.ledger.outcome(event_id, err)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


@dataclass
class Delivery:
    """One handler run, as its worker recorded it (times are wall-clock seconds)."""

    id: str
    tok: int
    att: int
    pid: int
    start: float
    deadline_ms: int
    end: float | None = None
    ok: bool | None = None  # None: the handler never returned (crash, hang)
    ack: str | None = None  # sync mode: ok, stale or an error code
    ack_sent: float | None = None


def load_deliveries(folder: Path, pattern: str = "deliveries-*.jsonl") -> list[Delivery]:
    """Every delivery in the files matching ``pattern``, start and end lines paired."""
    out: list[Delivery] = []
    for path in sorted(folder.glob(pattern)):
        open_: dict[tuple[str, int], list[Delivery]] = {}
        for line in path.read_text(errors="replace").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by SIGKILL
            key = (r["id"], r["tok"])
            if r["e"] == "start":
                d = Delivery(r["id"], r["tok"], r["att"], r["pid"], r["t"], r["dl"])
                out.append(d)
                open_.setdefault(key, []).append(d)
            elif r["e"] == "end" and open_.get(key):
                d = open_[key].pop(0)
                d.end, d.ok, d.ack, d.ack_sent = r["t"], r["ok"], r.get("ack"), r.get("ts")
    return out


@dataclass(frozen=True)
class LeaseView:
    """The ids holding a lease at one instant between ``sent`` and ``got``."""

    sent: float
    got: float
    ids: frozenset[str]


class LeaseWatcher(threading.Thread):
    """Read the service's lease set every ``every`` s, for the checker's late-start proof.

    An id missing from the set at some instant after a delivery was issued means
    that delivery's lease had ended for good (reclaimed, released, failed or
    completed: a lease cannot come back once its id left the set), so a handler
    that started it afterwards started an event whose lease had ended. A read
    that fails (Redis down) is skipped: it proves nothing.
    """

    def __init__(self, client: Any, key: str, every: float = 0.05) -> None:
        super().__init__(name="faults-lease-watcher", daemon=True)
        self.redis = client  # redis.Redis, or redis.RedisCluster on a Cluster
        self.key, self.every = key, every
        self.views: list[LeaseView] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        last: frozenset[str] = frozenset()
        while not self.stopping.wait(self.every):
            sent = time.time()
            try:
                ids = frozenset(m.decode() for m in self.redis.zrange(self.key, 0, -1))
            except (redis.RedisError, OSError):
                continue
            last = last if ids == last else ids  # unchanged views share one set
            self.views.append(LeaseView(sent, time.time(), last))

    def stop(self) -> None:
        self.stopping.set()
        if self.ident is not None:  # never started where no view can be trusted
            self.join(5)
        self.redis.close()
