// The argument types of the call table (lua/calltable.py), each checked and
// encoded before anything is sent (python/homing/argtypes.py, type for type).
//
// ENCODE has one entry per ARGV type: what it accepts and what ARGV then takes.
// A refused value is a typed error here and nothing is written: NaN,
// Infinity, a text count or a string where an array belongs would otherwise
// reach Lua and fail there, or worse, half way through. ARGV values come out
// as strings or Buffers, the two types node-redis sends; the bounds, defaults
// and refusal texts come from the table, the texts shared with the other
// ports (the manifest's `refusals`).

import { randomUUID } from "node:crypto";

import * as envelope from "./envelope.js";
import { InvalidArgumentError, PayloadTooLargeError } from "./errors.js";
import { MANIFEST, POLICY, checkId } from "./manifest.js";

/** The largest whole number a Lua double (and a JavaScript number) holds exactly. */
export const MAX_WHOLE = Number.MAX_SAFE_INTEGER;
const REFUSALS = /** @type {Record<string, string>} */ (MANIFEST.refusals);

/** A table name (snake_case) as JavaScript spells it: lease_ms -> leaseMs. */
export const camel = (/** @type {string} */ name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
/** A JavaScript name as the table spells it: leaseMs -> lease_ms. */
export const snake = (/** @type {string} */ name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The policy fields by their JavaScript names (leaseMs -> lease_ms). */
export const POLICY_FIELDS = Object.freeze(Object.fromEntries(Object.keys(POLICY).map((f) => [camel(f), f])));
const KNOWN = Object.keys(POLICY_FIELDS).join(", ");

/** A random event id (UUID4 hex): unguessable and unique without coordination. */
export const newId = () => randomUUID().replaceAll("-", "");

/** @param {unknown} v what a value is, for an error message (an array by its length) */
export function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === "object" || typeof v === "function") return Object.getPrototypeOf(v)?.constructor?.name ?? typeof v;
  return String(v); // a number, bigint, boolean, undefined or symbol
}

/**
 * Refuse unless ok, by the table's text (made only then); {what} and {value}
 * are the argument's name and the value, the other names `fields`'.
 * @param {boolean} ok @param {string} refusal @param {string} what @param {unknown} value
 * @param {Record<string, unknown>} [fields]
 */
export function refuse(ok, refusal, what, value, fields = {}) {
  if (ok) return;
  throw new InvalidArgumentError(wording(refusal, { ...fields, what, value: describe(value), known: KNOWN }));
}

/** The table's text of a refusal, its {names} filled. @param {string} refusal @param {Record<string, unknown>} all */
const wording = (refusal, all) => REFUSALS[refusal].replace(/\{(\w+)\}/g, (_, k) => String(all[k]));

/** A finite number in [lo, hi] (whole: with no fraction). @param {unknown} v @param {number} lo @param {number} hi @param {boolean} whole */
const number = (v, lo, hi, whole) =>
  typeof v === "number" && Number.isFinite(v) && (!whole || Number.isInteger(v)) && v >= lo && v <= hi;

/**
 * A count, offset or limit: a whole number in [lo, hi], as a number.
 * @param {unknown} value @param {string} what @param {number} lo @param {number} [hi]
 */
export function whole(value, what, lo, hi = MAX_WHOLE) {
  refuse(number(value, lo, hi, true), "whole", what, value, { min: lo, max: hi });
  return /** @type {number} */ (value);
}

/**
 * Whole milliseconds in [0, 2^53 - 1], as text; a fraction is dropped (as
 * Python's int()). NaN passes no comparison and Infinity or 1e30 would reach
 * Lua as text it cannot take: all refused here.
 * @param {unknown} value @param {string} what
 */
export function ms(value, what) {
  refuse(number(value, 0, MAX_WHOLE, false), "ms", what, value);
  return String(Math.trunc(/** @type {number} */ (value)));
}

/**
 * A lease token (what the scripts compare exactly): an integer, a safe-integer
 * number (as dequeue hands tokens out) or a bigint, in [lo, hi]. Text ("5") is
 * refused, as in Python and Erlang: a string is no integer there, and no path
 * of this package makes one (5.0 is 5 here, which the other ports refuse only
 * because they can tell). A number is checked as the number it is, with no
 * bigint made per item (the worker's hot path).
 * @param {unknown} t @param {number} lo @param {number} hi
 */
const isToken = (t, lo, hi) => (typeof t === "number" ? Number.isSafeInteger(t) && t >= lo && t <= hi
  : typeof t === "bigint" && t >= BigInt(lo) && t <= BigInt(hi));

/** @param {unknown} payload @param {number} maxPayload the envelope, at most maxPayload bytes */
export function encoded(payload, maxPayload) {
  const data = envelope.encode(payload);
  if (data.length > maxPayload) {
    throw new PayloadTooLargeError(wording("payload", { size: data.length, max: maxPayload }));
  }
  return data;
}

