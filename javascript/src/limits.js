// Rate and concurrency limits of a service, across every worker
// (python/homing/limits.py). They are policy fields (rateLimit per
// rateWindowMs, concurrency; 0 is no limit) set with configure, and the
// dequeue script enforces them by the Redis clock, so a hundred workers
// together respect them. Here: the Client's dequeueBatch, limits and
// setLimits (a base class of ScriptCalls, kept out of client-calls.js for its
// size), reading the limits out of stats, and the configure pairs that set them.

import { call } from "./calls.js";
import { Limits } from "./types.js";

/**
 * The Limits in a stats reply (its policy.* fields and queue lengths).
 * @param {Record<string, number>} stats
 * @returns {Limits}
 */
export function limitsOf(stats) {
  return new Limits(stats["policy.rate_limit"], stats["policy.rate_window_ms"], stats["policy.concurrency"],
    stats["policy.paused"] === 1, stats.in_flight, stats.ready);
}

/**
 * The configure pairs for the limits given: 0 lifts a limit (the override is
 * removed), undefined leaves it as it is.
 * @param {{rateLimit?: number, rateWindowMs?: number, concurrency?: number}} limits
 * @returns {Record<string, number | null>}
 */
export function limitPolicy(limits) {
  /** @type {Record<string, number | null>} */
  const out = {};
  for (const k of /** @type {const} */ (["rateLimit", "rateWindowMs", "concurrency"])) {
    const v = limits[k];
    if (v !== undefined && v !== null) out[k] = v === 0 && k !== "rateWindowMs" ? null : v;
  }
  return out;
}

/** null means "the default" in the public options. @param {unknown} v */
const given = (v) => (v === null ? undefined : v);

/**
 * The Client's limit calls; ScriptCalls (client-calls.js) extends it and
 * provides call, stats and configure, which these are built on.
 */
export class LimitCalls {
  /**
   * Run a call of the table (ScriptCalls.call).
   * @param {string} _name @param {string} _service @param {Record<string, unknown>} [_args]
   * @returns {Promise<any>}
   */
  async call(_name, _service, _args) {
    throw new Error("LimitCalls.call: provided by ScriptCalls");
  }

  /**
   * Execute one operation (Client.run), its due-time hint appended to hints if given.
   * @param {import("./calls.js").Call} _call @param {Array<[string, number]> | null} [_hints]
   * @returns {Promise<any>}
   */
  async run(_call, _hints) {
    throw new Error("LimitCalls.run: provided by Client");
  }

  /**
   * A service's stats (ScriptCalls.stats).
   * @param {string} _service @returns {Promise<Record<string, number>>}
   */
  async stats(_service) {
    throw new Error("LimitCalls.stats: provided by ScriptCalls");
  }

  /**
   * Override policy fields (ScriptCalls.configure).
   * @param {string} _service @param {Record<string, number | null | undefined>} _policy
   * @returns {Promise<Record<string, number>>}
   */
  async configure(_service, _policy) {
    throw new Error("LimitCalls.configure: provided by ScriptCalls");
  }

  /**
   * As dequeue, with the reply's waitMs: above 0 only when the service's
   * rateLimit, its concurrency or its pause held ready events back; sleep
   * that long before asking again (what the Worker does). `hints` (the
   * Worker's): an array the lease deadline's due-time hint is appended to,
   * for the caller to send with hintDue once its events are handed out,
   * instead of a round trip before this returns (see Client.run);
   * `whenReady` (the Worker's ReadyWait): the dequeue waits behind its
   * blocking wait on the ready queue, in the same round trip
   * (Client._leaseWhenReady).
   * @param {string} service
   * @param {number} [count]
   * @param {{leaseMs?: number | null, reserve?: boolean, hints?: Array<[string, number]>,
   *   whenReady?: import("./ready-wait.js").ReadyWait}} [options]
   * @returns {Promise<import("./types.js").Batch>}
   */
  async dequeueBatch(service, count = 1, options = {}) {
    const args = { count, leaseMs: given(options.leaseMs), reserve: options.reserve };
    const self = /** @type {any} */ (this); // the Client this is a base class of
    const c = call("dequeue_batch", service, args, self.maxPayload);
    if (options.whenReady) return self._leaseWhenReady(c, options.hints ?? null, options.whenReady);
    return this.run(c, options.hints ?? null);
  }

  /**
   * The service's limits across every worker (0: none), whether it is paused,
   * and its leases out now.
   * @param {string} service
   * @returns {Promise<Limits>}
   */
  async limits(service) {
    return limitsOf(await this.stats(service));
  }

  /**
   * Set the limits given (0 lifts one; one left out stays): configure of
   * the policy fields rateLimit, rateWindowMs and concurrency.
   * @param {string} service
   * @param {{rateLimit?: number, rateWindowMs?: number, concurrency?: number}} limits
   * @returns {Promise<Limits>}
   */
  async setLimits(service, limits) {
    const policy = limitPolicy(limits);
    if (Object.keys(policy).length) await this.configure(service, policy);
    return this.limits(service);
  }
}
