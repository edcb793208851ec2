// The Redis settings that bound homing's promises, read when a client
// connects (python/homing/durability.py, rule for rule).
//
// homing is exactly as durable as its Redis (docs/guarantees.md). Under an
// eviction policy Redis deletes keys when memory runs out, queued events
// included, and says nothing; without persistence a restart loses everything.
// So every client reads maxmemory-policy, appendonly, appendfsync and save
// (CONFIG GET) when it connects and warns once per process and server;
// `requireDurable` turns the warning into a refusal (NotDurableError).
//
// Managed services often refuse CONFIG: the eviction policy and whether the
// AOF is on are then read from INFO, and what neither shows is reported as
// unknown, never guessed. On a Cluster every master is read (the masters own
// the data; a replica's settings matter only after a failover).

import { isBadDatabase, isConnectionError, translate } from "./redis-errors.js";
import { NotDurableError } from "./errors.js";

export const SETTINGS = Object.freeze(["maxmemory-policy", "appendonly", "appendfsync", "save"]);
const GUIDE = "see docs/guarantees.md";

/**
 * @typedef {Record<string, string | null>} Settings null where neither CONFIG GET nor INFO told
 * @typedef {{warn(...args: any[]): void}} Warner
 */

/** One setting that may lose acknowledged events; `fatal`: requireDurable refuses it. */
export class Finding {
  /**
   * @param {string} setting
   * @param {string | null} value null: it could not be read
   * @param {string} consequence
   * @param {boolean} fatal
   */
  constructor(setting, value, consequence, fatal) {
    this.setting = setting;
    this.value = value;
    this.consequence = consequence;
    this.fatal = fatal;
  }

  text() {
    const have = this.value === null ? "could not be read" : `is ${JSON.stringify(this.value)}`;
    return `${this.setting} ${have}: ${this.consequence}`;
  }
}

/** What one server (the standalone server, or a Cluster master) keeps of its writes. */
export class NodeDurability {
  /**
   * @param {string} node host:port
   * @param {Settings} settings
   * @param {string | null} configRefused Redis's reply when CONFIG GET was refused
   * @param {Finding[]} findings
   */
  constructor(node, settings, configRefused, findings) {
    this.node = node;
    this.settings = settings;
    this.configRefused = configRefused;
    this.findings = findings;
  }

  /** No eviction policy and the AOF on (appendfsync is warned about, not refused). */
  get durable() {
    return !this.findings.some((f) => f.fatal);
  }
}

/**
 * The findings for one server's settings (none: it keeps what it acknowledges).
 * @param {Settings} settings
 * @returns {Finding[]}
 */
export function assess(settings) {
  const out = [];
  const policy = settings["maxmemory-policy"] ?? null;
  if (policy === null) {
    out.push(new Finding("maxmemory-policy", null,
      "whether Redis may evict (silently delete) queued events is unknown", true));
  } else if (policy !== "noeviction") {
    out.push(new Finding("maxmemory-policy", policy,
      "when memory runs out Redis evicts keys and may silently delete queued events; " +
        "set it to noeviction", true));
  }
  const aof = settings.appendonly ?? null;
  const save = settings.save ?? null;
  if (aof === null) {
    out.push(new Finding("appendonly", null, "whether acknowledged events survive a restart is unknown", true));
  } else if (aof !== "yes") {
    let why;
    if (save === "") {
      why = 'no persistence at all (save ""): a restart loses every queued event';
    } else if (save === null) {
      why = "without the AOF a restart loses every event acknowledged since the last " +
        "RDB snapshot, or all of them if there is none";
    } else {
      why = `RDB snapshots only (save ${JSON.stringify(save)}): a crash loses every event ` +
        "acknowledged since the last snapshot";
    }
    out.push(new Finding("appendonly", aof, `${why}; set appendonly yes`, true));
  } else {
    const fsync = settings.appendfsync ?? null;
    if (fsync === null) {
      out.push(new Finding("appendfsync", null, "how much a crash may lose is unknown", false));
    } else if (fsync === "everysec") {
      out.push(new Finding("appendfsync", fsync,
        "a crash may lose about the last second of acknowledged events (appendfsync always loses none)",
        false));
    } else if (fsync !== "always") {
      out.push(new Finding("appendfsync", fsync,
        "the operating system decides when the AOF reaches the disk: a machine crash may lose " +
          "the last ~30 s of acknowledged events", false));
    }
  }
  return out;
}

/** @param {unknown} v */
const text = (v) => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString("utf8") : String(v));

/**
 * CONFIG GET's reply (a flat array on RESP2, a map on RESP3) as settings.
 * @param {unknown} reply
 * @returns {Settings}
 */
function fromConfig(reply) {
  /** @type {Map<string, string | null>} */
  const got = new Map();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) got.set(String(text(reply[i])), text(reply[i + 1]));
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) got.set(String(text(k)), text(v));
  } else if (reply && typeof reply === "object") {
    for (const [k, v] of Object.entries(reply)) got.set(k, text(v));
  }
  return Object.fromEntries(SETTINGS.map((name) => [name, got.get(name) ?? null]));
}

/**
 * What INFO shows of the settings: the eviction policy and whether the AOF is on.
 * @param {string} memory
 * @param {string} persistence
 * @returns {Settings}
 */
function fromInfo(memory, persistence) {
  const field = (/** @type {string} */ info, /** @type {string} */ name) =>
    new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim() ?? null;
  /** @type {Settings} */
  const settings = Object.fromEntries(SETTINGS.map((name) => [name, null]));
  settings["maxmemory-policy"] = field(memory, "maxmemory_policy");
  const aof = field(persistence, "aof_enabled");
  if (aof !== null) settings.appendonly = aof === "1" ? "yes" : "no";
  return settings;
}

