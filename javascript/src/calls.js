// Each homing call as data, built from the manifest's call table
// (python/homing/ops.py does the same for Python).
//
// Sans-IO on purpose: the client (and a conformance runner) executes the same
// Call objects, so they cannot drift. Nothing here is written per call:
// lua/build.py joins each script's typed header with conformance/calls.json
// into the manifest's `calls` (ARGV order, types and bounds, reply shape) and
// `records` (each value type's fields, in constructor order), and call()
// encodes arguments and parses replies by that table alone. A new script with
// its header gives this port the call with no code here. The argument types
// are in argtypes.js.

import { camel, describe, encodeArg, refuse, snake } from "./argtypes.js";
import { BY_CODE, HomingError, InvalidArgumentError } from "./errors.js";
import { MANIFEST, POLICY, STATUS_NAMES, checkService } from "./manifest.js";
import * as types from "./types.js";

/**
 * @typedef {string | Buffer} Arg
 * @typedef {object} Call one script invocation; the client turns `service` into its KEYS
 * @property {string} script
 * @property {string} service
 * @property {Arg[]} args
 * @property {(reply: any) => any} parse
 * @typedef {Record<string, any>} Fields a reply's fields by the table's names
 */

/** The call table: client call name (snake_case) -> script, args, reply... */
export const CALLS = /** @type {Record<string, any>} */ (MANIFEST.calls);
const RECORD_SPECS = /** @type {Record<string, {fields: string[], items?: {field: string, record: string}}>} */ (
  MANIFEST.records);

/**
 * The value type `name` of types.js from a reply's fields, by position in the
 * table's order (a field the reply lacks is undefined: the constructor's default).
 * @param {string} name @param {string} service @param {Fields} f
 * @returns {unknown}
 */
function make(name, service, f) {
  const spec = RECORD_SPECS[name];
  const sub = spec.items;
  const all = /** @type {Fields} */ ({ service, ...f });
  if (sub) all[sub.field] = f.items.map((/** @type {Fields} */ x) => make(sub.record, service, x));
  const Type = /** @type {any} */ (types)[name];
  return new Type(...spec.fields.map((k) => all[k]));
}

/**
 * The JavaScript value type of each record name of the table (calls.json "records").
 * @type {Record<string, (service: string, f: Fields) => unknown>}
 */
export const RECORDS = Object.fromEntries(Object.keys(RECORD_SPECS).map((n) => [n,
  (/** @type {string} */ service, /** @type {Fields} */ f) => make(n, service, f)]));

/** @param {unknown} v a reply item: Buffer, string or number */
const s = (v) => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v));

/**
 * A number (text numbers parsed); text that is none is kept as it is, so one
 * odd stats field written by someone else cannot make stats fail.
 * @param {unknown} v
 */
function num(v) {
  if (typeof v === "number") return v;
  const t = s(v);
  return t.trim() !== "" && !Number.isNaN(Number(t)) ? Number(t) : t;
}

/** Reply field types -> converters (integers arrive as numbers, bulk strings as Buffers). */
const FIELD = /** @type {Record<string, (v: any) => unknown>} */ ({
  int: Number, str: s, bool: (v) => Number(v) === 1, bytes: (v) => v, num,
  status: (v) => STATUS_NAMES[s(v)] ?? s(v),
});

/** The error of one item of a batch, naming the event and token. @param {unknown} code @param {Arg[]} item */
function itemError(code, [id, token]) {
  const c = s(code);
  const cls = /** @type {typeof HomingError} */ (Object.hasOwn(BY_CODE, c) ? BY_CODE[/** @type {keyof BY_CODE} */ (c)] : HomingError);
  return new cls(`${c}: event ${s(id)} (token ${s(token)}): ${cls.description}`);
}

/** A reply (or a row of one) of the wrong length refused. @param {number} got @param {number} want */
function fit(got, want) {
  if (got !== want) throw new HomingError(`reply has ${got} fields, the table says ${want}`);
}

/** @param {{name: string, type: string}[]} specs @param {any[]} values */
function fields(specs, values) {
  fit(values.length, specs.length);
  return Object.fromEntries(specs.map((f, i) => [f.name, FIELD[f.type](values[i])]));
}

/**
 * A raw reply as the table's neutral value (objects, arrays and scalars); a
 * `records` reply has its own parse, compiled per call (compileRecords).
 * @param {any} spec the call's reply @param {any} r @param {Arg[][]} items the encoded items of its list argument
 */
export function parseReply(spec, r, items) {
  switch (spec.kind) {
    case "value": return FIELD[spec.type](r);
    case "tuple": return fields(spec.fields, r);
    case "items": {
      const int = spec.ok === "int";
      return r.map((/** @type {any} */ v, /** @type {number} */ i) =>
        ((int ? typeof v === "number" : s(v) === "OK") ? (int ? v : null) : itemError(v, items[i])));
    }
    case "union": {
      const c = spec.cases[s(r[0])];
      if (c === undefined) throw new HomingError(`reply tag ${JSON.stringify(s(r[0]))} is not one of ${Object.keys(spec.cases)}`);
      return { state: s(r[0]), ...fields(c, r.slice(1)) };
    }
    case "map": {
      /** @type {Record<string, unknown>} */
      const out = {};
      for (let i = 0; i < r.length; i += 2) out[s(r[i])] = num(r[i + 1]);
      return out;
    }
    default: throw new HomingError(`unknown reply kind ${spec.kind}`);
  }
}

