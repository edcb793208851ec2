"""Checks of client settings that are not call arguments: waits, Worker options, due times.

Why here and not in ``homing.argtypes``: those are the call table's types;
these guard settings that never reach a script as they are (a timeout, a
Worker's concurrency, a datetime turned into ms), but would fail later, in a
thread, retried for ever, if they were not refused up front.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from .argtypes import MAX_WHOLE, POLICY, ms, whole
from .errors import InvalidArgumentError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def seconds(value: Any, what: str) -> float:
    """A wait in seconds (a timeout, an interval): a finite number >= 0.

    NaN passes every comparison, so a NaN timeout would wait for ever and a NaN
    interval make Event.wait raise deep in a thread; refused here instead.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(f"{what} must be a finite number of seconds >= 0, "
                                   f"got {value!r}")
    return float(value)


def worker_options(concurrency: Any, prefetch: Any, lease_ms: Any, grace: Any,
                   poll_max: Any, handler_timeout: Any) -> None:
    """Refuse Worker settings that would only fail later, in a thread, retried for ever.

    A NaN lease or a text concurrency used to be accepted and then fail every
    dequeue as a logged warning; here they are an InvalidArgumentError from
    the constructor. (Counts keep their clamping: prefetch to 1..1000.)
    """
    whole(concurrency, "concurrency", -MAX_WHOLE)
    whole(prefetch, "prefetch", -MAX_WHOLE)
    if lease_ms is not None:
        whole(lease_ms, "lease_ms", int(POLICY["lease_ms"]["min"]), int(POLICY["lease_ms"]["max"]))
    seconds(grace, "grace")
    seconds(poll_max, "poll_max")
    if handler_timeout is not None and seconds(handler_timeout, "handler_timeout") > 86400:
        raise InvalidArgumentError(f"handler_timeout must be in [0, 86400] s, "
                                   f"got {handler_timeout!r}")


def at_ms(at: dt.datetime | float) -> int:
    """A due time as ms since the epoch: a timezone-aware datetime, or seconds since the epoch."""
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            raise InvalidArgumentError("at must be timezone-aware (naive datetimes are ambiguous)")
        # Whole milliseconds by integer arithmetic: timestamp() * 1000 is a float
        # product that can land just below the intended millisecond.
        return ms((at - _EPOCH) // dt.timedelta(milliseconds=1), "at (ms since the epoch)")
    ms(at, "at")  # validates; its int() would drop the fraction of a second
    return ms(round(at * 1000), "at (ms since the epoch)")
