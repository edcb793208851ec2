// Running conformance vectors against a Redis: the JavaScript implementation
// of the runner contract (python/homing/conformance/runner.py is the reference).
//
// For each vector the runner takes a fresh service name under its own prefix,
// writes the starting state, freezes that service's test clock (the field
// test_clock of its config hash), runs the steps
// in order (client calls, raw script calls, clock moves, writes, state checks)
// and stops at the first mismatch. Afterwards it deletes exactly the keys of
// that service (the names of keys.json), its registry entries and the daemon
// beats its beat steps wrote to the run prefix's daemons hash, so a run never
// touches a key it did not create, on a standalone server or a Cluster.

import { randomBytes } from "node:crypto";

import { Client } from "../client.js";
import { connect, isNoScript, translate } from "../connection.js";
import * as envelope from "../envelope.js";
import { HomingError } from "../errors.js";
import { DEFAULT_MAX_PAYLOAD, GLOBAL_KEYS, LAYOUT, SCRIPTS, globalKey, serviceKey } from "../manifest.js";
import { CALLS } from "./calls.js";
import { compare, show } from "./compare.js";
import { TEST_CLOCK, isPlain, toValue, toWire } from "./loader.js";
import { closedPort, describeServer, score, send } from "./redis.js";

export { closedPort, compare, send, show };

/** @typedef {import("./loader.js").Vector} Vector */
/** @typedef {import("./loader.js").Suite} Suite */
/** @typedef {Record<string, any>} Json */
/** @typedef {{operation: string, name: string, passed: boolean, detail: string}} VectorResult */
/** @typedef {{server: string, prefix: string, results: VectorResult[]}} Report */

/** @type {Record<string, string>} key name -> Redis type */
export const KEY_TYPES = Object.fromEntries(
  Object.entries(LAYOUT.service_keys).map(([k, v]) => [k, /** @type {{type: string}} */ (v).type]),
);
const KEY_NAMES = Object.keys(KEY_TYPES);
export const ENVELOPE_OPERATION = "envelope";

/** @param {Report} report */
export const passed = (report) => report.results.length > 0 && report.results.every((r) => r.passed);

/** Runs vectors on one Redis under one prefix; see the module comment. */
export class Runner {
  /** @type {Set<string>} invalid service names steps used: cleaned up too */
  overrides = new Set();
  /** @type {Set<string>} daemon names a vector beat, removed after it */
  daemons = new Set();
  /** @type {Set<string>} worker names a vector beat, removed after it */
  workers = new Set();
  /** due-index members a raw due_settle step wrote, removed after the vector */
  dueNames = new Set();

  /**
   * @param {any} conn a connected node-redis client or cluster
   * @param {string} prefix
   */
  constructor(conn, prefix) {
    this.conn = conn;
    this.prefix = prefix;
  }

  /** @param {string} service @param {string} name */
  key(service, name) {
    return serviceKey(this.prefix, service, name);
  }

  /** @param {string} key @param {(string | Buffer)[]} args */
  cmd(key, args) {
    return send(this.conn, key, args);
  }

  /** @param {Vector} vec */
  async freshService(vec) {
    for (let i = 0; i < 10; i++) {
      const service = `${vec.operation}.${randomBytes(4).toString("hex")}`;
      const keys = KEY_NAMES.map((k) => this.key(service, k));
      if ((await this.cmd(keys[0], ["EXISTS", ...keys])) === 0) return service;
    }
    throw new Error("could not find an unused service name");
  }

  /**
   * Delete exactly this service's keys and registry entries, nothing else.
   * A valid name's keys share a slot (one DEL); an invalid override's may not.
   * @param {string} service
   * @param {boolean} [oneSlot]
   */
  async cleanup(service, oneSlot = true) {
    const keys = KEY_NAMES.map((k) => this.key(service, k));
    if (oneSlot) await this.cmd(keys[0], ["DEL", ...keys]);
    else await Promise.all(keys.map((k) => this.cmd(k, ["DEL", k])));
    for (const set of ["services", "hints"]) {
      const key = globalKey(this.prefix, set);
      await this.cmd(key, ["SREM", key, service]);
    }
    const due = globalKey(this.prefix, "due"); // the clients' due-time hints
    await this.cmd(due, ["ZREM", due, service]);
  }

  /** Remove the beats a vector wrote to the run prefix's daemons hash (and only those). */
  async forgetBeats() {
    if (this.dueNames.size) {
      const due = globalKey(this.prefix, "due");
      await this.cmd(due, ["ZREM", due, ...this.dueNames]);
      this.dueNames.clear();
    }
    for (const [hash, names] of /** @type {[string, Set<string>][]} */ ([["daemons", this.daemons], ["workers", this.workers]])) {
      if (names.size) {
        const key = globalKey(this.prefix, hash);
        await this.cmd(key, ["HDEL", key, ...names]);
        names.clear();
      }
    }
  }

