// The admin and daemon operations (stats, policy, dead letters, the
// scheduler's and distributor's steps), as data like the rest of ops.js.

import { batch, call, describe, s, whole } from "./call.js";
import { InvalidArgumentError } from "./errors.js";
import { MAX_BATCH, POLICY_DEFAULTS, checkId, checkService } from "./manifest.js";
import { DeadLetter, DeadPage, DistributeResult, PromoteResult } from "./types.js";

/** @typedef {import("./call.js").Call} Call */
/** @typedef {import("./call.js").Arg} Arg */

/** @param {string} text a number as the scripts print it: an integer or a fraction */
const num = (text) => Number(text);

/**
 * @param {string} service
 * @returns {Call} parses to {name: value} with the script's names ('ready',
 * 'total.completed', 'policy.lease_ms', ...)
 */
export function stats(service) {
  checkService(service);
  const parse = (/** @type {any[]} */ r) => {
    /** @type {Record<string, number>} */
    const out = {};
    for (let i = 0; i < r.length; i += 2) {
      const name = s(r[i]);
      out[name] = name.startsWith("policy.") ? num(s(r[i + 1])) : Number(r[i + 1]);
    }
    return out;
  };
  return call("stats", service, [], parse);
}

/** The policy fields by their JavaScript names. */
export const POLICY_FIELDS = Object.freeze(
  Object.fromEntries(
    Object.keys(POLICY_DEFAULTS).map((f) => [f.replace(/_([a-z])/g, (_, c) => c.toUpperCase()), f]),
  ),
);
const FROM_FIELD = Object.fromEntries(Object.entries(POLICY_FIELDS).map(([js, f]) => [f, js]));

/**
 * @param {string} service
 * @param {Record<string, number | null | undefined>} policy by camelCase name
 * (leaseMs, maxAttempts, ...; the script's snake_case names work too); null
 * removes an override
 * @returns {Call} parses to the effective policy by camelCase name
 */
export function configure(service, policy) {
  checkService(service);
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) {
    throw new InvalidArgumentError(`configure takes an object of policy fields, got ${describe(policy)}`);
  }
  /** @type {Arg[]} */
  const args = [];
  for (const [name, value] of Object.entries(policy)) {
    const field = Object.hasOwn(POLICY_FIELDS, name)
      ? POLICY_FIELDS[name]
      : Object.hasOwn(FROM_FIELD, name) ? name : null;
    if (field === null) {
      throw new InvalidArgumentError(
        `unknown policy field ${JSON.stringify(name)}; known: ${Object.keys(POLICY_FIELDS).join(", ")}`,
      );
    }
    if (value != null && (typeof value !== "number" || !Number.isFinite(value))) {
      throw new InvalidArgumentError(`${name} must be a finite number, got ${describe(value)}`);
    }
    args.push(field, value == null ? "" : String(value));
  }
  const parse = (/** @type {any[]} */ r) => {
    /** @type {Record<string, number>} */
    const out = {};
    for (let i = 0; i < r.length; i += 2) out[FROM_FIELD[s(r[i])] ?? s(r[i])] = num(s(r[i + 1]));
    return out;
  };
  return call("configure", service, args, parse);
}

/**
 * @param {string} service
 * @param {number} offset
 * @param {number} count
 * @returns {Call} parses to a DeadPage
 */
export function deadList(service, offset, count) {
  checkService(service);
  const parse = (/** @type {any[]} */ r) => {
    const letters = [];
    for (let i = 1; i < r.length; i += 5) {
      letters.push(new DeadLetter(s(r[i]), Number(r[i + 1]), Number(r[i + 2]), s(r[i + 3]), r[i + 4]));
    }
    return new DeadPage(Number(r[0]), letters);
  };
  const args = [String(whole(offset, "offset", 0)), String(whole(count, "count", 1, MAX_BATCH))];
  return call("dead_list", service, args, parse);
}

/**
 * @param {ReadonlyArray<string> | null | undefined} ids
 * @param {number} count
 * @returns {Arg[]}
 */
function deadSelect(ids, count) {
  const n = String(whole(count, "count", 1, MAX_BATCH));
  if (ids == null) return [n];
  batch(/** @type {unknown[]} */ (ids), "dead letter ids");
  return [n, ...ids.map(checkId)];
}

/**
 * @param {string} service
 * @param {ReadonlyArray<string> | null | undefined} ids the named dead letters, or null for the oldest
 * @param {number} count how many of the oldest
 * @returns {Call} parses to [requeued, remaining]
 */
export function deadRequeue(service, ids, count) {
  checkService(service);
  return call("dead_requeue", service, deadSelect(ids, count), (r) => [Number(r[0]), Number(r[1])]);
}

/**
 * @param {string} service
 * @param {ReadonlyArray<string> | null | undefined} ids the named dead letters, or null for the oldest
 * @param {number} count how many of the oldest
 * @returns {Call} parses to [purged, remaining]
 */
export function deadPurge(service, ids, count) {
  checkService(service);
  return call("dead_purge", service, deadSelect(ids, count), (r) => [Number(r[0]), Number(r[1])]);
}

/**
 * @param {string} service
 * @param {number} limit
 * @returns {Call} parses to a PromoteResult
 */
export function promote(service, limit) {
  checkService(service);
  return call("promote", service, [String(whole(limit, "limit", 1))],
    (r) => new PromoteResult(r[0], r[1], r[2], Boolean(r[3]), r[4], r[5] ?? 0));
}

/**
 * A daemon's beat; the script's only key is the global `<prefix>:daemons`, no service.
 * @param {string} name the daemon's name (role:host:pid), 1..256 bytes
 * @returns {Call} parses to the beat's time (ms, Redis clock)
 */
export function beat(name) {
  if (typeof name !== "string" || name === "" || Buffer.byteLength(name) > 256) {
    throw new InvalidArgumentError(`daemon name must be 1..256 bytes of text, got ${describe(name)}`);
  }
  return call("beat", "", [name], (r) => Number(r));
}

/**
 * @param {string} service
 * @param {number} limit
 * @returns {Call} parses to a DistributeResult
 */
export function distribute(service, limit) {
  checkService(service);
  return call("distribute", service, [String(whole(limit, "limit", 1))],
    (r) => new DistributeResult(r[0], r[1], Boolean(r[2])));
}
