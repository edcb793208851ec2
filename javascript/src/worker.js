// The worker runner: leases events for one service and feeds them to
// consumers (python/homing/worker.py, with async loops for its threads).
//
// - the fetcher leases batches (`prefetch`) whenever slots are free, so a
//   consumer rarely waits on a round trip; handled events waiting for their
//   ack count as free, so the next dequeue overlaps the last completeMany
//   (at most two windows of leases are held);
// - `concurrency` slots, each with its own consumer instance and state (like
//   one gen_server per slot), run handleEvent;
// - the acker sends completions in batches with completeMany;
// - the heartbeat extends every held lease each leaseMs / 3, so a slow
//   handler keeps its event.
//
// Lost connections (a Redis restart) are retried with backoff in every loop;
// node-redis reconnects and scripts reload by themselves. On stop() (run()
// calls it on SIGTERM/SIGINT) the fetcher stops, prefetched events that no
// slot started are released (they go next, no attempt counted), handlers get
// `graceMs` to finish, and whatever is still running after that is released
// too: nothing waits for a lease to expire.

import { Reject } from "./consumer.js";
import {
  ConnectionLostError,
  CorruptEnvelopeError,
  HomingError,
  StaleLeaseError,
} from "./errors.js";
import {
  DEFAULT_LOGGER,
  Held,
  MAX_PAUSE,
  WorkerStats,
  describe,
  makeConsumer,
} from "./worker-support.js";
import { checkService } from "./manifest.js";
import { Signal, Stopper, within } from "./sync.js";

export { WorkerStats };

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./consumer.js").Consumer} Consumer */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./worker-support.js").Logger} Logger */

/** Run consumer instances against one service until stop(). */
export class Worker {
  #stop = new Stopper();
  /** Ends the heartbeat, which keeps running handlers' leases alive through the grace period. */
  #beatStop = new Stopper();
  #roomSignal = new Signal();
  #held = new Held(() => this.#roomSignal.notify());
  /** @type {Event[]} leased, not yet started */
  #todo = [];
  #todoSignal = new Signal();
  /** @type {[string, number, null][]} */
  #acks = [];
  /**
   * Handled events whose completion is queued or in flight: they need no slot
   * any more, so the next batch is leased while they are acked (as in Python).
   */
  #acking = 0;
  #ackSignal = new Signal();
  #handlersDone = false;
  #beatEvery = 1000;
  /** @type {Promise<void>[]} */
  #slots = [];
  /** @type {Record<string, Promise<void>>} */
  #loops = {};
  /** @type {Promise<void> | null} */
  #shutdown = null;

  /**
   * @param {Client} client
   * @param {string} service
   * @param {(() => Consumer) | (new () => Consumer)} consumerFactory a Consumer
   * subclass, or a function that returns a new consumer
   * @param {object} [options]
   * @param {number} [options.concurrency] concurrent slots (default 1)
   * @param {number} [options.prefetch] events leased ahead of free slots, 1..1000 (default 100)
   * @param {number | null} [options.leaseMs] lease length; null: the service's lease_ms
   * @param {number} [options.graceMs] how long shutdown lets running handlers finish (default 30000)
   * @param {number} [options.pollMaxMs] longest pause between polls of an empty queue (default 50)
   * @param {Logger} [options.logger] default: warnings and errors to the console
   */
  constructor(client, service, consumerFactory, options = {}) {
    const { concurrency = 1, prefetch = 100, leaseMs = null, graceMs = 30000 } = options;
    this.client = client;
    this.service = checkService(service);
    this.factory = consumerFactory;
    this.concurrency = Math.max(1, concurrency);
    this.prefetch = Math.max(1, Math.min(prefetch, 1000));
    this.leaseMs = leaseMs;
    this.graceMs = graceMs;
    this.pollMaxMs = options.pollMaxMs ?? 50;
    this.log = options.logger ?? DEFAULT_LOGGER;
    this.stats = new WorkerStats();
  }