/** An array of min..max items (a string has a length too: "abc" is no 3 items). @param {any} s @param {unknown} v */
const sized = (s, v) => Array.isArray(v) && v.length >= s.min && v.length <= s.max;

/**
 * Each item of a list argument encoded, in field order: an array (trailing
 * fields with a default may be left out) or an object by field names; a field
 * left out or null takes its default.
 * @param {any} s @param {unknown[]} rows @param {string} what @param {number} maxPayload
 */
function items(s, rows, what, maxPayload) {
  const { fields, names } = listFields(s);
  return rows.map((/** @type {any} */ item) => {
    const isArray = Array.isArray(item);
    const ok = isArray ? item.length >= s.need && item.length <= fields.length
      : item !== null && typeof item === "object" && !Buffer.isBuffer(item);
    if (!ok) refuse(ok, "item", what, item, { names: names.join(", "), need: s.need });
    const out = new Array(fields.length);
    for (let i = 0; i < fields.length; i++) {
      const { spec: f, name, js } = fields[i];
      out[i] = encodeArg(f, (isArray ? item[i] : item[name] ?? item[js]) ?? f.default, js, maxPayload);
    }
    return out;
  });
}

/**
 * A list argument's fields with their camelCase names, worked out once per
 * spec, not per item (a thousand items asked camel() three thousand times).
 * @type {WeakMap<object, {fields: {spec: any, name: string, js: string}[], names: string[]}>}
 */
const LIST_FIELDS = new WeakMap();

/** @param {any} s a list argument of the call table */
function listFields(s) {
  let got = LIST_FIELDS.get(s);
  if (got === undefined) {
    got = {
      fields: s.fields.map((/** @type {any} */ f) => ({ spec: f, name: f.name, js: camel(f.name) })),
      names: s.fields.map((/** @type {any} */ f) => f.name),
    };
    LIST_FIELDS.set(s, got);
  }
  return got;
}

/** A policy field by its JavaScript or table name, as the table names it. @param {string} k */
const policyField = (k) => (Object.hasOwn(POLICY_FIELDS, k) ? POLICY_FIELDS[k] : Object.hasOwn(POLICY, k) ? k : null);
const yes = () => true; // checked by its conversion (an id's pattern, an envelope's size) or never

/**
 * type -> [accepts(spec, value), converts(spec, value, what, maxPayload) to what
 * ARGV takes]; a value it does not accept is refused with REFUSALS[type].
 * @type {Record<string, [(s: any, v: any) => boolean, (s: any, v: any, what: string, maxPayload: number) => any]>}
 */
const ENCODE = {
  whole: [(s, v) => number(v, s.min, s.max, true), (_, v) => String(v)],
  ms: [(s, v) => number(v, s.min, s.max, false), (_, v) => String(Math.trunc(v))],
  token: [(s, v) => isToken(v, s.min, s.max), (_, v) => String(v)], // 5n as "5"
  id: [yes, (_, v) => (v === "$new_id" ? newId() : checkId(v))],
  key: [(_, v) => v == null || typeof v === "string", (_, v) => v ?? ""],
  envelope: [yes, (_, v, _w, mp) => encoded(v, mp)],
  result: [yes, (_, v, _w, mp) => (v == null ? "" : encoded(v, mp))],
  bool: [yes, (_, v) => (v ? "1" : "0")],
  text: [(_, v) => typeof v === "string", (_, v) => v], // the script keeps at most its max bytes
  name: [(s, v) => typeof v === "string" && v !== "" && Buffer.byteLength(v) <= s.max, (_, v) => v],
  pairs: [(_, v) => v !== null && typeof v === "object" && !Array.isArray(v), (_, v) => Object.entries(v).flatMap(([k, x]) => {
    refuse(policyField(k) !== null && (x == null || number(x, -Infinity, Infinity, false)), "policy", k, x);
    return [/** @type {string} */ (policyField(k)), x == null ? "" : String(x)];
  })],
  config: [yes, (_, _v, _w, mp) => String(mp)], // the client's setting, no argument
  count: [yes, () => []], // nothing: its list, right after, sends it
  list: [sized, items],
  rest: [(s, v) => v == null || sized(s, v), (s, v, w, mp) => (v ?? []).map((/** @type {unknown} */ x) => encodeArg(s.item, x, w, mp))],
};

/**
 * One argument as ARGV takes it, checked against its table type: a string or
 * Buffer, an array of them for rest and pairs, and for a list its items'.
 * @param {any} spec the argument of the call table
 * @param {unknown} value @param {string} what its name, as the API spells it @param {number} maxPayload
 * @returns {any}
 */
export function encodeArg(spec, value, what, maxPayload) {
  if (value == null && spec.optional) return "";
  refuse(Object.hasOwn(ENCODE, spec.type), "type", what, spec.type);
  const [accepts, convert] = ENCODE[spec.type];
  refuse(accepts(spec, value), spec.type, what, value, spec);
  return convert(spec, value, what, maxPayload);
}
