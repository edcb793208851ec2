// Each homing operation as data: which script, which arguments, how to read
// the reply (python/homing/ops.py, call for call).
//
// Sans-IO on purpose: the client (and a conformance runner) executes the same
// Call objects, so they cannot drift. No queue logic lives here, only argument
// shaping, input checks that need no Redis, and reply parsing. Arguments are
// already strings or Buffers, the two types node-redis sends.
import {
  MAX_BATCH,
  STATES,
  batch,
  call,
  describe,
  encoded,
  idemKey,
  ms,
  newId,
  s,
  tok,
  unpackItem,
  itemError,
  whole,
  withIds,
} from "./call.js";
import { InvalidArgumentError } from "./errors.js";
import { checkId, checkService } from "./manifest.js";
import { Event, FailOutcome, Status } from "./types.js";

export { MAX_BATCH, newId };
export * from "./ops-admin.js";

/**
 * @typedef {import("./call.js").Call} Call
 * @typedef {import("./call.js").Arg} Arg
 * @typedef {import("./call.js").CompleteItem} CompleteItem
 * @typedef {import("./call.js").LeaseItem} LeaseItem
 */

/**
 * @param {string} service
 * @param {Iterable<unknown>} payloads
 * @param {number} maxPayload
 * @param {ReadonlyArray<string | null | undefined> | null} [keys] idempotency keys
 * @param {ReadonlyArray<string> | null} [ids] explicit event ids
 * @returns {Call} parses to the ids, in order
 */
export function enqueueMany(service, payloads, maxPayload, keys = null, ids = null) {
  checkService(service);
  // A string is iterable too: "abc" must not become three events.
  if (typeof payloads === "string" || typeof (/** @type {any} */ (payloads))?.[Symbol.iterator] !== "function") {
    throw new InvalidArgumentError(`enqueueMany takes an array (or iterable) of payloads, got ${describe(payloads)}`);
  }
  const list = Array.from(payloads);
  batch(list, "enqueueMany");
  if (keys != null) batch(/** @type {unknown[]} */ (keys), "keys");
  if (ids != null) batch(/** @type {unknown[]} */ (ids), "ids");
  if (keys != null && keys.length !== list.length) {
    throw new InvalidArgumentError("keys must be as many as payloads");
  }
  if (ids != null && ids.length !== list.length) {
    throw new InvalidArgumentError("ids must be as many as payloads");
  }
  /** @type {Arg[]} */
  const args = [String(maxPayload), String(list.length)];
  list.forEach((payload, i) => {
    args.push(
      ids != null ? checkId(ids[i]) : newId(),
      encoded(payload, maxPayload),
      keys != null ? idemKey(keys[i]) : "",
    );
  });
  return call("enqueue", service, args, (r) => {
    const out = [];
    for (let i = 0; i < r.length; i += 2) out.push(s(r[i]));
    return out;
  });
}

/**
 * A timer fires `delayMs` from now by the Redis clock, or at `at` (a Date or
 * ms since the epoch), which is compared with the Redis server's clock,
 * never the producer's.
 * @param {string} service
 * @param {unknown} payload
 * @param {number} maxPayload
 * @param {{delayMs?: number, at?: Date | number, key?: string | null, id?: string}} [options]
 * @returns {Call} parses to the timer's id
 */
export function createTimer(service, payload, maxPayload, options = {}) {
  const { delayMs, at, key, id } = options;
  checkService(service);
  if ((delayMs == null) === (at == null)) {
    throw new InvalidArgumentError("give exactly one of delayMs or at");
  }
  let delay = "";
  let due = "";
  if (delayMs != null) {
    delay = ms(delayMs, "delayMs");
  } else if (at instanceof Date) {
    if (Number.isNaN(at.getTime())) throw new InvalidArgumentError("at is an invalid Date");
    due = ms(at.getTime(), "at (ms since the epoch)");
  } else {
    ms(at, "at (ms since the epoch)"); // validates
    due = ms(Math.round(/** @type {number} */ (at)), "at (ms since the epoch)");
  }
  const eventId = id != null ? checkId(id) : newId();
  const args = [
    String(maxPayload),
    eventId,
    encoded(payload, maxPayload),
    idemKey(key),
    delay,
    due,
  ];
  return call("schedule", service, args, (r) => s(r[0]));
}

/**
 * @param {string} service
 * @param {string} timerId
 * @returns {Call} parses to true if the timer was pending and is now gone
 */
export function cancelTimer(service, timerId) {
  checkService(service);
  return call("cancel", service, [checkId(timerId)], (r) => r === 1);
}

/**
 * `reserve` (what the Worker uses for its prefetch): the attempt is charged
 * only once the handler is known to have started (`start`, or `fail`); a
 * reserved lease that runs out unstarted returns the event uncharged. Without
 * it each delivery counts as an attempt at once.
 * @param {string} service
 * @param {number} count
 * @param {number | null} [leaseMs] null or 0: the service's lease_ms
 * @param {boolean} [reserve]
 * @returns {Call} parses to Event[]
 */
