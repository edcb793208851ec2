"""The hook a worker runs every handler inside: traces and metrics plug in here.

A worker's ``instruments`` is a list of callables, each taking the event about
to be handled and returning a context manager that is entered around the
handler (an exception from the handler passes through it). The default is the
OpenTelemetry consumer span when tracing is available (homing.tracing);
``homing.metrics`` adds the handler duration histogram. No instrument, no
cost beyond one empty check per event.

An instrument may also have a ``prepare`` attribute: called by a worker slot
once per share of events (and again every few ms while its handlers run),
it returns what to use for that share: the instrument itself, a narrower one
that returns None for an event it has nothing to do for, or None for
nothing at all. Tracing uses it to check once per share, not per event,
whether a span could be anything but a no-op (``tracing.handling``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from . import tracing
from .types import Event

Instrument = Callable[[Event], AbstractContextManager[Any]]
# What a slot calls per event: a context manager around the handler, or None for none.
Prepared = Callable[[Event], "AbstractContextManager[Any] | None"]
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


def prepare(instruments: list[Instrument]) -> Prepared | None:
    """What wraps each handler run of the coming share; None when nothing does.

    Each instrument's ``prepare`` (if it has one) decides for the share; one
    that raises is used as it is, per event.
    """
    if not instruments:
        return None
    active: list[Prepared] = []
    for make in instruments:
        ready = getattr(make, "prepare", None)
        if ready is not None:
            try:
                narrowed = ready()
            except Exception:  # noqa: BLE001 - an instrument's trouble is not the slot's
                narrowed = make
            if narrowed is None:
                continue
            active.append(narrowed)
        else:
            active.append(make)
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda ev: _stacked(active, ev)


def _stacked(active: list[Prepared], ev: Event) -> AbstractContextManager[Any] | None:
    """Every prepared instrument's context manager for ev, entered in order as one."""
    scopes = [cm for make in active if (cm := make(ev)) is not None]
    if not scopes:
        return None
    if len(scopes) == 1:
        return scopes[0]
    stack = contextlib.ExitStack()
    for cm in scopes:
        stack.enter_context(cm)
    return stack