/**
 * A neutral value with the table's names in camelCase (plain objects only: a
 * Buffer or a per-item error stays what it is).
 * @param {unknown} v @returns {unknown}
 */
const camelKeys = (v) => (Array.isArray(v) ? v.map(camelKeys)
  : v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype
    ? Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), camelKeys(x)])) : v);

/**
 * The neutral value as this port's, by the table's `shape` (docs/protocol.md):
 * a field picked, a record type; a tuple with no record is an array
 * ([requeued, remaining]); other objects get camelCase names; `one`: the
 * single form of a batch call, its one item (its error thrown).
 * @param {any} entry @param {string} service @param {any} value
 */
function shape(entry, service, value) {
  const { shape: sh, reply: { kind } } = entry;
  value = sh.pick != null ? value[sh.pick] : sh.record != null ? make(sh.record, service, value)
    : kind === "tuple" ? Object.values(value)
    // A map keeps its names (stats: 'total.completed', 'in_flight'), but a
    // policy field is named as the JavaScript API names it (configure: leaseMs).
    : kind === "map" ? Object.fromEntries(Object.entries(value).map(([k, v]) => [Object.hasOwn(POLICY, k) ? camel(k) : k, v]))
      : camelKeys(value);
  if (!sh.one) return value;
  if (value[0] instanceof HomingError) throw value[0];
  return value[0];
}

/**
 * The parse of a `records` reply (a head, then rows of the same fields),
 * compiled once per call from its reply and shape: each row a record type
 * (dequeue: Events; dequeue_batch: a Batch of them), one field picked
 * (enqueue's ids) or an object of its fields in camelCase (dueTake's
 * services); `merge` copies head fields into each row. Values go straight into
 * the row's constructor, with no object per row on the way (a general parse
 * made five objects and arrays per event, ~10 µs per event of a worker's
 * batch, issue 10). A reply of the wrong length is refused, a cut row first.
 * @param {any} entry
 * @returns {(service: string, r: any[]) => unknown}
 */
function compileRecords(entry) {
  const { reply: spec, shape: sh } = entry;
  const outer = sh.record != null && !sh.rows ? RECORD_SPECS[sh.record] : null;
  const rowRecord = outer === null ? sh.record : outer.items?.record;
  const [h, n] = [spec.head.length, spec.each.length];
  const headAt = new Map(spec.head.map((/** @type {any} */ f, /** @type {number} */ i) => [f.name, i]));
  const eachAt = new Map(spec.each.map((/** @type {any} */ f, /** @type {number} */ i) => [f.name, i]));
  const merged = /** @type {string[]} */ (sh.merge ?? []);
  const headConv = spec.head.map((/** @type {any} */ f) => FIELD[f.type]);
  const eachConv = spec.each.map((/** @type {any} */ f) => FIELD[f.type]);
  /** @type {string[]} a row's values, by name: a record's constructor arguments, the picked field, or an object's */
  const names = rowRecord != null ? RECORD_SPECS[rowRecord].fields : sh.pick != null ? [sh.pick]
    : [...merged, ...spec.each.map((/** @type {any} */ f) => f.name).filter((/** @type {string} */ k) => !merged.includes(k))];
  const Row = rowRecord != null ? /** @type {any} */ (types)[rowRecord] : null;
  const keys = names.map((k) => (outer === null ? camel(k) : k)); // an object row's names
  /** @type {(a: unknown[]) => unknown} */
  const build = Row !== null ? (a) => new Row(...a) : sh.pick != null ? (a) => a[0]
    : (a) => Object.fromEntries(keys.map((k, i) => [k, a[i]]));
  // Where each value comes from, as in {service, ...merged head, ...row}: the
  // row first, then a merged head field, then the service; else undefined
  // (the constructor's default).
  /** @type {[number, number][]} [0, _]: the service; [1, i]: head field i; [2, j]: row field j; [3, _]: none */
  const from = names.map((k) => (eachAt.has(k) ? [2, eachAt.get(k)] : merged.includes(k) && headAt.has(k)
    ? [1, headAt.get(k)] : k === "service" ? [0, 0] : [3, 0]));
  // The outer record's, from {service, ...head, items}: its list field is the rows.
  const listField = outer?.items?.field ?? "items";
  /** @type {[number, number][]} [2, _]: the rows */
  const outerFrom = (outer?.fields ?? []).map((/** @type {string} */ k) =>
    (k === listField ? [2, 0] : headAt.has(k) ? [1, headAt.get(k)] : k === "service" ? [0, 0] : [3, 0]));
  const Outer = outer === null ? null : /** @type {any} */ (types)[sh.record];
  const m = from.length;
  return (service, r) => {
    if (r.length >= h) fit((r.length - h) % n || n, n); // as the rows are read, before the head
    fit(Math.min(r.length, h), h);
    const head = headConv.map((/** @type {(v: any) => unknown} */ conv, /** @type {number} */ i) => conv(r[i]));
    const list = [];
    for (let base = h; base < r.length; base += n) {
      const args = new Array(m);
      for (let a = 0; a < m; a++) {
        const [where, i] = from[a];
        args[a] = where === 2 ? eachConv[i](r[base + i]) : where === 1 ? head[i] : where === 0 ? service : undefined;
      }
      list.push(build(args));
    }
    if (sh.rows) return sh.one ? list[0] : list;
    if (Outer === null) {
      return Object.fromEntries([...spec.head.map((/** @type {any} */ f, /** @type {number} */ i) => [camel(f.name), head[i]]), ["items", list]]);
    }
    return new Outer(...outerFrom.map(([where, i]) =>
      (where === 2 ? list : where === 1 ? head[i] : where === 0 ? service : undefined)));
  };
}

