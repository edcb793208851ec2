// The argument types of the call table (lua/calltable.py), each checked and
// encoded before anything is sent (python/homing/argtypes.py, type for type).
//
// ENCODE has one entry per ARGV type. A refused value is a typed error here
// and nothing is written: NaN, Infinity, a text count or a string where an
// array belongs would otherwise reach Lua and fail there, or worse, half way
// through. ARGV values come out as strings or Buffers, the two types
// node-redis sends; the bounds come from the table.

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
export const newId = () => randomUUID().replaceAll("-", "");

/** @param {unknown} v what a value is, for an error message */
export function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === "object" || typeof v === "function") return Object.getPrototypeOf(v)?.constructor?.name ?? typeof v;
  return String(v); // a number, bigint, boolean, undefined or symbol
}

/** Refuse unless ok; the message is made only then. @param {boolean} ok @param {() => string} message */
function need(ok, message) {
  if (!ok) throw new InvalidArgumentError(message());
}

/**
 * A count, offset or limit: a whole number in [lo, hi], as a number.
 * @param {unknown} value @param {string} what @param {number} lo @param {number} [hi]
 */
export function whole(value, what, lo, hi = MAX_WHOLE) {
  need(typeof value === "number" && Number.isInteger(value) && value >= lo && value <= hi,
    () => `${what} must be a whole number in [${lo}, ${hi}], got ${describe(value)}`);
  return /** @type {number} */ (value);
}

/**
 * Whole milliseconds in [0, 2^53 - 1], as text; a fraction is dropped (as
 * Python's int()). NaN passes no comparison and Infinity or 1e30 would reach
 * Lua as text it cannot take: all refused here.
 * @param {unknown} value @param {string} what
 */
export function ms(value, what) {
  need(typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= MAX_WHOLE,
    () => `${what} must be a finite number in [0, 2^53 - 1], got ${describe(value)}`);
  return String(Math.trunc(/** @type {number} */ (value)));
}

/**
 * A due time as ms since the epoch: a valid Date, or a number of ms (rounded).
 * @param {Date | number | null | undefined} at
 * @returns {number | undefined} undefined when not given
 */
export function atMs(at) {
  if (at == null) return undefined;
  if (at instanceof Date) {
    need(!Number.isNaN(at.getTime()), () => "at is an invalid Date");
    return at.getTime();
  }
  ms(at, "at (ms since the epoch)"); // validates before rounding
  return Math.round(/** @type {number} */ (at));
}

/**
 * A lease token as text: a whole number in [0, 2^53 - 1] (what the scripts
 * compare exactly), given as a number, a bigint or a string of digits.
 * @param {unknown} t
 */
function token(t) {
  const n = typeof t === "number" && Number.isSafeInteger(t) ? BigInt(t) : typeof t === "bigint" ? t
    : typeof t === "string" && /^\d{1,16}$/.test(t) ? BigInt(t) : null;
  need(n !== null && n >= 0n && n <= BigInt(MAX_WHOLE),
    () => `a lease token is a whole number in [0, 2^53 - 1], got ${describe(t)}`);
  return String(n);
}

/** @param {unknown} payload @param {number} maxPayload the envelope, at most maxPayload bytes */
export function encoded(payload, maxPayload) {
  const data = envelope.encode(payload);
  if (data.length > maxPayload) {
    throw new PayloadTooLargeError(
      `encoded payload is ${data.length} bytes, over the limit of ${maxPayload}; nothing was written`);
  }
  return data;
}

/**
 * An array of lo..hi items. A string has a length too: "abc" must not become
 * the items "a", "b" and "c".
 * @param {unknown} items @param {string} what @param {number} lo @param {number} hi
 * @returns {unknown[]}
 */
export function batch(items, what, lo, hi) {
  need(Array.isArray(items), () => `${what} takes an array, got ${describe(items)}`);
  const n = /** @type {unknown[]} */ (items).length;
  need(n >= lo && n <= hi, () => `${what} takes ${lo}..${hi} items, got ${n}`);
  return /** @type {unknown[]} */ (items);
}

/**
 * Policy overrides as field, value pairs, by JavaScript or table name; null
 * removes an override ('').
 * @param {unknown} policy
 */
function pairs(policy) {
  need(typeof policy === "object" && policy !== null && !Array.isArray(policy),
    () => `configure takes an object of policy fields, got ${describe(policy)}`);
  return Object.entries(/** @type {object} */ (policy)).flatMap(([name, value]) => {
    const field = Object.hasOwn(POLICY_FIELDS, name) ? POLICY_FIELDS[name] : Object.hasOwn(POLICY, name) ? name : null;
    need(field !== null,
      () => `unknown policy field ${JSON.stringify(name)}; known: ${Object.keys(POLICY_FIELDS).join(", ")}`);
    need(value == null || (typeof value === "number" && Number.isFinite(value)),
      () => `${name} must be a finite number, got ${describe(value)}`);
    return [/** @type {string} */ (field), value == null ? "" : String(value)];
  });
}

