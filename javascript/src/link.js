// The connection a Client keeps (split from client.js): every call goes
// through Link.io, which bounds it by commandTimeoutMs, sends again what a
// Cluster refused unrun (TRYAGAIN, CLUSTERDOWN) within a budget, turns errors
// into homing errors, and drops a connection that is dead (no reply), demoted
// (READONLY), lost through Sentinel, or a Cluster node's that gave up, so that
// the next call makes a new one (Client.connect's connections only: one given
// to the Client's constructor is the caller's). Script calls are sent by
// sendScript, with the WAIT of the waitReplicas option on the same connection.
// Nothing here sends a call twice unless Redis said it did not run it.

import { ErrorReply } from "redis";

import { BUFFER_REPLIES, connectionKind, quietly } from "./connection.js";
import { isGivenUp, isNoScript, refusedUnrun, translate } from "./redis-errors.js";
import { ConnectionLostError, HomingError, ReadOnlyError } from "./errors.js";
import { HOLD_MS } from "./sentinel-watch.js";

/** @typedef {string | Buffer} Arg */

// Calls a Cluster refused unrun (TRYAGAIN, CLUSTERDOWN) are sent again after
// 10 ms doubling to 200 ms, for up to 5 s; then ConnectionLostError.
export const RETRY_BUDGET_MS = 5000;
const FIRST_PAUSE_MS = 10;
const MAX_PAUSE_MS = 200;
// READONLY through Sentinel (a sentinel that has not heard of a failover yet
// names the old primary): nothing was written, so the call is sent again
// after asking the next sentinel, 50 ms doubling, 5 times (1.55 s in all,
// Sentinel's gossip takes 2 s), as in Python.
const STALE_TRIES = 5;

/** The rejection of a call whose timer ran out (turned into ConnectionLostError). */
class NoReply extends Error {}

/**
 * Whether a reply of a script with idempotent repeats reports one: its
 * (id, flag) pairs from index 0 have a flag 0.
 * @param {unknown} reply
 */
