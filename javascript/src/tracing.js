// OpenTelemetry traces for homing: a producer span per enqueue, a consumer
// span per handled event, the same as the Python port's homing.tracing.
//
// Optional: `@opentelemetry/api` is an optional peer dependency, loaded here
// once if installed; without it every function is a no-op. Only the API is
// used, as instrumentation libraries should: spans are recorded once the
// application registers an SDK tracer provider. HOMING_TRACING=off turns
// them off altogether.
//
// The producer's context travels in the envelope's field t (revision 1.1,
// docs/protocol.md) as W3C Trace Context (traceparent, tracestate), written
// and read here directly rather than through the global propagator: the field
// is defined as W3C in both ports, whatever the application set for HTTP.
//
// Spans follow the messaging semantic conventions: `send <service>` (PRODUCER)
// around enqueue, enqueueMany and createTimer; `process <service>` (CONSUMER)
// around each handler, a child of the producer's span and linked to it.
// Attributes: messaging.system "homing", messaging.destination.name,
// messaging.message.id, messaging.operation.type (send/process),
// messaging.operation.name (enqueue/create_timer/handle), homing.attempt.
// An enqueue with an explicit id carries no context: the same id with the
// same envelope is an idempotent repeat, which a new context would break.

import * as envelope from "./envelope.js";

/** @type {any} */
let api = null;
if ((process.env.HOMING_TRACING ?? "on").toLowerCase() !== "off") {
  try {
    api = await import("@opentelemetry/api");
  } catch {
    api = null; // not installed: no traces, no cost
  }
}

export const ENABLED = api !== null;
const SYSTEM = "homing";
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A proxy tracer: spans go to whatever provider is registered, even later. */
const tracer = () => api.trace.getTracer("homing");
// What an unset global provider delegates to (the API's no-op provider).
const NOOP_PROVIDER = api ? new api.ProxyTracerProvider().getDelegate() : null;

/**
 * No SDK registered and no trace in progress: a span could only be a no-op, so none
 * is made. With a context in progress (propagated without an SDK) it is still carried.
 */
function idle() {
  const provider = api.trace.getTracerProvider();
  const noSdk = typeof provider.getDelegate === "function" && provider.getDelegate() === NOOP_PROVIDER;
  if (!noSdk) return false;
  const span = api.trace.getActiveSpan(); // none, usually: no context to check (per event in a worker)
  return span === undefined || !api.isSpanContextValid(span.spanContext());
}

/**
 * The W3C carrier of a span, or null when it has no valid context (no SDK).
 * @param {any} span
 * @returns {envelope.TraceCarrier | null}
 */
function carrierOf(span) {
  const sc = span.spanContext();
  if (!api.isSpanContextValid(sc)) return null;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
  /** @type {envelope.TraceCarrier} */
  const out = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
  const state = sc.traceState?.serialize();
  if (state) out.tracestate = state;
  return out;
}

/**
 * The remote span context a carrier names, or null.
 * @param {envelope.TraceCarrier} carrier
 */
function contextOf(carrier) {
  const m = TRACEPARENT.exec(carrier.traceparent);
  if (!m || m[1] === "ff") return null;
  const sc = {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16),
    isRemote: true,
    ...(carrier.tracestate ? { traceState: api.createTraceState(carrier.tracestate) } : {}),
  };
  return api.isSpanContextValid(sc) ? sc : null;
}

/**
 * Whether an envelope may carry field t, from its first byte alone: every
 * envelope holds v and p, so a map of two entries (msgpack fixmap 0x82, what
 * every port writes without a trace) holds no t, and one that does is no
 * envelope, for which traceOf gives null too. The worker asks this per
 * event before decoding anything (a full decode per event for a trace that
 * is not there was ~7% of its CPU, issue 10).
 * @param {Uint8Array} data
 * @returns {boolean}
 */
function mayCarryTrace(data) {
  return data[0] !== 0x82;
}

/**
 * End span after p settles, recording an error; returns p's value.
 * @template T
 * @param {any} span
 * @param {Promise<T>} p
 * @param {(value: T) => void} [onValue]
 * @returns {Promise<T>}
 */
