// An idle worker's wait for its service's ready queue: blocking, not polling.
//
// BLMOVE ready ready RIGHT RIGHT returns the moment anything pushes an id onto
// the ready queue (an enqueue, a promote of a due timer or retry, a release, a
// lease returned unstarted); it pops the next id and pushes it straight back,
// so the queue is unchanged, and it costs Redis no command while it waits. It
// runs on a connection of its own (a duplicate of the client's), since a
// blocking command would hold up every other call on the shared one.
//
// Falls back to sleep-and-poll (the worker's pollMaxMs) where the wait is
// refused (an ACL without BLMOVE, a Redis before 6.2), and once when the queue
// looked non-empty but the dequeue found nothing (which would otherwise spin).

import { serviceKey } from "./manifest.js";

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
   * @param {{connection: any, prefix: string}} client
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
      if (this.#conn === null) {
        try {
          this.#conn = await bounded(this.#open(), OPEN_MS, "connecting");
        } catch (exc) {
          // node-redis retries a connection for ever: one that is not up in time is not
          // waited for again; the worker polls (its own connection keeps working).
          this.#blocking = false;
          this.log.warn(`worker ${this.service}: no connection of its own to block on its ready queue ` +
            `(${exc instanceof Error ? exc.message : String(exc)}): polling instead`);
          throw exc;
        }
      }
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
