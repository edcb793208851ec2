// An idle worker's wait for its service's ready queue: blocking, not polling.
//
// BLMOVE ready ready RIGHT RIGHT returns the moment anything pushes an id onto
// the ready queue (an enqueue, a promote of a due timer or retry, a release, a
// lease returned unstarted); it pops the next id and pushes it straight back,
// so the queue is unchanged, and it costs Redis no command while it waits. It
// runs on a connection of its own (a duplicate of the client's), since a
// blocking command would hold up every other call on the shared one.
//
// `pipeline` is that wait and the dequeue in one round trip (Python's
// ReadyWait.lease): the EVALSHA is queued on the same connection right
// behind the BLMOVE, and Redis runs a connection's commands in order, so the
// dequeue runs the moment the wait returns and the idle worker receives the
// event itself, not a sign to ask for it. The fetcher leases this way
// whenever its last dequeue emptied the queue (on a standalone Redis:
// Client._leasesWhenReady); otherwise `wait` blocks alone.
//
// Falls back to sleep-and-poll (the worker's pollMaxMs) where the wait is
// refused (an ACL without BLMOVE, a Redis before 6.2), and once when the queue
// looked non-empty but the dequeue found nothing (which would otherwise spin).

import { BUFFER_REPLIES } from "./connection.js";
import { ConnectionLostError, ReadOnlyError, RedisFullError } from "./errors.js";
import { serviceKey } from "./manifest.js";
import { translate } from "./redis-errors.js";

/** One wait, in seconds; Redis ends it on its next 100 ms tick, so a stop waits <= ~0.2 s. */
export const BLOCK_S = 0.1;
/** How long the wait's own connection may take to come up, and a BLMOVE beyond its timeout. */
const OPEN_MS = 5000;

/**
 * promise, or a rejection after ms (node-redis queues a command on a connection that is
 * down until it is up again: a wait must not hang the fetch loop, and with it shutdown).
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
async function bounded(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return /** @type {T} */ (await Promise.race([promise, timeout]));
  } finally {
    clearTimeout(timer);
  }
}

export class ReadyWait {
  /** @type {any} the duplicate connection, made on the first wait */
  #conn = null;
  #blocking = true;
  #nonEmpty = false;
  /** blocking waits made (tests: an idle worker makes few) */
  waits = 0;

  /**
   * @param {{connection: any, prefix: string, _leasesWhenReady: (script: string) => boolean}} client
   * @param {string} service
   * @param {{warn: (msg: string) => void}} log
   */
  constructor(client, service, log) {
    this.client = client;
    this.service = service;
    this.log = log;
    this.key = serviceKey(client.prefix, service, "ready");
  }

  /**
   * Whether the next dequeue may wait behind a BLMOVE (`pipeline`): not
   * where the wait is refused, not after a wait that found something the
   * dequeue did not lease (or failed), not where the client sends the two
   * apart (a Cluster, Sentinel, WAIT after a dequeue).
   */
  canLease() {
    return this.#blocking && !this.#nonEmpty && this.client._leasesWhenReady("dequeue");
  }

