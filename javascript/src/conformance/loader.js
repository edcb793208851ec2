// Loading the conformance files and turning their JSON into the values the
// JavaScript client handles: the JavaScript side of the runner contract of
// conformance/README.md, decoding as python/homing/conformance/loader.py does,
// so a vector means the same thing to every runner.
//
// It does not check the files: conformance/build.py does, once for every
// runner (the JSON Schema, the lint of what a schema cannot say, the coverage
// rule), and `make build` runs it. A directory given with --vectors runs as it
// is (check it with `python3 conformance/build.py --root DIR --check`); a
// value that cannot be decoded fails its vector.
//
// Value conventions (objects with a single `$` key):
//   {"$hex": "00ff"} bytes (a Buffer); {"$bytes": "text"} the UTF-8 bytes of text;
//   {"$int": "18446744073709551615"} an integer of any size (a BigInt);
//   {"$float": 1.0} a float (JavaScript has one number type: a number);
//   {"$envelope": v} the msgpack envelope bytes of payload v;
//   {"$fresh": [created_ms, v]} the data value of an event enqueued ready and never
//     delivered: "#created_ms#" then the envelope of v (lua/include/fresh.lua);
//   in expectations: {"$error": "CODE"}, {"$subset": {...}}.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as envelope from "../envelope.js";

/** A conformance file cannot be read or decoded: the suite refuses to run on it. */
export class VectorFileError extends Error {
  name = "VectorFileError";
}

/**
 * A value, shortened for a message.
 * @param {unknown} v
 * @param {number} [n]
 */
function short(v, n = 60) {
  const text = JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x)) ?? String(v);
  return text.length <= n ? text : text.slice(0, n) + "...";
}

/** @typedef {Record<string, any>} Json */

/** The repository's conformance/ directory (the tests and the CLI read it). */
export const REPO_VECTORS = fileURLToPath(new URL("../../../conformance/", import.meta.url));
export const DEFAULT_CLOCK = 1_000_000;
/** The test clock: this field of the service's config hash, read by every script
 * that reads "now" (lua/include/clock.lua). Production never sets it. */
export const TEST_CLOCK = "test_clock";
/** @type {Record<string, (v: unknown) => boolean>} argument checks of each convention */
const VALUE_CONVENTIONS = {
  $hex: (v) => typeof v === "string",
  $bytes: (v) => typeof v === "string",
  $int: (v) => typeof v === "string",
  $float: (v) => typeof v === "number",
  $envelope: () => true,
  $fresh: (v) => Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]),
};

/**
 * A JSON object (not an array, not null, not bytes).
 * @param {unknown} v
 * @returns {v is Json}
 */
export function isPlain(v) {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * @typedef {object} Vector one vector: a fresh service, a frozen clock, steps run in order
 * @property {string} operation
 * @property {string} name
 * @property {string} doc
 * @property {Json[]} steps
 * @property {number} clock
 * @property {Json} given
 * @property {{max_payload?: number}} client
 * @property {string} source
 *
 * @typedef {object} Suite every file of the suite, loaded
 * @property {string} root
 * @property {Vector[]} vectors
 * @property {Json[]} envelopes
 * @property {Record<string, Json>} calls
 */

/** @param {Suite} suite operation names in file order */
export function operations(suite) {
  return [...new Set(suite.vectors.map((v) => v.operation))];
}

/** @param {string} file */
function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (exc) {
    throw new VectorFileError(`${file}: ${exc instanceof Error ? exc.message : exc}`);
  }
}

// -- value conventions --------------------------------------------------------

/**
 * The `$` convention an object spells, null for a plain object; refuse typos.
 * @param {Json} obj
 * @param {Record<string, (v: unknown) => boolean>} allowed
 * @param {string} where
 */
function convention(obj, allowed, where) {
  const marks = Object.keys(obj).filter((k) => k.startsWith("$"));
  if (marks.length === 0) return null;
  if (Object.keys(obj).length !== 1 || !Object.hasOwn(allowed, marks[0])) {
    throw new VectorFileError(
      `${where}: unknown value convention ${short(Object.keys(obj).sort())} ` +
        `(known: ${Object.keys(allowed).join(", ")})`,
    );
  }
  if (!allowed[marks[0]](obj[marks[0]])) {
    throw new VectorFileError(`${where}: bad argument for ${marks[0]}: ${short(obj[marks[0]])}`);
  }
  return marks[0];
}

