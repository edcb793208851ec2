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
// slot started are released (they go next, no attempt counted) and handlers
// get `graceMs` to finish. Events whose handlers still run after that are not
// released (the handler may still act on them): the heartbeat stops, their
// leases expire and they are redelivered then, attempt counted. Only the
// impatient stop (releaseHeld(), run() on a second signal) releases them.

import { ConnectionLostError, HomingError, StaleLeaseError } from "./errors.js";
import {
  DEFAULT_LOGGER,
  Held,
  MAX_PAUSE,
  WorkerStats,
  countAcks,
  failure,
  makeConsumer,
  onSignals,
  release,
  retrying,
  sendFail,
  summary,
} from "./worker-support.js";
import { checkService } from "./manifest.js";
import { Signal, Stopper, within } from "./sync.js";

export { WorkerStats };

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./consumer.js").Consumer} Consumer */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./worker-support.js").Logger} Logger */
/** @typedef {import("./worker-support.js").Lease} Lease */

/** Exit status of a run() stopped by a second signal (128 + SIGINT), as `homing worker`. */
const INTERRUPTED = 130;

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
    await this.#paceHeartbeat();
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
   *
   * A second signal stops at once, as `homing worker` does: the events still
   * held are released (releaseHeld()), the counts are logged and the process
   * exits with status 130. A third one gets Node's default (exit, releasing
   * nothing).
   * @param {{signals?: NodeJS.Signals[]}} [options] default SIGTERM and SIGINT; [] for none
   * @returns {Promise<WorkerStats>}
   */
  async run(options = {}) {
    const { signals = ["SIGTERM", "SIGINT"] } = options;
    const removeListeners = onSignals(
      signals,
      (signal) => {
        this.log.info(`${signal}: stopping (a second signal stops at once)`);
        this.stop();
      },
      (signal) => void this.#interrupted(signal),
    );
    try {
      await this.start();
      await this.#stop.promise;
    } finally {
      await this.shutdown();
      removeListeners();
    }
    return this.stats;
  }

  /** @param {NodeJS.Signals} signal the second one */
  async #interrupted(signal) {
    this.log.warn(`${signal} again: releasing the events still held and exiting`);
    try {
      await this.releaseHeld();
    } finally {
      this.log.warn(summary(this.service, "interrupted", this.stats));
      process.exit(INTERRUPTED);
    }
  }

  /**
   * Release unstarted events and let handlers finish for graceMs.
   *
   * Events whose handlers still run after that are not released (the handler
   * may still act on them): their leases expire and they are redelivered then,
   * which keeps "duplicates only after a lease expired".
   */
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
    const leftover = this.#held.unsettled();
    if (leftover.length) {
      // Not released: releasing would hand them to another consumer while
      // their handlers may still act on them. With the heartbeat stopped the
      // leases expire, and they come back with the attempt counted (a handler
      // that hangs on an event thus reaches the dead letters in the end).
      this.log.warn(
        `${leftover.length} events still running after the ${this.graceMs} ms grace are left to ` +
          "their leases: they are redelivered when the leases expire",
      );
    }
  }

  /**
   * The impatient stop, just before the process exits (run() on a second
   * signal): fetching stops, events not started and events whose handler
   * still runs are released at once (front of the ready queue, no attempt
   * counted) instead of waiting for their leases to expire, and completions
   * already queued are sent, waiting at most timeoutMs for each step. A
   * handler that finishes later finds its lease gone: nothing it reports is
   * acknowledged.
   * @param {{timeoutMs?: number}} [options] default 5000
   */
  async releaseHeld(options = {}) {
    const { timeoutMs = 5000 } = options;
    this.stop();
    await within(this.#loops.fetch, timeoutMs);
    await this.#releaseUnstarted();
    await this.#release(this.#held.unsettled());
    this.#handlersDone = true;
    this.#ackSignal.notify();
    await within(this.#loops.ack, timeoutMs);
    this.#beatStop.set();
  }

  // -- called by consumers -------------------------------------------------

  /**
   * Consumer.complete: acknowledge now, with the token this worker holds.
   * @param {string} service
   * @param {string} eventId
   * @param {unknown} result
   * @param {{id: string, token: number} | null} [current] the event the calling
   * consumer's slot is handling
   */
  async completeFor(service, eventId, result, current = null) {
    let token;
    if (service === this.service) {
      // The token of the event the calling handler is handling, even when the
      // same event was redelivered here meanwhile; else the newest one held.
      token = current?.id === eventId ? current.token : this.#held.tokenOf(eventId);
    }
    // Settled before the call, so a handler that returns without awaiting it
    // is not acknowledged a second time by the worker.
    if (token === undefined || !this.#held.settle(eventId, token)) {
      throw new StaleLeaseError(`this worker holds no open lease on ${service}/${eventId}`);
    }
    await this.client.complete(service, eventId, token, result);
    this.stats.completed += 1;
  }

  // -- loops -----------------------------------------------------------------

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
      const events = await retrying(
        this.log,
        this.#stop,
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
    consumer._event = ev; // for complete(): the token of this delivery
    try {
      newState = await consumer.handleEvent(ev, state);
    } catch (exc) {
      // Whatever it throws (not only an Error), a handler must not take its
      // slot down while the event stays leased and heartbeaten.
      consumer._event = null;
      await this.#failed(ev, exc);
      return state;
    }
    consumer._event = null;
    if (this.#held.settle(ev.id, ev.token)) {
      // The consumer did not complete it itself. The acker takes the whole
      // queue when it wakes, so only the first of a batch needs to wake it.
      if (this.#acks.length === 0) this.#ackSignal.notify();
      this.#acks.push([ev.id, ev.token, null]);
      this.#acking += 1;
    } else {
      this.#held.drop(ev.id, ev.token);
    }
    return newState;
  }

  /**
   * @param {Event} ev
   * @param {unknown} exc
   */
  async #failed(ev, exc) {
    const { dead, reject, reason, detail } = failure(exc);
    if (!this.#held.settle(ev.id, ev.token)) {
      // Its outcome is settled already (the consumer completed it, or the
      // heartbeat found the lease lost): there is nothing left to fail.
      this.log.warn(`${this.service}/${ev.id} raised after its outcome was settled: ${reason}`);
      this.#held.drop(ev.id, ev.token);
      return;
    }
    if (!reject) {
      this.log.warn(`${this.service}/${ev.id} attempt ${ev.attempt} failed: ${reason}${detail}`);
    }
    await sendFail(this, this.#stop, ev, reason, dead);
    this.#held.drop(ev.id, ev.token);
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
        errors = await retrying(
          this.log,
          this.#stop,
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
      this.#held.dropMany(batch);
      countAcks(this.stats, this.log, errors);
    }
  }

  /**
   * Beat three times per lease. With no leaseMs of its own, the worker follows
   * the service's policy, re-read with every beat (as in Python): a lease_ms
   * lowered by configure while it runs must not let its leases run out.
   */
  async #paceHeartbeat() {
    const lease = this.leaseMs ?? (await this.client.stats(this.service))["policy.lease_ms"];
    this.#beatEvery = lease / 3;
  }

  async #beatLoop() {
    const pause = { ms: 50 };
    while (!(await this.#beatStop.wait(this.#beatEvery))) {
      // Keep the service registered, so a scheduler can reclaim these leases
      // even after the registry was lost.
      await retrying(this.log, this.#stop, "register", () => this.client.register(this.service), pause);
      if (this.leaseMs == null) await retrying(this.log, this.#stop, "read the policy", () => this.#paceHeartbeat(), pause);
      const held = this.#held.unsettled();
      for (let i = 0; i < held.length; i += 1000) {
        const chunk = held.slice(i, i + 1000);
        const out = await retrying(
          this.log,
          this.#stop,
          "extend",
          () => this.client.extendMany(this.service, chunk, this.leaseMs),
          pause,
        );
        (out ?? []).forEach((r, j) => {
          const [eventId, token] = chunk[j];
          // settle() makes this the event's one outcome: counted once, and its
          // handler's completion is not sent to be refused again (as in Python).
          if (r instanceof HomingError && this.#held.isOpen(eventId, token) && this.#held.settle(eventId, token)) {
            this.log.warn(`lease of ${this.service}/${eventId} lost: ${r.message}`);
            this.stats.lost += 1;
          }
        });
      }
    }
  }

  // -- release ---------------------------------------------------------------

  async #releaseUnstarted() {
    const items = this.#todo.splice(0).map((ev) => /** @type {Lease} */ ([ev.id, ev.token]));
    await this.#release(items);
  }

  /** @param {Lease[]} items */
  #release(items) {
    return release(this, this.#held, items);
  }
}
