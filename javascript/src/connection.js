// Connecting to Redis with node-redis, and turning Redis errors into homing
// errors (python/homing/connection.py).
//
// Connections are made so that a lost Redis surfaces as ConnectionLostError
// on each call instead of a hang: the offline queue is off, so a command sent
// while the socket is down fails at once, and node-redis reconnects in the
// background with backoff. The first connection does not retry, so
// Client.connect() to an unreachable server fails fast, as Python's does.
//
// Dead connections. Unless the caller passes its own, every connection gets a
// connect timeout of 5 s, TCP keepalive after 5 s idle, and a PING every 5 s
// (pingInterval). node-redis has no per-command timeout that frees a stuck
// socket (its `timeout` command option only rejects the promise), so the
// homing Client races each call against a timer (commandTimeoutMs, default
// 10 s; no homing call blocks in Redis, the longest wait is a WAIT whose
// timeout must stay below it): on expiry it destroys the connection and
// makes a new one before the next call, and never sends the call again (it
// may have run). A peer that vanished without a FIN or a reset (a partition,
// a dead host) is noticed within about 10 s, by the call that was waiting.
//
// URLs beyond node-redis's own (several Cluster seeds, redis+sentinel://)
// are parsed in urls.js.
//
// Errors are translated into homing errors by redis-errors.js; its functions
// are re-exported here for the modules that import them with the connection.

import { RESP_TYPES, createClient, createCluster, createSentinel } from "redis";

import { ConnectionLostError, InvalidArgumentError } from "./errors.js";
import { GLOBAL_KEYS, globalKey, serviceKey } from "./manifest.js";
import { isConnectionError, translate } from "./redis-errors.js";
import { isSentinel, parseSentinel, seedUrls } from "./urls.js";

export {
  isBadDatabase,
  isConnectionError,
  isGivenUp,
  isNoScript,
  refusedUnrun,
  translate,
} from "./redis-errors.js";

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

/** What homing sets unless the caller passes its own (see "Dead connections" above). */
export const CONNECT_TIMEOUT_MS = 5000;
export const KEEPALIVE_DELAY_MS = 5000;
export const PING_INTERVAL_MS = 5000;
/** How long a call (a connection being made, too) may wait for Redis. */
export const COMMAND_TIMEOUT_MS = 10000;

/**
 * Backoff for reconnects after the first connection; the first one fails fast.
 * @param {{ready: boolean}} state
 */
function reconnectStrategy(state) {
  return (/** @type {number} */ retries, /** @type {Error} */ cause) =>
    state.ready ? Math.min(50 * 2 ** Math.min(retries, 10), 2000) : cause;
}

/**
 * A Cluster node's reconnects: a few (about 1.5 s), then its client gives up
 * and is closed, and the homing Client makes a new cluster client (which
 * finds the slots' new owners). Retrying for ever would leave calls to a
 * node that is down, or that a failover replaced, waiting on its connection.
 * @param {{ready: boolean}} state
 */
