// Connecting to Redis with node-redis, and turning Redis errors into homing
// errors (python/homing/connection.py).
//
// Connections are made so that a lost Redis surfaces as ConnectionLostError
// on each call instead of a hang: the offline queue is off, so a command sent
// while the socket is down fails at once, and node-redis reconnects in the
// background with backoff. The first connection does not retry, so
// Client.connect() to an unreachable server fails fast, as Python's does.

import { RESP_TYPES, createClient, createCluster } from "redis";

import {
  ConnectionLostError,
  HomingError,
  InvalidArgumentError,
  PermissionDeniedError,
  RedisFullError,
  ScriptError,
  WrongTypeError,
  errorFor,
} from "./errors.js";
import { GLOBAL_KEYS, globalKey, serviceKey } from "./manifest.js";

const HOMING_ERR = /^HOMING (\w+) (.*?)(?: script: \w+, on @user_script:\d+\.)?$/s;
// Redis's reply to a write it refuses under maxmemory + noeviction ("OOM
// command not allowed when used memory > 'maxmemory'."), from a plain command
// or a script of the memory class 'grows'.
const OOM = "command not allowed when used memory";
// Replies to the SELECT node-redis sends on connecting for a URL's /N: out of
// range, or any N but 0 on a Cluster node.
const BAD_DB = ["DB index is out of range", "SELECT is not allowed in cluster mode"];
// An ACL refusal (a plain command's NOPERM reply, or Redis 7.0's wording inside
// a script, which names no command: ACL LOG does), or refused credentials.
const NO_PERMISSION = ["NOPERM", "WRONGPASS", "NOAUTH", "can't run this command or subcommand",
  "has no permissions to run", "has no permissions to access"];

/**
 * Whether an error refuses the URL's database index (it comes with the first command).
 * @param {unknown} exc
 */
export function isBadDatabase(exc) {
  const msg = exc instanceof Error ? exc.message : String(exc);
  return BAD_DB.some((marker) => msg.includes(marker));
}

// node-redis reports a lost or refused connection with these classes, and the
// socket layer with Node's system errors (which carry an errno code).
const CONNECTION_CLASSES = new Set([
  "ClientClosedError",
  "ClientOfflineError",
  "ConnectionTimeoutError",
  "DisconnectsClientError",
  "ReconnectStrategyError",
  "RootNodesUnavailableError",
  "SocketClosedUnexpectedlyError",
  "SocketTimeoutError",
  "TimeoutError",
]);
const SYSTEM_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Whether an error means Redis could not be reached (rather than refused a command).
 * A server still loading its data after a restart counts, as redis-py's
 * BusyLoadingError is a ConnectionError: callers retry it the same way.
 * @param {unknown} exc
 */
export function isConnectionError(exc) {
  if (!(exc instanceof Error)) return false;
  if (CONNECTION_CLASSES.has(exc.constructor.name)) return true;
  if (exc.message.startsWith("LOADING ")) return true;
  const code = /** @type {{code?: unknown}} */ (exc).code;
  return typeof code === "string" && SYSTEM_CODES.has(code);
}

/**
 * A typed homing error for a Redis error reply or a lost connection.
 *
 * `key` names the key a plain command (not a script) was sent for, so that a
 * WRONGTYPE reply says which key someone else wrote over.
 * @param {unknown} exc
 * @param {string} [key]
 * @returns {HomingError}
 */
export function translate(exc, key) {
  if (exc instanceof HomingError) return exc;
  const msg = exc instanceof Error ? exc.message : String(exc);
  // Before the connection check: node-redis reports a refused AUTH or SELECT
  // while connecting as a failed connection, but retrying would never help.
  if (NO_PERMISSION.some((marker) => msg.includes(marker))) {
    return new PermissionDeniedError(`Redis refused the user: ${msg}`, { cause: exc });
  }
  if (isBadDatabase(exc)) {
    return new InvalidArgumentError(
      `the database index of the Redis URL is out of range on this server (${msg}); ` +
        "a Redis Cluster has only database 0",
      { cause: exc },
    );
  }
  if (isConnectionError(exc)) {
    return new ConnectionLostError(`Redis could not be reached: ${msg}`, { cause: exc });
  }
  const m = HOMING_ERR.exec(msg);
  if (m) return errorFor(m[1], m[2]);
  if (msg.includes(OOM)) {
    // Redis refused the call before it wrote anything (a plain command, or a
    // script whose memory class is 'grows'): say so in homing's terms.
    return new RedisFullError(`Redis is full, nothing was written: ${msg}`, { cause: exc });
  }
  if (msg.startsWith("WRONGTYPE")) {
    // The registry, hints and beats are plain commands, not scripts: Redis's
    // own reply is the type guard there.
    const where = key ? `key ${key}` : "a homing key";
    return new WrongTypeError(
      `${where} holds a value of the wrong Redis type (another program wrote it); ` +
        `nothing was written: ${msg}`,
      { cause: exc },
    );
  }
  return new ScriptError(`Redis refused a homing script: ${msg}`, { cause: exc });
}