  /**
   * The names with a beat under the run prefix, for the `$daemons` and `$workers` checks.
   * @param {string} [hash] daemons or workers
   */
  async beatNames(hash = "daemons") {
    const key = globalKey(this.prefix, hash);
    return (await this.cmd(key, ["HKEYS", key])).map(String).sort();
  }

  /** @param {string} name @param {unknown} value @returns {[string, any]} */
  typed(name, value) {
    if (isPlain(value) && "$type" in value) return [value.$type, value.value];
    return [KEY_TYPES[name], value];
  }

  /** @param {string} service @param {Json} values */
  async write(service, values) {
    for (const [name, v] of Object.entries(values)) {
      const key = this.key(service, name);
      const [type, value] = this.typed(name, v);
      await this.cmd(key, ["DEL", key]);
      if (value === null || value === undefined) continue;
      const where = `write ${name}`;
      if (type === "string") {
        await this.cmd(key, ["SET", key, toWire(value, where)]);
      } else if ((type === "list" || type === "set") && value.length) {
        const items = value.map((/** @type {unknown} */ x) => toWire(x, where));
        await this.cmd(key, [type === "list" ? "RPUSH" : "SADD", key, ...items]);
      } else if (type === "hash" && Object.keys(value).length) {
        const flat = Object.entries(value).flatMap(([f, x]) => [f, toWire(x, where)]);
        await this.cmd(key, ["HSET", key, ...flat]);
      } else if (type === "zset" && Object.keys(value).length) {
        const flat = Object.entries(value).flatMap(([m, s]) => [String(Number(toValue(s))), m]);
        await this.cmd(key, ["ZADD", key, ...flat]);
      }
    }
  }

  /**
   * A key's type and contents, in the shapes the state checks compare with.
   * @param {string} key
   * @returns {Promise<[string, any]>}
   */
  async read(key) {
    const type = String(await this.cmd(key, ["TYPE", key]));
    const pairs = (/** @type {Buffer[]} */ r) => {
      /** @type {[string, Buffer][]} */
      const out = [];
      for (let i = 0; i < r.length; i += 2) out.push([r[i].toString("utf8"), r[i + 1]]);
      return out;
    };
    switch (type) {
      case "list":
        return [type, await this.cmd(key, ["LRANGE", key, "0", "-1"])];
      case "hash":
        return [type, Object.fromEntries(pairs(await this.cmd(key, ["HGETALL", key])))];
      case "zset": {
        const flat = pairs(await this.cmd(key, ["ZRANGE", key, "0", "-1", "WITHSCORES"]));
        return [type, Object.fromEntries(flat.map(([m, s]) => [m, score(s.toString())]))];
      }
      case "string":
        return [type, await this.cmd(key, ["GET", key])];
      case "set":
        return [type, (await this.cmd(key, ["SMEMBERS", key])).sort(Buffer.compare)];
      default:
        return [type, null];
    }
  }

