// The worker's acknowledgements (the acker thread of python/homing/worker.py
// and outcomes.py): handled events queue their completion here and one loop
// sends them in batches of completeMany, so a slot never waits on a round
// trip. Kept apart from worker.js because its rules are its own: a batch
// that cannot be sent is retried with backoff, a completion a full Redis
// refused (REDIS_FULL) is kept and sent again while the heartbeat keeps its
// lease, any other refusal counts the event as lost, and at shutdown it gives
// up after the longest pause, leaving those events to their leases.

import { ConnectionLostError, HomingError, RedisFullError } from "./errors.js";
import { countAcks, countError } from "./holding.js";
import { MAX_BATCH } from "./manifest.js";
import { accepted, retrying } from "./outcomes.js";
import { Signal, nextTurn, sleep } from "./sync.js";
import { MAX_PAUSE } from "./worker-support.js";

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./sync.js").Stopper} Stopper */
/** @typedef {import("./holding.js").Held} Held */
/** @typedef {import("./holding.js").WorkerStats} WorkerStats */
/** @typedef {import("./worker-support.js").Logger} Logger */
/** @typedef {import("./outcomes.js").ReplicationWarning} ReplicationWarning */
/** @typedef {[string, number, unknown]} Ack id, token, result */

export class Acker {
  /** @type {Ack[]} */
  #acks = [];
  #signal = new Signal();
  #handlersDone = false;
  /**
   * Handled events whose completion is queued or in flight: they need no slot
   * any more, so the fetcher leases the next batch while they are acked.
   */
  acking = 0;
  /** @type {Promise<void> | undefined} the loop, once started */
  loop;

  /**
   * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
   *   _replication: ReplicationWarning}} worker
   * @param {Held} held
   * @param {Stopper} stop the worker's: ends the retries' pauses early
   * @param {() => void} onQueued wakes the fetcher: queued acks make room
   * @param {() => Promise<void> | null} [beforeSend] what to wait for before a
   * batch goes out: the fetcher's dequeue of the same turn, if it sends one
   */
  constructor(worker, held, stop, onQueued, beforeSend = () => null) {
    this.worker = worker;
    this.held = held;
    this.stop = stop;
    this.onQueued = onQueued;
    this.beforeSend = beforeSend;
  }

  /** Start the loop (it ends once finish() was called and the queue is empty). */
  start() {
    this.loop = this.#loop();
    return this.loop;
  }

  /** No handler will queue more: send what is queued, then end. */
  finish() {
    this.#handlersDone = true;
    this.#signal.notify();
  }

  /** Wake the loop (the worker is stopping). */
  wake() {
    this.#signal.notify();
  }

  /**
   * Hand settled completions to the loop.
   * @param {Ack[]} items
   * @param {boolean} [resend] refused by a full Redis: keep extending their leases
   */
  queue(items, resend = false) {
    if (resend) this.held.resend(items);
    // The loop takes the whole queue when it wakes, so only the first of a
    // batch needs to wake it.
    if (this.#acks.length === 0) this.#signal.notify();
    this.#acks.push(...items);
    this.acking += items.length;
    // Handled events need no slot any more: room for the fetcher's next batch.
    this.onQueued();
  }

  /**
   * Hand one settled completion (no result) to the loop: queue() for the
   * slot's common case, without the arrays a call of queue() takes.
   * @param {string} eventId
   * @param {number} token
   */
  queueOne(eventId, token) {
    if (this.#acks.length === 0) this.#signal.notify();
    this.#acks.push([eventId, token, null]);
    this.acking += 1;
    this.onQueued();
  }

  /**
   * Acknowledge one event at once (one charged already: marked started), not
   * in a batch a crash could lose; on any trouble hand it to the loop.
   * @param {Event} ev
   */
  async now(ev) {
    const { client, service, stats, log, _replication } = this.worker;
    /** @type {HomingError | null} */
    let err;
    try {
      [err] = await accepted(_replication, () => client.completeMany(service, [[ev.id, ev.token, null]]));
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc; // a bug: not taken for a lost connection
      // Not sent (a lost connection, say): the loop sends it with its backoff.
      this.queue([[ev.id, ev.token, null]], true);
      return;
    }
    if (err === null) {
      stats.completed += 1;
      this.held.drop(ev.id, ev.token);
    } else if (err instanceof RedisFullError) {
      this.queue([[ev.id, ev.token, null]], true);
    } else {
      stats.lost += 1;
      countError(stats, err.code);
      log.warn(`completion refused: ${err.message}`);
      this.held.drop(ev.id, ev.token);
    }
  }

  async #loop() {
    const { client, service, stats, log, _replication } = this.worker;
    const pause = { ms: 50 };
    let fullPause = 50;
    for (;;) {
      while (this.#acks.length === 0 && !this.#handlersDone) await this.#signal.wait(100);
      if (this.#acks.length === 0 && this.#handlersDone) return;
      // Handlers that need no I/O finish before the event loop's next turn:
      // waiting for it sends all of them in this batch, not the first alone.
      await nextTurn();
      // A dequeue the fetcher sends this same turn goes first (fetcher.js).
      const dequeue = this.beforeSend();
      if (dequeue !== null) await dequeue;
      const batch = this.#acks.splice(0, MAX_BATCH);
      /** @type {(HomingError | null)[] | null} */
      let errors = null;
      for (;;) {
        errors = await retrying(log, this.stop, "complete",
          () => accepted(_replication, () => client.completeMany(service, batch)), pause);
        if (errors !== null) break;
        if (this.#handlersDone && pause.ms >= MAX_PAUSE) {
          log.error(
            `giving up ${batch.length} completions: Redis unreachable; they will be ` +
              "redelivered after their leases expire",
          );
          errors = batch.map(() => new ConnectionLostError("completion given up at shutdown"));
          break;
        }
      }
      // A full Redis refuses a completion whose result would grow it, and
      // leaves the event leased: kept (and extended), sent again after a pause.
      const { settled, full } = countAcks(stats, log, batch, errors);
      this.acking -= settled.length;
      this.held.dropMany(settled);
      if (full.length === 0) {
        fullPause = 50;
        continue;
      }
      if (this.#handlersDone && fullPause >= MAX_PAUSE) {
        log.error(
          `giving up ${full.length} completions refused by a full Redis at shutdown; they ` +
            "will be redelivered after their leases expire",
        );
        this.acking -= full.length;
        this.held.dropMany(full);
        continue;
      }
      log.warn(`${full.length} completions refused by a full Redis; sending them again in ${fullPause} ms`);
      this.held.resend(full);
      this.#acks.push(...full);
      await sleep(fullPause); // not cut short by stop(): it would spin on a full Redis
      fullPause = Math.min(fullPause * 2, MAX_PAUSE);
    }
  }
}
