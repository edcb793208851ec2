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
 * One lease's record. Leases of the same id under other tokens (a
 * redelivery while the first handler still runs) are chained by `next`.
 * @typedef {{lease: Lease, token: number, end: number, settling: boolean, resending: boolean,
 *   next: Rec | null}} Rec
 */

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
  /**
   * One record per lease, by event id (the id strings the reply gave, so no
   * key is built per question: a "token id" string made for every lookup,
   * and four Maps and Sets to ask, were a visible share of the worker's CPU
   * per event, issue 10); other tokens of the same id are chained.
   * settling: an outcome is on its way; resending: a completion a full Redis
   * refused, to be sent again; end: the local deadline.
   * @type {Map<string, Rec>}
   */
  #byId = new Map();
  #size = 0;

  /** @param {() => void} onDrop called whenever leases leave (room for the fetcher) */
  constructor(onDrop) {
    this.onDrop = onDrop;
  }

  get size() {
    return this.#size;
  }

  /**
   * @param {string} eventId
   * @param {number} token
   * @returns {Rec | undefined}
   */
  #get(eventId, token) {
    for (let rec = this.#byId.get(eventId); rec !== undefined && rec !== null; rec = rec.next) {
      if (rec.token === token) return rec;
    }
    return undefined;
  }

  /** @returns {Generator<Rec>} every record, in the order their ids were first added */
  *#all() {
    for (const head of this.#byId.values()) {
      for (let rec = /** @type {Rec | null} */ (head); rec !== null; rec = rec.next) yield rec;
    }
  }

  /**
   * @param {string} eventId
   * @param {number} token
   */
  #delete(eventId, token) {
    let rec = this.#byId.get(eventId);
    /** @type {Rec | null} */
    let prev = null;
    while (rec !== undefined && rec !== null && rec.token !== token) [prev, rec] = [rec, rec.next];
    if (rec === undefined || rec === null) return;
    this.#size -= 1;
    if (prev !== null) prev.next = rec.next;
    else if (rec.next !== null) this.#byId.set(eventId, rec.next);
    else this.#byId.delete(eventId);
  }

  /**
   * @param {Iterable<{id: string, token: number}>} events
   * @param {number} endsAt their local deadline (performance.now() ms)
   */
  add(events, endsAt) {
    for (const { id, token } of events) {
      const rec = this.#get(id, token);
      if (rec !== undefined) {
        // The same delivery again (not expected): a fresh record, as a Map.set would make.
        Object.assign(rec, { end: endsAt, settling: false, resending: false });
        continue;
      }
      /** @type {Rec} */
      const fresh = { lease: [id, token], token, end: endsAt, settling: false, resending: false, next: null };
      const head = this.#byId.get(id);
      if (head === undefined) {
        this.#byId.set(id, fresh);
      } else {
        let last = head;
        while (last.next !== null) last = last.next;
        last.next = fresh;
      }
      this.#size += 1;
    }
  }

  /**
   * Extended: their local deadline moves to endsAt (if still held).
   * @param {Iterable<readonly [string, number]>} leases
   * @param {number} endsAt
   */
  renew(leases, endsAt) {
    for (const [eventId, token] of leases) {
      const rec = this.#get(eventId, token);
      if (rec !== undefined) rec.end = endsAt;
    }
  }

  /**
   * The local deadline; -Infinity for a lease not held (so it is never started).
   * @param {string} eventId
   * @param {number} token
   */
  endsAt(eventId, token) {
    return this.#get(eventId, token)?.end ?? -Infinity;
  }

  /**
   * Whether a slot may start it: held, no outcome on its way, and its local
   * deadline not within marginMs from now (one lookup for what the slot asks
   * of every event before it runs).
   * @param {string} eventId
   * @param {number} token
   * @param {number} marginMs
   * @returns {"ok" | "expired" | "settled"} expired also for a lease not held
   */
  startable(eventId, token, marginMs) {
    const rec = this.#get(eventId, token);
    if (rec === undefined || performance.now() > rec.end - marginMs) return "expired";
    return rec.settling ? "settled" : "ok";
  }

  /**
   * Mark an outcome as on its way; false if one already is (or it is not held).
   * @param {string} eventId
   * @param {number} token
   */
  settle(eventId, token) {
    const rec = this.#get(eventId, token);
    if (rec === undefined || rec.settling) return false;
    rec.settling = true;
    return true;
  }

  /**
   * Settled leases whose completion waits to be sent again (a full Redis
   * refused it): the heartbeat keeps extending them until they are dropped.
   * @param {Iterable<readonly [string, number, ...unknown[]]>} leases
   */
  resend(leases) {
    for (const [eventId, token] of leases) {
      const rec = this.#get(eventId, token);
      if (rec !== undefined) rec.resending = true;
    }
  }

  /**
   * @param {string} eventId
   * @param {number} token
   */
  drop(eventId, token) {
    this.#delete(eventId, token);
    this.onDrop();
  }

  /**
   * A slot is done with a settled lease: drop it, unless its completion waits
   * to be sent again (the acker drops it once sent).
   * @param {string} eventId
   * @param {number} token
   */
  dropOwn(eventId, token) {
    if (!this.#get(eventId, token)?.resending) this.drop(eventId, token);
  }

  /**
   * Drop a batch, waking the fetcher once.
   * @param {Iterable<readonly [string, number, ...unknown[]]>} leases
   */
  dropMany(leases) {
    for (const [eventId, token] of leases) this.#delete(eventId, token);
    this.onDrop();
  }

  /** @returns {Lease[]} leases with no outcome on their way (what releaseHeld hands back) */
  unsettled() {
    const out = [];
    for (const rec of this.#all()) if (!rec.settling) out.push(rec.lease);
    return out;
  }

  /** @returns {Lease[]} leases to keep alive: unsettled, or completions waiting to be sent again */
  toExtend() {
    const out = [];
    for (const rec of this.#all()) if (!rec.settling || rec.resending) out.push(rec.lease);
    return out;
  }

  /**
   * Held under this token, with no outcome on its way.
   * @param {string} eventId
   * @param {number} token
   */
  isOpen(eventId, token) {
    const rec = this.#get(eventId, token);
    return rec !== undefined && !rec.settling;
  }

  /**
   * The newest open token held for an id (a consumer names events by id).
   * @param {string} eventId
   * @returns {number | undefined}
   */
  tokenOf(eventId) {
    let newest;
    for (let rec = this.#byId.get(eventId) ?? null; rec !== null; rec = rec.next) {
      if (!rec.settling && (newest === undefined || rec.token > newest)) newest = rec.token;
    }
    return newest;
  }
}