  /**
   * BLMOVE (at most BLOCK_S) and then the script sha1 (the dequeue), in
   * that order on the wait's connection: the dequeue's settled reply (Buffer
   * replies, as the client's own). Throws ConnectionLostError when the
   * connection fails or does not answer in time (closed then; the next wait
   * is a poll's sleep, the fetcher's retry backs off): a dequeue whose reply
   * was lost returns its events after their lease, uncharged (reserve mode).
   * @param {string} sha1
   * @param {string[]} keys
   * @param {any[]} args
   * @returns {Promise<PromiseSettledResult<any>>}
   */
  async pipeline(sha1, keys, args) {
    this.waits += 1;
    /** @type {PromiseSettledResult<any>[]} */
    let settled;
    try {
      const conn = (this.#conn ??= await this.#opened());
      // Both queued now, in this order: node-redis writes them together.
      const moving = conn.blMove(this.key, this.key, "RIGHT", "RIGHT", BLOCK_S);
      const leasing = conn.withTypeMapping(BUFFER_REPLIES).evalSha(sha1, { keys, arguments: args });
      settled = await bounded(Promise.allSettled([moving, leasing]), BLOCK_S * 1000 + OPEN_MS, "BLMOVE");
    } catch (exc) {
      await this.#lost();
      throw exc instanceof ConnectionLostError ? exc
        : new ConnectionLostError(`the ready queue's wait: ${exc instanceof Error ? exc.message : String(exc)}`,
          { cause: exc });
    }
    const [moved, leased] = settled;
    if (moved.status === "fulfilled") {
      this.#nonEmpty = moved.value !== null; // reset by wokeWithEvents when the dequeue leased some
      return leased;
    }
    const err = translate(moved.reason, this.key);
    if (err instanceof ConnectionLostError) {
      await this.#lost();
      throw err;
    }
    if (err instanceof ReadOnlyError || err instanceof RedisFullError) {
      // The server's trouble, not the wait's: the next dequeue goes alone.
      this.#nonEmpty = true;
    } else {
      this.log.warn(`worker ${this.service}: cannot block on its ready queue (${err.message}): polling instead`);
      this.#blocking = false;
    }
    return leased;
  }

  /** The wait's connection, made now (bounded); one that is not up in time is not tried again. */
  async #opened() {
    try {
      return await bounded(this.#open(), OPEN_MS, "connecting");
    } catch (exc) {
      this.#blocking = false;
      this.log.warn(`worker ${this.service}: no connection of its own to block on its ready queue ` +
        `(${exc instanceof Error ? exc.message : String(exc)}): polling instead`);
      throw exc;
    }
  }

  /** The pipeline's connection failed: closed, and the next wait is a poll's sleep. */
  async #lost() {
    this.#nonEmpty = true;
    await this.close();
  }

  /**
   * Wait for the next event after an empty dequeue.
   * @param {number} idleMs the poll pause, when it cannot block
   * @param {{wait: (ms: number) => Promise<boolean>}} stop
   * @returns {Promise<boolean>} true if it slept idleMs instead (back off the polls)
   */
  async wait(idleMs, stop) {
    if (!this.#blocking || this.#nonEmpty) {
      this.#nonEmpty = false;
      await stop.wait(idleMs);
      return true;
    }
    try {
      // node-redis retries a connection for ever: one that is not up in time is not
      // waited for again; the worker polls (its own connection keeps working).
      this.#conn ??= await this.#opened();
      this.waits += 1;
      const got = await bounded(this.#conn.blMove(this.key, this.key, "RIGHT", "RIGHT", BLOCK_S),
        BLOCK_S * 1000 + OPEN_MS, "BLMOVE");
      this.#nonEmpty = got !== null;
      return false;
    } catch (exc) {
      await this.close();
      const text = exc instanceof Error ? exc.message : String(exc);
      if (this.#blocking && /NOPERM|unknown command|ERR unknown/i.test(text) && !/READONLY/.test(text)) {
        this.log.warn(`worker ${this.service}: cannot block on its ready queue (${text}): polling instead`);
        this.#blocking = false;
      }
      await stop.wait(idleMs); // a lost connection: the dequeue's retry loop deals with it
      return true;
    }
  }

  /** The dequeue after a wait found events. */
  wokeWithEvents() {
    this.#nonEmpty = false;
  }

  async #open() {
    const conn = this.client.connection.duplicate();
    conn.on("error", () => {}); // reported by the wait that fails, not as an unhandled event
    try {
      await conn.connect();
    } catch (exc) {
      conn.destroy();
      throw exc;
    }
    return conn;
  }

  /** Close the wait's connection (the worker's fetch loop ends with it). */
  async close() {
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) {
      try {
        conn.destroy();
      } catch {
        // already gone
      }
    }
  }
}
