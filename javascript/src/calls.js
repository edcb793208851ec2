// Each homing call as data, built from the manifest's call table
// (python/homing/ops.py does the same for Python).
//
// Sans-IO on purpose: the client (and a conformance runner) executes the same
// Call objects, so they cannot drift. Nothing here is written per call:
// lua/build.py joins each script's typed header with conformance/calls.json
// into the manifest's `calls` (ARGV order, types and bounds, reply shape), and
// call() encodes arguments and parses replies by that table alone. A new
// script with its header gives this port the call with no code here; only the
// value types it returns (RECORDS) are this port's own. The argument checks
// are in argtypes.js.

import { camel, describe, encodeArg, snake } from "./argtypes.js";
import { BY_CODE, HomingError, InvalidArgumentError } from "./errors.js";
import { GLOBAL_KEYS, MANIFEST, POLICY, SCRIPTS, STATUS_NAMES, checkService } from "./manifest.js";
import {
  DeadLetter, DeadPage, DistributeResult, Event, FailOutcome, PromoteResult, Recurring, RecurringPage, Status,
} from "./types.js";

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

/**
 * The JavaScript value type of each record name of the table (calls.json
 * "record"), from the table's fields (snake_case) to this port's camelCase.
 * @type {Record<string, (service: string, f: Fields) => unknown>}
 */
export const RECORDS = {
  Event: (service, f) => new Event(service, f.id, f.token, f.attempt, f.deadline_ms, f.raw, f.must_start),
  FailOutcome: (_, f) => new FailOutcome(f.action, f.at_ms),
  DeadPage: (_, f) => new DeadPage(f.total,
    f.items.map((/** @type {Fields} */ x) => new DeadLetter(x.id, x.died_ms, x.attempt, x.reason, x.raw))),
  Status: (_, f) =>
    new Status(f.state, f.detail ?? "", f.attempt ?? 0, f.raw_result ?? Buffer.alloc(0), f.snoozes ?? 0, f.progress ?? 0),
  PromoteResult: (_, f) => new PromoteResult(f.timers, f.retries, f.expired, f.more, f.next_due_ms, f.returned),
  DistributeResult: (_, f) => new DistributeResult(f.retried, f.dead, f.more),
  RecurringPage: (_, f) => new RecurringPage(f.total,
    f.items.map((/** @type {Fields} */ x) => new Recurring(x.name, x.spec, x.next_ms, x.fired, x.skipped))),
};

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
  const n = Number(t);
  return t.trim() !== "" && !Number.isNaN(n) ? n : t;
}

/** Reply field types -> converters (integers arrive as numbers, bulk strings as Buffers). */
const FIELD = /** @type {Record<string, (v: any) => unknown>} */ ({
  int: Number, str: s, bool: (v) => Number(v) === 1, bytes: (v) => v, num,
  status: (v) => STATUS_NAMES[s(v)] ?? s(v),
});

/**
 * The error of one item of a batch, naming the event and token.
 * @param {unknown} code
 * @param {Arg[]} item the item's encoded fields: id, token, ...
 */
function itemError(code, [id, token]) {
  const c = s(code);
  /** @type {typeof HomingError} */
  const cls = Object.hasOwn(BY_CODE, c) ? BY_CODE[/** @type {keyof BY_CODE} */ (c)] : HomingError;
  return new cls(`${c}: event ${s(id)} (token ${s(token)}): ${cls.description}`);
}

/**
 * @param {{name: string, type: string}[]} specs
 * @param {any[]} values
 */
function fields(specs, values) {
  if (values.length !== specs.length) {
    throw new HomingError(`reply has ${values.length} fields, the table says ${specs.length}`);
  }
  return Object.fromEntries(specs.map((f, i) => [f.name, FIELD[f.type](values[i])]));
}

/**
 * A raw reply as the table's neutral value (objects, arrays and scalars).
 * @param {any} spec the call's reply
 * @param {any} r
 * @param {Arg[][]} items the encoded items of its list argument
 */
export function parseReply(spec, r, items) {
  switch (spec.kind) {
    case "value": return FIELD[spec.type](r);
    case "tuple": return fields(spec.fields, r);
    case "records": {
      const n = spec.each.length;
      const h = spec.head.length;
      const rows = [];
      for (let i = h; i < r.length; i += n) rows.push(fields(spec.each, r.slice(i, i + n)));
      return { ...fields(spec.head, r.slice(0, h)), items: rows };
    }
    case "items":
      return r.map((/** @type {any} */ v, /** @type {number} */ i) => {
        if (spec.ok === "int" ? typeof v === "number" : s(v) === "OK") return spec.ok === "int" ? v : null;
        return itemError(v, items[i]);
      });
    case "union": {
      const tag = s(r[0]);
      const c = spec.cases[tag];
      if (c === undefined) throw new HomingError(`reply tag ${JSON.stringify(tag)} is not one of ${Object.keys(spec.cases)}`);
      return { state: tag, ...fields(c, r.slice(1)) };
    }
    case "map": {
      /** @type {Record<string, unknown>} */
      const out = {};
      for (let i = 0; i < r.length; i += 2) out[s(r[i])] = num(r[i + 1]);
      return out;
    }
    default:
      throw new HomingError(`unknown reply kind ${spec.kind}`);
  }
}

/**
 * A neutral value with the table's names in camelCase (plain objects only: a
 * Buffer or a per-item error stays what it is).
 * @param {unknown} v
 * @returns {unknown}
 */
const camelKeys = (v) => (Array.isArray(v) ? v.map(camelKeys)
  : v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype
    ? Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), camelKeys(x)])) : v);

