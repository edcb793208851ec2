// Loading the conformance files and turning their JSON into the values the
// JavaScript client handles: the JavaScript side of the runner contract of
// conformance/README.md, mirroring python/homing/conformance/loader.py rule
// for rule, so a vector means the same thing to every runner.
//
// Value conventions (objects with a single `$` key):
//   {"$hex": "00ff"} bytes (a Buffer); {"$bytes": "text"} the UTF-8 bytes of text;
//   {"$int": "18446744073709551615"} an integer of any size (a BigInt);
//   {"$float": 1.0} a float (JavaScript has one number type: a number);
//   {"$envelope": v} the msgpack envelope bytes of payload v;
//   in expectations: {"$error": "CODE"}, {"$subset": {...}}.

import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as envelope from "../envelope.js";
import { LAYOUT, MANIFEST } from "../manifest.js";
import { VectorFileError, short, validate } from "./schema.js";

export { VectorFileError };

/** @typedef {Record<string, any>} Json */

/** The repository's conformance/ directory (the tests and the CLI read it). */
export const REPO_VECTORS = fileURLToPath(new URL("../../../conformance/", import.meta.url));
export const DEFAULT_CLOCK = 1_000_000;
/** The test clock: this field of the service's config hash, read by every script
 * that reads "now" (lua/include/clock.lua). Production never sets it. */
export const TEST_CLOCK = "test_clock";
export const REDIS_TYPES = ["string", "list", "hash", "zset", "set"];
/** @type {Record<string, (v: unknown) => boolean>} argument checks of each convention */
const VALUE_CONVENTIONS = {
  $hex: (v) => typeof v === "string",
  $bytes: (v) => typeof v === "string",
  $int: (v) => typeof v === "string",
  $float: (v) => typeof v === "number",
  $envelope: () => true,
};
/** @type {Record<string, (v: unknown) => boolean>} */
const EXPECT_CONVENTIONS = {
  $error: (v) => typeof v === "string",
  $subset: (v) => isPlain(v),
};
// The whole name, like Python's fullmatch.
const SERVICE_RE = new RegExp(`^(?:${LAYOUT.service_pattern})$`);
const CODES = new Set(MANIFEST.errors.map((/** @type {{code: string}} */ e) => e.code));
/**
 * Whether a script calls now_ms (lua/include/clock.lua), outside comments.
 * @param {string} source
 */
