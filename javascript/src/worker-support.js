// Small pieces of the worker that need no Redis: its option checks, its
// constants, its default logger, how it names what a handler threw, its
// one-line summary and its signal handling. The bookkeeping is in
// holding.js and watchdog.js, the outcomes' I/O in outcomes.js, the loops in
// worker.js, fetcher.js, acker.js and heartbeat.js.

import { Consumer, Reject } from "./consumer.js";
import { LAYOUT, MAX_REASON } from "./manifest.js";
import { CorruptEnvelopeError, HomingError, InvalidArgumentError } from "./errors.js";
import { HandlerTimeoutError } from "./watchdog.js";

/** @typedef {import("./holding.js").WorkerStats} WorkerStats */

/**
 * @typedef {object} Logger
 * @property {(...args: any[]) => void} debug
 * @property {(...args: any[]) => void} info
 * @property {(...args: any[]) => void} warn
 * @property {(...args: any[]) => void} error
 */

/** The longest pause of a loop's backoff, in ms. */
export const MAX_PAUSE = 2000;

/**
 * A lease with less than this share of its length left is not started: the
 * next beat might not come in time to keep it (Python's START_MARGIN).
 */
export const START_MARGIN = 0.1;

/**
 * How long (ms) a worker lets every write be answered READONLY before it
 * stops (`worker.readOnly`): with a plain URL to a node that was demoted to a
 * replica it would retry for ever.
 */
export const READONLY_GIVE_UP_MS = 60000;

/**
 * `Name: message`, as a fail reason and in logs. Whatever a handler throws
 * (an Error, a string, null, an object with no toString) gives a line: this
 * never throws itself.
 * @param {unknown} exc
 * @returns {string}
 */
export function describe(exc) {
  try {
    return exc instanceof Error ? `${exc.constructor.name}: ${exc.message}` : `${typeof exc}: ${String(exc)}`;
  } catch {
    return `${typeof exc}: (a value that cannot be shown as text)`;
  }
}

/**
 * text cut to the manifest's reason cap (limits.reason_bytes) in UTF-8 bytes,
 * on a character boundary, as fail.lua cuts it and as Python's cut_reason:
 * cutting characters would send up to four times the cap for the script to
 * cut again, and log a reason other than the one stored. A character the cut
 * would split is dropped whole, so the reason stays valid text.
 * @param {string} text
 * @returns {string}
 */
export function cutReason(text) {
  const bytes = new TextEncoder().encode(text); // a lone surrogate becomes U+FFFD
  if (bytes.length <= MAX_REASON) return new TextDecoder().decode(bytes);
  let end = MAX_REASON;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1; // back to a character's first byte
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/**
 * How the worker fails an event for what its handler threw, whatever that is.
 * @param {unknown} exc
 * @returns {{dead: boolean, reject: boolean, timeout: boolean, reason: string, detail: string}}
 * dead: dead-letter at once (retrying cannot fix a rejected event or an
 * envelope that does not decode); reject: a Reject, not worth a warning;
 * timeout: the handler timeout (its reason is the message alone, as in
 * Python); detail: the stack to log after the reason, if any
 */
export function failure(exc) {
  let timeout = false;
  try {
    timeout = exc instanceof HandlerTimeoutError;
  } catch {
    // a Proxy that throws on every trap
  }
  const reason = cutReason(timeout ? /** @type {Error} */ (exc).message : describe(exc));
  try {
    const reject = exc instanceof Reject;
    const dead = reject || exc instanceof CorruptEnvelopeError;
    const detail = exc instanceof Error && !(exc instanceof HomingError) && !timeout && exc.stack
      ? `\n${exc.stack}` : "";
    return { dead, reject, timeout, reason, detail };
  } catch {
    return { dead: false, reject: false, timeout, reason, detail: "" }; // a Proxy that throws on every trap
  }
}

/**
 * Refuse Worker options that would only fail later, in a loop retried for
 * ever (Python's ops.worker_options): a NaN lease or a text concurrency is an
 * InvalidArgumentError from the constructor. Counts keep their clamping
 * (prefetch to 1..1000).
 * @param {Record<string, unknown>} options
 */
export function checkWorkerOptions(options) {
  const { policy } = LAYOUT;
  /**
   * @param {string} name
   * @param {number} lo
   * @param {number} hi
   * @param {boolean} whole
   */
  const check = (name, lo, hi, whole) => {
    const v = options[name];
    if (v === undefined || (v === null && (name === "leaseMs" || name === "handlerTimeoutMs"))) return;
    if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi || (whole && !Number.isInteger(v))) {
      throw new InvalidArgumentError(
        `${name} must be a ${whole ? "whole" : "finite"} number in [${lo}, ${hi}], got ${describe(v)}`,
      );
    }
  };
  check("concurrency", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  check("prefetch", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  check("leaseMs", policy.lease_ms.min, policy.lease_ms.max, true);
  check("handlerTimeoutMs", policy.handler_timeout_ms.min, policy.handler_timeout_ms.max, false);
  check("graceMs", 0, Number.MAX_SAFE_INTEGER, false);
  check("pollMaxMs", 0, Number.MAX_SAFE_INTEGER, false);
  check("readonlyGiveUpMs", 0, Number.MAX_SAFE_INTEGER, false);
}

/**
 * A new consumer from a Consumer subclass or a function that returns one.
 * @param {(() => Consumer) | (new () => Consumer)} factory
 * @returns {Consumer}
 */
export function makeConsumer(factory) {
  const isClass = factory === Consumer || factory.prototype instanceof Consumer;
  // @ts-ignore either a Consumer subclass or a function returning a consumer
  return isClass ? new factory() : factory();
}

/**
 * The one-line summary of a worker's counts, as `homing worker` prints it.
 * @param {string} service
 * @param {string} how "stopped", "interrupted", "hung" or "gave up"
 * @param {WorkerStats} st
 */
export function summary(service, how, st) {
  const errors = Object.entries(st.errors).sort().map(([code, n]) => ` ${code}=${n}`).join("");
  const unreplicated = st.unreplicated ? ` unreplicated=${st.unreplicated}` : "";
  return `worker ${service} ${how}: received=${st.received} completed=${st.completed} ` +
    `failed=${st.failed} released=${st.released} lost=${st.lost} timed_out=${st.timedOut}${unreplicated}${errors}`;
}

const noop = () => {};
/** Warnings and errors to the console, as Python's logging does by default. */
export const DEFAULT_LOGGER = Object.freeze({
  debug: noop,
  info: noop,
  warn: (/** @type {any[]} */ ...a) => console.warn("homing.worker:", ...a),
  error: (/** @type {any[]} */ ...a) => console.error("homing.worker:", ...a),
});


/**
 * Call first() on the first of these signals and again() on the second; the
 * listeners are removed then, so a third one gets Node's default (exit at
 * once). Returns the function that removes them.
 * @param {readonly NodeJS.Signals[]} signals
 * @param {(signal: NodeJS.Signals) => void} first
 * @param {(signal: NodeJS.Signals) => void} again
 * @returns {() => void}
 */
export function onSignals(signals, first, again) {
  let received = 0;
  const handler = (/** @type {NodeJS.Signals} */ signal) => {
    received += 1;
    if (received === 1) {
      first(signal);
    } else {
      remove();
      again(signal);
    }
  };
  const remove = () => {
    for (const signal of signals) process.off(signal, handler);
  };
  for (const signal of signals) process.on(signal, handler);
  return remove;
}
