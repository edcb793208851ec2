// How the worker's outcomes reach Redis (Python's homing.outcomes): fails
// and releases, the retry of a loop's call on a homing error, and the rule
// that an outcome fewer replicas confirmed (NotReplicatedError) is taken as
// done. Kept apart from the loops in worker.js, which decide what to send;
// this decides how a refusal or a lost connection is handled.

import {
  ConnectionLostError,
  HomingError,
  InvalidArgumentError,
  NotReplicatedError,
  StaleLeaseError,
} from "./errors.js";
import { MAX_BATCH } from "./manifest.js";
import { call as buildCall } from "./calls.js";
import { countError } from "./holding.js";
import { MAX_PAUSE, describe } from "./worker-support.js";

/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./sync.js").Stopper} Stopper */
/** @typedef {import("./worker-support.js").Logger} Logger */
/** @typedef {import("./holding.js").WorkerStats} WorkerStats */
/** @typedef {import("./holding.js").Held} Held */
/** @typedef {import("./holding.js").Lease} Lease */

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
export async function sendFail(worker, stop, ev, reason, dead) {
  const { client, service, stats, log } = worker;
  const out = await sendSettled(worker, stop, ev, "fail", () => client.fail(service, ev.id, ev.token, reason, { dead }));
  if (out === undefined) return;
  stats.failed += 1;
  log.info(`${service}/${ev.id} -> ${out.action}`);
}

/**
 * Send the outcome of a settled lease once (fail or snooze): its reply, or
 * undefined when it was not sent. A lost connection is retried (50 ms
 * doubling to MAX_PAUSE) until a stop; a lost lease counts as lost; any other
 * refusal is logged and the lease left to expire, so the event is retried.
 * @template T
 * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
 *   _replication?: ReplicationWarning}} worker
 * @param {Stopper} stop
 * @param {{id: string, token: number}} ev
 * @param {string} what
 * @param {() => Promise<T>} send
 * @returns {Promise<T | undefined>}
 */
async function sendSettled({ service, stats, log, _replication }, stop, ev, what, send) {
  let pause = 50;
  for (;;) {
    try {
      return await accepted(_replication, send);
    } catch (err) {
      if (!(err instanceof HomingError)) throw err; // a bug, as in retrying()
      if (!(err instanceof ConnectionLostError)) {
        if (err instanceof StaleLeaseError) {
          stats.lost += 1;
        } else {
          // The lease expires and the event is retried.
          log.error(`could not ${what} ${service}/${ev.id}: ${describe(err)}`);
          countError(stats, err.code);
        }
        return undefined;
      }
      if ((await stop.wait(pause)) && pause >= MAX_PAUSE) return undefined; // the lease will expire
      pause = Math.min(pause * 2, MAX_PAUSE);
    }
  }
}

/**
 * Snooze an event for its handler (it returned or threw a Snooze): due again
 * after delayMs, not charged an attempt, or dead-lettered by the script once
 * the service's max_snoozes is used up. A lost connection is retried as in
 * sendFail. A delay the client refuses (not a whole number of ms in 0..12 h)
 * is the handler's bug: the event is failed with that reason instead, so it
 * is retried (and charged) rather than left to its lease.
 * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
 *   _replication?: ReplicationWarning}} worker
 * @param {Stopper} stop
 * @param {{id: string, token: number}} ev
 * @param {number} delayMs
 */
export async function sendSnooze(worker, stop, ev, delayMs) {
  const { client, service, stats, log } = worker;
  let call;
  try {
    // Built (and so checked) before anything is sent.
    call = buildCall("snooze", service, { id: ev.id, token: ev.token, delayMs }, client.maxPayload);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    log.warn(`${service}/${ev.id}: the handler's snooze was refused (${err.message}); failing it`);
    await sendFail(worker, stop, ev, `Snooze: ${err.message}`, false);
    return;
  }
  const out = await sendSettled(worker, stop, ev, "snooze", () => client.run(call));
  if (out === undefined) return;
  if (out.action === "snoozed") stats.snoozed += 1;
  else stats.failed += 1;
  log.info(`${service}/${ev.id} -> ${out.action} (snooze)`);
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
