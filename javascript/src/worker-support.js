// The worker's bookkeeping: which leases it holds (Python's holding.Held),
// its counts, its default logger, its signal handling and small helpers.
// Kept apart from the loops in worker.js.

import { Consumer, Reject } from "./consumer.js";
import { LAYOUT, LIMITS, MAX_BATCH } from "./manifest.js";
import {
  ConnectionLostError,
  CorruptEnvelopeError,
  HomingError,
  InvalidArgumentError,
  NotReplicatedError,
  RedisFullError,
  StaleLeaseError,
} from "./errors.js";

/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./sync.js").Stopper} Stopper */
/** @typedef {import("./types.js").Event} Event */

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
 * The warning for outcomes (acknowledgements, fails) that fewer replicas
 * confirmed than `waitReplicas` asks: the worker takes them as done (they
 * happened on the primary; a failover now may bring the event back, at
 * least once), and says so at most once a minute, with how many since.
 */
export class ReplicationWarning {
  #last = -Infinity;
  #since = 0;

  /**
   * @param {Logger} log
   * @param {WorkerStats} stats counts them in unreplicated
   * @param {number} [everyMs]
   */
  constructor(log, stats, everyMs = 60000) {
    this.log = log;
    this.stats = stats;
    this.everyMs = everyMs;
  }

  /** @param {Error} err */
  note(err) {
    this.stats.unreplicated += 1;
    this.#since += 1;
    const now = performance.now();
    if (now - this.#last < this.everyMs) return;
    const more = this.#since > 1 ? ` (${this.#since} such outcomes since the last warning)` : "";
    this.log.warn(`${err.message}; taken as done: a failover now may bring the event back (at least once)${more}`);
    this.#last = now;
    this.#since = 0;
  }
}

/**
 * fn's result; a NotReplicatedError (the write happened on the primary, fewer
 * replicas confirmed it) gives the result it carries, noted in warning.
 * @template T
 * @param {ReplicationWarning | undefined} warning
 * @param {() => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function accepted(warning, fn) {
  try {
    return await fn();
  } catch (exc) {
    if (!(exc instanceof NotReplicatedError) || warning === undefined) throw exc;
    warning.note(exc);
    return /** @type {T} */ (/** @type {any} */ (exc).result);
  }
}

/** The reason an event is failed with when its handler ran past the handler timeout. */
export class HandlerTimeoutError extends Error {
  /** @param {number} ms the timeout */
  constructor(ms) {
    super(`handler timed out after ${Math.round(ms)} ms`);
    this.name = "HandlerTimeoutError";
    this.timeoutMs = ms;
  }
}

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
  // Cut to the scripts' cap here too, so that the reason logged is the one stored.
  const reason = (timeout ? /** @type {Error} */ (exc).message : describe(exc)).slice(0, LIMITS.reason_bytes);
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

/** Counts since the worker started. */
export class WorkerStats {
  received = 0;
  completed = 0;
  failed = 0;
  released = 0;
  lost = 0;
  /** handlers failed by the handler timeout */
  timedOut = 0;
  /** events not started because their lease had run out while they waited (by the local clock) */
  expiredUnstarted = 0;
  /** outcomes taken as done though fewer replicas than waitReplicas confirmed them */
  unreplicated = 0;
  /** @type {Record<string, number>} refusals by error code */
  errors = {};
}

/**
 * Count a refusal under its code.
 * @param {WorkerStats} stats
 * @param {string} code
 */
export function countError(stats, code) {
  stats.errors[code] = (stats.errors[code] ?? 0) + 1;
}

/**
 * Count the outcome of a batch of completions: per item null (done) or its
 * error. A refusal by a full Redis (REDIS_FULL: the item was left leased) is
 * not an outcome: those items are returned, to be sent again.
 * @template T
 * @param {WorkerStats} stats
 * @param {Logger} log
 * @param {readonly T[]} batch
 * @param {({code: string, message: string} | null)[]} errors per item of batch
 * @returns {{settled: T[], full: T[]}} full: to send again
 */