function clusterReconnectStrategy(state) {
  return (/** @type {number} */ retries, /** @type {Error} */ cause) =>
    state.ready && retries < 5 ? 50 * 2 ** retries : cause;
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

/**
 * Cleanup whose failure changes nothing (sync, or a promise: a Sentinel
 * client's destroy() is async).
 * @param {() => unknown} fn
 */
export function quietly(fn) {
  try {
    const out = /** @type {any} */ (fn());
    if (out && typeof out.catch === "function") out.catch(() => {});
  } catch {
    // already closed
  }
}

/**
 * client.connect() (or any step of making a connection), bounded: a server
 * that accepts the TCP connection but never answers (a partition behind a
 * proxy) must not hang the caller. On expiry the client is destroyed.
 * @template T
 * @param {any} client
 * @param {Promise<T>} step
 * @param {number} ms
 * @returns {Promise<T>}
 */
async function bounded(client, step, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => {
      quietly(() => client.destroy());
      reject(new ConnectionLostError(`Redis did not answer within ${ms} ms while connecting`));
    }, ms);
  });
  step.catch(() => {}); // its rejection after the timer is not news
  try {
    return await Promise.race([step, expired]);
  } finally {
    clearTimeout(timer);
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
 * A URL with several hosts (Cluster seeds) is checked host by host.
 * @param {string} url
 */
export function urlDatabase(url) {
  if (isSentinel(url)) return parseSentinel(url).db;
  const dbs = seedUrls(String(url)).map(oneDatabase);
  return dbs[0];
}

/** @param {string} url */
function oneDatabase(url) {
  let u;
  try {
    u = new URL(String(url));
  } catch {
    throw new InvalidArgumentError("invalid Redis URL: expected redis://[user:password@]host[:port][/db]");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new InvalidArgumentError(
      `invalid Redis URL ${shown(u)}: the scheme must be redis://, rediss://, redis+sentinel:// or rediss+sentinel://`,
    );
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
 * What kind of node-redis client this is: a cluster (createCluster), a
 * Sentinel client (createSentinel) or a plain one (createClient).
 * @param {any} conn
 * @returns {"cluster" | "sentinel" | "standalone"}
 */
export function connectionKind(conn) {
  if (typeof conn?.getSlotMaster === "function") return "cluster";
  if (typeof conn?.getSentinelNode === "function") return "sentinel";
  return "standalone";
}

/**
 * @typedef {object} ConnectOptions
 * @property {boolean | null} [cluster] null or undefined: ask the server (INFO cluster)
 * @property {Record<string, any>} [redisOptions] more options for createClient /
 * createCluster (the nodes' options) / createSentinel (the data nodes' options)
 * @property {(err: Error) => void} [onError] hears connection errors node-redis reports
 * @property {string[]} [rootNodes] more Cluster seed URLs, tried after the URL's own hosts
 * @property {number} [commandTimeoutMs] how long each step of connecting may take (default 10000)
 * @property {number} [rotateSentinels] Sentinel: start asking from the URL's n-th sentinel
 * (the Client rotates them when the one asked named a demoted primary)
 */

/**
 * The node options homing sets unless the caller passes its own.
 * @param {Record<string, any>} redisOptions
 * @param {{ready: boolean}} state
 */
function withDefaults(redisOptions, state) {
  const { socket = {}, ...rest } = redisOptions;
  return {
    pingInterval: PING_INTERVAL_MS,
    ...rest,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelay: KEEPALIVE_DELAY_MS,
      reconnectStrategy: reconnectStrategy(state),
      ...socket,
    },
  };
}

/**
 * A connected node-redis client for url: standalone, a cluster client when
 * the server is a cluster node (several seeds: the first that answers is
 * asked, the cluster client gets them all), or a Sentinel client for a
 * redis+sentinel:// URL.
 * @param {string} url
 * @param {ConnectOptions} [options]
 * @returns {Promise<any>}
 */
export async function connect(url, options = {}) {
  const { redisOptions = {}, onError, rootNodes = [], commandTimeoutMs = COMMAND_TIMEOUT_MS } = options;
  if (isSentinel(url)) return connectSentinel(url, options);
  let { cluster } = options;
  const seeds = [...seedUrls(String(url)), ...rootNodes.map(String).flatMap(seedUrls)];
  const database = seeds.map(oneDatabase)[0];
  if (cluster === true && database !== 0) throw clusterDatabase(seeds[0]);
  const state = { ready: false };
  const nodeOptions = withDefaults(redisOptions, state);
  if (cluster !== true) {
    for (const seed of seeds) {
      const client = createClient({ ...nodeOptions, url: seed });
      listen(client, onError);
      try {
        await bounded(client, client.connect(), commandTimeoutMs);
        cluster ??= await bounded(client, isCluster(client), commandTimeoutMs);
      } catch (exc) {
        quietly(() => client.destroy());
        const err = translate(exc);
        // Another seed may answer; a refused user or database would not change.
        if (!(err instanceof ConnectionLostError) || seed === seeds.at(-1)) throw err;
        continue;
      }
      if (!cluster) {
        if (seeds.length > 1) {
          quietly(() => client.destroy());
          throw new InvalidArgumentError(
            "a Redis URL with several hosts lists the seed nodes of a Redis Cluster, but " +
              `${shown(new URL(seed))} is not a cluster node (for Sentinel: redis+sentinel://)`,
          );
        }
        state.ready = true;
        return client;
      }
      quietly(() => client.destroy());
      break;
    }
  }
  if (database !== 0) throw clusterDatabase(seeds[0]);
  /** @type {Record<string, any>} */
  const defaults = {
    ...nodeOptions,
    socket: { ...nodeOptions.socket, reconnectStrategy: clusterReconnectStrategy(state), ...redisOptions.socket },
  };
  delete defaults.url; // the cluster's nodes have their own
  // minimizeConnections: connect to a node when a call needs it, so that a
  // node that is down (a seed, or any master) does not stop the client from
  // starting; its calls fail until it is back or replaced.
  const client = createCluster({
    minimizeConnections: true,
    rootNodes: seeds.map((u) => ({ url: u })),
    defaults,
  });
  listen(client, onError);
  try {
    await bounded(client, client.connect(), commandTimeoutMs);
  } catch (exc) {
    quietly(() => client.destroy());
    throw translate(exc);
  }
  state.ready = true;
  return client;
}

/**
 * A redis+sentinel:// URL's parts, the data nodes' client options (homing's
 * defaults, the URL's user, password and db) and the sentinels' own (the
 * URL's sentinel_password; TLS with the same CA and certificate).
 * @param {string} url
 * @param {ConnectOptions} options
 * @param {{ready: boolean}} [state] the reconnect strategy's
 */
export function sentinelSettings(url, options, state = { ready: true }) {
  const { redisOptions = {} } = options;
  const u = parseSentinel(url);
  if (options.cluster === true) {
    throw new InvalidArgumentError("a redis+sentinel:// URL names a Sentinel-managed primary, not a Redis Cluster");
  }
  const { sentinelOptions = {}, ...nodeRest } = redisOptions;
  /** @type {Record<string, any>} */
  const node = withDefaults(nodeRest, state);
  if (u.username !== undefined) node.username ??= u.username;
  if (u.password !== undefined) node.password ??= u.password;
  if (u.db !== 0) node.database ??= u.db;
  const tlsKeys = ["ca", "cert", "key", "servername", "rejectUnauthorized", "checkServerIdentity", "passphrase", "pfx"];
  /** @type {Record<string, any>} */
  const tls = u.tls
    ? { tls: true, ...Object.fromEntries(tlsKeys.filter((k) => k in node.socket).map((k) => [k, node.socket[k]])) }
    : {};
  if (u.tls) node.socket.tls = true;
  /** @type {Record<string, any>} */
  const sentinel = {
    ...sentinelOptions,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelay: KEEPALIVE_DELAY_MS,
      ...tls,
      ...sentinelOptions.socket,
    },
  };
  if (u.sentinelPassword !== undefined) sentinel.password ??= u.sentinelPassword;
  return { u, node, sentinel };
}

/**
 * A Sentinel client (node-redis createSentinel) on the primary a
 * redis+sentinel:// URL names. node-redis follows the master on Sentinel's
 * +switch-master notices and, with scanInterval, by asking every second. It
 * never sends a command again by itself (maxCommandRediscovers 0): a command
 * whose reply was lost may have run, and READONLY is left to the homing
 * Client, which drops this client and makes a new one.
 * @param {string} url
 * @param {ConnectOptions} options
 */
async function connectSentinel(url, options) {
  const { onError, commandTimeoutMs = COMMAND_TIMEOUT_MS } = options;
  const state = { ready: false };
  const { u, node, sentinel } = sentinelSettings(url, options, state);
  const rotate = (options.rotateSentinels ?? 0) % u.sentinels.length;
  const sentinels = [...u.sentinels.slice(rotate), ...u.sentinels.slice(0, rotate)];
  const client = createSentinel({
    scanInterval: 1000,
    name: u.master,
    sentinelRootNodes: sentinels,
    nodeClientOptions: node,
    sentinelClientOptions: sentinel,
    maxCommandRediscovers: 0,
  });
  listen(client, onError);
  try {
    await bounded(client, client.connect(), commandTimeoutMs);
  } catch (exc) {
    quietly(() => client.destroy());
    throw translate(exc);
  }
  state.ready = true;
  return client;
}