  /** @param {string} service @param {Json} expected @returns {Promise<string[]>} */
  async checkState(service, expected) {
    /** @type {string[]} */
    const out = [];
    for (const [name, e] of Object.entries(expected)) {
      if (name === "$keys") {
        const exists = await Promise.all(KEY_NAMES.map((k) => this.cmd(this.key(service, k), ["EXISTS", this.key(service, k)])));
        const have = KEY_NAMES.filter((_, i) => exists[i] === 1).sort();
        const want = [...e].sort();
        if (have.join(",") !== want.join(",")) out.push(`state.$keys: expected ${show(want)}, got ${show(have)}`);
      } else if (name === "$registered") {
        const reg = globalKey(this.prefix, "services");
        const member = (await this.cmd(reg, ["SISMEMBER", reg, service])) === 1;
        if (member !== e) out.push(`state.$registered: expected ${e}, got ${member}`);
      } else if (name === "$due") {
        const key = globalKey(this.prefix, "due");
        const flat = await this.cmd(key, ["ZRANGE", key, "0", "-1", "WITHSCORES"]);
        /** @type {Record<string, number | string>} */
        const have = {};
        for (let i = 0; i < flat.length; i += 2) {
          const score = Number(String(flat[i + 1]));
          have[String(flat[i])] = score >= 2 ** 50 ? "claimed" : score;
        }
        const norm = (/** @type {Record<string, unknown>} */ o) => JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));
        if (norm(have) !== norm(e)) out.push(`state.$due: expected ${show(e)}, got ${show(have)}`);
      } else if (name === "$daemons" || name === "$workers") {
        const have = await this.beatNames(name.slice(1));
        const want = [...e].sort();
        if (have.join("\n") !== want.join("\n")) out.push(`state.${name}: expected ${show(want)}, got ${show(have)}`);
      } else {
        let [type, exp] = this.typed(name, e);
        const [haveType, act] = await this.read(this.key(service, name));
        if (exp === null) {
          if (haveType !== "none") out.push(`state.${name}: expected no key, got a ${haveType} ${show(act, 80)}`);
        } else if (haveType !== type) {
          out.push(`state.${name}: expected a ${type}, got ${haveType}`);
        } else {
          if (type === "set") exp = [...exp].sort((a, b) => Buffer.compare(toWire(a), toWire(b)));
          out.push(...compare(exp, act, `state.${name}`, "state"));
        }
      }
    }
    return out;
  }

  /** @param {Vector} vec */
  client(vec) {
    return new Client(this.conn, { prefix: this.prefix, maxPayload: vec.client.max_payload ?? DEFAULT_MAX_PAYLOAD });
  }

  /** @param {Client} client @param {string} service @param {Json} step */
  async call(client, service, step) {
    /** @type {Json} */
    const args = {};
    for (const [k, v] of Object.entries(step.args ?? {})) args[k] = toValue(v, `args.${k}`);
    if ("service" in step) {
      // Meant to be refused; if a client wrongly accepts it, its keys (under our
      // prefix) must still be cleaned up.
      service = step.service;
      this.overrides.add(service);
    }
    // Before the call: a half-done one is cleaned up too.
    if (step.call === "beat" && typeof args.name === "string") this.daemons.add(args.name);
    if (step.call === "worker_beat" && typeof args.name === "string") this.workers.add(args.name);
    if (step.connection === "refused") {
      // Connecting fails at once (ConnectionLostError): that is the call's error.
      const refused = await Client.connect(`redis://127.0.0.1:${await closedPort()}/0`, { prefix: this.prefix });
      try {
        return await CALLS[step.call](refused, service, args);
      } finally {
        await refused.close();
      }
    }
    return CALLS[step.call](client, service, args);
  }

  /** @param {string} service @param {Json} step */
  async script(service, step) {
    const script = SCRIPTS[step.script];
    // A global key (the beat script's daemons) is <prefix>:<name>, shared by the run.
    const keys = (step.keys ?? script.keys).map((/** @type {string} */ k) =>
      GLOBAL_KEYS.has(k) ? globalKey(this.prefix, k) : this.key(service, k));
    const args = step.args.map((/** @type {unknown} */ a, /** @type {number} */ i) => toWire(a, `args[${i}]`));
    if (step.script === "beat" && args.length) this.daemons.add(args[0].toString("utf8"));
    if (step.script === "worker_beat" && args.length) this.workers.add(args[0].toString("utf8"));
    if (step.script === "due_settle") args.slice(2).forEach((a, i) => { if (i % 2 === 0) this.dueNames.add(a.toString("utf8")); });
    const n = String(keys.length);
    try {
      try {
        return await this.cmd(keys[0], ["EVALSHA", script.sha1, n, ...keys, ...args]);
      } catch (exc) {
        if (!isNoScript(exc)) throw exc;
        return await this.cmd(keys[0], ["EVAL", script.source, n, ...keys, ...args]);
      }
    } catch (exc) {
      throw translate(exc);
    }
  }

  /** @param {Client} client @param {string} service @param {Json} step @returns {Promise<string[]>} */
  async step(client, service, step) {
    const config = this.key(service, "config");
    if ("clock" in step) {
      await this.cmd(config, step.clock === null ? ["HDEL", config, TEST_CLOCK] : ["HSET", config, TEST_CLOCK, String(step.clock)]);
      return [];
    }
    if ("advance_ms" in step) {
      await this.cmd(config, ["HINCRBY", config, TEST_CLOCK, String(step.advance_ms)]);
      return [];
    }
    if ("write" in step) {
      await this.write(service, step.write);
      return [];
    }
    if ("state" in step) return this.checkState(service, step.state);
    const mode = "call" in step ? "value" : "raw";
    let got;
    try {
      got = mode === "value" ? await this.call(client, service, step) : await this.script(service, step);
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc;
      if ("error" in step) {
        return exc.code === step.error ? [] : [`expected error ${step.error}, got ${exc.code}: ${exc.message}`];
      }
      return [`unexpected error ${exc.code}: ${exc.message}`];
    }
    if ("error" in step) return [`expected error ${step.error}, got a reply: ${show(got, 200)}`];
    if ("returns" in step) return compare(step.returns, got, "returns", mode);
    return [];
  }

  /** @param {Vector} vec @returns {Promise<VectorResult>} */
  async runVector(vec) {
    const service = await this.freshService(vec);
    const result = { operation: vec.operation, name: vec.name, passed: true, detail: "" };
    try {
      await this.write(service, vec.given);
      // After given: its config (a hash, no test_clock: conformance/build.py checks) keeps its
      // fields and gains the clock.
      const config = this.key(service, "config");
      await this.cmd(config, ["HSET", config, TEST_CLOCK, String(vec.clock)]);
      const client = this.client(vec);
      for (const [i, step] of vec.steps.entries()) {
        let problems;
        try {
          problems = await this.step(client, service, step);
        } catch (exc) {
          // a runner or client bug: report it, keep going with the next vector
          problems = [`raised ${exc instanceof Error ? `${exc.name}: ${exc.message}` : String(exc)}`];
        }
        if (problems.length) {
          const what = step.call ?? step.script ?? Object.keys(step)[0];
          return { ...result, passed: false, detail: `step ${i + 1} (${what}): ${problems.join("; ")}` };
        }
      }
      return result;
    } finally {
      await this.cleanup(service);
      for (const name of this.overrides) await this.cleanup(name, false);
      this.overrides.clear();
      await this.forgetBeats();
    }
  }
}