/**
 * One item of a list argument, in field order: an array (trailing fields with
 * a default may be left out) or an object by field names.
 * @param {any} spec @param {unknown} item @param {string} what @param {number} maxPayload
 * @param {Record<string, unknown>} defaults
 */
function listItem(spec, item, what, maxPayload, defaults) {
  const names = spec.fields.map((/** @type {any} */ f) => f.name);
  let n = names.length;
  while (n > 0 && Object.hasOwn(defaults, names[n - 1])) n -= 1;
  const obj = /** @type {any} */ (item);
  const isArray = Array.isArray(item) && item.length >= n && item.length <= names.length;
  need(isArray || (item !== null && typeof item === "object" && !Array.isArray(item) && !Buffer.isBuffer(item)),
    () => `${what} items are [${names.join(", ")}] or {${names.join(", ")}}, ` +
      `got ${Array.isArray(item) ? `an array of ${item.length}` : describe(item)}`);
  return spec.fields.flatMap((/** @type {any} */ f, /** @type {number} */ i) =>
    encodeArg(f, (isArray ? obj[i] : obj[f.name] ?? obj[camel(f.name)]) ?? defaults[f.name], f.name, maxPayload, defaults));
}

/** @param {unknown} v @param {string} what */
const text = (v, what) => {
  need(typeof v === "string", () => `${camel(what)} must be a string, got ${describe(v)}`);
  return /** @type {string} */ (v); // the script keeps at most its max bytes, cut on a character
};

/**
 * type -> (spec, value, what, maxPayload, defaults) -> what ARGV takes.
 * @type {Record<string, (s: any, v: any, what: string, maxPayload: number, d: Record<string, unknown>) => any>}
 */
const ENCODE = {
  whole: (s, v, w) => String(whole(v, camel(w), s.min, s.max)),
  ms: (_, v, w) => ms(v, camel(w)),
  token: (_, v) => token(v),
  id: (_, v) => checkId(v),
  key: (_, v) => {
    need(v == null || typeof v === "string", () => `an idempotency key is a string, got ${describe(v)}`);
    return v ?? "";
  },
  envelope: (_, v, _w, mp) => encoded(v, mp),
  result: (_, v, _w, mp) => (v == null ? "" : encoded(v, mp)),
  bool: (_, v) => (v ? "1" : "0"),
  text: (_, v, w) => text(v, w),
  name: (s, v, w) => {
    need(typeof v === "string" && v !== "" && Buffer.byteLength(v) <= s.max,
      () => `${w} must be 1..${s.max} bytes of text, got ${describe(v)}`);
    return v;
  },
  pairs: (_, v) => pairs(v),
  list: (s, v, w, mp, d) => batch(v, w, s.min, s.max).flatMap((row) => listItem(s, row, w, mp, d)),
  // rest: absent is nothing; given, 1..max values (a purge of [] must not purge the oldest).
  rest: (s, v, w, mp, d) => (v == null ? [] : batch(v, w, 1, s.max).map((x) => encodeArg(s.item, x, w, mp, d))),
};

/**
 * One argument as ARGV takes it, checked against its table type: a string or
 * Buffer, or an array of them for list, rest and pairs.
 * @param {any} spec the argument of the call table
 * @param {unknown} value @param {string} what @param {number} maxPayload
 * @param {Record<string, unknown>} defaults
 * @returns {string | Buffer | Array<string | Buffer>}
 */
export function encodeArg(spec, value, what, maxPayload, defaults) {
  if (value === "$new_id" && spec.type === "id") return newId();
  if (value == null && spec.optional) return "";
  need(Object.hasOwn(ENCODE, spec.type), () => `${what}: the call table has no type ${JSON.stringify(spec.type)}`);
  return ENCODE[spec.type](spec, value, what, maxPayload, defaults);
}

/**
 * enqueueMany's `priority`: one level for every payload, or an array of one
 * per payload. The call table takes a level per item (`priorities`); a single
 * level is spread over the batch here, the only thing the port adds. A bad
 * value is left to the table's check (InvalidArgumentError, nothing sent).
 * @param {unknown} priority
 * @param {Iterable<unknown>} payloads
 * @returns {[Iterable<unknown>, unknown]}
 */
export function perItem(priority, payloads) {
  if (priority == null || Array.isArray(priority)) return [payloads, priority ?? undefined];
  let rows = payloads;
  if (!Array.isArray(rows) && rows != null && typeof rows !== "string" &&
      typeof (/** @type {any} */ (rows))[Symbol.iterator] === "function") {
    rows = Array.from(rows);
  }
  return [rows, Array.isArray(rows) ? rows.map(() => priority) : undefined];
}