/**
 * A JSON value with conventions as the JavaScript value a client sends or returns.
 * @param {unknown} j
 * @param {string} [where]
 * @returns {any}
 */
export function toValue(j, where = "value") {
  if (Array.isArray(j)) return j.map((x) => toValue(x, where));
  if (!isPlain(j)) return j;
  const conv = convention(j, VALUE_CONVENTIONS, where);
  if (conv === null) {
    /** @type {Json} */
    const out = {};
    for (const [k, v] of Object.entries(j)) out[k] = toValue(v, where);
    return out;
  }
  const arg = j[conv];
  switch (conv) {
    case "$hex":
      if (!/^(?:[0-9a-fA-F]{2})*$/.test(arg)) throw new VectorFileError(`${where}: bad $hex ${short(arg)}`);
      return Buffer.from(arg, "hex");
    case "$bytes":
      return Buffer.from(arg, "utf8");
    case "$int":
      if (!/^\s*[+-]?\d+\s*$/.test(arg)) throw new VectorFileError(`${where}: bad $int ${short(arg)}`);
      return BigInt(arg.trim());
    case "$float":
      return Number(arg);
    case "$fresh":
      return Buffer.concat([Buffer.from(`#${arg[0]}#`), envelope.encode(toValue(arg[1], where))]);
    default: // $envelope
      return envelope.encode(toValue(arg, where));
  }
}

/**
 * A JSON value as the bytes Redis stores: text as UTF-8, integers in decimal.
 * @param {unknown} j
 * @param {string} [where]
 * @returns {Buffer}
 */
export function toWire(j, where = "value") {
  if (typeof j === "string") return Buffer.from(j, "utf8");
  if (typeof j === "number") return Buffer.from(numberText(j));
  if (typeof j === "boolean" || j === null || j === undefined) {
    throw new VectorFileError(`${where}: ${short(j)} is not a Redis value`);
  }
  const v = isPlain(j) ? toValue(j, where) : j;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === "bigint") return Buffer.from(String(v));
  throw new VectorFileError(`${where}: ${short(j)} is not a Redis value`);
}

/**
 * Decimal text of a JSON number. A whole number is an integer (JSON parsing in
 * JavaScript cannot tell 1 from 1.0; Python would write "1.0" for the latter,
 * and no vector relies on that).
 * @param {number} n
 */
function numberText(n) {
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? n.toFixed(0) : String(n);
}

// -- loading ---------------------------------------------------------------------

/**
 * Load every file under root (default: the repository's conformance/), as
 * conformance/build.py checked them: this only reads.
 * @param {string} [root]
 * @returns {Suite}
 */
export function loadSuite(root = REPO_VECTORS) {
  const calls = readJson(path.join(root, "calls.json")).calls;
  const envelopes = readJson(path.join(root, "envelopes.json")).vectors;
  let files;
  try {
    files = readdirSync(path.join(root, "vectors")).filter((f) => f.endsWith(".json")).sort();
  } catch {
    files = [];
  }
  if (files.length === 0) throw new VectorFileError(`no vector files in ${path.join(root, "vectors")}`);
  /** @type {Vector[]} */
  const vectors = [];
  for (const file of files) {
    const doc = readJson(path.join(root, "vectors", file));
    if (!Array.isArray(doc?.vectors)) {
      throw new VectorFileError(`${file}: not a vector file; check it with conformance/build.py`);
    }
    for (const v of doc.vectors) {
      vectors.push({
        operation: doc.operation,
        name: v.name,
        doc: v.doc ?? "",
        steps: v.steps,
        clock: v.clock ?? DEFAULT_CLOCK,
        given: v.given ?? {},
        client: v.client ?? {},
        source: file,
      });
    }
  }
  return { root, vectors, envelopes, calls };
}
