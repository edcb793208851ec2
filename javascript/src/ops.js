// Each operation as data (sans-IO), for Client.run: `call(name, service,
// args, maxPayload)` builds any call of the manifest's table (calls.js). The
// positional functions below are the older API of this namespace, kept so
// that code written against it still works: each only names its arguments
// for call(), none shapes an argument or parses a reply.

import { atMs, newId } from "./argtypes.js";
import { call } from "./calls.js";
import { MAX_BATCH } from "./manifest.js";

export { CALLS, RECORDS, call } from "./calls.js";
export { POLICY_FIELDS } from "./argtypes.js";
export { MAX_BATCH, newId };

/**
 * @typedef {import("./calls.js").Call} Call
 * @typedef {[string, number | bigint | string, unknown?] | {id: string, token: number | bigint | string, result?: unknown}} CompleteItem
 * @typedef {[string, number | bigint | string] | {id: string, token: number | bigint | string}} LeaseItem
 * @typedef {{delayMs?: number, at?: Date | number, key?: string | null, id?: string}} TimerOptions
 * @typedef {number | bigint | string} Token
 */

/** null means "the default" in these positional parameters. @param {unknown} v */
const given = (v) => (v === null ? undefined : v);

/** @param {string} service @param {Iterable<unknown>} payloads @param {number} maxPayload
 * @param {ReadonlyArray<string | null | undefined> | null} [keys] @param {ReadonlyArray<string> | null} [ids] */
export const enqueueMany = (service, payloads, maxPayload, keys = null, ids = null) =>
  call("enqueue_many", service, { payloads, keys, ids }, maxPayload);
/** @param {string} service @param {unknown} payload @param {number} maxPayload @param {TimerOptions} [o] */
export const createTimer = (service, payload, maxPayload, o = {}) =>
  call("create_timer", service, { payload, delayMs: o.delayMs, atMs: atMs(o.at), key: o.key, id: o.id }, maxPayload);
/** @param {string} service @param {string} timerId */
export const cancelTimer = (service, timerId) => call("cancel_timer", service, { id: timerId });
/** @param {string} service @param {number} count @param {number | null} [leaseMs] @param {boolean} [reserve] */
export const dequeue = (service, count, leaseMs = null, reserve = false) =>
  call("dequeue", service, { count, leaseMs: given(leaseMs), reserve });
/** @param {string} service @param {ReadonlyArray<LeaseItem>} items */
export const startMany = (service, items) => call("start", service, { items });
/** @param {string} service @param {ReadonlyArray<CompleteItem>} items @param {number} maxPayload */
export const completeMany = (service, items, maxPayload) => call("complete_many", service, { items }, maxPayload);
/** @param {string} service @param {ReadonlyArray<LeaseItem>} items @param {number | null} [leaseMs] */
export const extendMany = (service, items, leaseMs = null) =>
  call("extend_many", service, { items, leaseMs: given(leaseMs) });
/** @param {string} service @param {string} id @param {Token} token @param {string} reason @param {boolean} dead
 * @param {number | null} [delayMs] */
export const fail = (service, id, token, reason, dead, delayMs = null) =>
  call("fail", service, { id, token, reason, dead, delayMs });
/** @param {string} service @param {string} id @param {Token} token @param {number} delayMs */
export const snooze = (service, id, token, delayMs) => call("snooze", service, { id, token, delayMs });
/** @param {string} service @param {string} id @param {Token} token @param {number} value */
export const progress = (service, id, token, value) => call("progress", service, { id, token, value });
/** @param {string} service @param {ReadonlyArray<LeaseItem>} items */
export const releaseMany = (service, items) => call("release", service, { items });
/** @param {string} service @param {string} eventId */
export const status = (service, eventId) => call("status", service, { id: eventId });
/** @param {string} service */
export const stats = (service) => call("stats", service);
/** @param {string} service @param {Record<string, number | null | undefined>} policy */
export const configure = (service, policy) => call("configure", service, { policy });
/** @param {string} service @param {number} offset @param {number} count */
export const deadList = (service, offset, count) => call("dead_list", service, { offset, count });
/** @param {string} service @param {ReadonlyArray<string> | null | undefined} ids @param {number} count */
export const deadRequeue = (service, ids, count) => call("dead_requeue", service, { ids, count });
/** @param {string} service @param {ReadonlyArray<string> | null | undefined} ids @param {number} count */
export const deadPurge = (service, ids, count) => call("dead_purge", service, { ids, count });
/** @param {string} service @param {number} limit */
export const promote = (service, limit) => call("promote", service, { limit });
/** @param {string} service @param {number} limit */
export const distribute = (service, limit) => call("distribute", service, { limit });
/** @param {string} name the daemon's name (role:host:pid) */
export const beat = (name) => call("beat", "", { name });
