// The client: producer, consumer and admin operations of homing
// (python/homing/client.py, method for method, in camelCase).
//
// Every method is one script call (see ops.js), so each is atomic in Redis.
// Producers need only a service name: the first write to a service creates it
// and adds it to the registry that the scheduler and distributor sweep.

import * as ops from "./ops.js";
import { whole } from "./call.js";
import { COMMAND_TIMEOUT_MS, KeyCache, connect, sentinelSettings, translate } from "./connection.js";
import * as durability from "./durability.js";
import { ConnectionLostError, HomingError, InvalidArgumentError, NotReplicatedError, RedisFullError } from "./errors.js";
import { Link } from "./link.js";
import { watchSentinels } from "./sentinel-watch.js";
import { isSentinel } from "./urls.js";
import {
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PREFIX,
  SCRIPTS,
  checkPrefix,
  checkService,
  globalKey,
} from "./manifest.js";
import { ResultWait } from "./result-wait.js";
import { workerBeatCall } from "./worker-beat.js";

export { ResultWait };

export const DEFAULT_URL = "redis://127.0.0.1:6379/0";
// Writes that may create a service. The registry is read (SISMEMBER) before
// the script and written (SADD) only after it succeeded: a refused call (a bad
// policy value, a schema mismatch, a wrong-typed key) must leave the registry
// as it was, and a wrong-typed registry is refused before anything is written.
// The price: a producer that dies between the script and the SADD leaves its
// service unregistered until its next call or a worker's start (see
// docs/architecture.md).
const CREATING = new Set(["enqueue", "schedule", "configure"]);
// The registry is checked at most this often per service and client, not once
// per process: a Redis that lost its data (no persistence, a failover) would
// otherwise never learn of a long-running producer's service again.
export const REGISTER_EVERY_MS = 10_000;
// Writes followed by WAIT when `waitReplicas` is set: what a producer or an
// acknowledgement needs to survive a failover. (A lost lease, extension or
// release only makes an event come back: a duplicate, never a loss.)
export const WAITED = Object.freeze(new Set(["enqueue", "schedule", "complete", "fail", "configure",
  "dead_requeue", "dead_purge", "cancel"]));
// Scripts that write nothing: they succeed on a replica too, so they say
// nothing about whether this client can still write (see readOnlyForMs).
export const READS = Object.freeze(new Set(["result", "stats", "dead_list"]));
export const DEFAULT_WAIT_TIMEOUT_MS = 1000;
// Scripts that answer a repeat (same id or idempotency key) without writing,
// and the counter each increments on a real write (touched by 0 after a
// repeat, so that WAIT vouches for the first send: link.js).
const REPEATS = Object.freeze({ enqueue: "enqueued", schedule: "timers" });
export { RETRY_BUDGET_MS } from "./link.js";

/**
 * The WAIT settings, checked: 0 replicas is off; WAIT 0 (wait for ever) is
 * refused, and the timeout must end before the call's own (commandTimeoutMs),
 * or every WAIT that times out would look like a dead connection.
 * @param {unknown} replicas
 * @param {unknown} timeoutMs
 * @param {number} commandTimeoutMs
 * @returns {{replicas: number, timeoutMs: number} | null}
 */
export function waitOption(replicas, timeoutMs, commandTimeoutMs) {
  const n = whole(replicas, "waitReplicas", 0, 1000);
  const t = whole(timeoutMs, "waitTimeoutMs", 1, 86_400_000);
  if (n && t >= commandTimeoutMs) {
    throw new InvalidArgumentError(
      `waitTimeoutMs (${t}) must be below commandTimeoutMs (${commandTimeoutMs}), or every WAIT ` +
        "that times out would look like a dead connection",
    );
  }
  return n ? { replicas: n, timeoutMs: t } : null;
}

const noop = () => {};
/** Warnings to the console (the durability warnings, a failed registry write). */
export const DEFAULT_LOGGER = Object.freeze({
  debug: noop,
  info: noop,
  warn: (/** @type {any[]} */ ...a) => console.warn("homing:", ...a),
  error: (/** @type {any[]} */ ...a) => console.error("homing:", ...a),
});

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
 * @typedef {object} ClientOptions
 * @property {string} [prefix] namespaces every key (default "homing")
 * @property {number} [maxPayload] largest encoded envelope accepted, in bytes (default 1 MiB)
 * @property {boolean} [requireDurable] refuse (NotDurableError) a server that may lose
 * acknowledged events: an eviction policy, no AOF, or settings it will not show
 * @property {{warn(...args: any[]): void, info?(...args: any[]): void}} [logger] hears the
 * durability warnings and dropped connections (default: console.warn)
 * @property {number} [waitReplicas] after each write a producer or an acknowledgement
 * makes, `WAIT waitReplicas waitTimeoutMs` on the same connection, and
 * NotReplicatedError when fewer replicas confirmed it (default 0: off)
 * @property {number} [waitTimeoutMs] default 1000; below commandTimeoutMs
 * @property {number} [commandTimeoutMs] how long a call may wait for its reply before the
 * connection is taken for dead, dropped and made again (default 10000)
 */

