// The worker's fetcher (the fetch thread of python/homing/worker.py) and the
// inbox it fills: it leases batches in reserve mode whenever slots are free,
// so a consumer rarely waits on a round trip. Kept apart from worker.js
// because the window rule is its own: handled events waiting for their ack
// count as free, so the next dequeue overlaps the last completeMany, but it
// never holds more than two windows (concurrency + prefetch) of leases.
// When the service's limits (rate, concurrency) or its pause hold ready
// events back, the dequeue says how long (waitMs): the fetcher sleeps that
// long, woken by stop, rather than poll or block on the ready queue (which
// holds events, so would not block).

import { MAX_BATCH } from "./manifest.js";
import { retrying } from "./outcomes.js";
import { ReadyWait } from "./ready-wait.js";
import { Signal, nextTurn } from "./sync.js";

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./sync.js").Stopper} Stopper */
/** @typedef {import("./holding.js").Held} Held */
/** @typedef {import("./holding.js").WorkerStats} WorkerStats */
/** @typedef {import("./worker-support.js").Logger} Logger */

/**
 * How long the fetcher sleeps when it has no room for more leases, unless a
 * lease is dropped or a handled event is handed to the acker first (both
 * wake it). As Python's 1 ms: room opens as soon as acks are queued, and the
 * next dequeue is meant to overlap their completeMany (docs/worker.md).
 */
export const ROOM_WAIT_MS = 1;

export class Fetcher {
  /** @type {Event[]} leased, not yet started */
  #todo = [];
  #todoSignal = new Signal();
  #roomSignal = new Signal();
  /** @type {Promise<void>} the due-time hints sent so far (#sendHints) */
  #hinted = Promise.resolve();

  /**
   * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
   *   leaseMs: number | null, concurrency: number, prefetch: number, pollMaxMs: number}} worker
   * @param {Stopper} stop
   * @param {() => {held: Held, acking: number, leaseMs: number}} now what the
   * window depends on, read before each dequeue: the leases held, how many of
   * them wait for their ack, the effective lease length
   */
  constructor(worker, stop, now) {
    this.worker = worker;
    this.stop = stop;
    this.now = now;
    /**
     * The idle wait on the ready queue (a connection of its own, made on first use);
     * made when the loop starts: the worker is still being built when this is.
     * @type {ReadyWait | null}
     */
    this.ready = null;
  }

  /**
   * Resolves once the dequeue the fetcher is about to send this turn has
   * been issued; null when it is not about to send one. The acker awaits it
   * before its own round trip of the same turn: both reach the connection's
   * queue in the order they were issued (the same path through the client),
   * so Redis runs the dequeue every slot waits on first, and the client reads
   * that reply while Redis runs the completeMany, not after it.
   * @type {Promise<void> | null}
   */
  dequeueing = null;

  /** Resolves dequeueing (the loop's end calls it too: the acker must never wait on a loop that failed). */
  #issued = () => {};

