"""The hook a worker runs every handler inside: traces and metrics plug in here.

A worker's ``instruments`` is a list of callables, each taking the event about
to be handled and returning a context manager that is entered around the
handler (an exception from the handler passes through it). The default is the
OpenTelemetry consumer span when tracing is available (homing.tracing);
``homing.metrics`` adds the handler duration histogram. No instrument, no
cost beyond one empty check per event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from . import tracing
from .types import Event

Instrument = Callable[[Event], AbstractContextManager[Any]]
_NOTHING = contextlib.nullcontext()


def defaults() -> list[Instrument]:
    """The instruments every worker starts with: the consumer span, when tracing is on."""
    return [tracing.handling] if tracing.ENABLED else []


def scope(instruments: list[Instrument], ev: Event) -> AbstractContextManager[Any]:
    """One context manager around a handler run, entering every instrument in order."""
    if not instruments:
        return _NOTHING
    if len(instruments) == 1:
        return instruments[0](ev)
    stack = contextlib.ExitStack()
    for make in instruments:
        stack.enter_context(make(ev))
    return stack
