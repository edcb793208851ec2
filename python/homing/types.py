"""Plain value types that the clients return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import envelope

_UNSET: Any = object()


@dataclass
class Event:
    """A leased event, as handed to a consumer.

    ``token`` is the lease's fencing token: ``complete``, ``extend_lease``,
    ``fail`` and ``release`` must present it, and are refused once the lease
    was reclaimed and the event went to someone else. ``attempt`` counts
    deliveries, starting at 1 (for a reserved event: the attempt this delivery
    becomes once it starts). The payload is decoded on first access so that
    one corrupt envelope in a batch cannot stop the others from being handled.

    ``must_start`` is set on a reserved event (``dequeue(reserve=True)``) that
    came back unstarted before: call ``start`` before running it, so that a
    poison event that kills its process is charged its attempts.
    """

    service: str
    id: str
    token: int
    attempt: int
    deadline_ms: int
    raw: bytes = field(repr=False)
    must_start: bool = False
    _payload: Any = field(default=_UNSET, repr=False, compare=False)

    @property
    def payload(self) -> Any:
        """The decoded payload; raises CorruptEnvelopeError if the stored bytes are not one."""
        if self._payload is _UNSET:
            self._payload = envelope.decode(self.raw)
        return self._payload


@dataclass(frozen=True)
class Batch:
    """What one ``dequeue_batch`` handed out, and how long to wait before asking again.

    ``wait_ms`` is 0, or the ms after which a limit of the service (its
    ``rate_limit`` per ``rate_window_ms``, its ``concurrency``) or its pause
    may let out the ready events it held back: a worker sleeps that long
    instead of polling (docs/architecture.md, "Limits").
    """

    events: list[Event]
    wait_ms: int


@dataclass(frozen=True)
class Limits:
    """A service's limits across all its workers, and what is in flight now.

    0 means no limit (``rate_limit``, ``concurrency``).
    """

    rate_limit: int
    rate_window_ms: int
    concurrency: int
    paused: bool
    in_flight: int
    ready: int


@dataclass(frozen=True)
class FailOutcome:
    """Where a failed or snoozed event went: ``"retry"`` (a fail) or ``"snoozed"`` (a
    snooze) due at ``at_ms``, or ``"dead"`` since ``at_ms``."""

    action: str
    at_ms: int


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered event with why it died. ``raw`` is empty if the payload was lost."""

    id: str
    died_ms: int
    attempt: int
    reason: str
    raw: bytes = field(repr=False)

    @property
    def payload(self) -> Any:
        return envelope.decode(self.raw)


@dataclass(frozen=True)
class DeadPage:
    """One page of a service's dead letters and how many there are in all."""

    total: int
    letters: list[DeadLetter]


@dataclass(frozen=True)
class Status:
    """Where an event stands: ``done``, ``dead``, ``pending`` or ``unknown``.

    For ``pending``, ``state`` is one of ready, reserved (held by a worker
    that has not started it), leased, timer, waiting (a retry backoff) or
    expired (awaiting the distributor); ``snoozes`` counts the snoozes it took
    (bounded by the service's ``max_snoozes``), ``progress`` is the last
    percentage its handler reported (0..100, 0 if none) and ``priority`` its
    level (0..9, 0 the default).
    """

    state: str
    detail: str = ""
    attempt: int = 0
    snoozes: int = 0
    progress: int = 0
    priority: int = 0
    raw_result: bytes = field(default=b"", repr=False)

    @property
    def result(self) -> Any:
        """The consumer's result of a ``done`` event (None if it gave none)."""
        return envelope.decode(self.raw_result) if self.raw_result else None


@dataclass(frozen=True)
class PromoteResult:
    """What one scheduler step did for a service."""

    timers: int
    retries: int
    expired: int  # leases reclaimed, reserved ones included
    more: bool
    next_due_ms: int
    returned: int = 0  # reserved leases put back in the ready queue uncharged


@dataclass(frozen=True)
class DistributeResult:
    """What one distributor step did for a service."""

    retried: int
    dead: int
    more: bool


@dataclass(frozen=True)
class Recurring:
    """A recurring timer: its spec, its next tick, and how many ticks fired or were skipped.

    ``spec`` is ``every <ms> <catch_up>`` or ``cron <catch_up> <expression>``
    (catch_up 1: after downtime one event stands for the missed ticks; 0: they
    fire nothing). Each tick fires the event ``<name>.<tick_ms>`` into the
    ``priority`` level (0..9, 0 the default).
    """

    name: str
    spec: str
    next_ms: int
    fired: int
    skipped: int
    priority: int = 0


@dataclass(frozen=True)
class RecurringPage:
    """One page of a service's recurring timers, by name, and how many there are."""

    total: int
    schedules: list[Recurring]


@dataclass(frozen=True)
class Group:
    """A group of events enqueued together (``enqueue_group``): its id and members' ids."""

    id: str
    event_ids: list[str]


@dataclass(frozen=True)
class GroupStatus:
    """Where a group stands: ``done`` of ``total`` members completed; ``failed`` the
    first member dead-lettered or cancelled (``""`` if none); ``finished_ms`` when
    every member completed or the first failed (0 while it runs)."""

    total: int
    done: int
    failed: str
    finished_ms: int

    @property
    def finished(self) -> bool:
        """Whether the group finished (all completed, or the first failure)."""
        return self.finished_ms > 0
