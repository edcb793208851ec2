"""OpenTelemetry traces (homing.tracing) with the SDK's InMemorySpanExporter.

The cross-language half (a Python producer's trace continuing in a JS consumer
and the other way) is javascript/test/tracing.test.js.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import freeze, running, wait_for

import homing
from homing import envelope, tracing

sdk = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

_EXPORTER = InMemorySpanExporter()


_PROVIDER = sdk.TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    # homing's own provider, not the global one: the global can be set only once per
    # process, and the other test modules must see no tracing (envelopes as they were).
    tracing.set_tracer_provider(_PROVIDER)
    yield
    tracing.set_tracer_provider(None)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER


def named(exporter: InMemorySpanExporter, name: str) -> list:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_enqueue_records_a_producer_span_carried_in_the_envelope(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    assert tracing.ENABLED
    event_id = client.enqueue(service, {"city": "Oslo"})
    [send] = named(spans, f"send {service}")
    assert send.kind == SpanKind.PRODUCER
    assert send.attributes["messaging.system"] == "homing"
    assert send.attributes["messaging.destination.name"] == service
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.operation.name"] == "enqueue"
    assert send.attributes["messaging.message.id"] == event_id
    [ev] = client.dequeue(service)
    ctx = send.context
    assert envelope.trace_of(ev.raw) == {
        "traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    assert ev.payload == {"city": "Oslo"}


def test_a_batch_is_one_span_and_explicit_ids_carry_no_context(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    client.enqueue_many(service, [1, 2, 3])
    [send] = named(spans, f"send {service}")
    assert send.attributes["messaging.batch.message_count"] == 3
    events = client.dequeue(service, 3)
    assert len({envelope.trace_of(e.raw)["traceparent"] for e in events}) == 1
    # The same id and envelope twice is an idempotent repeat: no context may differ.
    client.enqueue(service, "x", id="fixed")
    assert client.enqueue(service, "x", id="fixed") == "fixed"
    [fixed] = client.dequeue(service)
    assert envelope.trace_of(fixed.raw) is None
    # Without a span in progress nothing is carried either: results stay plain.
    assert envelope.trace_of(envelope.encode("r")) is None


class Recorder(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        if event.payload == "boom":
            raise homing.Reject("boom")
        # A span of the handler's own nests under the consumer span.
        with _PROVIDER.get_tracer("app").start_as_current_span("inner"):
            pass
        return state


def test_the_consumer_span_continues_the_producer_trace(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    event_id = client.enqueue(service, "hello")
    [send] = named(spans, f"send {service}")
    w = homing.Worker(client, service, Recorder)
    with running(w):
        wait_for(lambda: w.stats.completed == 1)
    wait_for(lambda: named(spans, f"process {service}"))
    [proc] = named(spans, f"process {service}")
    assert proc.kind == SpanKind.CONSUMER
    assert proc.context.trace_id == send.context.trace_id
    assert proc.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in proc.links] == [send.context.span_id]
    assert proc.attributes["messaging.message.id"] == event_id
    assert proc.attributes["messaging.operation.type"] == "process"
    assert proc.attributes["homing.attempt"] == 1
    [inner] = named(spans, "inner")
    assert inner.parent.span_id == proc.context.span_id


def test_a_failing_handler_marks_its_span_and_an_untraced_event_starts_a_trace(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    # An explicit id carries no context: a revision 1.0 envelope, as an untraced
    # (or older) producer writes it.
    client.enqueue(service, "boom", id="plain")
    spans.clear()
    w = homing.Worker(client, service, Recorder)
    with running(w):
        wait_for(lambda: w.stats.failed == 1)
    wait_for(lambda: named(spans, f"process {service}"))
    [proc] = named(spans, f"process {service}")
    assert proc.parent is None and proc.links == ()
    assert proc.status.status_code == StatusCode.ERROR
    assert proc.events[0].name == "exception"


def test_a_timer_carries_its_creator_trace_to_the_consumer(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    clock = freeze(client, service)
    client.create_timer(service, "later", delay_ms=100)
    [send] = named(spans, f"send {service}")
    assert send.attributes["messaging.operation.name"] == "create_timer"
    clock.advance(100)
    client.promote(service)
    clock.clear()
    w = homing.Worker(client, service, Recorder)
    with running(w):
        wait_for(lambda: w.stats.completed == 1)
    wait_for(lambda: named(spans, f"process {service}"))
    [proc] = named(spans, f"process {service}")
    assert proc.context.trace_id == send.context.trace_id


def test_the_async_client_records_producer_spans_too(
        redis_url: str, prefix: str, service: str, spans: InMemorySpanExporter) -> None:
    import asyncio

    from homing.aio import AsyncClient

    async def go() -> list[bytes]:
        c = await AsyncClient.from_url(redis_url, prefix=prefix)
        try:
            await c.enqueue(service, 1)
            await c.enqueue_many(service, [2, 3])
            return [e.raw for e in await c.dequeue(service, 3)]
        finally:
            await c.close()
    raws = asyncio.run(go())
    sends = named(spans, f"send {service}")
    assert len(sends) == 2
    carried = {envelope.trace_of(r)["traceparent"].split("-")[2] for r in raws}
    assert carried == {f"{s.context.span_id:016x}" for s in sends}


def test_homing_tracing_off_disables_spans_and_context() -> None:
    import os
    import subprocess
    import sys

    code = ("import homing.tracing as t, homing.observe as o, homing.envelope as e;"
            "print(t.ENABLED, o.defaults(), e.encode(1).hex())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "HOMING_TRACING": "off"}, check=True).stdout
    assert out.split() == ["False", "[]", "82a17601a17001"]


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


class RaisesUnprintable(homing.Consumer):
    def handle_event(self, event: homing.Event, state: object) -> object:
        raise UnprintableError()


def test_an_exception_that_cannot_be_shown_still_fails_the_span(
        client: homing.Client, service: str, spans: InMemorySpanExporter) -> None:
    client.configure(service, max_attempts=1)
    client.enqueue(service, 1)
    w = homing.Worker(client, service, RaisesUnprintable)
    with running(w):
        wait_for(lambda: w.stats.failed == 1)
    wait_for(lambda: named(spans, f"process {service}"))
    [proc] = named(spans, f"process {service}")
    assert proc.status.status_code == StatusCode.ERROR
    assert client.stats(service)["dead"] == 1  # the worker handled it as a failure
