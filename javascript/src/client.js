// The client: producer, consumer and admin operations of homing
// (python/homing/client.py, method for method, in camelCase).
//
// Every method is one script call (see ops.js), so each is atomic in Redis.
// Producers need only a service name: the first write to a service creates it
// and adds it to the registry that the scheduler and distributor sweep.

import * as ops from "./ops.js";
import { BUFFER_REPLIES, KeyCache, connect, isNoScript, translate } from "./connection.js";
import { HomingError } from "./errors.js";
import {
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PREFIX,
  SCRIPTS,
  checkPrefix,
  checkService,
  globalKey,
} from "./manifest.js";
import { ResultWait } from "./result-wait.js";

export { ResultWait };

export const DEFAULT_URL = "redis://127.0.0.1:6379/0";
// Writes that may create a service: the registry SADD goes first, so a crash
// between the two leaves a registered empty service, never an unregistered
// one whose timers no scheduler would find.
const CREATING = new Set(["enqueue", "schedule", "configure"]);
// The SADD is repeated at most this often per service and client, not once per
// process: a Redis that lost its data (no persistence, a failover) would
// otherwise never learn of a long-running producer's service again.
export const REGISTER_EVERY_MS = 10_000;

/**
 * Throw the first error of a batch's per-item results.
 * @param {ReadonlyArray<HomingError | null>} errors
 */
