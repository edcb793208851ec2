// Connecting to Redis with node-redis, and turning Redis errors into homing
// errors (python/homing/connection.py).
//
// Connections are made so that a lost Redis surfaces as ConnectionLostError
// on each call instead of a hang: the offline queue is off, so a command sent
// while the socket is down fails at once, and node-redis reconnects in the
// background with backoff. The first connection does not retry, so
// Client.connect() to an unreachable server fails fast, as Python's does.

import { RESP_TYPES, createClient, createCluster } from "redis";

import { ConnectionLostError, HomingError, ScriptError, errorFor } from "./errors.js";
import { serviceKey } from "./manifest.js";

const HOMING_ERR = /^HOMING (\w+) (.*?)(?: script: \w+, on @user_script:\d+\.)?$/s;

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
 * @param {unknown} exc
 * @returns {HomingError}
 */
export function translate(exc) {
  if (exc instanceof HomingError) return exc;
  const msg = exc instanceof Error ? exc.message : String(exc);
  if (isConnectionError(exc)) {
    return new ConnectionLostError(`Redis could not be reached: ${msg}`, { cause: exc });
  }
  const m = HOMING_ERR.exec(msg);
  if (m) return errorFor(m[1], m[2]);
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
      found = script.keys.map((name) => serviceKey(this.prefix, service, name));
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