/** Whether a Redis error reply is NOSCRIPT (the script is not in that node's cache). */
export function isNoScript(/** @type {unknown} */ exc) {
  return exc instanceof Error && exc.message.startsWith("NOSCRIPT");
}

/** The KEYS list of each (script, service), built once: it is on every call's path. */
export class KeyCache {
  /** @type {Map<string, string[]>} */
  #cache = new Map();

  /** @param {string} prefix */
  constructor(prefix) {
    this.prefix = prefix;
  }

  /**
   * @param {{name: string, keys: readonly string[]}} script
   * @param {string} service
   */
  keys(script, service) {
    const k = `${script.name}\u0000${service}`;
    let found = this.#cache.get(k);
    if (found === undefined) {
      found = script.keys.map((name) =>
        GLOBAL_KEYS.has(name) ? globalKey(this.prefix, name) : serviceKey(this.prefix, service, name));
      if (this.#cache.size < 10000) this.#cache.set(k, found);
    }
    return found;
  }
}

/** Replies keep bulk strings as Buffers: payloads are binary. */
export const BUFFER_REPLIES = { [RESP_TYPES.BLOB_STRING]: Buffer };

/**
 * Backoff for reconnects after the first connection; the first one fails fast.
 * @param {{ready: boolean}} state
 */
function reconnectStrategy(state) {
  return (/** @type {number} */ retries, /** @type {Error} */ cause) =>
    state.ready ? Math.min(50 * 2 ** Math.min(retries, 10), 2000) : cause;
}

/**
 * Listen for 'error' events (node-redis emits one per failed reconnect and
 * Node would crash on an unheard one); the calls themselves report failures.
 * @param {any} client
 * @param {(err: Error) => void} [onError]
 */
function listen(client, onError) {
  client.on("error", (/** @type {Error} */ err) => onError?.(err));
}

/** @param {() => unknown} fn cleanup whose failure changes nothing */
function quietly(fn) {
  try {
    fn();
  } catch {
    // already closed
  }
}

/**
 * Ask the server whether it runs in cluster mode (INFO cluster); a server that
 * refuses INFO is taken as standalone, as in Python.
 * @param {any} client
 */
async function isCluster(client) {
  try {
    return /cluster_enabled:1/.test(String(await client.info("cluster")));
  } catch (exc) {
    if (isConnectionError(exc)) throw exc;
    return false;
  }
}

/**
 * A URL as it may be shown: without its user name and password.
 * @param {URL} u
 */
const shown = (u) => `${u.protocol}//${u.host}${u.pathname}`;

/**
 * The database index of a redis:// or rediss:// URL (0 when it names none);
 * a malformed URL is an InvalidArgumentError here, not node-redis's TypeError.
 * @param {string} url
 */
export function urlDatabase(url) {
  let u;
  try {
    u = new URL(String(url));
  } catch {
    throw new InvalidArgumentError("invalid Redis URL: expected redis://[user:password@]host[:port][/db]");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new InvalidArgumentError(`invalid Redis URL ${shown(u)}: the scheme must be redis:// or rediss://`);
  }
  const db = u.pathname.replace(/^\//, "");
  if (db === "") return 0;
  if (!/^\d{1,9}$/.test(db)) {
    throw new InvalidArgumentError(`invalid Redis URL ${shown(u)}: the database index must be a whole number`);
  }
  return Number(db);
}

/** @param {string} url */
function clusterDatabase(url) {
  return new InvalidArgumentError(
    `the Redis URL ${shown(new URL(url))} names a database, but a Redis Cluster has only database 0`,
  );
}

/**
 * @typedef {object} ConnectOptions
 * @property {boolean | null} [cluster] null or undefined: ask the server (INFO cluster)
 * @property {Record<string, any>} [redisOptions] more options for createClient / createCluster
 * @property {(err: Error) => void} [onError] hears connection errors node-redis reports
 */

/**
 * A connected node-redis client for url: standalone, or a cluster client when
 * the server is a cluster node.
 * @param {string} url
 * @param {ConnectOptions} [options]
 * @returns {Promise<any>}
 */
export async function connect(url, options = {}) {
  const { redisOptions = {}, onError } = options;
  let { cluster } = options;
  const database = urlDatabase(url);
  if (cluster === true && database !== 0) throw clusterDatabase(url);
  const state = { ready: false };
  const nodeOptions = {
    ...redisOptions,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: reconnectStrategy(state), ...redisOptions.socket },
  };
  if (cluster !== true) {
    const client = createClient({ ...nodeOptions, url });
    listen(client, onError);
    try {
      await client.connect();
      cluster ??= await isCluster(client);
    } catch (exc) {
      quietly(() => client.destroy());
      throw translate(exc);
    }
    if (!cluster) {
      state.ready = true;
      return client;
    }
    quietly(() => client.destroy());
  }
  if (database !== 0) throw clusterDatabase(url);
  /** @type {Record<string, any>} */
  const defaults = { ...nodeOptions };
  delete defaults.url; // the cluster's nodes have their own
  const client = createCluster({ rootNodes: [{ url }], defaults });
  listen(client, onError);
  try {
    await client.connect();
  } catch (exc) {
    quietly(() => client.destroy());
    throw translate(exc);
  }
  state.ready = true;
  return client;
}
