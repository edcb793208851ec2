// OpenTelemetry across ports: a Python producer's trace continues in a JS
// consumer and the other way, through the envelope's trace context (field t).
// Both sides record with in-memory exporters (Python: opentelemetry-sdk's
// InMemorySpanExporter in fixtures/trace_interop.py; here
// @opentelemetry/sdk-trace-base's, a devDependency).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, beforeEach, test } from "node:test";

import { SpanKind, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

import { Consumer, Worker, envelope, tracing } from "../src/index.js";
import { NO_PYTHON, PYTHON } from "./fixtures/interop.js";
import { connect, privateServer, recordingLogger, started, until } from "./helpers.js";

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
beforeEach(() => exporter.reset());

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());
const SCRIPT = fileURLToPath(new URL("./fixtures/trace_interop.py", import.meta.url));
const run = promisify(execFile);

/** @param {Record<string, unknown>} cmd */
async function python(cmd) {
  const { stdout } = await run(PYTHON, [SCRIPT, JSON.stringify({ url: server.url, prefix: client.prefix, ...cmd })],
    { timeout: 60000 });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
}

class Quiet extends Consumer {
  async handleEvent(/** @type {any} */ _ev, /** @type {unknown} */ state) {
    return state;
  }
}

const finished = (/** @type {string} */ name) => exporter.getFinishedSpans().filter((s) => s.name === name);

test("tracing is on: @opentelemetry/api is installed here", () => {
  assert.equal(tracing.ENABLED, true);
});

test("a JS enqueue records a producer span and its context rides in the envelope", async () => {
  const service = "tr-js";
  const id = await client.enqueue(service, { city: "Oslo" });
  const [send] = finished(`send ${service}`);
  assert.equal(send.kind, SpanKind.PRODUCER);
  assert.equal(send.attributes["messaging.system"], "homing");
  assert.equal(send.attributes["messaging.destination.name"], service);
  assert.equal(send.attributes["messaging.operation.type"], "send");
  assert.equal(send.attributes["messaging.message.id"], id);
  const [ev] = await client.dequeue(service);
  const sc = send.spanContext();
  assert.deepEqual(envelope.traceOf(ev.raw), { traceparent: `00-${sc.traceId}-${sc.spanId}-01` });
  assert.deepEqual(ev.payload, { city: "Oslo" });
  // An explicit id carries none: a resend must stay the same envelope (idempotent).
  await client.enqueue(service, "x", { id: "fixed" });
  await client.enqueue(service, "x", { id: "fixed" });
  const [again] = await client.dequeue(service);
  assert.equal(envelope.traceOf(again.raw), null);
  assert.equal(finished(`send ${service}`).length, 3);
});

test("Python producer -> JS consumer: the trace continues", { skip: NO_PYTHON }, async () => {
  const service = "tr-py-js";
  const { ids, spans } = await python({ op: "produce", service, payloads: [1, 2] });
  const sends = spans.filter((/** @type {any} */ s) => s.name === `send ${service}`);
  assert.equal(sends.length, 2);
  assert.ok(sends.every((/** @type {any} */ s) => s.kind === "PRODUCER"));
  const worker = await started(new Worker(client, service, Quiet));
  await until(() => worker.stats.completed === 2, 10000, "both handled");
  const processed = finished(`process ${service}`);
  assert.equal(processed.length, 2);
  for (const span of processed) {
    const id = span.attributes["messaging.message.id"];
    const send = sends[ids.indexOf(id)];
    assert.ok(send, `a producer span for ${id}`);
    assert.equal(span.kind, SpanKind.CONSUMER);
    assert.equal(span.spanContext().traceId, send.trace_id, "same trace");
    assert.equal(span.parentSpanContext?.spanId, send.span_id, "child of the producer span");
    assert.deepEqual(span.links.map((l) => l.context.spanId), [send.span_id], "linked to it");
    assert.equal(span.attributes["messaging.operation.type"], "process");
    assert.equal(span.attributes["homing.attempt"], 1);
  }
});

test("JS producer -> Python consumer: the trace continues", { skip: NO_PYTHON }, async () => {
  const service = "tr-js-py";
  const ids = [await client.enqueue(service, "a"), await client.enqueue(service, "b")];
  const sends = finished(`send ${service}`);
  assert.equal(sends.length, 2);
  const { ids: seen, spans } = await python({ op: "consume", service, count: 2 });
  assert.deepEqual([...seen].sort(), [...ids].sort());
  const processed = spans.filter((/** @type {any} */ s) => s.name === `process ${service}`);
  assert.equal(processed.length, 2);
  for (const span of processed) {
    const send = sends[ids.indexOf(span.attributes["messaging.message.id"])];
    assert.equal(span.kind, "CONSUMER");
    assert.equal(span.trace_id, send.spanContext().traceId, "same trace");
    assert.equal(span.parent, send.spanContext().spanId, "child of the producer span");
    assert.deepEqual(span.links, [send.spanContext().spanId], "linked to it");
    assert.equal(span.attributes["messaging.system"], "homing");
  }
});

test("a handler that throws marks its consumer span as an error", async () => {
  const service = "tr-err";
  class Boom extends Consumer {
    async handleEvent() {
      throw new Error("boom");
    }
  }
  await client.configure(service, { max_attempts: 1 });
  await client.enqueue(service, 1);
  const worker = await started(new Worker(client, service, Boom, { logger: recordingLogger() }));
  await until(() => worker.stats.failed === 1, 10000, "the failure");
  const [span] = finished(`process ${service}`);
  assert.equal(span.status.code, 2); // SpanStatusCode.ERROR
  assert.equal(span.events[0]?.name, "exception");
});