/** @param {any} conn */
const isCluster = (conn) => typeof conn.getSlotMaster === "function";

/**
 * (node name, client that sends a command to it) for each server to read.
 * @param {any} conn a node-redis client or cluster
 * @returns {Promise<[string, any][]>}
 */
async function targets(conn) {
  if (isCluster(conn)) {
    return Promise.all(conn.masters.map(async (/** @type {any} */ m) => {
      const name = `${m.host}:${m.port}`;
      try {
        return [name, await conn.nodeClient(m)];
      } catch (exc) {
        // A master that is down (the client starts without it, see
        // connection.js): its settings are unknown, not a reason to fail.
        if (!isConnectionError(exc)) throw exc;
        return [name, unreachable(exc)];
      }
    }));
  }
  if (typeof conn.getSentinelNode === "function") {
    // A Sentinel client: its sendCommand takes (isReadonly, args); the master it is on.
    const m = conn.getMasterNode();
    const name = m ? `${m.host}:${m.port}` : "the Sentinel master";
    return [[name, { sendCommand: (/** @type {string[]} */ args) => conn.sendCommand(false, args) }]];
  }
  const socket = conn.options?.socket ?? {};
  let name = socket.path ?? (socket.host !== undefined ? `${socket.host}:${socket.port ?? 6379}` : null);
  if (name === null && conn.options?.url) {
    try {
      const u = new URL(conn.options.url);
      name = `${u.hostname}:${u.port || 6379}`;
    } catch {
      name = "redis";
    }
  }
  return [[name ?? "localhost:6379", conn]];
}

/**
 * A stand-in for a node that could not be reached: every command is refused
 * with a plain Error (so its settings read as unknown, and are warned about).
 * @param {unknown} exc
 */
function unreachable(exc) {
  const why = `could not be reached: ${exc instanceof Error ? exc.message : String(exc)}`;
  return { sendCommand: () => Promise.reject(new Error(why)) };
}

/**
 * A reply that refuses CONFIG or INFO (an ACL, a managed service): anything but
 * a lost connection or a bad database index, which are raised.
 * @param {unknown} exc
 */
function refusal(exc) {
  if (isConnectionError(exc) || isBadDatabase(exc) || !(exc instanceof Error)) throw translate(exc);
  return exc.message;
}

/**
 * Read every server of a node-redis client (throws a HomingError for a lost connection).
 * @param {any} conn
 * @returns {Promise<NodeDurability[]>}
 */
export async function read(conn) {
  const out = [];
  for (const [name, node] of await targets(conn)) {
    let refused = null;
    let settings;
    try {
      settings = fromConfig(await node.sendCommand(["CONFIG", "GET", ...SETTINGS]));
    } catch (exc) {
      refused = refusal(exc);
      try {
        const memory = text(await node.sendCommand(["INFO", "memory"])) ?? "";
        const persistence = text(await node.sendCommand(["INFO", "persistence"])) ?? "";
        settings = fromInfo(memory, persistence);
      } catch (infoExc) {
        refusal(infoExc);
        settings = Object.fromEntries(SETTINGS.map((s) => [s, null]));
      }
    }
    out.push(new NodeDurability(name, settings, refused, assess(settings)));
  }
  return out;
}

/** @type {Set<string>} (node, setting, value) told this process */
const warned = new Set();

/** @param {string} node @param {string} setting @param {string | null} value */
function firstTime(node, setting, value) {
  const key = JSON.stringify([node, setting, value]);
  if (warned.has(key)) return false;
  warned.add(key);
  return true;
}

/**
 * Warn about each finding once per process, server and value. Once, not per
 * client: a process that opens many clients must not drown its log; a value
 * changed since is told again.
 * @param {Iterable<NodeDurability>} reports
 * @param {Warner} logger
 */
export function warnOnce(reports, logger) {
  for (const rep of reports) {
    if (rep.configRefused !== null && firstTime(rep.node, "CONFIG", null)) {
      logger.warn(`Redis at ${rep.node} refused CONFIG GET (${rep.configRefused}): its durability ` +
        `settings could not all be checked; what INFO showed was used (${GUIDE})`);
    }
    for (const f of rep.findings) {
      if (firstTime(rep.node, f.setting, f.value)) logger.warn(`Redis at ${rep.node}: ${f.text()} (${GUIDE})`);
    }
  }
}

/** Warn again as if this process had not connected yet (for tests). */
export function forget() {
  warned.clear();
}

/**
 * Throw NotDurableError unless every server is shown to be durable.
 * @param {Iterable<NodeDurability>} reports
 */
export function requireDurable(reports) {
  const bad = [];
  for (const rep of reports) {
    for (const f of rep.findings) if (f.fatal) bad.push(`Redis at ${rep.node}: ${f.text()}`);
  }
  if (bad.length) {
    const unknown = bad.some((line) => line.includes("could not be read"));
    const tail = unknown ? " (CONFIG GET or INFO refused: durability cannot be shown)" : "";
    throw new NotDurableError(
      `durability was required and this server may lose acknowledged events${tail}: ${bad.join("; ")}`,
    );
  }
}

/**
 * One line: durable or not, and why not.
 * @param {NodeDurability[]} reports
 */
export function summary(reports) {
  const nodes = reports.map((r) => r.node).join(", ");
  const worst = reports.flatMap((r) => r.findings.map((f) => `${r.node}: ${f.text()}`));
  if (!worst.length) return `durability: ok (${nodes}: noeviction, appendonly yes, appendfsync always)`;
  const verdict = reports.every((r) => r.durable) ? "ok, with a warning" : "NOT DURABLE, acknowledged events may be lost";
  return `durability: ${verdict}: ${worst.join("; ")}`;
}
