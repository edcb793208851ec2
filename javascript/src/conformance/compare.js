// Comparing what a step got with what its vector expects
// (python/homing/conformance/runner.py's compare, rule for rule).

import { isPlain, toValue, toWire } from "./loader.js";

/**
 * A value for a mismatch message: Redis bytes as text when they are text.
 * @param {unknown} v
 * @param {number} [limit]
 */
export function show(v, limit = 120) {
  let text;
  if (v instanceof Uint8Array) {
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const utf8 = b.toString("utf8");
    text = Buffer.from(utf8, "utf8").equals(b) ? `b${JSON.stringify(utf8)}` : `0x${b.toString("hex")}`;
  } else if (v === undefined) {
    text = "undefined";
  } else {
    text = JSON.stringify(v, (_, x) => {
      if (typeof x === "bigint") return `${x}n`;
      if (x instanceof Uint8Array || (isPlain(x) && x.type === "Buffer" && Array.isArray(x.data))) {
        return show(x instanceof Uint8Array ? x : Buffer.from(x.data), Infinity);
      }
      return x;
    }) ?? String(v);
  }
  return text.length <= limit ? text : text.slice(0, limit) + "...";
}

/** @param {unknown} x */
const isNum = (x) => typeof x === "number" || typeof x === "bigint";

/**
 * The kind of a value for "same type" checks: bytes are any Uint8Array
 * (Buffer or not), numbers and bigints are both numbers.
 * @param {unknown} x
 */
function kind(x) {
  if (x === null) return "null";
  if (x instanceof Uint8Array) return "bytes";
  if (Array.isArray(x)) return "array";
  return isNum(x) ? "number" : typeof x;
}

/**
 * Differences between an expectation (JSON with conventions) and an actual value.
 *
 * mode "value": client-level results, compared as decoded values. "raw": a
 * script's Redis reply; a JSON string is a bulk string, a number an integer
 * reply. "state": stored Redis strings, where a JSON number is its decimal text.
 * @param {unknown} exp
 * @param {unknown} act
 * @param {string} where
 * @param {"value" | "raw" | "state"} mode
 * @returns {string[]}
 */
export function compare(exp, act, where, mode) {
  if (isPlain(exp) && Object.keys(exp).length === 1 && "$subset" in exp) {
    if (!isPlain(act)) return [`${where}: expected an object, got ${show(act, 80)}`];
    /** @type {string[]} */
    const out = [];
    for (const [k, v] of Object.entries(exp.$subset)) {
      if (!Object.hasOwn(act, k)) out.push(`${where}.${k}: missing`);
      else out.push(...compare(v, act[k], `${where}.${k}`, mode));
    }
    return out;
  }
  if (isPlain(exp) && Object.keys(exp).length === 1 && "$error" in exp) {
    const ok = isPlain(act) && act.$error === exp.$error;
    return ok ? [] : [`${where}: expected error ${exp.$error}, got ${show(act, 80)}`];
  }
  if (isPlain(exp) && Object.keys(exp).some((k) => k.startsWith("$"))) exp = toValue(exp, where);
  if (isPlain(exp)) {
    const want = exp;
    if (!isPlain(act)) return [`${where}: expected an object, got ${show(act, 80)}`];
    const out = Object.keys(act).filter((k) => !Object.hasOwn(want, k)).map((k) => `${where}.${k}: unexpected`);
    for (const [k, v] of Object.entries(exp)) {
      if (!Object.hasOwn(act, k)) out.push(`${where}.${k}: missing`);
      else out.push(...compare(v, act[k], `${where}.${k}`, mode));
    }
    return out;
  }
  if (Array.isArray(exp)) {
    if (!Array.isArray(act)) return [`${where}: expected a list, got ${show(act, 80)}`];
    if (exp.length !== act.length) return [`${where}: expected ${exp.length} items, got ${act.length}: ${show(act)}`];
    return exp.flatMap((e, i) => compare(e, act[i], `${where}[${i}]`, mode));
  }
  // Redis strings: a JSON string is its UTF-8 text; in stored state a number is its
  // decimal text too, but in a script's reply a number must be an integer reply.
  const wire = mode === "state" || (mode === "raw" && typeof exp === "string");
  if (wire && act instanceof Uint8Array && exp !== null && !(exp instanceof Uint8Array)) {
    exp = toWire(exp, where);
  }
  let same;
  if (isNum(exp) && isNum(act)) {
    same = exp == act; // by value, across number and bigint (JSON has one number type)
  } else if (exp instanceof Uint8Array && act instanceof Uint8Array) {
    same = Buffer.compare(exp, act) === 0;
  } else {
    same = kind(exp) === kind(act) && exp === act;
  }
  return same ? [] : [`${where}: expected ${show(exp)}, got ${show(act)}`];
}