  // -- lifecycle -------------------------------------------------------------

  /**
   * Create and init the consumers (a failing factory or init() fails start()),
   * then start the loops. run() is start + wait + shutdown(); code that calls
   * start() itself must end with shutdown(): stop() alone only stops fetching,
   * and the heartbeat keeps held leases alive until shutdown.
   */
  async start() {
    await this.client.register(this.service);
    let lease = this.leaseMs;
    if (lease == null) {
      // The service's policy decides; the heartbeat must beat faster.
      lease = (await this.client.stats(this.service))["policy.lease_ms"];
    }
    this.#beatEvery = lease / 3;
    const consumers = [];
    for (let i = 0; i < this.concurrency; i++) {
      const consumer = makeConsumer(this.factory);
      consumer._acker = this;
      consumers.push({ consumer, state: await consumer.init() });
    }
    this.#loops.fetch = this.#fetchLoop();
    this.#loops.ack = this.#ackLoop();
    this.#loops.beat = this.#beatLoop();
    this.#slots = consumers.map(({ consumer, state }) => this.#slotLoop(consumer, state));
  }

  /** Ask the worker to shut down gracefully (safe from a signal handler). */
  stop() {
    this.#stop.set();
    for (const s of [this.#todoSignal, this.#roomSignal, this.#ackSignal]) s.notify();
  }

  /** Resolves once stop() has been called. */
  get stopped() {
    return this.#stop.promise;
  }

  /**
   * Start, wait for stop() or a signal, shut down gracefully; returns the counts.
   * @param {{signals?: NodeJS.Signals[]}} [options] default SIGTERM and SIGINT; [] for none
   * @returns {Promise<WorkerStats>}
   */
  async run(options = {}) {
    const { signals = ["SIGTERM", "SIGINT"] } = options;
    const onSignal = () => this.stop();
    for (const sig of signals) process.on(sig, onSignal);
    try {
      await this.start();
      await this.#stop.promise;
    } finally {
      await this.shutdown();
      for (const sig of signals) process.off(sig, onSignal);
    }
    return this.stats;
  }

  /** Release unstarted events, let handlers finish for graceMs, release the rest. */
  shutdown() {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown() {
    this.stop();
    await this.#loops.fetch; // its last dequeue may still bring events
    await this.#releaseUnstarted();
    await within(Promise.all(this.#slots), this.graceMs);
    await this.#releaseUnstarted();
    this.#handlersDone = true;
    this.#ackSignal.notify();
    await within(this.#loops.ack, 10000);
    this.#beatStop.set();
    await this.#loops.beat;
    const leftover = this.#held.snapshot();
    if (leftover.length) {
      this.log.warn(`releasing ${leftover.length} events still running after ${this.graceMs} ms`);
      await this.#release(leftover);
    }
  }

  // -- called by consumers -------------------------------------------------

  /**
   * Consumer.complete: acknowledge now, with the token this worker holds.
   * @param {string} service
   * @param {string} eventId
   * @param {unknown} result
   */
  async completeFor(service, eventId, result) {
    const token = service === this.service ? this.#held.tokens.get(eventId) : undefined;
    // Settled before the call, so a handler that returns without awaiting it
    // is not acknowledged a second time by the worker.
    if (token === undefined || !this.#held.settle(eventId)) {
      throw new StaleLeaseError(`this worker holds no open lease on ${service}/${eventId}`);
    }
    await this.client.complete(service, eventId, token, result);
    this.stats.completed += 1;
  }

  // -- loops -----------------------------------------------------------------

  /**
   * Run fn; on failure log, back off (50 ms doubling to 2 s) and return null.
   * Any error backs off (logged), as in Python, so a transient one (BUSY, a
   * cluster's TRYAGAIN) cannot end a loop.
   * @template T
   * @param {string} what
   * @param {() => Promise<T>} fn
   * @param {{ms: number}} pause
   * @returns {Promise<T | null>}
   */
  async #retrying(what, fn, pause) {
    try {
      const out = await fn();
      pause.ms = 50;
      return out;
    } catch (exc) {
      const level = exc instanceof ConnectionLostError ? "warn" : "error";
      this.log[level](`${what}: ${describe(exc)}; retrying in ${pause.ms} ms`);
      await this.#stop.wait(pause.ms);
      pause.ms = Math.min(pause.ms * 2, MAX_PAUSE);
      return null;
    }
  }

  async #fetchLoop() {
    let idle = 1;
    const pause = { ms: 50 };
    const window = this.concurrency + this.prefetch;
    while (!this.#stop.isSet) {
      const held = this.#held.size;
      // Overlap the next dequeue with the acks of the last batch, but never
      // hold more than two windows of leases at once.
      const room = Math.min(window - (held - this.#acking), 2 * window - held);
      if (room <= 0) {
        await this.#roomSignal.wait(100);
        continue;
      }
      const n = Math.min(room, 1000);
      const events = await this.#retrying(
        "dequeue",
        () => this.client.dequeue(this.service, n, { leaseMs: this.leaseMs }),
        pause,
      );
      if (!events || events.length === 0) {
        await this.#stop.wait(idle);
        idle = Math.min(idle * 2, this.pollMaxMs);
        continue;
      }
      idle = 1;
      this.#held.add(events);
      this.stats.received += events.length;
      this.#todo.push(...events);
      this.#todoSignal.notify();
    }
  }

  /** @returns {Promise<Event | null>} the next unstarted event, or null once stopping */
  async #take() {
    while (!this.#stop.isSet) {
      const ev = this.#todo.shift();
      if (ev !== undefined) return ev;
      await this.#todoSignal.wait(1000);
    }
    return null;
  }

  /**
   * @param {Consumer} consumer
   * @param {unknown} state
   */
  async #slotLoop(consumer, state) {
    for (;;) {
      const ev = await this.#take();
      if (ev === null) return;
      state = await this.#handle(consumer, ev, state);
    }
  }

  /**
   * @param {Consumer} consumer
   * @param {Event} ev
   * @param {unknown} state
   */
  async #handle(consumer, ev, state) {
    let newState;
    try {
      newState = await consumer.handleEvent(ev, state);
    } catch (exc) {
      // A consumer bug must not kill the worker.
      await this.#failed(ev, exc);
      return state;
    }
    if (this.#held.settle(ev.id)) {
      // The consumer did not complete it itself. The acker takes the whole
      // queue when it wakes, so only the first of a batch needs to wake it.
      if (this.#acks.length === 0) this.#ackSignal.notify();
      this.#acks.push([ev.id, ev.token, null]);
      this.#acking += 1;
    } else {
      this.#held.drop(ev.id);
    }
    return newState;
  }

  /**
   * @param {Event} ev
   * @param {unknown} exc
   */
  async #failed(ev, exc) {
    // Retrying cannot fix a rejected event or an envelope that does not decode.
    const dead = exc instanceof Reject || exc instanceof CorruptEnvelopeError;
    const reason = describe(exc).slice(0, 1000);
    if (!this.#held.settle(ev.id)) {
      // Its outcome is settled already (the consumer completed it, or the
      // heartbeat found the lease lost): there is nothing left to fail.
      this.log.warn(`${this.service}/${ev.id} raised after its outcome was settled: ${reason}`);
      this.#held.drop(ev.id);
      return;
    }
    if (!(exc instanceof Reject)) {
      const detail = exc instanceof HomingError || !(exc instanceof Error) ? "" : `\n${exc.stack}`;
      this.log.warn(`${this.service}/${ev.id} attempt ${ev.attempt} failed: ${reason}${detail}`);
    }
    let pause = 50;
    for (;;) {
      try {
        const out = await this.client.fail(this.service, ev.id, ev.token, reason, { dead });
        this.stats.failed += 1;
        this.log.info(`${this.service}/${ev.id} -> ${out.action}`);
        break;
      } catch (err) {
        if (err instanceof ConnectionLostError) {
          if ((await this.#stop.wait(pause)) && pause >= MAX_PAUSE) break; // lease will expire
          pause = Math.min(pause * 2, MAX_PAUSE);
          continue;
        }
        if (err instanceof StaleLeaseError) {
          this.stats.lost += 1;
        } else {
          // The lease expires and the event is retried.
          this.log.error(`could not fail ${this.service}/${ev.id}: ${describe(err)}`);
          if (err instanceof HomingError) this.stats.errors[err.code] = (this.stats.errors[err.code] ?? 0) + 1;
        }
        break;
      }
    }
    this.#held.drop(ev.id);
  }

  async #ackLoop() {
    const pause = { ms: 50 };
    for (;;) {
      while (this.#acks.length === 0 && !this.#handlersDone) await this.#ackSignal.wait(100);
      if (this.#acks.length === 0 && this.#handlersDone) return;
      const batch = this.#acks.splice(0, 1000);
      /** @type {(HomingError | null)[] | null} */
      let errors = null;
      for (;;) {
        errors = await this.#retrying(
          "complete",
          () => this.client.completeMany(this.service, batch),
          pause,
        );
        if (errors !== null) break;
        if (this.#handlersDone && pause.ms >= MAX_PAUSE) {
          this.log.error(
            `giving up ${batch.length} completions: Redis unreachable; they will be ` +
              "redelivered after their leases expire",
          );
          errors = batch.map(() => new ConnectionLostError("completion given up at shutdown"));
          break;
        }
      }
      this.#acking -= batch.length;
      this.#held.dropMany(batch.map(([eventId]) => eventId));
      batch.forEach((_, i) => {
        const err = /** @type {(HomingError | null)[]} */ (errors)[i];
        if (err === null) {
          this.stats.completed += 1;
        } else {
          this.stats.lost += 1;
          this.stats.errors[err.code] = (this.stats.errors[err.code] ?? 0) + 1;
          this.log.warn(`completion refused: ${err.message}`);
        }
      });
    }
  }

  async #beatLoop() {
    const pause = { ms: 50 };
    while (!(await this.#beatStop.wait(this.#beatEvery))) {
      // Keep the service registered, so a scheduler can reclaim these leases
      // even after the registry was lost.
      await this.#retrying("register", () => this.client.register(this.service), pause);
      const held = this.#held.unsettled();
      for (let i = 0; i < held.length; i += 1000) {
        const chunk = held.slice(i, i + 1000);
        const out = await this.#retrying(
          "extend",
          () => this.client.extendMany(this.service, chunk, this.leaseMs),
          pause,
        );
        (out ?? []).forEach((r, j) => {
          const [eventId, token] = chunk[j];
          // settle() makes this the event's one outcome: counted once, and its
          // handler's completion is not sent to be refused again (as in Python).
          if (r instanceof HomingError && this.#held.isOpen(eventId, token) && this.#held.settle(eventId)) {
            this.log.warn(`lease of ${this.service}/${eventId} lost: ${r.message}`);
            this.stats.lost += 1;
          }
        });
      }
    }
  }

  // -- release ---------------------------------------------------------------

  async #releaseUnstarted() {
    const items = this.#todo.splice(0).map((ev) => /** @type {[string, number]} */ ([ev.id, ev.token]));
    await this.#release(items);
  }

  /** @param {[string, number][]} items */
  async #release(items) {
    for (let i = 0; i < items.length; i += 1000) {
      const chunk = items.slice(i, i + 1000);
      try {
        const errors = await this.client.release(this.service, chunk);
        this.stats.released += errors.filter((e) => e === null).length;
      } catch (exc) {
        this.log.warn(
          `could not release ${chunk.length} events (${describe(exc)}); ` +
            "they return when their leases expire",
        );
      }
      for (const [eventId] of chunk) this.#held.drop(eventId);
    }
  }
}
