"""``homing stats``: its tables, the running totals they show and the warnings around them.

The tables have fixed columns, so that two runs (or two services) compare column by
column; every counter the Lua scripts increment is defined in docs/cli.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .client import Client
from .cliutil import table
from .durability import NodeDurability
from .errors import ConnectionLostError, HomingError
from .manifest import service_key

QUEUES = ("ready", "in_flight", "timers", "retrying", "expired", "dead")
# The life of an event: in, out to a consumer, and each way it can come back or end.
FLOW = ("enqueued", "delivered", "completed", "failed", "retried", "expired", "returned", "dead",
        "requeued", "released", "snoozed")
# Timers, the scheduler's moves and housekeeping.
MORE = ("timers", "timers_fired", "cancelled", "retries_ready", "purged", "orphaned",
        "stale_acks", "recurring", "recurring_fired", "recurring_removed")
DAEMON_SILENCE = 10.0  # seconds without a beat before stats warns that no daemon runs
_DAEMONS = (
    ("scheduler", "timers, retries and expired leases wait until one does"),
    ("distributor", "events whose lease expired are neither retried nor dead-lettered "
                    "until one does"),
)


def _cell(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def totals_tables(data: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, table) pairs for the running totals; zeros are shown, never dropped.

    A counter this version does not know (written by a newer homing) is added at the
    end of the second table rather than hidden.
    """
    # late_*: the timer lateness histogram the promote script keeps (homing.metrics shows it).
    found = {k[6:] for st in data.values() for k in st
             if k.startswith("total.") and not k.startswith("total.late_")}
    unknown = sorted(found - set(FLOW) - set(MORE))
    out = []
    for title, names in (("totals since the service was created", FLOW),
                         ("timers, scheduler and housekeeping totals", (*MORE, *unknown))):
        rows = [[name, *(_cell(st.get(f"total.{t}", 0)) for t in names)]
                for name, st in data.items()]
        out.append((title, table(["service", *(t.replace("_", " ") for t in names)], rows)))
    return out


def for_json(data: dict[str, dict[str, Any]],
             reports: list[NodeDurability]) -> dict[str, Any]:
    """The stats as --json prints them: ``test_clock`` only when a test clock is set.

    Services go under "services", not at the top: a service may be called
    "durability" too.
    """
    return {
        "services": {name: {k: v for k, v in st.items() if not (k == "test_clock" and v == -1)}
                     for name, st in data.items()},
        "durability": {"durable": all(rep.durable for rep in reports),
                       "nodes": {rep.node: rep.as_dict() for rep in reports}},
    }


def warnings(client: Client, prefix: str, named: tuple[str, ...],
             data: dict[str, dict[str, Any]]) -> list[str]:
    """What stats must warn about on stderr: unregistered services, test clocks, daemons."""
    out: list[str] = []
    if named:
        registered = set(client.services())
        out += [f"warning: service {name!r} is not registered: nothing was ever enqueued to "
                f"it under prefix {prefix!r} (its numbers are all zero)"
                for name in dict.fromkeys(named) if name not in registered]
    for name, st in data.items():
        clock = st.get("test_clock", -1)
        if clock != -1:
            out.append(_clock_warning(prefix, name, _cell(clock)))
    if data:
        out += daemon_warnings(client)
    return out


def _clock_warning(prefix: str, service: str, clock: Any) -> str:
    if isinstance(clock, int):
        when = dt.datetime.fromtimestamp(clock / 1000, dt.timezone.utc)
        frozen = f"time is frozen at {clock} ms ({when:%Y-%m-%d %H:%M:%S}Z)"
    else:
        frozen = f"it holds {clock!r}, not a number: this service's scripts fail"
    return (f"WARNING: A TEST CLOCK IS SET ON SERVICE {service!r}: {frozen}. Timers, "
            "retries and leases use it instead of the Redis clock, so they never come due. "
            "Only test suites set it; run HDEL "
            f"{service_key(prefix, service, 'config')} test_clock to go back to real time.")


def daemon_warnings(client: Client) -> list[str]:
    """Warn when no scheduler or no distributor beat within ``DAEMON_SILENCE`` seconds."""
    try:
        beats = client.daemons()
    except ConnectionLostError:
        raise
    except HomingError as exc:
        return [f"warning: cannot tell whether the daemons run: {exc}"]
    out = []
    for kind, waiting in _DAEMONS:
        ages = [age for name, age in beats.items() if name.startswith(kind)]
        if not ages or min(ages) > DAEMON_SILENCE:
            last = f" (the last one beat {min(ages):.0f} s ago)" if ages else ""
            out.append(f"warning: no retry {kind} has run in the last {DAEMON_SILENCE:g} s"
                       f"{last}: {waiting} (run `homing daemon`)")
    return out