function readsClock(source) {
  const code = source.replace(/--\[\[[\s\S]*?\]\]/g, "").replace(/--[^\n]*/g, "");
  return /(?<!function )\bnow_ms\(/.test(code);
}
const TIME_SCRIPTS = new Set(
  Object.entries(MANIFEST.scripts)
    .filter(([, s]) => readsClock(/** @type {{source: string}} */ (s).source))
    .map(([name]) => name),
);

/**
 * Whether a written config value leaves the clock frozen: a hash with test_clock.
 * @param {unknown} config
 */
function freezes(config) {
  return isPlain(config) && !("$type" in config) && TEST_CLOCK in config;
}

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
 * @typedef {object} Suite every file of the suite, loaded and checked
 * @property {string} root
 * @property {Vector[]} vectors
 * @property {Json[]} envelopes
 * @property {Record<string, Json>} calls
 * @property {Record<string, string>} untestable error codes no vector can produce, with why
 * (coverage.json): the coverage rule exempts exactly these
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

/**
 * Walk a value and refuse unknown or malformed `$` conventions at load time.
 * @param {unknown} j
 * @param {string} where
 * @param {boolean} expect expectations may also use $error and $subset
 */
export function checkConventions(j, where, expect) {
  if (Array.isArray(j)) {
    j.forEach((x, i) => checkConventions(x, `${where}[${i}]`, expect));
    return;
  }
  if (!isPlain(j)) return;
  const allowed = expect ? { ...VALUE_CONVENTIONS, ...EXPECT_CONVENTIONS } : VALUE_CONVENTIONS;
  const conv = convention(j, allowed, where);
  if (conv === null) {
    for (const [k, v] of Object.entries(j)) checkConventions(v, `${where}.${k}`, expect);
  } else if (conv === "$subset" || conv === "$envelope") {
    checkConventions(j[conv], `${where}.${conv}`, expect && conv === "$subset");
  } else if (Object.hasOwn(VALUE_CONVENTIONS, conv)) {
    toValue(j, where); // decodes now, so a bad $hex or $int fails at load time
  }
}

// -- checks a schema cannot make -------------------------------------------------

/**
 * The runner adds the frozen clock to given's config: it must be a hash without one.
 * @param {Vector} vec
 */
function checkGivenConfig(vec) {
  if (!("config" in vec.given)) return;
  const config = vec.given.config;
  const where = `${vec.source}: ${JSON.stringify(vec.name)} given.config`;
  if (!isPlain(config) || "$type" in config) {
    throw new VectorFileError(
      `${where}: the runner sets the test clock in config after given, so given's config is a hash (write another type in a step)`,
    );
  }
  if (TEST_CLOCK in config) {
    throw new VectorFileError(
      `${where}: the runner sets ${TEST_CLOCK} after given; give the vector's clock, or write config in a step`,
    );
  }
}

/**
 * What schema.json cannot say; each rule keeps a vector deterministic or harmless.
 * @param {Vector} vec
 * @param {Record<string, Json>} calls
 */
function lint(vec, calls) {
  let frozen = true;
  vec.steps.forEach((step, i) => {
    const where = `${vec.source}: ${JSON.stringify(vec.name)} step ${i + 1}`;
    if ("clock" in step) {
      frozen = step.clock !== null;
    } else if ("advance_ms" in step && !frozen) {
      throw new VectorFileError(`${where}: advance_ms on an unfrozen clock`);
    } else if (isPlain(step.write) && "config" in step.write) {
      // A write replaces the whole hash, the runner's test clock with it.
      frozen = freezes(step.write.config);
    }
    let script = null;
    if ("call" in step) {
      const spec = Object.hasOwn(calls, step.call) ? calls[step.call] : undefined;
      if (spec === undefined) throw new VectorFileError(`${where}: unknown call ${JSON.stringify(step.call)}`);
      script = spec.script;
      const args = step.args ?? {};
      for (const name of Object.keys(args)) {
        if (!Object.hasOwn(spec.args, name)) {
          throw new VectorFileError(`${where}: ${step.call} takes no argument ${JSON.stringify(name)}`);
        }
      }
      for (const [name, how] of Object.entries(spec.args)) {
        if (how === "required" && !Object.hasOwn(args, name)) {
          throw new VectorFileError(`${where}: ${step.call} needs argument ${JSON.stringify(name)}`);
        }
      }
      checkConventions(args, `${where} args`, false);
      if ("service" in step && (step.error !== "INVALID_NAME" || SERVICE_RE.test(step.service))) {
        // An override that names a valid service could write to a real one.
        throw new VectorFileError(
          `${where}: a service override must be an invalid name and the step must expect INVALID_NAME`,
        );
      }
    } else if ("script" in step) {
      script = step.script;
      if (!Object.hasOwn(MANIFEST.scripts, script)) {
        throw new VectorFileError(`${where}: unknown script ${JSON.stringify(script)}`);
      }
      checkConventions(step.args ?? [], `${where} args`, false);
      for (const k of step.keys ?? []) {
        if (!Object.hasOwn(LAYOUT.service_keys, k)) throw new VectorFileError(`${where}: unknown key name ${JSON.stringify(k)}`);
      }
    }
    if (script !== null && TIME_SCRIPTS.has(script) && !frozen && !step.connection) {
      throw new VectorFileError(`${where}: ${script} reads the clock, which is not frozen here`);
    }
    if ("returns" in step) checkConventions(step.returns, `${where} returns`, true);
    if ("returns" in step && "error" in step) throw new VectorFileError(`${where}: give returns or error, not both`);
    if ("error" in step && !CODES.has(step.error)) {
      throw new VectorFileError(`${where}: ${step.error} is not a code of errors.json`);
    }
    for (const kind of ["state", "write"]) {
      if (kind in step) checkKeyValues(step[kind], `${where} ${kind}`, kind === "state");
    }
  });
}

/**
 * Key names must be those of keys.json; typed values must name a Redis type.
 * @param {Json} values
 * @param {string} where
 * @param {boolean} expect
 */
export function checkKeyValues(values, where, expect) {
  for (let [k, v] of Object.entries(values)) {
    if (k === "$daemons" && expect) {
      if (!(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
        throw new VectorFileError(`${where}.${k}: a list of daemon names, got ${short(v)}`);
      }
      continue;
    }
    if ((k === "$keys" || k === "$registered") && expect) {
      const ok = k === "$registered"
        ? typeof v === "boolean"
        : Array.isArray(v) && v.every((x) => Object.hasOwn(LAYOUT.service_keys, x));
      if (!ok) throw new VectorFileError(`${where}.${k}: bad value ${short(v)}`);
      continue;
    }
    if (!Object.hasOwn(LAYOUT.service_keys, k)) throw new VectorFileError(`${where}: unknown key name ${JSON.stringify(k)}`);
    if (isPlain(v) && "$type" in v) {
      const keys = Object.keys(v).sort().join(",");
      if (keys !== "$type,value" || !REDIS_TYPES.includes(v.$type)) {
        throw new VectorFileError(
          `${where}.${k}: a typed value is {"$type": one of ${REDIS_TYPES.join(", ")}, "value": ...}`,
        );
      }
      v = v.value;
    }
    checkConventions(v, `${where}.${k}`, expect);
  }
}

// -- loading ---------------------------------------------------------------------

/**
 * Load and check every file under root (default: the repository's conformance/).
 * @param {string} [root]
 * @returns {Suite}
 */
export function loadSuite(root = REPO_VECTORS) {
  const schema = readJson(path.join(root, "schema.json"));
  const calls = readJson(path.join(root, "calls.json"));
  validate(calls, schema.$defs.calls_file, schema, "calls.json");
  const envelopes = readJson(path.join(root, "envelopes.json"));
  validate(envelopes, schema.$defs.envelopes_file, schema, "envelopes.json");
  const cov = readJson(path.join(root, "coverage.json"));
  validate(cov, schema.$defs.coverage_file, schema, "coverage.json");
  for (const code of Object.keys(cov.untestable)) {
    if (!CODES.has(code)) throw new VectorFileError(`coverage.json: ${code} is not a code of errors.json`);
  }
  for (const c of envelopes.vectors) {
    if ("payload" in c) checkConventions(c.payload, `envelopes.json ${JSON.stringify(c.name)}`, false);
  }
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
    validate(doc, schema, schema, file);
    if (doc.operation !== file.slice(0, -".json".length)) {
      throw new VectorFileError(`${file}: operation ${JSON.stringify(doc.operation)} must match the file name`);
    }
    const names = new Set();
    for (const v of doc.vectors) {
      if (names.has(v.name)) throw new VectorFileError(`${file}: two vectors named ${JSON.stringify(v.name)}`);
      names.add(v.name);
      /** @type {Vector} */
      const vec = {
        operation: doc.operation,
        name: v.name,
        doc: v.doc ?? "",
        steps: v.steps,
        clock: v.clock ?? DEFAULT_CLOCK,
        given: v.given ?? {},
        client: v.client ?? {},
        source: file,
      };
      lint(vec, calls.calls);
      checkKeyValues(vec.given, `${file}: ${JSON.stringify(vec.name)} given`, false);
      checkGivenConfig(vec);
      vectors.push(vec);
    }
  }
  const untestable = Object.fromEntries(
    Object.entries(cov.untestable).map(([code, e]) => [code, /** @type {{why: string}} */ (e).why]),
  );
  return { root, vectors, envelopes: envelopes.vectors, calls: calls.calls, untestable };
}

/**
 * Codes of the `{"$error": CODE}` items inside an expected value.
 * @param {unknown} j
 * @returns {Set<string>}
 */
function errorMarks(j) {
  const out = new Set();
  if (Array.isArray(j)) {
    for (const x of j) for (const c of errorMarks(x)) out.add(c);
  } else if (isPlain(j)) {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === "$error") return new Set([j.$error]);
    for (const x of Object.values(j)) for (const c of errorMarks(x)) out.add(c);
  }
  return out;
}

/**
 * Which scripts and error codes the vectors exercise (the coverage rule's input):
 * a script through a call of calls.json or a raw step; a code as a step's error,
 * an item's $error or an envelope vector's error. `clientCodes` are those a
 * client-level call expects.
 * @param {Suite} suite
 */
export function coverage(suite) {
  const cov = { scripts: new Set(), codes: new Set(), clientCodes: new Set() };
  for (const vec of suite.vectors) {
    for (const step of vec.steps) {
      const codes = errorMarks(step.returns);
      if ("error" in step) codes.add(step.error);
      if ("call" in step) {
        cov.scripts.add(suite.calls[step.call].script);
        for (const c of codes) cov.clientCodes.add(c);
      } else if ("script" in step) {
        cov.scripts.add(step.script);
      }
      for (const c of codes) cov.codes.add(c);
    }
  }
  for (const c of suite.envelopes) if ("error" in c) cov.codes.add(c.error);
  return cov;
}
