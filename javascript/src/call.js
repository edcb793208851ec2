// The parts every operation shares: the Call shape, argument checks that need
// no Redis, and per-item error replies. See ops.js.

import { randomUUID } from "node:crypto";

import * as envelope from "./envelope.js";
import { BY_CODE, HomingError, InvalidArgumentError, PayloadTooLargeError } from "./errors.js";
import { checkId } from "./manifest.js";

export const MAX_BATCH = 1000;
export const STATES = { r: "ready", l: "leased", t: "timer", w: "waiting", x: "expired" };

/**
 * @typedef {string | Buffer} Arg
 * @typedef {object} Call one script invocation; the client turns `service` into its KEYS
 * @property {string} script
 * @property {string} service
 * @property {Arg[]} args
 * @property {(reply: any) => any} parse
 * @typedef {[string, number | bigint | string, unknown?] | {id: string, token: number | bigint | string, result?: unknown}} CompleteItem
 * @typedef {[string, number | bigint | string] | {id: string, token: number | bigint | string}} LeaseItem
 */

/**
 * @param {string} script
 * @param {string} service
 * @param {Arg[]} args
 * @param {(reply: any) => any} parse
 * @returns {Call}
 */
export function call(script, service, args, parse) {
  return { script, service, args, parse };
}

/** @param {unknown} v a reply item: Buffer, string or number */
export const s = (v) => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v));

/** A random event id (UUID4 hex): unguessable and unique without coordination. */
export function newId() {
  return randomUUID().replaceAll("-", "");
}

/**
 * @param {unknown[]} items
 * @param {string} what
 */
export function batch(items, what) {
  if (items.length < 1 || items.length > MAX_BATCH) {
    throw new InvalidArgumentError(`${what} takes 1..${MAX_BATCH} items, got ${items.length}`);
  }
}

/**
 * @param {unknown} payload
 * @param {number} maxPayload
 */
export function encoded(payload, maxPayload) {
  const data = envelope.encode(payload);
  if (data.length > maxPayload) {
    throw new PayloadTooLargeError(
      `encoded payload is ${data.length} bytes, over the limit of ${maxPayload}; ` +
        "nothing was written",
    );
  }
  return data;
}

/**
 * A whole number of milliseconds >= 0, as text (fractions are truncated, as Python's int()).
 * @param {unknown} value
 * @param {string} what
 */
export function ms(value, what) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a number >= 0, got ${String(value)}`);
  }
  return String(Math.trunc(value));
}

/**
 * A lease token as text: an integer number, a bigint or a string of digits.
 * @param {unknown} token
 */
export function tok(token) {
  if (
    (typeof token === "number" && Number.isSafeInteger(token)) ||
    typeof token === "bigint" ||
    (typeof token === "string" && /^-?\d+$/.test(token))
  ) {
    return String(token);
  }
  throw new InvalidArgumentError(`a lease token must be an integer, got ${String(token)}`);
}

/**
 * @param {CompleteItem | LeaseItem} item
 * @returns {[string, string, unknown]} id, token as text, result
 */
export function unpackItem(item) {
  if (Array.isArray(item)) return [checkId(item[0]), tok(item[1]), item[2]];
  if (item && typeof item === "object") {
    const it = /** @type {{id: string, token: unknown, result?: unknown}} */ (item);
    return [checkId(it.id), tok(it.token), it.result];
  }
  throw new InvalidArgumentError(`an item must be [id, token, ...] or {id, token}, got ${item}`);
}

/**
 * Per item: null for 'OK', else the error for the code the script reported.
 * @param {any[]} r
 * @param {[string, string, unknown][]} items
 * @returns {(HomingError | null)[]}
 */
export function withIds(r, items) {
  return r.map((c, i) => (s(c) === "OK" ? null : itemError(s(c), items[i])));
}

/**
 * The error of one item of a batch, naming the event and token.
 * @param {string} code
 * @param {[string, string, unknown]} item
 */
export function itemError(code, [id, token]) {
  /** @type {typeof HomingError} */
  const cls = Object.hasOwn(BY_CODE, code) ? BY_CODE[/** @type {keyof BY_CODE} */ (code)] : HomingError;
  return new cls(`${code}: event ${id} (token ${token}): ${cls.description}`);
}
