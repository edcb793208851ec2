// What the Client decides per script, from the manifest (python/homing/clientbase.py
// derives the same sets), and its option checks.

import { whole } from "./argtypes.js";
import { InvalidArgumentError } from "./errors.js";
import { MANIFEST } from "./manifest.js";

export { RETRY_BUDGET_MS } from "./link.js";

export const DEFAULT_URL = "redis://127.0.0.1:6379/0";
export const DEFAULT_WAIT_TIMEOUT_MS = 1000;

const scripts = /** @type {[string, {wait: boolean, memory: string, repeats: string | null}][]} */ (
  Object.entries(MANIFEST.scripts));

// Writes that may create a service. The registry is read (SISMEMBER) before
// the script and written (SADD) only after it succeeded: a refused call (a bad
// policy value, a schema mismatch, a wrong-typed key) must leave the registry
// as it was, and a wrong-typed registry is refused before anything is written.
// The price: a producer that dies between the script and the SADD leaves its
// service unregistered until its next call or a worker's start (see
// docs/architecture.md). Which scripts: the call table's "creates".
export const CREATING = Object.freeze(new Set(
  Object.values(/** @type {Record<string, {script: string, creates: boolean}>} */ (MANIFEST.calls))
    .filter((c) => c.creates).map((c) => c.script)));
// The registry is checked at most this often per service and client, not once
// per process: a Redis that lost its data (no persistence, a failover) would
// otherwise never learn of a long-running producer's service again.
export const REGISTER_EVERY_MS = 10_000;
// Writes followed by WAIT when `waitReplicas` is set: what a producer or an
// acknowledgement needs to survive a failover. (A lost lease, extension or
// release only makes an event come back: a duplicate, never a loss.) The
// scripts' headers say which (@wait).
export const WAITED = Object.freeze(new Set(scripts.filter(([, s]) => s.wait).map(([n]) => n)));
// Scripts that write nothing (@memory none): they succeed on a replica too,
// so they say nothing about whether this client can still write (see readOnlyForMs).
export const READS = Object.freeze(new Set(scripts.filter(([, s]) => s.memory === "none").map(([n]) => n)));
// Scripts that answer a repeat (same id or idempotency key) without writing,
// and the counter each increments on a real write (touched by 0 after a
// repeat, so that WAIT vouches for the first send: link.js). @repeats COUNTER.
/** @type {Readonly<Record<string, string>>} */
export const REPEATS = Object.freeze(Object.fromEntries(
  scripts.filter(([, s]) => s.repeats).map(([n, s]) => [n, /** @type {string} */ (s.repeats)])));

/**
 * The WAIT settings, checked: 0 replicas is off; WAIT 0 (wait for ever) is
 * refused, and the timeout must end before the call's own (commandTimeoutMs),
 * or every WAIT that times out would look like a dead connection.
 * @param {unknown} replicas
 * @param {unknown} timeoutMs
 * @param {number} commandTimeoutMs
 * @returns {{replicas: number, timeoutMs: number} | null}
 */
export function waitOption(replicas, timeoutMs, commandTimeoutMs) {
  const n = whole(replicas, "waitReplicas", 0, 1000);
  const t = whole(timeoutMs, "waitTimeoutMs", 1, 86_400_000);
  if (n && t >= commandTimeoutMs) {
    throw new InvalidArgumentError(
      `waitTimeoutMs (${t}) must be below commandTimeoutMs (${commandTimeoutMs}), or every WAIT ` +
        "that times out would look like a dead connection",
    );
  }
  return n ? { replicas: n, timeoutMs: t } : null;
}

const noop = () => {};
/** Warnings to the console (the durability warnings, a failed registry write). */
export const DEFAULT_LOGGER = Object.freeze({
  debug: noop,
  info: noop,
  warn: (/** @type {any[]} */ ...a) => console.warn("homing:", ...a),
  error: (/** @type {any[]} */ ...a) => console.error("homing:", ...a),
});

/**
 * Throw the first error of a batch's per-item results.
 * @param {ReadonlyArray<import("./errors.js").HomingError | null>} errors
 */
export function raiseFirst(errors) {
  for (const err of errors) {
    if (err !== null) throw err;
  }
}