/**
 * A connection to homing on one Redis (standalone or Cluster).
 *
 * `prefix` namespaces every key (default `homing`); `maxPayload` is the
 * largest encoded envelope accepted, in bytes (default 1 MiB).
 */
export class Client {
  #keys;
  /** @type {Link} the connection, kept alive (dropped and made again when dead or demoted) */
  #link;
  /** @type {Map<string, number>} service -> when it was last seen in the registry */
  #registered = new Map();
  /** @type {durability.NodeDurability[] | null} the server's settings, read once */
  #durability = null;
  /** @type {Promise<durability.NodeDurability[]> | null} the reading under way */
  #reading = null;

  /**
   * Wrap a connected node-redis client (createClient or createCluster).
   * @param {any} redisClient
   * @param {ClientOptions} [options]
   */
  constructor(redisClient, options = {}) {
    const {
      prefix = DEFAULT_PREFIX,
      maxPayload = DEFAULT_MAX_PAYLOAD,
      requireDurable = false,
      logger = DEFAULT_LOGGER,
      waitReplicas = 0,
      waitTimeoutMs = DEFAULT_WAIT_TIMEOUT_MS,
      commandTimeoutMs = COMMAND_TIMEOUT_MS,
    } = options;
    /** How long (ms) a call waits for its reply before the connection is taken for dead. */
    this.commandTimeoutMs = whole(commandTimeoutMs, "commandTimeoutMs", 1, 86_400_000);
    this.#link = new Link(redisClient, { commandTimeoutMs: this.commandTimeoutMs, logger });
    /** "standalone", "cluster" or "sentinel" (createClient, createCluster, createSentinel). */
    this.kind = this.#link.kind;
    /** The WAIT after each write (null: none). */
    this.wait = waitOption(waitReplicas, waitTimeoutMs, this.commandTimeoutMs);
    this.prefix = checkPrefix(prefix);
    this.maxPayload = whole(maxPayload, "maxPayload (bytes)", 1);
    /** Whether checkDurability() refuses a server that may lose acknowledged events. */
    this.requireDurable = Boolean(requireDurable);
    this.logger = logger;
    /** How often (ms) a producer checks that a service is in the registry. */
    this.registerEveryMs = REGISTER_EVERY_MS;
    this.#keys = new KeyCache(this.prefix);
  }

  /**
   * Connect to url; a Redis Cluster is detected (INFO cluster) unless `cluster` says.
   *
   * The server's durability settings are read right away and warned about
   * once per process and server; with `requireDurable` the promise rejects
   * with NotDurableError for a server that may lose acknowledged events.
   * Throws ConnectionLostError when Redis cannot be reached, and
   * InvalidArgumentError for a malformed URL or a database the server does
   * not have.
   * @param {string} [url]
   * @param {import("./connection.js").ConnectOptions & ClientOptions} [options]
   * @returns {Promise<Client>}
   */
  static async connect(url = DEFAULT_URL, options = {}) {
    const {
      prefix, maxPayload, requireDurable, logger, waitReplicas, waitTimeoutMs, commandTimeoutMs,
      ...connectOptions
    } = options;
    // Checked before connecting: a bad option must not cost a connection.
    if (prefix !== undefined) checkPrefix(prefix);
    if (maxPayload !== undefined) whole(maxPayload, "maxPayload (bytes)", 1);
    const timeout = whole(commandTimeoutMs ?? COMMAND_TIMEOUT_MS, "commandTimeoutMs", 1, 86_400_000);
    waitOption(waitReplicas ?? 0, waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS, timeout);
    const open = (drops = 0) => connect(url, { ...connectOptions, commandTimeoutMs: timeout, rotateSentinels: drops });
    const client = new Client(await open(), {
      prefix, maxPayload, requireDurable, logger, waitReplicas, waitTimeoutMs, commandTimeoutMs: timeout,
    });
    client.#link.reconnectWith(open);
    if (isSentinel(url)) {
      const { u, sentinel } = sentinelSettings(url, connectOptions);
      client.#link.watchWith((on) => watchSentinels(u.sentinels, u.master, sentinel, on));
    }
    try {
      await client.checkDurability();
    } catch (exc) {
      await client.close().catch(() => {});
      throw exc;
    }
    return client;
  }

