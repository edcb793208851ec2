"""homing: guaranteed-delivery producer/consumer queues on Redis, addressed by service name.

    from homing import Client
    client = Client.from_url("redis://localhost:6379/0")
    event_id = client.enqueue("weather", {"city": "Oslo", "temp_c": -3})

Consumers subclass ``Consumer`` and run under ``homing worker``. See the
repository's README and docs/ for the guarantees and the protocol.
"""

from .aio import AsyncClient
from .client import Client
from .consumer import Consumer, Reject
from .errors import *  # noqa: F403 - the generated exception classes are public API
from .errors import HomingError
from .manifest import SCHEMA
from .types import DeadLetter, DeadPage, Event, FailOutcome, Status
from .worker import Worker

__all__ = ["SCHEMA", "AsyncClient", "Client", "Consumer", "DeadLetter", "DeadPage", "Event",
           "FailOutcome", "HomingError", "Reject", "Status", "Worker"]
__version__ = "0.1.0"
