"""OpenTelemetry traces for homing: a producer span per enqueue, a consumer span per event.

Optional: ``pip install 'homing[otel]'`` brings ``opentelemetry-api``; without
it every function here is a no-op and nothing is imported. With it, homing
uses the API only (as instrumentation libraries should): spans are recorded
once the application installs an SDK ``TracerProvider``, and cost next to
nothing before. ``HOMING_TRACING=off`` turns them off altogether.

The producer's context travels in the envelope's field ``t`` (revision 1.1,
docs/protocol.md) as W3C Trace Context (``traceparent``, ``tracestate``), so a
Python producer's trace continues in a JavaScript consumer and the other way.
W3C and not the global propagator on purpose: the field is defined as W3C in
both ports, whatever propagators an application configured for HTTP.

Spans follow OpenTelemetry's messaging semantic conventions: ``send <service>``
(kind PRODUCER) around enqueue, enqueue_many and create_timer; ``process
<service>`` (kind CONSUMER) around each handler, a child of the producer's
span and linked to it, with ``messaging.system`` "homing",
``messaging.destination.name`` the service, ``messaging.message.id`` the
event id, ``messaging.operation.type`` send/process and
``messaging.operation.name`` enqueue/create_timer/handle; ``homing.attempt``
is the delivery's attempt number.

An enqueue with an explicit ``id`` carries no context: the same id with the
same envelope is an idempotent repeat (a resend after a lost reply), and a
different trace context would make the second envelope differ.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from . import envelope
from .errors import CorruptEnvelopeError
from .types import Event

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed: everything below is a no-op
    _trace = None  # type: ignore[assignment]

ENABLED: bool = _trace is not None and os.environ.get("HOMING_TRACING", "on").lower() != "off"
SYSTEM = "homing"

_provider: Any = None  # set_tracer_provider's; None: OpenTelemetry's global one
if _trace is not None:
    _PROPAGATOR = TraceContextTextMapPropagator()
    # A proxy: spans go to whatever provider the application sets, even later.
    _TRACER = _trace.get_tracer("homing")


def set_tracer_provider(provider: Any) -> None:
    """Record homing's spans with ``provider`` instead of the global one (None: the
    global one again), as OpenTelemetry instrumentations take a ``tracer_provider``.
    The trace context is shared all the same: spans nest across providers."""
    global _provider, _TRACER
    if _trace is None:
        return
    _provider = provider
    _TRACER = provider.get_tracer("homing") if provider is not None else _trace.get_tracer(
        "homing")


def _idle() -> bool:
    """No SDK installed and no trace in progress: a span could only be a no-op, so none
    is made (about 20 us saved per call). With a context in progress (propagated
    without an SDK) it is still carried on."""
    return (_provider is None
            and isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)
            and not _trace.get_current_span().get_span_context().is_valid)


def quiet() -> bool:
    """Whether a producer span would be none at all (``producing`` yields None then):
    a hot call checks this first and skips the context manager's own cost (~1.5 us)."""
    return not ENABLED or _idle()


@contextlib.contextmanager
def producing(service: str, operation: str, count: int, *,
              carry: bool = True) -> Iterator[Any]:
    """A ``send <service>`` span around a producer call; its context goes into the
    envelopes encoded meanwhile (``carry``), through ``envelope.OUTGOING_TRACE``.

    Yields the span (None when tracing is off); ``sent(span, ids)`` names the events.
    """
    if not ENABLED or _idle():
        yield None
        return
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM, "messaging.destination.name": service,
        "messaging.operation.type": "send", "messaging.operation.name": operation}
    if count > 1:  # 0: not known (an iterator)
        attributes["messaging.batch.message_count"] = count
    with _TRACER.start_as_current_span(f"send {service}", kind=_trace.SpanKind.PRODUCER,
                                       attributes=attributes) as span:
        carrier: dict[str, str] = {}
        if carry:
            _PROPAGATOR.inject(carrier)  # empty while no SDK records this span
        token = envelope.OUTGOING_TRACE.set(carrier or None)
        try:
            yield span
        finally:
            envelope.OUTGOING_TRACE.reset(token)


def sent(span: Any, ids: Sequence[str]) -> None:
    """Name the event a single-event send produced (messaging.message.id)."""
    if span is not None and len(ids) == 1 and span.is_recording():
        span.set_attribute("messaging.message.id", ids[0])


@contextlib.contextmanager
def handling(ev: Event) -> Iterator[Any]:
    """A ``process <service>`` span around one handler run, continuing the producer's trace.

    The span is current while the handler runs, so the handler's own spans (and
    the events it enqueues) nest under it. An exception is recorded on the span
    and passed on: the worker decides what it means.
    """
    try:
        carrier = envelope.trace_of(ev.raw)
    except CorruptEnvelopeError:
        carrier = None  # the worker dead-letters it; the span says it ran
    if carrier is None and _idle():
        yield None
        return
    parent = _PROPAGATOR.extract(carrier) if carrier else None
    links = []
    if parent is not None:
        creation = _trace.get_current_span(parent).get_span_context()
        if creation.is_valid:
            links.append(_trace.Link(creation))
    attributes = {
        "messaging.system": SYSTEM, "messaging.destination.name": ev.service,
        "messaging.operation.type": "process", "messaging.operation.name": "handle",
        "messaging.message.id": ev.id, "homing.attempt": ev.attempt}
    with _TRACER.start_as_current_span(f"process {ev.service}", context=parent,
                                       kind=_trace.SpanKind.CONSUMER, links=links,
                                       attributes=attributes, record_exception=False,
                                       set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise


def _carried(ev: Event) -> Any:
    """``handling`` for a share prepared while tracing is idle: nothing for an event
    that carries no trace context, whose span could only be a no-op."""
    raw = ev.raw
    # An envelope map of at most two entries (v and p) has no field t: one byte
    # tells, where trace_of would decode the whole envelope.
    if raw and 0x80 <= raw[0] <= 0x82:
        return None
    return handling(ev)


def _prepare() -> Any:
    """``handling.prepare`` (homing.observe): the per-share decision. Idle (no SDK,
    no trace in progress) costs ~4 us to find out, so it is asked once per share,
    not per event; only an event with a trace context gets a span then."""
    return _carried if _idle() else handling


handling.prepare = _prepare  # type: ignore[attr-defined]


def _failed(span: Any, exc: BaseException) -> None:
    """Mark span failed with exc; an exception whose str() itself raises still marks it."""
    try:
        span.record_exception(exc)
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, str(exc)))
        span.set_attribute("error.type", type(exc).__qualname__)
    except Exception:  # noqa: BLE001 - the handler's exception is what the worker reports
        span.set_status(_trace.Status(_trace.StatusCode.ERROR))
