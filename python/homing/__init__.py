"""homing: guaranteed-delivery producer/consumer queues on Redis, addressed by service name.

    from homing import Client
    client = Client.from_url("redis://localhost:6379/0")
    event_id = client.enqueue("weather", {"city": "Oslo", "temp_c": -3})

Consumers subclass ``Consumer`` and run under ``homing worker``. See the
repository's README and docs/ (docs/python.md is the API reference) for the
guarantees and the protocol.
"""

from . import errors as _errors
from .aio import AsyncClient
from .client import Client
from .consumer import Consumer, Reject, Snooze
from .daemons import Distributor, Scheduler, run_daemons
from .errors import *  # noqa: F403 - the generated exception classes are public API
from .manifest import SCHEMA
from .types import (
    Batch,
    DeadLetter,
    DeadPage,
    Event,
    FailOutcome,
    Group,
    GroupStatus,
    Limits,
    Recurring,
    RecurringPage,
    Status,
)
from .worker import Worker, WorkerStats

__all__ = [
    "SCHEMA", "AsyncClient", "Batch", "Client", "Consumer", "DeadLetter", "DeadPage",
    "Distributor", "Event", "FailOutcome", "Group", "GroupStatus", "Limits", "Recurring",
    "RecurringPage", "Reject", "Scheduler", "Snooze", "Status", "Worker", "WorkerStats",
    "run_daemons", *_errors.__all__,
]
__version__ = "0.1.0"