/**
 * The neutral value as this port's: picked field, merged head, record type.
 * A tuple with no record is an array ([requeued, remaining]); other objects
 * get camelCase names.
 * @param {any} entry
 * @param {string} service
 * @param {any} value
 */
function shape(entry, service, value) {
  const make = RECORDS[entry.record ?? ""];
  const kind = entry.reply.kind;
  if (kind === "records" && entry.merge_head) {
    const { items, ...head } = value;
    value = items.map((/** @type {Fields} */ it) => ({ ...head, ...it }));
  }
  const rows = kind === "records" ? (Array.isArray(value) ? value : value.items) : null;
  if (entry.pick !== undefined) return rows ? rows.map((/** @type {Fields} */ it) => it[entry.pick]) : value[entry.pick];
  if (make !== undefined) return Array.isArray(value) ? value.map((it) => make(service, it)) : make(service, value);
  if (kind === "tuple") return Object.values(value);
  // A map keeps its names (stats: 'total.completed', 'in_flight'), but a
  // policy field is named as the JavaScript API names it (configure: leaseMs).
  if (kind === "map") return Object.fromEntries(Object.entries(value).map(([k, v]) => [Object.hasOwn(POLICY, k) ? camel(k) : k, v]));
  return camelKeys(value);
}

/**
 * The items of a list argument: given as such, or zipped from per-field
 * columns (enqueueMany's payloads, keys and ids).
 * @param {any} entry
 * @param {any} spec
 * @param {Record<string, unknown>} given
 * @param {string} what
 */
function listItems(entry, spec, given, what) {
  const columns = entry.items_from;
  if (!columns || given[spec.name] !== undefined) return given[spec.name];
  const defaults = entry.defaults ?? {};
  // The column that has no default sets the length (payloads; ids and keys may be left out).
  const lead = Object.keys(columns).find((src) => !Object.hasOwn(defaults, columns[src]));
  const from = /** @type {any} */ (given[/** @type {string} */ (lead)]);
  // A string is iterable too: "abc" must not become three events.
  if (typeof from === "string" || typeof from?.[Symbol.iterator] !== "function") {
    throw new InvalidArgumentError(`${what} takes an array (or iterable) of ${lead}, got ${describe(from)}`);
  }
  const rows = Array.from(/** @type {Iterable<unknown>} */ (from));
  /** @type {Record<string, unknown[] | null>} */
  const cols = {};
  for (const [src, field] of Object.entries(columns)) {
    const col = /** @type {unknown} */ (src === lead ? rows : given[src]);
    if (col == null) {
      cols[field] = null;
      continue;
    }
    if (!Array.isArray(col)) throw new InvalidArgumentError(`${camel(src)} takes an array, got ${describe(col)}`);
    if (col.length !== rows.length) throw new InvalidArgumentError(`${camel(src)} must be as many as ${lead}`);
    cols[field] = col;
  }
  return rows.map((_, i) => spec.fields.map((/** @type {any} */ f) => cols[f.name]?.[i]));
}

/**
 * The Call for client call `name` of the table, its arguments checked and encoded.
 *
 * `given` is by the table's names or their camelCase (leaseMs for lease_ms);
 * an argument left out (undefined) takes the table's default; null is null
 * (refused unless its type is optional or its default is null: a null count
 * by mistake must not quietly become a count of 1); anything the table does
 * not know is refused. A batch call's single form (`batch_of`) is the batch of
 * one, its item's error thrown.
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
  const known = new Set([...Object.keys(entry.client_args), ...entry.args.map((/** @type {any} */ a) => a.name)]);
  const unknown = Object.keys(given).filter((k) => !known.has(k));
  if (unknown.length) throw new InvalidArgumentError(`${camel(key)} takes no argument ${unknown.map(camel).join(", ")}`);
  if (entry.batch_of !== undefined) {
    const target = CALLS[entry.batch_of];
    const list = target.args.find((/** @type {any} */ a) => a.type === "list");
    const item = list.fields.map((/** @type {any} */ f) => given[f.name]);
    for (const f of list.fields) delete given[f.name];
    const inner = call(entry.batch_of, service, { ...given, [list.name]: [item] }, maxPayload);
    const single = (/** @type {any} */ r) => {
      const out = inner.parse(r)[0];
      if (out instanceof HomingError) throw out;
      return out;
    };
    return { script: inner.script, service, args: inner.args, parse: single };
  }
  // A script whose keys are all global (beat: <prefix>:daemons) takes no service.
  if (service || !SCRIPTS[entry.script].keys.every((k) => GLOBAL_KEYS.has(k))) checkService(service);
  const defaults = entry.defaults ?? {};
  const what = camel(key);
  /** @type {Arg[]} */
  const argv = [];
  /** @type {Arg[][]} */
  let items = [];
  let countAt = -1;
  for (const spec of entry.args) {
    if (spec.type === "config") argv.push(String(maxPayload));
    else if (spec.type === "count") {
      countAt = argv.length; // filled in once its list is known
      argv.push("0");
    } else {
      const value = spec.type === "list" ? listItems(entry, spec, given, what)
        : Object.hasOwn(given, spec.name) ? given[spec.name] : defaults[spec.name];
      const out = encodeArg(spec, value, spec.type === "list" ? what : spec.name, maxPayload, defaults);
      argv.push(...(Array.isArray(out) ? out : [out]));
      if (spec.type === "list" && Array.isArray(out)) {
        const width = spec.fields.length;
        items = [];
        for (let i = 0; i < out.length; i += width) items.push(out.slice(i, i + width));
        if (countAt >= 0) argv[countAt] = String(items.length);
      }
    }
  }
  const parse = (/** @type {any} */ r) => shape(entry, service, parseReply(entry.reply, r, items));
  return { script: entry.script, service, args: argv, parse };
}
