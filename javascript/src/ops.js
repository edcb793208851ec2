// Each operation as data (sans-IO), for Client.run: `call(name, service,
// args, maxPayload)` builds any call of the manifest's table (calls.js). The
// positional functions below are the older API of this namespace, kept so
// that code written against it still works: each only names its positional
// parameters for call() (POSITIONAL), none shapes an argument or parses a reply.

import { newId } from "./argtypes.js";
import { atMs } from "./checks.js";
import { call } from "./calls.js";
import { MAX_BATCH } from "./manifest.js";

export { CALLS, RECORDS, call } from "./calls.js";
export { POLICY_FIELDS } from "./argtypes.js";
export { MAX_BATCH, newId };

/**
 * @typedef {import("./calls.js").Call} Call
 * @typedef {[string, number | bigint, unknown?] | {id: string, token: number | bigint, result?: unknown}} CompleteItem
 * @typedef {[string, number | bigint] | {id: string, token: number | bigint}} LeaseItem
 * @typedef {{delayMs?: number, at?: Date | number, key?: string | null, id?: string, priority?: number}} TimerOptions
 * @typedef {number | bigint} Token
 */

/**
 * function -> "call parameter..." after the service (index.d.ts has their
 * types): `max` is the maxPayload parameter; a name ending in `?` takes null
 * as "the default".
 */
const POSITIONAL = {
  enqueueMany: "enqueue_many payloads max keys ids priorities", cancelTimer: "cancel_timer id",
  dequeue: "dequeue count leaseMs? reserve", startMany: "start items", completeMany: "complete_many items max",
  extendMany: "extend_many items leaseMs?", fail: "fail id token reason dead delayMs",
  snooze: "snooze id token delayMs", progress: "progress id token value", releaseMany: "release items",
  status: "status id", stats: "stats", configure: "configure policy", deadList: "dead_list offset count",
  deadRequeue: "dead_requeue ids count", deadPurge: "dead_purge ids count", promote: "promote limit",
  distribute: "distribute limit",
};

/** @param {string} spec @returns {(service: string, ...a: any[]) => Call} */
const positional = (spec) => {
  const [name, ...params] = spec.split(" ");
  return (service, ...a) => {
    /** @type {Record<string, unknown>} */
    const args = {};
    params.forEach((p, i) => {
      if (p !== "max") args[p.replace("?", "")] = a[i] === null && p.endsWith("?") ? undefined : a[i];
    });
    return call(name, service, args, params.includes("max") ? a[params.indexOf("max")] : undefined);
  };
};

export const {
  enqueueMany, cancelTimer, dequeue, startMany, completeMany, extendMany, fail, snooze, progress, releaseMany,
  status, stats, configure, deadList, deadRequeue, deadPurge, promote, distribute,
} = /** @type {Record<keyof typeof POSITIONAL, (service: string, ...a: any[]) => Call>} */ (
  Object.fromEntries(Object.entries(POSITIONAL).map(([fn, spec]) => [fn, positional(spec)])));
/** @param {string} service @param {unknown} payload @param {number} maxPayload @param {TimerOptions} [o] */
export const createTimer = (service, payload, maxPayload, o = {}) =>
  call("create_timer", service, { payload, delayMs: o.delayMs, atMs: atMs(o.at), key: o.key, id: o.id,
    priority: o.priority }, maxPayload);
/** @param {string} name the daemon's name (role:host:pid) */
export const beat = (name) => call("beat", "", { name });