export function countAcks(stats, log, batch, errors) {
  /** @type {T[]} */
  const settled = [];
  /** @type {T[]} */
  const full = [];
  errors.forEach((err, i) => {
    if (err instanceof RedisFullError) {
      full.push(batch[i]);
      return;
    }
    settled.push(batch[i]);
    if (err === null) {
      stats.completed += 1;
    } else {
      stats.lost += 1;
      countError(stats, err.code);
      log.warn(`completion refused: ${err.message}`);
    }
  });
  return { settled, full };
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

/**
 * Run fn; on a homing error warn, back off (50 ms doubling to 2 s, or less if
 * the worker stops) and return null, as Python's _retrying: not only a lost
 * connection, so that a transient refusal (BUSY, a cluster's TRYAGAIN,
 * READONLY, a key someone broke) cannot end a loop while its leases expire.
 * Any other error is a bug in the worker or the client, and retrying it every
 * 2 s would hide it: it is thrown, and the worker stops on it (worker.js).
 * @template T
 * @param {Logger} log
 * @param {Stopper} stop
 * @param {string} what
 * @param {() => Promise<T>} fn
 * @param {{ms: number}} pause
 * @returns {Promise<T | null>}
 */
export async function retrying(log, stop, what, fn, pause) {
  try {
    const out = await fn();
    pause.ms = 50;
    return out;
  } catch (exc) {
    if (!(exc instanceof HomingError)) throw exc;
    log.warn(`${what}: ${describe(exc)}; retrying in ${pause.ms} ms`);
    await stop.wait(pause.ms);
    pause.ms = Math.min(pause.ms * 2, MAX_PAUSE);
    return null;
  }
}

/**
 * Fail an event for its handler; a lost connection is retried (50 ms doubling
 * to 2 s) until it comes back or the worker stops, and then the lease expires.
 * A fail fewer replicas confirmed than asked is taken as sent.
 * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
 *   _replication?: ReplicationWarning}} worker
 * @param {Stopper} stop
 * @param {{id: string, token: number}} ev
 * @param {string} reason
 * @param {boolean} dead
 */
export async function sendFail({ client, service, stats, log, _replication }, stop, ev, reason, dead) {
  let pause = 50;
  for (;;) {
    try {
      const out = await accepted(_replication, () => client.fail(service, ev.id, ev.token, reason, { dead }));
      stats.failed += 1;
      log.info(`${service}/${ev.id} -> ${out.action}`);
      return;
    } catch (err) {
      if (!(err instanceof HomingError)) throw err; // a bug, as in retrying()
      if (!(err instanceof ConnectionLostError)) {
        if (err instanceof StaleLeaseError) {
          stats.lost += 1;
        } else {
          // The lease expires and the event is retried.
          log.error(`could not fail ${service}/${ev.id}: ${describe(err)}`);
          countError(stats, err.code);
        }
        return;
      }
      if ((await stop.wait(pause)) && pause >= MAX_PAUSE) return; // the lease will expire
      pause = Math.min(pause * 2, MAX_PAUSE);
    }
  }
}

/**
 * Release leases (front of the ready queue, no attempt counted), MAX_BATCH
 * at a time, and forget them; one that cannot be released returns when its
 * lease expires.
 * @param {{client: Client, service: string, stats: WorkerStats, log: Logger}} worker
 * @param {Held} held
 * @param {Lease[]} items
 */
export async function release({ client, service, stats, log }, held, items) {
  for (let i = 0; i < items.length; i += MAX_BATCH) {
    const chunk = items.slice(i, i + MAX_BATCH);
    try {
      const errors = await client.release(service, chunk);
      stats.released += errors.filter((e) => e === null).length;
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc; // a bug, as in retrying()
      log.warn(`could not release ${chunk.length} events (${describe(exc)}); they return when their leases expire`);
    }
    held.dropMany(chunk);
  }
}

const noop = () => {};
/** Warnings and errors to the console, as Python's logging does by default. */
export const DEFAULT_LOGGER = Object.freeze({
  debug: noop,
  info: noop,
  warn: (/** @type {any[]} */ ...a) => console.warn("homing.worker:", ...a),
  error: (/** @type {any[]} */ ...a) => console.error("homing.worker:", ...a),
});

/** @typedef {[string, number]} Lease an event id and the token of one delivery of it */

/**
 * @param {string} eventId
 * @param {number} token
 */
const keyOf = (eventId, token) => `${token} ${eventId}`;

/**
 * The leases a worker holds (Python's holding.Held), and which of them have
 * an outcome on its way.
 *
 * Leases are keyed by (event id, token), never by id alone: after a stall the
 * same event can come back to the same worker under a new token while the
 * first handler still runs, and the two deliveries must not share a record
 * (the new lease would go unextended and its completion dropped).
 *
 * `settling` holds leases whose outcome (complete, fail, or lost) is being
 * sent or is known: the heartbeat stops extending them, and an extend refused
 * for one of them is the expected race with its acknowledgement. Those in
 * `resending` are the exception: completions a full Redis refused
 * (REDIS_FULL), kept and sent again, so their leases are still extended.
 *
 * Each lease also carries the worker's own idea of when it ends, by the
 * monotonic clock (performance.now()): the time just before the call that set
 * it (the dequeue, or the last extend that succeeded) plus the lease length.
 * The real deadline is later than that, so an event whose local deadline
 * passed may already be someone else's and is never started.
 */
export class Held {
  /** @type {Map<string, Lease>} */
  #leases = new Map();
  /** @type {Set<string>} */
  #settling = new Set();
  /** @type {Set<string>} */
  #resending = new Set();
  /** @type {Map<string, number>} lease -> local deadline (performance.now() ms) */
  #ends = new Map();

  /** @param {() => void} onDrop called whenever leases leave (room for the fetcher) */
  constructor(onDrop) {
    this.onDrop = onDrop;
  }

  get size() {
    return this.#leases.size;
  }

  /**
   * @param {Iterable<{id: string, token: number}>} events
   * @param {number} endsAt their local deadline (performance.now() ms)
   */
  add(events, endsAt) {
    for (const ev of events) {
      const key = keyOf(ev.id, ev.token);
      this.#leases.set(key, [ev.id, ev.token]);
      this.#ends.set(key, endsAt);
    }
  }

  /**
   * Extended: their local deadline moves to endsAt (if still held).
   * @param {Iterable<readonly [string, number]>} leases
   * @param {number} endsAt
   */
  renew(leases, endsAt) {
    for (const [eventId, token] of leases) {
      const key = keyOf(eventId, token);
      if (this.#leases.has(key)) this.#ends.set(key, endsAt);
    }
  }

  /**
   * The local deadline; -Infinity for a lease not held (so it is never started).
   * @param {string} eventId
   * @param {number} token
   */
  endsAt(eventId, token) {
    return this.#ends.get(keyOf(eventId, token)) ?? -Infinity;
  }

  /**
   * Mark an outcome as on its way; false if one already is (or it is not held).
   * @param {string} eventId
   * @param {number} token
   */
  settle(eventId, token) {
    const key = keyOf(eventId, token);
    if (this.#settling.has(key) || !this.#leases.has(key)) return false;
    this.#settling.add(key);
    return true;
  }

  /**
   * Settled leases whose completion waits to be sent again (a full Redis
   * refused it): the heartbeat keeps extending them until they are dropped.
   * @param {Iterable<readonly [string, number, ...unknown[]]>} leases
   */
  resend(leases) {
    for (const [eventId, token] of leases) {
      const key = keyOf(eventId, token);
      if (this.#leases.has(key)) this.#resending.add(key);
    }
  }

  /**
   * @param {string} eventId
   * @param {number} token
   */
  drop(eventId, token) {
    this.dropMany([[eventId, token]]);
  }

  /**
   * A slot is done with a settled lease: drop it, unless its completion waits
   * to be sent again (the acker drops it once sent).
   * @param {string} eventId
   * @param {number} token
   */
  dropOwn(eventId, token) {
    if (!this.#resending.has(keyOf(eventId, token))) this.drop(eventId, token);
  }

  /**
   * Drop a batch, waking the fetcher once.
   * @param {Iterable<readonly [string, number, ...unknown[]]>} leases
   */
  dropMany(leases) {
    for (const [eventId, token] of leases) {
      const key = keyOf(eventId, token);
      this.#leases.delete(key);
      this.#settling.delete(key);
      this.#resending.delete(key);
      this.#ends.delete(key);
    }
    this.onDrop();
  }

  /** @returns {Lease[]} leases with no outcome on their way (what releaseHeld hands back) */
  unsettled() {
    return [...this.#leases].filter(([key]) => !this.#settling.has(key)).map(([, lease]) => lease);
  }

  /** @returns {Lease[]} leases to keep alive: unsettled, or completions waiting to be sent again */
  toExtend() {
    return [...this.#leases]
      .filter(([key]) => !this.#settling.has(key) || this.#resending.has(key))
      .map(([, lease]) => lease);
  }

  /**
   * Held under this token, with no outcome on its way.
   * @param {string} eventId
   * @param {number} token
   */
  isOpen(eventId, token) {
    const key = keyOf(eventId, token);
    return this.#leases.has(key) && !this.#settling.has(key);
  }

  /**
   * The newest open token held for an id (a consumer names events by id).
   * @param {string} eventId
   * @returns {number | undefined}
   */
  tokenOf(eventId) {
    let newest;
    for (const [id, token] of this.unsettled()) {
      if (id === eventId && (newest === undefined || token > newest)) newest = token;
    }
    return newest;
  }
}

/**
 * The handler timeout's bookkeeping (Python's homing.watchdog): per slot, the
 * event it runs, since when (performance.now()) and the AbortController its
 * handler was given.
 *
 * Node cannot stop a running function, so what the worker does for a handler
 * past its timeout is stop holding the event for it: the event is failed
 * (retried or dead-lettered by the service's policy), its lease is no longer
 * extended and whatever the handler reports later is dropped; the handler's
 * signal is aborted, so one that listens stops. The slot counts as hung
 * until the handler's promise settles.
 */
export class Watchdog {
  /** @type {Map<number, {ev: Event, since: number, controller: AbortController}>} */
  #running = new Map();
  /** @type {Set<number>} */
  #hung = new Set();

  /**
   * @param {number} slot
   * @param {Event} ev
   * @param {AbortController} controller
   */
  begin(slot, ev, controller) {
    this.#running.set(slot, { ev, since: performance.now(), controller });
  }

  /**
   * The handler returned or threw: the slot is free again, hung or not.
   * @param {number} slot
   * @returns {boolean} whether it had been reported past its timeout
   */
  end(slot) {
    this.#running.delete(slot);
    return this.#hung.delete(slot);
  }

  /**
   * Handlers running past timeoutMs, not reported yet; each is reported once
   * and its slot marked hung until the handler returns.
   * @param {number} timeoutMs
   * @returns {{ev: Event, controller: AbortController}[]}
   */
  overdue(timeoutMs) {
    const now = performance.now();
    const out = [];
    for (const [slot, run] of this.#running) {
      if (!this.#hung.has(slot) && now - run.since > timeoutMs) {
        this.#hung.add(slot);
        out.push(run);
      }
    }
    return out;
  }

  /** How many slots run a handler past its timeout right now. */
  get hung() {
    return this.#hung.size;
  }
}

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