function repeated(reply) {
  return Array.isArray(reply) && reply.some((v, i) => i % 2 === 1 && Number(v) === 0);
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Link {
  /** @type {any} the node-redis client in use (the last one, after a drop) */
  #conn;
  /** @type {any} #conn replying with Buffers */
  #redis;
  /** @type {((drops: number) => Promise<any>) | null} makes a new connection (Client.connect only) */
  #reconnect = null;
  /** connections dropped so far (a new Sentinel client asks the sentinels from the next one) */
  #drops = 0;
  /** until when (performance.now()) calls wait: Sentinel is promoting a replica */
  #holdUntil = 0;
  /** @type {(() => void) | null} stops watching the sentinels */
  #unwatch = null;
  /**
   * @type {{host: string, port: number, until: number} | null} the primary a
   * +switch-master named: until then (performance.now()) a new Sentinel client
   * that names another (a sentinel that has not heard yet: the old primary,
   * which takes writes for ~10 s more) is not used
   */
  #expect = null;
  /** @type {Promise<any> | null} a new connection on its way */
  #connecting = null;
  /** #conn was dropped: the next call makes a new one first */
  #stale = false;
  /** when (performance.now()) #conn came into use */
  #since = 0;
  #closed = false;
  /** @type {number | null} since when (performance.now()) every write met READONLY */
  #readOnlySince = null;

  /**
   * @param {any} conn a connected node-redis client (createClient, createCluster, createSentinel)
   * @param {{commandTimeoutMs: number, logger: {warn(...a: any[]): void, info?(...a: any[]): void}}} options
   */
  constructor(conn, options) {
    this.#use(conn);
    /** "standalone", "cluster" or "sentinel". */
    this.kind = connectionKind(conn);
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.logger = options.logger;
  }

  /**
   * Make new connections with open after a drop (Client.connect).
   * @param {(drops: number) => Promise<any>} open
   */
  reconnectWith(open) {
    this.#reconnect = open;
  }

  /**
   * Sentinel: watch(on) starts listening to the sentinels' failover events
   * (sentinel-watch.js) and returns the function that stops it.
   * @param {(on: {promoting(): void, settled(to: {host: string, port: number} | null): void}) => () => void} watch
   */
  watchWith(watch) {
    this.#unwatch = watch({
      promoting: () => {
        // No more writes to the old primary: they would be wiped.
        this.#holdUntil = performance.now() + HOLD_MS;
        this.#drop(this.#conn, "Sentinel is promoting a replica; waiting for the new primary");
      },
      settled: (to) => {
        this.#holdUntil = 0;
        if (to === null) return; // an abort: the primary stays
        this.#expect = { ...to, until: performance.now() + HOLD_MS };
        const at = this.#stale ? null : this.#conn.getMasterNode?.();
        if (at && (at.host !== to.host || at.port !== to.port)) {
          this.#drop(this.#conn, `Sentinel moved the primary to ${to.host}:${to.port}`);
        }
      },
    });
  }

  /** The node-redis client in use (the last one, after a drop). */
  get connection() {
    return this.#conn;
  }

  /** The same, replying with Buffers. */
  get redis() {
    return this.#redis;
  }

  /** Milliseconds during which every write was answered READONLY (0: none). */
  readOnlyForMs() {
    return this.#readOnlySince === null ? 0 : performance.now() - this.#readOnlySince;
  }

  /** A write went through: the server takes writes (again). */
  wrote() {
    this.#readOnlySince = null;
  }

  /** @param {any} conn */
  #use(conn) {
    this.#since = performance.now();
    this.#conn = conn;
    this.#redis = conn.withTypeMapping(BUFFER_REPLIES);
  }

  /** Close the connection (waits for replies already on their way). */
  async close() {
    this.#closed = true;
    this.#unwatch?.();
    await this.#connecting?.catch(() => {});
    if (this.#stale) return; // dropped, and destroyed then
    this.#stale = true;
    await this.#conn.close();
  }

  /**
   * One script call on conn: its raw reply, and with `wait` how many replicas
   * acknowledged it (else null).
   * @param {any} conn
   * @param {any} redis conn replying with Buffers
   * @param {{sha1: string, source: string}} script
   * @param {string[]} keys
   * @param {Arg[]} args
   * @param {{replicas: number, timeoutMs: number} | null} wait
   * @param {{key: string, field: string} | null} [touch] for a script with idempotent
   * repeats (enqueue, schedule): the counter to touch when the reply reports one
   * @returns {Promise<[any, number | null]>}
   */
  async sendScript(conn, redis, script, keys, args, wait, touch = null) {
    if (wait === null) {
      try {
        return [await redis.evalSha(script.sha1, { keys, arguments: args }), null];
      } catch (exc) {
        if (!isNoScript(exc)) throw exc;
        return [await redis.eval(script.source, { keys, arguments: args }), null];
      }
    }
    /** @type {[any, number]} */
    let out;
    try {
      out = await this.#waited(conn, ["EVALSHA", script.sha1, String(keys.length), ...keys, ...args], keys, wait);
    } catch (exc) {
      if (!isNoScript(exc)) throw exc;
      out = await this.#waited(conn, ["EVAL", script.source, String(keys.length), ...keys, ...args], keys, wait);
    }
    if (touch !== null && repeated(out[0])) {
      // An idempotent repeat (the answer to a NotReplicatedError) writes
      // nothing, and WAIT counts the replicas up to the connection's last
      // write. Redis 7.0 moves that mark with every script call, written or
      // not, but that is an implementation detail: HINCRBY <counters> <field>
      // 0 (no value changes, but Redis propagates it) and a second WAIT on the
      // same node cover the first send, whichever connection made it.
      try {
        const [, acked] = await this.#waited(conn, ["HINCRBY", touch.key, touch.field, "0"], [touch.key], wait);
        out = [out[0], acked];
      } catch {
        out = [out[0], 0]; // the script's write stands; only its replication is unknown
      }
    }
    return out;
  }

  /**
   * The script and `WAIT replicas timeout` on one connection, queued together:
   * WAIT counts the replicas that have every write of its connection, so on
   * another connection it would answer for that connection's writes, not this
   * call's. On a Cluster, on the node the keys' slot is on (node-redis's
   * routing, MOVED and ASK included: ASKING, the script and WAIT go to the
   * node that ran it); through Sentinel, on the master's connection.
   * @param {any} conn
   * @param {Arg[]} command
   * @param {string[]} keys
   * @param {{replicas: number, timeoutMs: number}} wait
   * @returns {Promise<[any, number]>}
   */
  #waited(conn, command, keys, wait) {
    const waitCommand = ["WAIT", String(wait.replicas), String(wait.timeoutMs)];
    const onNode = async (/** @type {any} */ node, /** @type {Record<string, any>} */ opts = {}) => {
      const [reply, acked] = await Promise.allSettled([
        node.sendCommand(command, { ...opts, typeMapping: BUFFER_REPLIES }),
        node.sendCommand(waitCommand, opts),
      ]);
      if (reply.status === "rejected") throw reply.reason;
      if (acked.status === "rejected") {
        // A WAIT cut short because this primary was just demoted ("UNBLOCKED
        // ... master -> replica"): the script ran here, and no replica is known
        // to have it; NotReplicatedError says exactly that.
        if (String(acked.reason?.message).startsWith("UNBLOCKED")) return /** @type {[any, number]} */ ([reply.value, 0]);
        throw acked.reason;
      }
      return /** @type {[any, number]} */ ([reply.value, Number(acked.value)]);
    };
    if (this.kind === "cluster") return conn._execute(keys[0], false, {}, onNode);
    if (this.kind === "sentinel") return conn._execute(false, (/** @type {any} */ node) => onNode(node));
    return onNode(conn);
  }

  /**
   * Run op on the connection in use (made again first if it was dropped),
   * bounded by commandTimeoutMs; calls a Cluster refused unrun are sent
   * again within RETRY_BUDGET_MS. Errors come out as HomingErrors.
   * @template T
   * @param {(conn: any, redis: any) => Promise<T>} op
   * @param {string} [key] the key a plain command was sent for (for WRONGTYPE)
   * @returns {Promise<T>}
   */
  async io(op, key) {
    const started = performance.now();
    let pause = FIRST_PAUSE_MS;
    let stale = 0;
    for (;;) {
      const conn = await this.#current();
      try {
        return await this.#bounded(conn, op(conn, this.#redis));
      } catch (exc) {
        if (refusedUnrun(exc)) {
          if (performance.now() + pause - started > RETRY_BUDGET_MS) {
            throw new ConnectionLostError(
              `the Redis Cluster kept refusing the call for ${RETRY_BUDGET_MS / 1000} s (a slot migrating ` +
                `or a failover under way; nothing was run): ${exc instanceof Error ? exc.message : String(exc)}`,
              { cause: exc },
            );
          }
          await sleep(pause);
          pause = Math.min(pause * 2, MAX_PAUSE_MS);
          continue;
        }
        const err = this.#failed(conn, exc, key);
        if (err instanceof ReadOnlyError && this.kind === "sentinel" && this.#reconnect !== null &&
          stale < STALE_TRIES) {
          await sleep(50 * 2 ** stale++); // dropped: the next sentinel is asked
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * The homing error for exc. READONLY (a demoted primary) drops the
   * connection, so that the next call reconnects (through Sentinel: to the
   * new primary), and starts the clock of readOnlyForMs. A lost connection
   * through Sentinel drops it too (the primary may have moved), and so does
   * a Cluster node's client that gave up reconnecting (a new cluster client
   * finds the slots' owners again).
   * @param {any} conn
   * @param {unknown} exc
   * @param {string} [key]
   */
  #failed(conn, exc, key) {
    // A call cut off by a drop (this connection was destroyed under it):
    // whatever node-redis says then (a TypeError from inside its Sentinel
    // client, say), the connection was lost. Replies from Redis keep theirs.
    const dropped = conn !== this.#conn || this.#stale;
    const err = dropped && !(exc instanceof ErrorReply) && !(exc instanceof HomingError)
      ? new ConnectionLostError(`the connection was dropped under the call: ${exc instanceof Error ? exc.message : String(exc)}`,
        { cause: exc })
      : translate(exc, key);
    if (err instanceof ReadOnlyError) {
      this.#readOnlySince ??= performance.now();
      this.#drop(conn, "it answered READONLY: the server is a replica now");
    } else if (err instanceof ConnectionLostError && (this.kind === "sentinel" ||
      // At most once a second: while a master is down every call to it says so.
      (this.kind === "cluster" && isGivenUp(exc) && performance.now() - this.#since >= 1000))) {
      this.#drop(conn, err.message);
    }
    return err;
  }

  /**
   * promise, or ConnectionLostError once commandTimeoutMs passed without a
   * reply; the connection is dropped then (the call is not sent again: it
   * may have run).
   * @template T
   * @param {any} conn
   * @param {Promise<T>} promise
   * @returns {Promise<T>}
   */
  async #bounded(conn, promise) {
    const ms = this.commandTimeoutMs;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new NoReply()), ms);
    });
    promise.catch(() => {}); // a rejection after the timer is not news
    try {
      return await Promise.race([promise, expired]);
    } catch (exc) {
      if (!(exc instanceof NoReply)) throw exc;
      this.#drop(conn, `no reply within ${ms} ms`);
      throw new ConnectionLostError(
        `Redis did not answer within ${ms} ms (a dead connection, a partition?); the call may have ` +
          "run; the connection is made again before the next call",
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connection to use: the current one, or a new one after a drop. */
  async #current() {
    while (performance.now() < this.#holdUntil && !this.#closed) await sleep(20);
    if (!this.#stale) return this.#conn;
    if (this.#closed) throw new ConnectionLostError("the client is closed");
    this.#connecting ??= this.#connectAgain().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #connectAgain() {
    let conn;
    for (;;) {
      conn = await /** @type {(drops: number) => Promise<any>} */ (this.#reconnect)(this.#drops);
      const want = this.#expect;
      const at = want !== null && performance.now() < want.until ? conn.getMasterNode?.() : null;
      if (!at || (at.host === want?.host && at.port === want?.port) || this.#closed) break;
      // That sentinel has not heard of the failover yet: ask the next one.
      quietly(() => conn.destroy());
      this.#drops += 1;
      await sleep(100);
    }
    if (this.#closed) {
      quietly(() => conn.destroy());
      throw new ConnectionLostError("the client is closed");
    }
    this.#use(conn);
    this.#stale = false;
    this.logger.info?.("connected to Redis again");
    return conn;
  }

  /**
   * Destroy a dead or demoted connection (calls on it fail with
   * ConnectionLostError); the next call makes a new one. Only for clients
   * Client.connect made: a node-redis client given to the constructor is
   * the caller's, and stays.
   * @param {any} conn
   * @param {string} why
   */
  #drop(conn, why) {
    if (this.#reconnect === null || this.#stale || conn !== this.#conn || this.#closed) return;
    this.#stale = true;
    this.#drops += 1;
    this.logger.warn(`dropped the connection to Redis (${why}); a new one is made before the next call`);
    quietly(() => conn.destroy());
  }
}
