// The client: a connection to homing on one Redis and how a call runs on it
// (python/homing/client.py). The producer, consumer and admin methods, one
// script call each, are in client-calls.js; what is decided per script (which
// calls create a service, which are waited for) in client-settings.js.
//
// Producers need only a service name: the first write to a service creates it
// and adds it to the registry that the scheduler and distributor sweep.

import { whole } from "./argtypes.js";
import { ScriptCalls } from "./client-calls.js";
import {
  CREATING,
  DEFAULT_LOGGER,
  DEFAULT_URL,
  DEFAULT_WAIT_TIMEOUT_MS,
  READS,
  REGISTER_EVERY_MS,
  REPEATS,
  WAITED,
  waitOption,
} from "./client-settings.js";
import { COMMAND_TIMEOUT_MS, KeyCache, connect, sentinelSettings, translate } from "./connection.js";
import * as durability from "./durability.js";
import { ConnectionLostError, NotReplicatedError, RedisFullError } from "./errors.js";
import { Link } from "./link.js";
import { watchSentinels } from "./sentinel-watch.js";
import { isSentinel } from "./urls.js";
import { dueOf, HintWarning, wakeChannel } from "./due.js";
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
export {
  DEFAULT_LOGGER,
  DEFAULT_URL,
  DEFAULT_WAIT_TIMEOUT_MS,
  READS,
  REGISTER_EVERY_MS,
  RETRY_BUDGET_MS,
  WAITED,
  raiseFirst,
  waitOption,
} from "./client-settings.js";

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
export class Client extends ScriptCalls {
  #keys;
  /** @type {Link} the connection, kept alive (dropped and made again when dead or demoted) */
  #link;
  /** @type {Map<string, number>} service -> when it was last seen in the registry */
  #registered = new Map();
  /** @type {durability.NodeDurability[] | null} the server's settings, read once */
  #durability = null;
  /** @type {Promise<durability.NodeDurability[]> | null} the reading under way */
  #reading = null;
  /** @type {HintWarning} the due-time index's failures, once a minute */
  #hintWarning;

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
    super(maxPayload);
    /** How long (ms) a call waits for its reply before the connection is taken for dead. */
    this.commandTimeoutMs = whole(commandTimeoutMs, "commandTimeoutMs", 1, 86_400_000);
    this.#link = new Link(redisClient, { commandTimeoutMs: this.commandTimeoutMs, logger });
    /** "standalone", "cluster" or "sentinel" (createClient, createCluster, createSentinel). */
    this.kind = this.#link.kind;
    /** The WAIT after each write (null: none). */
    this.wait = waitOption(waitReplicas, waitTimeoutMs, this.commandTimeoutMs);
    this.prefix = checkPrefix(prefix);
    /** Whether checkDurability() refuses a server that may lose acknowledged events. */
    this.requireDurable = Boolean(requireDurable);
    this.logger = logger;
    /** How often (ms) a producer checks that a service is in the registry. */
    this.registerEveryMs = REGISTER_EVERY_MS;
    this.#keys = new KeyCache(this.prefix);
    this.#hintWarning = new HintWarning(logger);
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
   *
   * With `hints` (the worker's fetcher), the due-time index's hint the reply
   * calls for ([service, due ms]) is appended there for the caller to send
   * with hintDue, instead of being sent before this returns: the worker hands
   * its events to the slots first, a round trip less between a leased event
   * and its handler (Python's Client._run with hints).
   * @param {import("./calls.js").Call} call
   * @param {Array<[string, number]> | null} [hints]
   * @returns {Promise<any>}
   */
  async run(call, hints = null) {
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
    const field = REPEATS[call.script];
    const touch = wait !== null && field !== undefined ? { key: keys[script.keys.indexOf("counters")], field } : null;
    const link = this.#link;
    const [reply, acked] = await link.io((conn, redis) =>
      link.sendScript(conn, redis, script, keys, call.args, wait, touch));
    return this.#settled(call, reply, acked, wait, known, hints);
  }

  /**
   * What run() does with a script's reply: the registry (a service this call
   * created), the due-time hint, the parse, and NotReplicatedError.
   * @param {import("./calls.js").Call} call
   * @param {any} reply
   * @param {number | null} acked
   * @param {{replicas: number, timeoutMs: number} | null} wait
   * @param {boolean} known
   * @param {Array<[string, number]> | null} hints
   */
  async #settled(call, reply, acked, wait, known, hints) {
    if (!READS.has(call.script)) this.#link.wrote();
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
    const at = dueOf(call.script, reply);
    if (at !== null) {
      if (hints === null) await this.hintDue(call.service, at);
      else hints.push([call.service, at]);
    }
    const result = call.parse(reply);
    if (wait !== null && acked !== null && acked < wait.replicas) {
      const hint = Object.hasOwn(REPEATS, call.script) ? " (an enqueue may be resent with the same id safely)" : "";
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

  /**
   * Whether `_leaseWhenReady` can send a call of this script behind the wait,
   * on the wait's own connection: a standalone Redis (a Cluster routes by key,
   * and Sentinel follows the master: theirs are two calls), a script with no
   * WAIT after it and no registry check before it, the durability read.
   * @internal
   * @param {string} script
   */
  _leasesWhenReady(script) {
    return this.#link.kind === "standalone" && !CREATING.has(script) &&
      !(WAITED.has(script) && this.wait !== null) && this.#durability !== null && !this.requireDurable;
  }

  /**
   * The idle worker's wait on its ready queue and the dequeue in one round
   * trip (Python's dequeue_when_ready): `pipeline` sends the wait and the
   * script, in that order, on the wait's own connection, and Redis runs the
   * dequeue the moment the wait returns, so the worker receives the event
   * itself, not a sign to ask for it. A script reply that is an error (NOSCRIPT, a refusal) runs
   * the call again through run(), which is safe: a refused script wrote
   * nothing. Trouble with the connection itself is the pipeline's to throw.
   * @internal
   * @param {import("./calls.js").Call} call
   * @param {Array<[string, number]> | null} hints
   * @param {{pipeline: (sha1: string, keys: string[], args: any[]) => Promise<PromiseSettledResult<any>>}} ready
   */
  async _leaseWhenReady(call, hints, ready) {
    if (!this._leasesWhenReady(call.script)) return this.run(call, hints);
    const script = SCRIPTS[call.script];
    const got = await ready.pipeline(script.sha1, this.#keys.keys(script, call.service), call.args);
    if (got.status === "rejected") return this.run(call, hints);
    return this.#settled(call, got.value, null, null, true, hints);
  }

  /**
   * Lower service's entry in the due-time index to `at` (ms, Redis clock; 0:
   * look now) and wake the schedulers if that lowered it (see due.js). A hint:
   * a failure is warned about once a minute, never thrown.
   * @param {string} service
   * @param {number} at
   */
  async hintDue(service, at) {
    const key = globalKey(this.prefix, "due");
    try {
      const changed = await this.#link.io((_, redis) =>
        redis.zAdd(key, { score: at, value: service }, { comparison: "LT", CH: true }), key);
      if (Number(changed) > 0) {
        const channel = wakeChannel(this.prefix);
        await this.#link.io((_, redis) => redis.publish(channel, service), channel);
      }
    } catch (exc) {
      this.#hintWarning.told(service, exc);
    }
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

  // -- plain commands on the global keys --------------------------------------

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
