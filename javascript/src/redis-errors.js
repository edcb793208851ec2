// Redis's replies and node-redis's failures, as homing errors
// (python/homing/connection.py's translate): what every call path (the
// client, the conformance runner, the durability probe) turns an exception
// into before a caller sees it. Kept apart from connection.js, which makes
// connections: these are pure functions of an error, so they are tested
// without a server, and the order of the checks is the contract (a refused
// user before a lost connection, READONLY before both, ...).

import {
  ConnectionLostError,
  HomingError,
  InvalidArgumentError,
  PermissionDeniedError,
  ReadOnlyError,
  RedisFullError,
  ScriptError,
  WrongTypeError,
  errorFor,
} from "./errors.js";
import { ERROR_REPLY_RE } from "./manifest.js";

const HOMING_ERR = ERROR_REPLY_RE; // 'HOMING <CODE> <message>' (lua/keys.json error_reply)
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

// What node-redis's Sentinel client throws when it has no primary to give.
const SENTINEL_DOWN = ["no valid master node", "None of the sentinels are available"];

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
  if (msg.startsWith("READONLY")) {
    // A demoted primary (a failover): before the connection check, as in Python.
    return new ReadOnlyError(
      `the server is a read-only replica (a failover moved the primary); nothing was written: ${msg}`,
      { cause: exc },
    );
  }
  if (isConnectionError(exc)) {
    return new ConnectionLostError(`Redis could not be reached: ${msg}`, { cause: exc });
  }
  if (SENTINEL_DOWN.some((marker) => msg === marker)) {
    // node-redis's Sentinel client: no sentinel answers, or none names a
    // primary that is up (a failover under way).
    return new ConnectionLostError(`Sentinel named no primary to connect to: ${msg}`, { cause: exc });
  }
  if (msg.startsWith("NOREPLICAS")) {
    // min-replicas-to-write: the primary refused the script before it ran
    // (one that may write), so nothing was written; as in Python.
    return new ConnectionLostError(
      "the primary refused the write: fewer replicas than min-replicas-to-write are in sync; " +
        `nothing was written, retry later: ${msg}`,
      { cause: exc },
    );
  }
  if (refusedUnrun(exc)) {
    return new ConnectionLostError(
      `the Redis Cluster refused the call (a slot migrating or a failover under way; nothing was run): ${msg}`,
      { cause: exc },
    );
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

/**
 * Whether a Cluster answered that it did not run the call, so that sending it
 * again is safe: TRYAGAIN (a multi-key call while its slot migrates and its
 * keys are split between two nodes) or CLUSTERDOWN (during a failover).
 * Unlike a lost reply, after which the call may have run.
 * @param {unknown} exc
 */
export function refusedUnrun(exc) {
  const msg = exc instanceof Error ? exc.message : "";
  return msg.startsWith("TRYAGAIN") || msg.startsWith("CLUSTERDOWN");
}

/** Whether a Redis error reply is NOSCRIPT (the script is not in that node's cache). */
export function isNoScript(/** @type {unknown} */ exc) {
  return exc instanceof Error && exc.message.startsWith("NOSCRIPT");
}


/**
 * Whether a node-redis client gave up reconnecting (it is closed for good).
 * @param {unknown} exc
 */
export function isGivenUp(exc) {
  let e = exc;
  for (let i = 0; i < 3 && e instanceof Error; i++, e = e.cause) {
    const name = e.constructor.name;
    if (name === "ClientClosedError" || name === "ReconnectStrategyError") return true;
  }
  return false;
}
