// Rate and concurrency limits of a service, across every worker
// (python/homing/limits.py). They are policy fields (rateLimit per
// rateWindowMs, concurrency; 0 is no limit) set with configure, and the
// dequeue script enforces them by the Redis clock, so a hundred workers
// together respect them. Here: reading them out of stats, and the configure
// pairs that set them.

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