export function raiseFirst(errors) {
  for (const err of errors) {
    if (err !== null) throw err;
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A connection to homing on one Redis (standalone or Cluster).
 *
 * `prefix` namespaces every key (default `homing`); `maxPayload` is the
 * largest encoded envelope accepted, in bytes (default 1 MiB).
 */
export class Client {
  #keys;
  /** @type {Set<string>} */
  /** @type {Map<string, number>} service -> when its registry SADD was last sent */
  #registered = new Map();

  /**
   * Wrap a connected node-redis client (createClient or createCluster).
   * @param {any} redisClient
   * @param {{prefix?: string, maxPayload?: number}} [options]
   */
  constructor(redisClient, options = {}) {
    const { prefix = DEFAULT_PREFIX, maxPayload = DEFAULT_MAX_PAYLOAD } = options;
    /** The node-redis client as given; close() closes it. */
    this.connection = redisClient;
    /** The same connection, replying with Buffers (payloads are binary). */
    this.redis = redisClient.withTypeMapping(BUFFER_REPLIES);
    this.prefix = checkPrefix(prefix);
    this.maxPayload = maxPayload;
    /** How often (ms) a producer repeats the registry SADD of a service. */
    this.registerEveryMs = REGISTER_EVERY_MS;
    this.#keys = new KeyCache(this.prefix);
  }

  /**
   * Connect to url; a Redis Cluster is detected (INFO cluster) unless `cluster` says.
   * Throws ConnectionLostError when Redis cannot be reached.
   * @param {string} [url]
   * @param {import("./connection.js").ConnectOptions & {prefix?: string, maxPayload?: number}} [options]
   * @returns {Promise<Client>}
   */
  static async connect(url = DEFAULT_URL, options = {}) {
    const { prefix, maxPayload, ...connectOptions } = options;
    if (prefix !== undefined) checkPrefix(prefix);
    return new Client(await connect(url, connectOptions), { prefix, maxPayload });
  }

  /** Close the connection (waits for replies already on their way). */
  async close() {
    await this.connection.close();
  }

  async [Symbol.asyncDispose]() {
    await this.close();
  }

  // -- execution -------------------------------------------------------------

  /**
   * Execute one operation: EVALSHA, once more with EVAL on NOSCRIPT.
   * @param {ops.Call} call
   */
  async run(call) {
    const script = SCRIPTS[call.script];
    const keys = this.#keys.keys(script, call.service);
    let reply;
    try {
      const now = performance.now();
      const last = this.#registered.get(call.service) ?? -Infinity;
      if (CREATING.has(call.script) && now - last >= this.registerEveryMs) {
        this.#registered.set(call.service, now);
        await this.redis.sAdd(globalKey(this.prefix, "services"), call.service);
      }
      try {
        reply = await this.redis.evalSha(script.sha1, { keys, arguments: call.args });
      } catch (exc) {
        if (!isNoScript(exc)) throw exc;
        reply = await this.redis.eval(script.source, { keys, arguments: call.args });
      }
    } catch (exc) {
      throw translate(exc);
    }
    return call.parse(reply);
  }

  // -- producer --------------------------------------------------------------

  /**
   * Add one event to service; returns its id.
   *
   * With `key` (an idempotency key), a second enqueue with the same key within
   * the service's idem_ttl_ms returns the first event's id and adds nothing:
   * safe to retry after a timeout.
   * @param {string} service
   * @param {unknown} payload
   * @param {{key?: string | null, id?: string}} [options]
   * @returns {Promise<string>}
   */
  async enqueue(service, payload, options = {}) {
    const { key = null, id } = options;
    const ids = id === undefined ? null : [id];
    return (await this.run(ops.enqueueMany(service, [payload], this.maxPayload, [key], ids)))[0];
  }

  /**
   * Add up to 1000 events in one atomic call; returns their ids in order.
   * @param {string} service
   * @param {Iterable<unknown>} payloads
   * @param {{keys?: ReadonlyArray<string | null | undefined> | null, ids?: ReadonlyArray<string> | null}} [options]
   * @returns {Promise<string[]>}
   */
  async enqueueMany(service, payloads, options = {}) {
    const { keys = null, ids = null } = options;
    return this.run(ops.enqueueMany(service, payloads, this.maxPayload, keys, ids));
  }

  /**
   * Schedule an event to become ready after `delayMs` or at `at` (a Date or
   * ms since the epoch); returns its id. Due times are judged by the Redis
   * server's clock, so a timer never fires early because a producer's clock
   * is ahead.
   * @param {string} service
   * @param {unknown} payload
   * @param {{delayMs?: number, at?: Date | number, key?: string | null, id?: string}} options
   * @returns {Promise<string>}
   */
  async createTimer(service, payload, options = {}) {
    return this.run(ops.createTimer(service, payload, this.maxPayload, options));
  }

  /**
   * Cancel a pending timer. False if it already fired or never existed.
   * @param {string} service
   * @param {string} timerId
   * @returns {Promise<boolean>}
   */
  async cancelTimer(service, timerId) {
    return this.run(ops.cancelTimer(service, timerId));
  }

  /**
   * Where an event stands right now (done, dead, pending or unknown).
   * @param {string} service
   * @param {string} eventId
   * @returns {Promise<import("./types.js").Status>}
   */
  async status(service, eventId) {
    return this.run(ops.status(service, eventId));
  }

  /**
   * Wait for the consumer's result of an event (the producer's feedback).
   *
   * Throws EventDeadError if the event was dead-lettered, ResultTimeoutError
   * after `timeoutMs`, UnknownEventError if homing has no trace of it (never
   * enqueued, or its result outlived result_ttl_ms).
   * @param {string} service
   * @param {string} eventId
   * @param {{timeoutMs?: number | null}} [options] no timeout: wait for good
   * @returns {Promise<unknown>} the result, null if the consumer gave none
   */
  async result(service, eventId, options = {}) {
    const wait = new ResultWait(service, eventId, options.timeoutMs ?? null);
    for (;;) {
      const [settled, value] = wait.check(await this.status(service, eventId));
      if (settled) return value;
      await sleep(/** @type {number} */ (value));
    }
  }

  // -- consumer --------------------------------------------------------------

  /**
   * Lease up to count ready events (an empty array if none are ready).
   * @param {string} service
   * @param {number} [count]
   * @param {{leaseMs?: number | null}} [options]
   * @returns {Promise<import("./types.js").Event[]>}
   */
  async dequeue(service, count = 1, options = {}) {
    return this.run(ops.dequeue(service, count, options.leaseMs ?? null));
  }

  /**
   * Acknowledge an event; throws StaleLeaseError if the lease was reclaimed.
   * @param {string} service
   * @param {string} eventId
   * @param {number | bigint | string} token
   * @param {unknown} [result] kept for the producer; null or undefined: none
   * @returns {Promise<void>}
   */
  async complete(service, eventId, token, result = null) {
    raiseFirst(await this.completeMany(service, [[eventId, token, result]]));
  }

  /**
   * Acknowledge up to 1000 items ([id, token, result] or {id, token, result});
   * per item null or its error.
   * @param {string} service
   * @param {ReadonlyArray<ops.CompleteItem>} items
   * @returns {Promise<(HomingError | null)[]>}
   */
  async completeMany(service, items) {
    return this.run(ops.completeMany(service, items, this.maxPayload));
  }

  /**
   * Push an event's lease deadline to now + leaseMs; returns the deadline (ms).
   * @param {string} service
   * @param {string} eventId
   * @param {number | bigint | string} token
   * @param {number | null} [leaseMs] null: the service's lease_ms
   * @returns {Promise<number>}
   */
  async extendLease(service, eventId, token, leaseMs = null) {
    const [out] = await this.extendMany(service, [[eventId, token]], leaseMs);
    if (out instanceof HomingError) throw out;
    return out;
  }

  /**
   * Extend several leases in one call; per item the new deadline or its error.
   * @param {string} service
   * @param {ReadonlyArray<ops.LeaseItem>} items
   * @param {number | null} [leaseMs]
   * @returns {Promise<(number | HomingError)[]>}
   */
  async extendMany(service, items, leaseMs = null) {
    return this.run(ops.extendMany(service, items, leaseMs));
  }

  /**
   * Give up on a leased event: retry after backoff (or delayMs), or dead-letter it.
   * @param {string} service
   * @param {string} eventId
   * @param {number | bigint | string} token
   * @param {string} [reason]
   * @param {{dead?: boolean, delayMs?: number | null}} [options]
   * @returns {Promise<import("./types.js").FailOutcome>}
   */
  async fail(service, eventId, token, reason = "", options = {}) {
    const { dead = false, delayMs = null } = options;
    return this.run(ops.fail(service, eventId, token, reason, dead, delayMs));
  }

  /**
   * Hand leased events back unprocessed; they go next and no attempt is counted.
   * @param {string} service
   * @param {ReadonlyArray<ops.LeaseItem>} items
   * @returns {Promise<(HomingError | null)[]>}
   */
  async release(service, items) {
    return this.run(ops.releaseMany(service, items));
  }

  // -- admin and daemons -----------------------------------------------------

  /**
   * Every service in the registry, sorted.
   * @returns {Promise<string[]>}
   */
  async services() {
    let members;
    try {
      members = await this.redis.sMembers(globalKey(this.prefix, "services"));
    } catch (exc) {
      throw translate(exc);
    }
    return members.map(String).sort();
  }

  /**
   * Queue lengths, running totals and effective policy of a service, by the
   * script's names ('ready', 'total.completed', 'policy.lease_ms', ...).
   * @param {string} service
   * @returns {Promise<Record<string, number>>}
   */
  async stats(service) {
    return this.run(ops.stats(service));
  }

  /**
   * Override policy fields (null removes an override); returns the effective policy.
   * @param {string} service
   * @param {Record<string, number | null | undefined>} policy
   * @returns {Promise<Record<string, number>>}
   */
  async configure(service, policy) {
    return this.run(ops.configure(service, policy));
  }

  /**
   * A page of dead letters, oldest first.
   * @param {string} service
   * @param {{offset?: number, count?: number}} [options]
   * @returns {Promise<import("./types.js").DeadPage>}
   */
  async deadList(service, options = {}) {
    const { offset = 0, count = 100 } = options;
    return this.run(ops.deadList(service, offset, count));
  }

  /**
   * Requeue the named dead letters, or the oldest count; returns [moved, remaining].
   * @param {string} service
   * @param {{ids?: ReadonlyArray<string> | null, count?: number}} [options]
   * @returns {Promise<[number, number]>}
   */
  async deadRequeue(service, options = {}) {
    const { ids = null, count = 100 } = options;
    return this.run(ops.deadRequeue(service, ids, count));
  }

  /**
   * Delete the named dead letters, or the oldest count; returns [purged, remaining].
   * @param {string} service
   * @param {{ids?: ReadonlyArray<string> | null, count?: number}} [options]
   * @returns {Promise<[number, number]>}
   */
  async deadPurge(service, options = {}) {
    const { ids = null, count = 100 } = options;
    return this.run(ops.deadPurge(service, ids, count));
  }

  /**
   * One scheduler step for a service: due timers and retries to ready, expired leases reclaimed.
   * @param {string} service
   * @param {number} [limit]
   * @returns {Promise<import("./types.js").PromoteResult>}
   */
  async promote(service, limit = 1000) {
    return this.run(ops.promote(service, limit));
  }

  /**
   * One distributor step for a service: reclaimed events to retry or to the dead letters.
   * @param {string} service
   * @param {number} [limit]
   * @returns {Promise<import("./types.js").DistributeResult>}
   */
  async distribute(service, limit = 1000) {
    return this.run(ops.distribute(service, limit));
  }

  /**
   * Add service to the registry the daemons sweep (idempotent). Producers do
   * it by themselves; workers call it on start and with each heartbeat so the
   * leases they hold are reclaimable even if the registry was lost.
   * @param {string} service
   */
  async register(service) {
    checkService(service);
    try {
      await this.redis.sAdd(globalKey(this.prefix, "services"), service);
    } catch (exc) {
      throw translate(exc);
    }
    this.#registered.set(service, performance.now());
  }

  /**
   * Tell the distributors that service has expired leases waiting (a hint only).
   * @param {string} service
   */
  async hintExpired(service) {
    checkService(service);
    try {
      await this.redis.sAdd(globalKey(this.prefix, "hints"), service);
    } catch (exc) {
      throw translate(exc);
    }
  }

  /**
   * Pop services hinted by schedulers.
   * @param {number} [count]
   * @returns {Promise<string[]>}
   */
  async takeHints(count = 100) {
    let got;
    try {
      got = await this.redis.sPopCount(globalKey(this.prefix, "hints"), count);
    } catch (exc) {
      throw translate(exc);
    }
    return (got ?? []).map(String);
  }
}