/** The records parse of each call (compileRecords), compiled on first use. @type {Map<string, ReturnType<typeof compileRecords>>} */
const COMPILED = new Map();

/**
 * A column of a zipped list: any iterable but a string ("abc" is no 3 payloads).
 * @param {unknown} value @param {string} what
 */
function column(value, what) {
  const ok = typeof value !== "string" && typeof (/** @type {any} */ (value))?.[Symbol.iterator] === "function";
  refuse(ok, "column", what, value);
  return Array.from(/** @type {Iterable<unknown>} */ (value));
}

/**
 * A list argument: the client's own, the call's arguments as its one item
 * (`one`), or zipped from per-field arguments (`from`: enqueueMany's
 * payloads, keys and ids).
 * @param {any} spec @param {Record<string, unknown>} given
 */
function rows(spec, given) {
  const src = /** @type {string[] | undefined} */ (spec.from);
  if (src === undefined) return given[spec.name];
  if (spec.one) return [src.map((s) => given[s])];
  const lead = spec.lead; // the column with no default (payloads) sets the length
  const cols = src.map((s) => (given[s] == null && s !== lead ? null : column(given[s], camel(s))));
  const n = /** @type {unknown[]} */ (cols[src.indexOf(lead)]).length;
  src.forEach((s, i) => refuse(cols[i] == null || cols[i]?.length === n, "length", camel(s), cols[i], { lead: camel(lead), count: n }));
  return Array.from({ length: n }, (_, i) => cols.map((c) => c?.[i]));
}

/**
 * The Call for client call `name` of the table, its arguments checked and encoded.
 *
 * `given` is by the table's names or their camelCase (leaseMs for lease_ms);
 * an argument left out (undefined) takes the table's default; null is null
 * (refused unless its type is optional or its default is null: a null count
 * by mistake must not quietly become a count of 1); anything the table does
 * not know is refused.
 * @param {string} name the call's name, snake_case or camelCase
 * @param {string} service
 * @param {Record<string, unknown>} [args]
 * @param {number} [maxPayload] the largest envelope sent (the client's setting)
 * @returns {Call}
 */
export function call(name, service, args = {}, maxPayload = MANIFEST.layout.default_max_payload_bytes) {
  const key = Object.hasOwn(CALLS, name) ? name : snake(name);
  if (!Object.hasOwn(CALLS, key)) {
    throw new InvalidArgumentError(`no call ${JSON.stringify(name)}; known: ${Object.keys(CALLS).map(camel).join(", ")}`);
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new InvalidArgumentError(`${name} takes an object of arguments, got ${describe(args)}`);
  }
  const entry = CALLS[key];
  /** @type {Record<string, unknown>} */
  const given = {};
  for (const [k, v] of Object.entries(args)) if (v !== undefined) given[Object.hasOwn(entry.client_args, k) ? k : snake(k)] = v;
  if (service || !entry.global) checkService(service); // a script of global keys only (beat) takes none
  // Sorted by the table's names, as the other ports list them (the table's text).
  const unknown = Object.keys(given).filter((k) => !entry.accepts.includes(k)).sort();
  refuse(unknown.length === 0, "unknown", camel(key), unknown, { names: unknown.map(camel).join(", ") });
  /** @type {Arg[]} */
  const argv = [];
  /** @type {Arg[][]} */
  let items = [];
  for (const spec of entry.args) {
    const list = spec.type === "list";
    const value = list ? rows(spec, given) : Object.hasOwn(given, spec.name) ? given[spec.name] : spec.default;
    const out = encodeArg(spec, value, camel(list ? key : spec.name), maxPayload);
    if (list) items = out; // its count slot, right before it, sent nothing: the count goes here
    argv.push(...(list ? [String(out.length), ...out.flat()] : [out].flat()));
  }
  if (entry.reply.kind === "records") {
    if (!COMPILED.has(key)) COMPILED.set(key, compileRecords(entry));
    const records = /** @type {ReturnType<typeof compileRecords>} */ (COMPILED.get(key));
    return { script: entry.script, service, args: argv, parse: (r) => records(service, r) };
  }
  return { script: entry.script, service, args: argv, parse: (r) => shape(entry, service, parseReply(entry.reply, r, items)) };
}