/**
 * One golden wire vector through src/envelope.js, byte for byte.
 * @param {Json} c
 * @returns {VectorResult}
 */
export function runEnvelopeCase(c) {
  /** @type {string[]} */
  const problems = [];
  /** @param {() => unknown} fn @param {string} what */
  const refused = (fn, what) => {
    try {
      const got = fn();
      problems.push(`${what}: expected error ${c.error}, got ${show(got, 80)}`);
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc;
      if (exc.code !== c.error) problems.push(`${what}: expected error ${c.error}, got ${exc.code}`);
    }
  };
  try {
    if ("error" in c && "payload" in c) {
      refused(() => envelope.encode(toValue(c.payload)), "encode");
    } else if ("error" in c) {
      refused(() => envelope.decode(Buffer.from(c.hex, "hex")), "decode");
    } else {
      // A vector with "trace" (envelope revision 1.1) encodes with exactly that trace
      // context and checks the one decoded (null: none); one without, no context.
      const trace = /** @type {{traceparent: string, tracestate?: string} | null} */ (c.trace ?? null);
      if (!c.decode_only) {
        const hexed = envelope.encode(toValue(c.payload), trace).toString("hex");
        if (hexed !== c.hex) problems.push(`encode: expected ${c.hex}, got ${hexed}`);
      }
      problems.push(...compare(c.payload, envelope.decode(Buffer.from(c.hex, "hex")), "decode", "value"));
      if ("trace" in c) {
        const got = envelope.traceOf(Buffer.from(c.hex, "hex"));
        if (JSON.stringify(got) !== JSON.stringify(c.trace)) {
          problems.push(`trace: expected ${JSON.stringify(c.trace)}, got ${JSON.stringify(got)}`);
        }
      }
    }
  } catch (exc) {
    problems.push(`raised ${exc instanceof Error ? `${exc.name}: ${exc.message}` : String(exc)}`);
  }
  return { operation: ENVELOPE_OPERATION, name: c.name, passed: problems.length === 0, detail: problems.join("; ") };
}

export const newPrefix = () => `homing-conformance-${randomBytes(4).toString("hex")}`;

/** The prefix already holds a homing registry: a live system may be using it. */
export class PrefixInUseError extends Error {
  name = "PrefixInUseError";
}

/**
 * Run the suite (or the named operations of it) against url and return the report.
 * @param {string} url
 * @param {Suite} suite
 * @param {{prefix?: string | null, operations?: string[]}} [options]
 * @returns {Promise<Report>}
 */
export async function runSuite(url, suite, options = {}) {
  const { operations = [] } = options;
  const conn = await connect(url);
  try {
    const prefix = options.prefix ?? newPrefix();
    const registry = globalKey(prefix, "services");
    if ((await send(conn, registry, ["EXISTS", registry])) !== 0) {
      throw new PrefixInUseError(`prefix ${JSON.stringify(prefix)} is in use (${registry} exists): ` +
        "the suite needs a prefix of its own");
    }
    /** @type {Report} */
    const report = { server: await describeServer(conn), prefix, results: [] };
    if (operations.length === 0 || operations.includes(ENVELOPE_OPERATION)) {
      report.results.push(...suite.envelopes.map(runEnvelopeCase));
    }
    const runner = new Runner(conn, prefix);
    for (const vec of suite.vectors) {
      if (operations.length === 0 || operations.includes(vec.operation)) {
        report.results.push(await runner.runVector(vec));
      }
    }
    return report;
  } finally {
    await conn.close();
  }
}