  /**
   * The node-redis client in use. Replaced when the Client drops a dead or
   * demoted connection and makes a new one (Client.connect's clients only);
   * the last one until then.
   */
  get connection() {
    return this.#link.connection;
  }

  /** The same connection, replying with Buffers (payloads are binary). */
  get redis() {
    return this.#link.redis;
  }

  /**
   * Milliseconds during which every write of this client was answered
   * READONLY (0: none). The Worker gives up after `readonlyGiveUpMs` of it:
   * a plain URL pointing at a demoted node would otherwise be retried for ever.
   */
  readOnlyForMs() {
    return this.#link.readOnlyForMs();
  }

  /**
   * The server's durability settings, per server (each master on a Cluster).
   *
   * Read once per client (at connect, or before its first call), warned
   * about once per process and server. With `require` (by default the
   * client's `requireDurable`) rejects with NotDurableError unless every
   * server is shown to keep what it acknowledged.
   * @param {{require?: boolean | null}} [options]
   * @returns {Promise<durability.NodeDurability[]>}
   */
  async checkDurability(options = {}) {
    let reports = this.#durability;
    if (reports === null) {
      this.#reading ??= this.#link.io((conn) => durability.read(conn)).finally(() => {
        this.#reading = null;
      });
      reports = await this.#reading;
      if (this.#durability === null) {
        durability.warnOnce(reports, this.logger);
        this.#durability = reports;
      }
    }
    if (options.require ?? this.requireDurable) durability.requireDurable(reports);
    return reports;
  }

  /** Close the connection (waits for replies already on their way). */
  async close() {
    await this.#link.close();
  }

  async [Symbol.asyncDispose]() {
    await this.close();
  }

  // -- execution -------------------------------------------------------------

  /**
   * Execute one operation: EVALSHA, once more with EVAL on NOSCRIPT; with
   * `waitReplicas`, a WAIT after a write on the same connection (the same
   * node of a Cluster). NotReplicatedError when fewer replicas confirmed the
   * write: it happened on the primary, and the error carries the call's
   * result as `result` and the count as `acked`.
   * @param {ops.Call} call
   */
  async run(call) {
    const script = SCRIPTS[call.script];
    const keys = this.#keys.keys(script, call.service);
    // Read once; a required durability is held to on every call (no I/O once read).
    if (this.#durability === null || this.requireDurable) await this.checkDurability();
    const due = CREATING.has(call.script) &&
      performance.now() - (this.#registered.get(call.service) ?? -Infinity) >= this.registerEveryMs;
    const known = !due || (await this.#isRegistered(call.service).catch((exc) => {
      // The registry's node is unreachable (a Cluster master down): the
      // service's own node may be up. Registered after the script instead.
      if (exc instanceof ConnectionLostError) return false;
      throw exc;
    }));
    const wait = WAITED.has(call.script) ? this.wait : null;
    const field = /** @type {Record<string, string>} */ (REPEATS)[call.script];
    const touch = wait !== null && field !== undefined ? { key: keys[script.keys.indexOf("counters")], field } : null;
    const link = this.#link;
    const [reply, acked] = await link.io((conn, redis) =>
      link.sendScript(conn, redis, script, keys, call.args, wait, touch));
    if (!READS.has(call.script)) link.wrote();
    if (!known) {
      // Only now that the script succeeded: a refused call registers nothing.
      try {
        await this.register(call.service);
      } catch (exc) {
        // The script's write is in Redis: throwing now would make the producer
        // send the event again. Checked again with the next call; a worker
        // registers its service when it starts.
        this.logger.warn(`service ${call.service} was written but could not be added to the registry ` +
          `the daemons sweep (${exc instanceof Error ? exc.message : String(exc)}); retried with the next call`);
      }
    }
    const result = call.parse(reply);
    if (wait !== null && acked !== null && acked < wait.replicas) {
      const hint = call.script === "enqueue" || call.script === "schedule"
        ? " (an enqueue may be resent with the same id safely)" : "";
      const err = new NotReplicatedError(
        `${call.script} on ${call.service || "the global keys"} was written on the primary, but only ` +
          `${acked} of the ${wait.replicas} replicas asked for acknowledged it within ${wait.timeoutMs} ms: ` +
          `a failover now may lose it${hint}`,
      );
      Object.assign(err, { result, acked });
      throw err;
    }
    return result;
  }

  /** @param {string} service */
  #registryKey(service) {
    checkService(service);
    return globalKey(this.prefix, "services");
  }

  /**
   * Whether service is in the registry (a read: it works on a full Redis).
   * @param {string} service
   */
  async #isRegistered(service) {
    const key = this.#registryKey(service);
    const member = Number(await this.#link.io((_, redis) => redis.sIsMember(key, service), key)) === 1;
    if (member) this.#registered.set(service, performance.now());
    return member;
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
    return (await this.#one(ops.enqueueMany(service, [payload], this.maxPayload, [key], ids)))[0];
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
   *
   * Each delivery counts as an attempt at once. With `reserve` (what the
   * Worker uses for its prefetch) it counts only once the handler is known to
   * have started (`start`, or `fail`): a lease that runs out unstarted,
   * because this process died, returns the event uncharged. Honour
   * `Event.mustStart`: call `start` before running such an event.
   * @param {string} service
   * @param {number} [count]
   * @param {{leaseMs?: number | null, reserve?: boolean}} [options]
   * @returns {Promise<import("./types.js").Event[]>}
   */
  async dequeue(service, count = 1, options = {}) {
    return this.run(ops.dequeue(service, count, options.leaseMs ?? null, options.reserve ?? false));
  }

  /**
   * Mark reserved events as started ([id, token] or {id, token}); per item
   * the attempt now charged, or its error.
   * @param {string} service
   * @param {ReadonlyArray<ops.LeaseItem>} items
   * @returns {Promise<(number | HomingError)[]>}
   */
  async start(service, items) {
    return this.run(ops.startMany(service, items));
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
    raiseFirst(await this.#one(ops.completeMany(service, [[eventId, token, result]], this.maxPayload), raiseFirst));
  }

  /**
   * run() for a method that returns one item of a batch call: a
   * NotReplicatedError carries what the method returns (enqueue: the id), and
   * an item the script refused (nothing written for it) is thrown instead.
   * @param {ops.Call} call
   * @param {(out: any) => unknown} [unpack] what the method makes of the reply
   */
  async #one(call, unpack = (out) => out[0]) {
    try {
      return await this.run(call);
    } catch (exc) {
      if (exc instanceof NotReplicatedError) {
        const err = /** @type {NotReplicatedError & {result: unknown}} */ (exc);
        err.result = unpack(err.result);
      }
      throw exc;
    }
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
    const key = globalKey(this.prefix, "services");
    const members = await this.#link.io((_, redis) => redis.sMembers(key), key);
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
    const key = this.#registryKey(service);
    await this.#link.io(async (_, redis) => {
      try {
        await redis.sAdd(key, service);
      } catch (exc) {
        // A full Redis refuses the SADD even when there is nothing to add; a
        // worker draining it must still start. Already a member: done.
        if (!(translate(exc) instanceof RedisFullError && Number(await redis.sIsMember(key, service)) === 1)) {
          throw exc;
        }
      }
    }, key);
    this.#registered.set(service, performance.now());
  }

  /**
   * Record that daemon `name` is alive, by the Redis clock (`homing stats`
   * reads the beats). A script (`beat`) that runs on a full Redis too: a
   * daemon draining a full Redis must not look dead.
   * @param {string} name the daemon's name (role:host:pid), 1..256 bytes
   * @returns {Promise<number>} the beat's time (ms, Redis clock)
   */
  async beat(name) {
    return this.run(ops.beat(name));
  }

  /**
   * Record a worker's beat, for the dashboard (see worker-beat.js); returns
   * how many silent workers' fields it pruned.
   * @param {import("./index.js").WorkerBeatOptions} options
   * @returns {Promise<number>}
   */
  async workerBeat(options) {
    return this.run(workerBeatCall(options));
  }

  /**
   * Tell the distributors that service has expired leases waiting (a hint only).
   * @param {string} service
   */
  async hintExpired(service) {
    checkService(service);
    const key = globalKey(this.prefix, "hints");
    await this.#link.io((_, redis) => redis.sAdd(key, service), key);
  }

  /**
   * Pop services hinted by schedulers.
   * @param {number} [count]
   * @returns {Promise<string[]>}
   */
  async takeHints(count = 100) {
    whole(count, "count", 0);
    const key = globalKey(this.prefix, "hints");
    const got = await this.#link.io((_, redis) => redis.sPopCount(key, count), key);
    return (got ?? []).map(String);
  }
}