export function dequeue(service, count, leaseMs = null, reserve = false) {
  checkService(service);
  whole(count, "count", 1, MAX_BATCH);
  const parse = (/** @type {any[]} */ r) => {
    const deadline = Number(r[0]);
    const out = [];
    for (let i = 1; i < r.length; i += 5) {
      out.push(new Event(service, s(r[i]), Number(r[i + 1]), Number(r[i + 2]), deadline, r[i + 3],
        Number(r[i + 4]) === 1));
    }
    return out;
  };
  return call("dequeue", service, [String(count), leaseMs == null ? "0" : ms(leaseMs, "leaseMs"), reserve ? "1" : "0"], parse);
}

/**
 * Mark reserved events started (before running one dequeued with mustStart).
 * @param {string} service
 * @param {ReadonlyArray<LeaseItem>} items [id, token] or {id, token}
 * @returns {Call} parses to, per item, the attempt now charged or its error
 */
export function startMany(service, items) {
  checkService(service);
  batch(/** @type {unknown[]} */ (items), "start");
  const parsed = items.map(unpackItem);
  /** @type {Arg[]} */
  const args = [String(parsed.length)];
  for (const [id, token] of parsed) args.push(id, token);
  const parse = (/** @type {any[]} */ r) =>
    r.map((v, i) => (typeof v === "number" ? v : itemError(s(v), parsed[i])));
  return call("start", service, args, parse);
}

/**
 * Items are [id, token, result] or {id, token, result}; a result of null or
 * undefined is stored as 'no result'.
 * @param {string} service
 * @param {ReadonlyArray<CompleteItem>} items
 * @param {number} maxPayload
 * @returns {Call} parses to, per item, null or its error
 */
export function completeMany(service, items, maxPayload) {
  checkService(service);
  batch(/** @type {unknown[]} */ (items), "completeMany");
  const parsed = items.map(unpackItem);
  /** @type {Arg[]} */
  const args = [String(maxPayload), String(parsed.length)];
  for (const [id, token, result] of parsed) {
    args.push(id, token, result == null ? "" : encoded(result, maxPayload));
  }
  return call("complete", service, args, (r) => withIds(r, parsed));
}

/**
 * @param {string} service
 * @param {ReadonlyArray<LeaseItem>} items [id, token] or {id, token}
 * @param {number | null} [leaseMs] null or 0: the service's lease_ms
 * @returns {Call} parses to, per item, the new deadline (ms) or its error
 */
export function extendMany(service, items, leaseMs = null) {
  checkService(service);
  batch(/** @type {unknown[]} */ (items), "extendMany");
  const parsed = items.map(unpackItem);
  /** @type {Arg[]} */
  const args = [leaseMs == null ? "0" : ms(leaseMs, "leaseMs"), String(parsed.length)];
  for (const [id, token] of parsed) args.push(id, token);
  const parse = (/** @type {any[]} */ r) =>
    r.map((v, i) => (typeof v === "number" ? v : itemError(s(v), parsed[i])));
  return call("extend", service, args, parse);
}

/**
 * @param {string} service
 * @param {string} eventId
 * @param {number | bigint | string} token
 * @param {string} reason
 * @param {boolean} dead dead-letter at once instead of retrying
 * @param {number | null} [delayMs] null: the service's backoff policy
 * @returns {Call} parses to a FailOutcome
 */
export function fail(service, eventId, token, reason, dead, delayMs = null) {
  checkService(service);
  const delay = delayMs == null ? "" : ms(delayMs, "delayMs");
  if (typeof reason !== "string") {
    throw new InvalidArgumentError(`reason must be a string, got ${describe(reason)}`);
  }
  const args = [checkId(eventId), tok(token), reason, dead ? "1" : "0", delay];
  return call("fail", service, args, (r) => new FailOutcome(/** @type {any} */ (s(r[0])), Number(r[1])));
}

/**
 * @param {string} service
 * @param {ReadonlyArray<LeaseItem>} items [id, token] or {id, token}
 * @returns {Call} parses to, per item, null or its error
 */
export function releaseMany(service, items) {
  checkService(service);
  batch(/** @type {unknown[]} */ (items), "release");
  const parsed = items.map(unpackItem);
  /** @type {Arg[]} */
  const args = [String(parsed.length)];
  for (const [id, token] of parsed) args.push(id, token);
  return call("release", service, args, (r) => withIds(r, parsed));
}

/**
 * @param {string} service
 * @param {string} eventId
 * @returns {Call} parses to a Status
 */
export function status(service, eventId) {
  checkService(service);
  const parse = (/** @type {any[]} */ r) => {
    const state = s(r[0]);
    if (state === "done") return new Status("done", "", 0, r[1]);
    if (state === "dead") return new Status("dead", s(r[1]), Number(r[2]));
    if (state === "pending") {
      const letter = s(r[1]);
      return new Status("pending", STATES[/** @type {keyof STATES} */ (letter)] ?? letter, Number(r[2]));
    }
    return new Status("unknown");
  };
  return call("result", service, [checkId(eventId)], parse);
}