async function ending(span, p, onValue) {
  try {
    const value = await p;
    onValue?.(value);
    return value;
  } catch (exc) {
    try {
      const isError = exc instanceof Error;
      span.recordException(isError ? exc : String(exc));
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: isError ? exc.message : String(exc) });
      if (isError) span.setAttribute("error.type", exc.name);
    } catch {
      // A thrown value that cannot even be inspected (a hostile Proxy): the span
      // still says the handler failed; the worker reports the value itself.
      span.setStatus({ code: api.SpanStatusCode.ERROR });
    }
    throw exc;
  } finally {
    span.end();
  }
}

/**
 * Run a producer call inside a `send <service>` span; the envelopes that `start`
 * encodes synchronously (before its first await) carry the span's context.
 * @template T
 * @param {string} service
 * @param {string} operation enqueue or create_timer
 * @param {number} count events sent (0: unknown)
 * @param {boolean} carry whether the envelopes carry the context (no explicit ids)
 * @param {() => Promise<T>} start
 * @returns {Promise<T>}
 */
export function producing(service, operation, count, carry, start) {
  if (!api || idle()) return start();
  /** @type {Record<string, string | number>} */
  const attributes = {
    "messaging.system": SYSTEM,
    "messaging.destination.name": service,
    "messaging.operation.type": "send",
    "messaging.operation.name": operation,
  };
  if (count > 1) attributes["messaging.batch.message_count"] = count;
  return tracer().startActiveSpan(`send ${service}`, { kind: api.SpanKind.PRODUCER, attributes }, (/** @type {any} */ span) => {
    const before = envelope.outgoingTrace.current;
    envelope.outgoingTrace.current = carry ? carrierOf(span) : null;
    let p;
    try {
      p = start();
    } catch (exc) {
      p = Promise.reject(exc);
    } finally {
      envelope.outgoingTrace.current = before;
    }
    return ending(span, p, (/** @type {any} */ value) => {
      const ids = Array.isArray(value) ? value : [value];
      if (ids.length === 1 && typeof ids[0] === "string") span.setAttribute("messaging.message.id", ids[0]);
    });
  });
}

/**
 * The consumer instrument: run `next` (the handler) in a `process <service>` span
 * that continues the producer's trace (parent) and links to it.
 * @template T
 * @param {import("./types.js").Event} ev
 * @param {() => Promise<T>} next
 * @returns {Promise<T>}
 */
export function handling(ev, next) {
  /** @type {envelope.TraceCarrier | null} */
  let carrier = null;
  try {
    if (mayCarryTrace(ev.raw)) carrier = envelope.traceOf(ev.raw);
  } catch {
    carrier = null; // a corrupt envelope: the worker dead-letters it; the span says it ran
  }
  if (carrier === null && idle()) return next();
  const creation = carrier ? contextOf(carrier) : null;
  const parent = creation ? api.trace.setSpanContext(api.context.active(), creation) : api.context.active();
  const options = {
    kind: api.SpanKind.CONSUMER,
    links: creation ? [{ context: creation }] : [],
    attributes: {
      "messaging.system": SYSTEM,
      "messaging.destination.name": ev.service,
      "messaging.operation.type": "process",
      "messaging.operation.name": "handle",
      "messaging.message.id": ev.id,
      "homing.attempt": ev.attempt,
    },
  };
  return tracer().startActiveSpan(`process ${ev.service}`, options, parent, (/** @type {any} */ span) =>
    ending(span, Promise.resolve().then(next)));
}

/**
 * @typedef {(ev: import("./types.js").Event, next: () => Promise<unknown>) => Promise<unknown>} Instrument
 * A wrapper around each handler run: calls next() once and returns its value.
 */

/** @returns {Instrument[]} the instruments every worker starts with */
export function defaultInstruments() {
  return api ? [handling] : [];
}

/**
 * Run fn inside every instrument, the first outermost.
 * @template T
 * @param {Instrument[]} instruments
 * @param {import("./types.js").Event} ev
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export function observe(instruments, ev, fn) {
  if (instruments.length === 0) return fn();
  /** @type {() => Promise<any>} */
  let run = fn;
  for (let i = instruments.length - 1; i >= 0; i--) {
    const inner = run;
    const wrap = instruments[i];
    run = () => wrap(ev, inner);
  }
  return run();
}
