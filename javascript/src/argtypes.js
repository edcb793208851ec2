// The argument types of the call table (lua/calltable.py), each checked and
// encoded before anything is sent (python/homing/argtypes.py, type for type).
//
// One case per type: whole, ms, token, id, key, envelope, result, text, name,
// bool, list, rest, pairs. A refused value is a typed error here and nothing
// is written: NaN, Infinity, a text count or a string where an array belongs
// would otherwise reach Lua and fail there, or worse, half way through.
// ARGV values come out as strings or Buffers, the two types node-redis sends.

import { randomUUID } from "node:crypto";

import * as envelope from "./envelope.js";
import { InvalidArgumentError, PayloadTooLargeError } from "./errors.js";
import { POLICY, checkId } from "./manifest.js";

/** The largest whole number a Lua double (and a JavaScript number) holds exactly. */
export const MAX_WHOLE = Number.MAX_SAFE_INTEGER;

/** A table name (snake_case) as JavaScript spells it: lease_ms -> leaseMs. */
export const camel = (/** @type {string} */ name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
/** A JavaScript name as the table spells it: leaseMs -> lease_ms. */
export const snake = (/** @type {string} */ name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The policy fields by their JavaScript names (leaseMs -> lease_ms). */
export const POLICY_FIELDS = Object.freeze(Object.fromEntries(Object.keys(POLICY).map((f) => [camel(f), f])));

/** A random event id (UUID4 hex): unguessable and unique without coordination. */
export function newId() {
  return randomUUID().replaceAll("-", "");
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
 * Whole milliseconds in [0, 2^53 - 1], as text; a fraction is dropped (as
 * Python's int()). NaN passes no comparison and Infinity or 1e30 would reach
 * Lua as text it cannot take: all refused here.
 * @param {unknown} value
 * @param {string} what
 */
export function ms(value, what) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_WHOLE) {
    throw new InvalidArgumentError(`${what} must be a finite number in [0, 2^53 - 1], got ${describe(value)}`);
  }
  return String(Math.trunc(value));
}

/**
 * A due time as ms since the epoch: a valid Date, or a number of ms (rounded).
 * @param {Date | number | null | undefined} at
 * @returns {number | undefined} undefined when not given
 */
export function atMs(at) {
  if (at == null) return undefined;
  if (at instanceof Date) {
    if (Number.isNaN(at.getTime())) throw new InvalidArgumentError("at is an invalid Date");
    return at.getTime();
  }
  ms(at, "at (ms since the epoch)"); // validates before rounding
  return Math.round(/** @type {number} */ (at));
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
 * @param {unknown} payload
 * @param {number} maxPayload
 */
export function encoded(payload, maxPayload) {
  const data = envelope.encode(payload);
  if (data.length > maxPayload) {
    throw new PayloadTooLargeError(
      `encoded payload is ${data.length} bytes, over the limit of ${maxPayload}; nothing was written`,
    );
  }
  return data;
}

/**
 * An array of lo..hi items. A string has a length too: "abc" must not become
 * the items "a", "b" and "c".
 * @param {unknown} items
 * @param {string} what
 * @param {number} lo
 * @param {number} hi
 * @returns {unknown[]}
 */
export function batch(items, what, lo, hi) {
  if (!Array.isArray(items)) throw new InvalidArgumentError(`${what} takes an array, got ${describe(items)}`);
  if (items.length < lo || items.length > hi) {
    throw new InvalidArgumentError(`${what} takes ${lo}..${hi} items, got ${items.length}`);
  }
  return items;
}

/**
 * Policy overrides as field, value pairs, by JavaScript or table name; null
 * removes an override ('').
 * @param {unknown} policy
 */
function pairs(policy) {
  if (typeof policy !== "object" || policy === null || Array.isArray(policy)) {
    throw new InvalidArgumentError(`configure takes an object of policy fields, got ${describe(policy)}`);
  }
  /** @type {string[]} */
  const out = [];
  for (const [name, value] of Object.entries(policy)) {
    const field = Object.hasOwn(POLICY_FIELDS, name) ? POLICY_FIELDS[name] : Object.hasOwn(POLICY, name) ? name : null;
    if (field === null) {
      throw new InvalidArgumentError(
        `unknown policy field ${JSON.stringify(name)}; known: ${Object.keys(POLICY_FIELDS).join(", ")}`,
      );
    }
    if (value != null && (typeof value !== "number" || !Number.isFinite(value))) {
      throw new InvalidArgumentError(`${name} must be a finite number, got ${describe(value)}`);
    }
    out.push(field, value == null ? "" : String(value));
  }
  return out;
}

/**
 * One item of a list argument, in field order: an array (trailing fields with
 * a default may be left out) or an object by field names.
 * @param {any} spec
 * @param {unknown} item
 * @param {string} what
 * @param {number} maxPayload
 * @param {Record<string, unknown>} defaults
 */
function listItem(spec, item, what, maxPayload, defaults) {
  const names = spec.fields.map((/** @type {any} */ f) => f.name);
  let need = names.length;
  while (need > 0 && Object.hasOwn(defaults, names[need - 1])) need -= 1;
  /** @type {(i: number) => unknown} */
  let at;
  if (Array.isArray(item) && item.length >= need && item.length <= names.length) {
    at = (i) => item[i];
  } else if (item !== null && typeof item === "object" && !Array.isArray(item) && !Buffer.isBuffer(item)) {
    const obj = /** @type {Record<string, unknown>} */ (item);
    at = (i) => obj[names[i]] ?? obj[camel(names[i])];
  } else {
    throw new InvalidArgumentError(`${what} items are [${names.join(", ")}] or {${names.join(", ")}}, ` +
      `got ${Array.isArray(item) ? `an array of ${item.length}` : describe(item)}`);
  }
  return spec.fields.flatMap((/** @type {any} */ f, /** @type {number} */ i) => {
    const v = at(i) ?? defaults[f.name];
    return encodeArg(f, v, f.name, maxPayload, defaults);
  });
}

/**
 * One argument as ARGV takes it, checked against its table type: a string or
 * Buffer, or an array of them for list, rest and pairs.
 * @param {any} spec the argument of the call table
 * @param {unknown} value
 * @param {string} what
 * @param {number} maxPayload
 * @param {Record<string, unknown>} defaults
 * @returns {string | Buffer | Array<string | Buffer>}
 */
export function encodeArg(spec, value, what, maxPayload, defaults) {
  const t = spec.type;
  if (value === "$new_id" && t === "id") return newId();
  if (value == null && spec.optional) return "";
  switch (t) {
    case "whole": return String(whole(value, camel(what), spec.min, spec.max));
    case "ms": return ms(value, camel(what));
    case "token": return tok(value);
    case "id": return checkId(value);
    case "key": return idemKey(value);
    case "envelope": return encoded(value, maxPayload);
    case "result": return value == null ? "" : encoded(value, maxPayload);
    case "bool": return value ? "1" : "0";
    case "text":
      if (typeof value !== "string") throw new InvalidArgumentError(`${camel(what)} must be a string, got ${describe(value)}`);
      return value; // the script keeps at most spec.max bytes, cut on a character
    case "name":
      if (typeof value !== "string" || value === "" || Buffer.byteLength(value) > spec.max) {
        throw new InvalidArgumentError(`${what} must be 1..${spec.max} bytes of text, got ${describe(value)}`);
      }
      return value;
    case "pairs": return pairs(value);
    case "list":
      return batch(value, what, spec.min, spec.max).flatMap((row) => listItem(spec, row, what, maxPayload, defaults));
    case "rest":
      // Given, it names 1..max values: an empty selection is refused, never
      // read as "none given" (a purge of [] must not purge the oldest instead).
      if (value == null) return [];
      return batch(value, what, 1, spec.max).map((v) =>
        /** @type {string | Buffer} */ (encodeArg(spec.item, v, what, maxPayload, defaults)));
    default:
      throw new InvalidArgumentError(`${what}: the call table has no type ${JSON.stringify(t)}`);
  }
}