  /** @returns {() => void} marks the dequeue of this turn issued (dequeueing resolves) */
  #issuing() {
    /** @type {() => void} */
    let done = () => {};
    this.dequeueing = new Promise((resolve) => {
      done = resolve;
    });
    this.#issued = () => {
      this.dequeueing = null;
      done();
    };
    return this.#issued;
  }

  /** Room may have opened (a lease dropped, acks queued): only the fetch loop cares. */
  roomMayOpen() {
    this.#roomSignal.notify();
  }

  /** The worker stops (or room opened): wake the fetch loop and the slots waiting to take. */
  wake() {
    this.#roomSignal.notify();
    this.#todoSignal.notify();
  }

  /** @returns {Event[]} the unstarted events, taken out of the inbox (to release them) */
  drain() {
    return this.#todo.splice(0);
  }

  /**
   * The next unstarted event if one is in the inbox (undefined if none), or
   * null once stopping: the slot's way to take one without a promise.
   * @returns {Event | null | undefined}
   */
  next() {
    return this.stop.isSet ? null : this.#todo.shift();
  }

  /** @returns {Promise<Event | null>} the next unstarted event, or null once stopping */
  async take() {
    while (!this.stop.isSet) {
      const ev = this.#todo.shift();
      if (ev !== undefined) return ev;
      await this.#todoSignal.wait(1000);
    }
    return null;
  }

  async loop() {
    const { client, service, log } = this.worker;
    const ready = (this.ready ??= new ReadyWait(client, service, log));
    const window = this.worker.concurrency + this.worker.prefetch;
    try {
      await this.#fetch(ready, window);
    } finally {
      this.#issued();
      // Also when the loop fails: the wait's own connection would keep the process alive.
      await ready.close();
    }
  }

  /**
   * How many more leases to take: handled events waiting for their ack count
   * as free, so the next dequeue overlaps the last batch's completeMany, but
   * never more than two windows of leases are held at once. It only grows
   * while the fetcher waits (acks queued, leases dropped).
   * @param {number} window
   */
  #room(window) {
    const { held, acking } = this.now();
    return Math.min(window - (held.size - acking), 2 * window - held.size);
  }

  /**
   * @param {ReadyWait} ready
   * @param {number} window
   */
  async #fetch(ready, window) {
    const { client, service, stats, log } = this.worker;
    let idle = 1;
    const pause = { ms: 50 };
    /** @type {Array<[string, number]>} the dequeues' due-time hints, sent by #sendHints */
    const hints = [];
    /** The last dequeue emptied the ready queue (leased fewer than it asked for). */
    let drained = false;
    /** When the last batch was handed to the slots (its hint waits for the next dequeue). */
    let handedAt = 0;
    while (!this.stop.isSet) {
      if (this.#room(window) <= 0) {
        // The last batch's hint rides with the next dequeue, in the same
        // write; if room does not open within ROOM_WAIT_MS it goes alone.
        if (hints.length > 0 && performance.now() - handedAt >= ROOM_WAIT_MS) this.#sendHints(hints);
        await this.#roomSignal.wait(ROOM_WAIT_MS);
        continue;
      }
      // Room opens one handled event at a time. Handlers that need no I/O
      // (any number, in any slot) finish before the next turn of the event
      // loop: waiting for it makes their room one full batch, not a dequeue
      // of the first one or two and another of the rest.
      // The acker's completeMany of the same turn waits until this dequeue
      // is issued (see dequeueing), so that Redis runs the dequeue first.
      const issued = this.#issuing();
      await nextTurn();
      if (this.stop.isSet) {
        issued();
        break;
      }
      this.#sendHints(hints); // queued before the dequeue: node-redis writes the two together
      const { held } = this.now();
      const n = Math.min(this.#room(window), MAX_BATCH);
      // The local deadline counts from before the call: the lease cannot
      // have begun earlier than that.
      const sent = performance.now();
      // The last dequeue emptied the queue: this one waits behind a blocking
      // wait on it, in the same round trip (ready-wait.js).
      const lease = drained && ready.canLease();
      /** @type {Parameters<Client["dequeueBatch"]>[2]} */
      const options = { leaseMs: this.worker.leaseMs, reserve: true, hints };
      if (lease) options.whenReady = ready;
      const call = retrying(log, this.stop, "dequeue", () => client.dequeueBatch(service, n, options), pause);
      issued();
      const batch = await call;
      const events = batch ? batch.events : [];
      drained = batch !== null && events.length < n;
      if (batch && events.length === 0 && batch.waitMs > 0) {
        stats.limited += 1;
        await this.stop.wait(batch.waitMs);
        continue;
      }
      if (events.length === 0) {
        // The next dequeue waits for the ready queue itself if it can (the
        // wait timed out, or this was the first empty one); else this blocks
        // until the queue has something (ready-wait.js), or polls where it cannot.
        if (batch !== null && ready.canLease()) continue;
        if (await ready.wait(idle, this.stop)) idle = Math.min(idle * 2, this.worker.pollMaxMs);
        continue;
      }
      idle = 1;
      ready.wokeWithEvents();
      held.add(events, sent + this.now().leaseMs);
      stats.received += events.length;
      this.#todo.push(...events);
      this.#todoSignal.notify();
      handedAt = performance.now();
    }
    this.#sendHints(hints);
    await this.#hinted;
  }

  /**
   * Send the due-time hints the dequeues kept back (their lease deadlines),
   * once the slots have the events (with the next dequeue, or ROOM_WAIT_MS
   * later): not awaited, so the hint's round trip is never between a batch
   * and its handlers (hintDue never throws; the loop's end waits for the last).
   * @param {Array<[string, number]>} hints
   */
  #sendHints(hints) {
    for (const [service, at] of hints.splice(0)) {
      this.#hinted = Promise.all([this.#hinted, this.worker.client.hintDue(service, at)]).then(() => {});
    }
  }
}
