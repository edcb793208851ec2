// The leases a worker holds and its counts (Python's homing.holding): the
// bookkeeping every loop of the worker reads and writes, kept apart from the
// loops (worker.js, fetcher.js, acker.js, heartbeat.js) so that the rules of
// who may settle, drop or extend a lease live in one place.

import { RedisFullError } from "./errors.js";

/** @typedef {import("./worker-support.js").Logger} Logger */

/** Counts since the worker started. */
export class WorkerStats {
  received = 0;
  completed = 0;
  failed = 0;
  released = 0;
  lost = 0;
  /** events whose handlers snoozed them (returned or threw a Snooze) */
  snoozed = 0;
  /** handlers failed by the handler timeout */
  timedOut = 0;
  /** events not started because their lease had run out while they waited (by the local clock) */
  expiredUnstarted = 0;
  /** outcomes taken as done though fewer replicas than waitReplicas confirmed them */
  unreplicated = 0;
  /** empty dequeues after which the fetcher slept the wait the service's limits or pause asked for */
  limited = 0;
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
