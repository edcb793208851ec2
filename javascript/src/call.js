// The parts every operation shares: the Call shape, argument checks that need
// no Redis, and per-item error replies. See ops.js.

import { randomUUID } from "node:crypto";

import * as envelope from "./envelope.js";
import { BY_CODE, HomingError, InvalidArgumentError, PayloadTooLargeError } from "./errors.js";
import { MAX_BATCH, STATUS_NAMES, checkId } from "./manifest.js";

export { MAX_BATCH };
/** Status letter -> name (lua/keys.json statuses), kept under its old name. */
export const STATES = STATUS_NAMES;
/** The largest whole number a Lua double (and a JavaScript number) holds exactly. */
export const MAX_WHOLE = Number.MAX_SAFE_INTEGER;

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
  // A string has a length too: "abc" must not become the items "a", "b", "c".
  if (!Array.isArray(items)) {
    throw new InvalidArgumentError(`${what} takes an array, got ${describe(items)}`);
  }
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

/** @param {unknown} v what a value is, for an error message */
export function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === "object" || typeof v === "function") {
    return Object.getPrototypeOf(v)?.constructor?.name ?? typeof v;
  }
  return String(v); // a number, bigint, boolean, undefined or symbol
}

/**
 * A whole number of milliseconds in [0, 2^53 - 1], as text (fractions are
 * truncated, as Python's int()). NaN passes no comparison and Infinity or
 * 1e30 would reach Lua as text it cannot take: all refused here, typed,
 * before anything is sent.
 * @param {unknown} value
 * @param {string} what
 */
export function ms(value, what) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_WHOLE) {
    throw new InvalidArgumentError(
      `${what} must be a finite number in [0, 2^53 - 1], got ${describe(value)}`,
    );
  }
  return String(Math.trunc(value));
}

/**
 * A count, offset or limit: a whole number in [lo, hi], as a number.
 * @param {unknown} value
 * @param {string} what
 * @param {number} lo
 * @param {number} [hi]
 */
export function whole(value, what, lo, hi = MAX_WHOLE) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < lo || value > hi) {
    throw new InvalidArgumentError(`${what} must be a whole number in [${lo}, ${hi}], got ${describe(value)}`);
  }
  return value;
}

/**
 * A lease token as text: a whole number in [0, 2^53 - 1] (what the scripts
 * compare exactly), given as a number, a bigint or a string of digits.
 * @param {unknown} token
 */
export function tok(token) {
  let n = null;
  if (typeof token === "number" && Number.isSafeInteger(token)) n = BigInt(token);
  else if (typeof token === "bigint") n = token;
  else if (typeof token === "string" && /^\d{1,16}$/.test(token)) n = BigInt(token);
  if (n === null || n < 0n || n > BigInt(MAX_WHOLE)) {
    throw new InvalidArgumentError(`a lease token is a whole number in [0, 2^53 - 1], got ${describe(token)}`);
  }
  return String(n);
}

/**
 * An idempotency key as text ("" for none): a number or a Buffer key would
 * meet "5" as the same key, so only strings are taken.
 * @param {unknown} key
 */
export function idemKey(key) {
  if (key == null || key === "") return "";
  if (typeof key !== "string") {
    throw new InvalidArgumentError(`an idempotency key is a string, got ${describe(key)}`);
  }
  return key;
}

/**
 * @param {CompleteItem | LeaseItem} item
 * @returns {[string, string, unknown]} id, token as text, result
 */
export function unpackItem(item) {
  if (Array.isArray(item)) {
    if (item.length < 2 || item.length > 3) {
      throw new InvalidArgumentError(`an item is [id, token] or [id, token, result], got an array of ${item.length}`);
    }
    return [checkId(item[0]), tok(item[1]), item[2]];
  }
  if (item && typeof item === "object") {
    const it = /** @type {{id: string, token: unknown, result?: unknown}} */ (item);
    return [checkId(it.id), tok(it.token), it.result];
  }
  throw new InvalidArgumentError(`an item must be [id, token, ...] or {id, token}, got ${describe(item)}`);
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
