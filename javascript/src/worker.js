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
//   handler keeps its event;
// - the watchdog fails an event whose handler runs past the handler timeout
//   (aborting the signal the handler was given), and stops the worker when
//   every slot is hung (worker.hung).
//
// Events are leased in reserve mode: a prefetched event is charged an attempt
// only once it is known to have started, so a worker that dies charges only
// what it ran. An event that came back unstarted before (mustStart) is marked
// started in Redis before it runs and acknowledged at once, so a poison event
// that kills its worker still reaches the dead letters after max_attempts. An
// event whose lease the worker knows has run out (by its own monotonic clock,
// performance.now()) is never started: it is released.
//
// Lost connections (a Redis restart) are retried with backoff in every loop;
// node-redis reconnects and scripts reload by themselves, and the Client
// drops a connection that stops answering (commandTimeoutMs) or answers
// READONLY (a failover) and makes a new one, through Sentinel to the new
// primary. Not for ever: after readonlyGiveUpMs of nothing but READONLY (a
// plain URL to a node that stays a replica) the worker stops itself and
// run() rejects with the ReadOnlyError (worker.readOnly, worker.gaveUp), as
// Python's run() raises it. With the Client's waitReplicas, an
// acknowledgement or fail fewer replicas confirmed (NotReplicatedError) is
// taken as done, with a warning at most once a minute (stats.unreplicated).
// On stop() (run()
// calls it on SIGTERM/SIGINT) the fetcher stops, prefetched events that no
// slot started are released (they go next, no attempt counted) and handlers
// get `graceMs` to finish. Events whose handlers still run after that are not
// released (the handler may still act on them): the heartbeat stops, their
// leases expire and they are redelivered then (charged only if they had been
// marked started). Only the impatient stop (releaseHeld(), run() on a second
// signal) releases them; the process is the program's to exit (see run()). A worker whose slots are all hung gets no grace.

import { ConnectionLostError, HomingError, ReadOnlyError, RedisFullError, StaleLeaseError } from "./errors.js";
import {
  DEFAULT_LOGGER,
  HandlerTimeoutError,
  Held,
  MAX_PAUSE,
  READONLY_GIVE_UP_MS,
  ReplicationWarning,
  START_MARGIN,
  checkWorkerOptions,
  Watchdog,
  WorkerStats,
  accepted,
  countAcks,
  countError,
  describe,
  failure,
  makeConsumer,
  onSignals,
  release,
  retrying,
  sendFail,
  summary,
} from "./worker-support.js";
import { MAX_BATCH, checkService } from "./manifest.js";
import { Signal, Stopper, sleep, within } from "./sync.js";
import { workerSnapshot } from "./metrics.js";
import { defaultInstruments, observe } from "./tracing.js";
import { WorkerBeat } from "./worker-beat.js";

export { WorkerStats };

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./consumer.js").Consumer} Consumer */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./worker-support.js").Logger} Logger */
/** @typedef {import("./worker-support.js").Lease} Lease */

/**
 * How long the fetcher sleeps when it has no room for more leases, unless a
 * lease is dropped or a handled event is handed to the acker first (both
 * wake it). As Python's 1 ms: room opens as soon as acks are queued, and the
 * next dequeue is meant to overlap their completeMany (docs/worker.md).
 */
export const ROOM_WAIT_MS = 1;

/** Run consumer instances against one service until stop(). */
export class Worker {
  #stop = new Stopper();
  /** Ends the heartbeat, which keeps running handlers' leases alive through the grace period. */
  #beatStop = new Stopper();
  #roomSignal = new Signal();
  #held = new Held(() => this.#roomSignal.notify());
  #watch = new Watchdog();
  /** @type {Event[]} leased, not yet started */
  #todo = [];
  #todoSignal = new Signal();
  /** @type {[string, number, unknown][]} id, token, result */
  #acks = [];
  /**
   * Handled events whose completion is queued or in flight: they need no slot
   * any more, so the next batch is leased while they are acked (as in Python).
   */
  #acking = 0;
  #ackSignal = new Signal();
  #handlersDone = false;
  #beatEvery = 1000;
  /** @type {WorkerBeat | null} the dashboard's view of this worker (worker-beat.js) */
  #presence = null;
  /** The effective lease length, ms: leaseMs, or the service's policy (re-read with every beat). */
  #leaseMs = 30000;
  /** The effective handler timeout, ms (0: none): handlerTimeoutMs, or the policy's. */
  #timeoutMs = 0;
  /** @type {Promise<void>[]} */
  #slots = [];
  /** @type {Record<string, Promise<void>>} */
  #loops = {};
  /** @type {Promise<void> | null} */
  #shutdown = null;
  /** The first error a loop failed on that was not a homing error (a bug): see #guard. */
  #crash = /** @type {unknown} */ (null);

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
   * @param {number | null} [options.handlerTimeoutMs] how long a handler may run, 0..86400000
   * (0: no limit); null: the service's handler_timeout_ms policy (default 600000)
   * @param {boolean} [options.requireDurable] start() refuses (NotDurableError) a
   * Redis that may lose acknowledged events (default: the client's requireDurable)
   * @param {number} [options.readonlyGiveUpMs] stop once every write was answered
   * READONLY for this long (default 60000): see `readOnly`
   * @param {Logger} [options.logger] default: warnings and errors to the console
   */
  constructor(client, service, consumerFactory, options = {}) {
    checkWorkerOptions(options);
    const { concurrency = 1, prefetch = 100, leaseMs = null, graceMs = 30000, handlerTimeoutMs = null } = options;
    this.client = client;
    this.service = checkService(service);
    this.factory = consumerFactory;
    this.concurrency = Math.max(1, concurrency);
    this.prefetch = Math.max(1, Math.min(prefetch, MAX_BATCH));
    this.leaseMs = leaseMs;
    this.graceMs = graceMs;
    this.pollMaxMs = options.pollMaxMs ?? 50;
    this.handlerTimeoutMs = handlerTimeoutMs;
    this.requireDurable = Boolean(options.requireDurable);
    this.log = options.logger ?? DEFAULT_LOGGER;
    this.readonlyGiveUpMs = options.readonlyGiveUpMs ?? READONLY_GIVE_UP_MS;
    this.stats = new WorkerStats();
    /** Wrappers around each handler run: traces (tracing.js), metrics (metrics.js). */
    this.instruments = defaultInstruments();
    /** @internal outcomes fewer replicas confirmed than asked: taken as done, warned about */
    this._replication = new ReplicationWarning(this.log, this.stats);
    /**
     * Set when every slot was hung in a handler past its timeout and the
     * worker stopped itself: run() returns, and the process should exit
     * non-zero so that its supervisor restarts it.
     */
    this.hung = false;
    /**
     * Set when every write was answered READONLY for readonlyGiveUpMs (the
     * URL points at a replica: the primary moved and nothing tells where)
     * and the worker stopped itself: run() rejects with `gaveUp` after its
     * shutdown; exit non-zero so that it is looked at (a restart alone will
     * not help until the URL names the primary, or Sentinel).
     */
    this.readOnly = false;
    /** @type {ReadOnlyError | null} the error run() rejects with after a READONLY give-up */
    this.gaveUp = null;
    /**
     * The second signal that cut run()'s graceful shutdown short (everything
     * held was released then); null otherwise. Exit 130 then, as `homing worker`.
     * @type {NodeJS.Signals | null}
     */
    this.interrupted = null;
  }

  // -- lifecycle -------------------------------------------------------------

  /** Numbers for monitoring (metrics.js): queue gauges, service totals, handler durations. */
  metrics() {
    return workerSnapshot(this);
  }

  /**
   * Create and init the consumers (a failing factory or init() fails start()),
   * then start the loops. run() is start + wait + shutdown(); code that calls
   * start() itself must end with shutdown(): stop() alone only stops fetching,
   * and the heartbeat keeps held leases alive until shutdown.
   */
  async start() {
    // Read (and warned about) once per client; a required durability is refused here.
    await this.client.checkDurability({ require: this.requireDurable ? true : null });
    const consumers = [];
    for (let i = 0; i < this.concurrency; i++) {
      const consumer = makeConsumer(this.factory);
      consumer._acker = this;
      consumers.push({ consumer, state: await consumer.init() });
    }
    // Registered only once every init() succeeded, as in Python: a worker
    // that cannot start leaves nothing behind, not even a registry entry.
    await this.client.register(this.service);
    await this.#paceHeartbeat();
    this.#presence = new WorkerBeat(this.client, this.service, this.concurrency, this.log);
    await this.#presence.beat([], this.#beatEvery);
    this.#loops.fetch = this.#guard("fetch", this.#fetchLoop());
    this.#loops.ack = this.#guard("ack", this.#ackLoop());
    this.#loops.beat = this.#guard("heartbeat", this.#beatLoop());
    this.#loops.watch = this.#guard("watchdog", this.#watchLoop());
    this.#slots = consumers.map(({ consumer, state }, slot) =>
      this.#guard(`slot ${slot}`, this.#slotLoop(slot, consumer, state)));
  }

  /**
   * A loop that threw: every homing error is retried inside the loops (see
   * retrying()), so this is a bug in the worker or the client. Not retried,
   * which would hide it, and not left as an unhandled rejection, which would
   * kill the process with every lease still held: logged with its stack, the
   * worker stops (releasing what it can, as on a signal), and run() and
   * shutdown() reject with it.
   * @param {string} name
   * @param {Promise<void>} loop
   * @returns {Promise<void>}
   */
  #guard(name, loop) {
    return loop.catch((exc) => {
      this.#crash ??= exc;
      const stack = exc instanceof Error && exc.stack ? `\n${exc.stack}` : "";
      this.log.error(`worker ${this.service}: the ${name} loop failed, stopping: ${describe(exc)}${stack}`);
      this.stop();
    });
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
   * It also returns when every slot is hung in a handler past the handler
   * timeout (then `worker.hung` is true).
   *
   * A second signal cuts the graceful shutdown short, as in `homing worker`:
   * the events still held, running ones too, are released (releaseHeld()),
   * `worker.interrupted` is set to the signal's name, the counts are logged
   * and run() returns at once. A third one gets Node's default (exit,
   * releasing nothing). The library never exits the process itself: the
   * program does, as the documented pattern shows, with
   * `process.exit(worker.interrupted ? 130 : worker.hung ? 3 : 0)`, because a
   * handler still running (past the grace, after a second signal, or hung)
   * would keep Node's event loop alive; setting process.exitCode would not.
   * @param {{signals?: readonly NodeJS.Signals[]}} [options] default SIGTERM and SIGINT; [] for none
   * @returns {Promise<WorkerStats>}
   */
  async run(options = {}) {
    const { signals = ["SIGTERM", "SIGINT"] } = options;
    /** @type {(signal: NodeJS.Signals) => void} */
    let interrupt = () => {};
    /** @type {Promise<NodeJS.Signals>} resolves on the second signal */
    const again = new Promise((resolve) => {
      interrupt = resolve;
    });
    const removeListeners = onSignals(
      signals,
      (signal) => {
        this.log.info(`${signal}: stopping (a second signal releases everything held at once)`);
        this.stop();
      },
      interrupt,
    );
    try {
      try {
        await this.start();
        await this.#stop.promise;
      } finally {
        // The graceful shutdown, unless a second signal comes first.
        const second = await Promise.race([this.shutdown().then(() => null), again]);
        if (second !== null) {
          this.interrupted = second;
          this.log.warn(`${second} again: releasing the events still held`);
          await this.releaseHeld();
          this.log.warn(summary(this.service, "interrupted", this.stats));
          if (this.#crash !== null) throw this.#crash;
        }
      }
    } finally {
      removeListeners();
    }
    if (this.hung) this.log.error(summary(this.service, "hung", this.stats));
    if (this.gaveUp !== null) {
      this.log.error(summary(this.service, "gave up", this.stats));
      throw this.gaveUp;
    }
    return this.stats;
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
    // Hung slots will not finish: no grace for them (their events are failed).
    await within(Promise.all(this.#slots), this.hung ? 0 : this.graceMs);
    await this.#releaseUnstarted();
    this.#handlersDone = true;
    this.#ackSignal.notify();
    await within(this.#loops.ack, 10000);
    this.#beatStop.set();
    await this.#loops.beat;
    await this.#loops.watch;
    const leftover = this.#held.unsettled();
    await this.#presence?.beat(leftover, this.#beatEvery, true);
    if (leftover.length) {
      // Not released: releasing would hand them to another consumer while
      // their handlers may still act on them. With the heartbeat stopped the
      // leases expire and they come back: uncharged if never marked started
      // (the fast path), and then marked before their next run, so a handler
      // that hangs on an event still reaches the dead letters in the end.
      this.log.warn(
        `${leftover.length} events still running after the ${this.graceMs} ms grace are left to ` +
          "their leases: they are redelivered when the leases expire",
      );
    }
    if (this.#crash !== null) throw this.#crash;
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
    const [err] = await accepted(this._replication,
      () => this.client.completeMany(service, [[eventId, token, result]]));
    if (err instanceof RedisFullError) {
      // A full Redis refused the result (it would grow memory); the event is
      // still leased. Kept, extended and sent again by the acker.
      this.log.warn(`completion of ${service}/${eventId} refused by a full Redis; sending it again`);
      this.#queueAcks([[eventId, token, result]], true);
      return;
    }
    if (err?.code === "UNKNOWN_EVENT") {
      // Gone because another worker completed it after this lease was lost:
      // to this consumer that is a lost lease, as documented (and in Python).
      throw new StaleLeaseError(`the lease on ${service}/${eventId} was lost: the event was completed elsewhere`);
    }
    if (err) throw err;
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
        await this.#roomSignal.wait(ROOM_WAIT_MS);
        continue;
      }
      const n = Math.min(room, MAX_BATCH);
      // The local deadline counts from before the call: the lease cannot
      // have begun earlier than that.
      const sent = performance.now();
      const events = await retrying(
        this.log,
        this.#stop,
        "dequeue",
        () => this.client.dequeue(this.service, n, { leaseMs: this.leaseMs, reserve: true }),
        pause,
      );
      if (!events || events.length === 0) {
        await this.#stop.wait(idle);
        idle = Math.min(idle * 2, this.pollMaxMs);
        continue;
      }
      idle = 1;
      this.#held.add(events, sent + this.#leaseMs);
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
   * @param {number} slot
   * @param {Consumer} consumer
   * @param {unknown} state
   */
  async #slotLoop(slot, consumer, state) {
    for (;;) {
      const ev = await this.#take();
      if (ev === null) return;
      if (await this.#mayStart(ev)) state = await this.#handle(slot, consumer, ev, state);
    }
  }

  /**
   * Whether to run ev: its lease is still this worker's, and marked started
   * in Redis first if it must be.
   * @param {Event} ev
   */
  async #mayStart(ev) {
    const { id, token } = ev;
    if (performance.now() > this.#held.endsAt(id, token) - START_MARGIN * this.#leaseMs) {
      // Its lease ran out while it waited (a Redis outage, a stalled process):
      // it may be someone else's by now. Not run; released in case it was not
      // reclaimed yet (a refused release is fine).
      this.stats.expiredUnstarted += 1;
      this.log.warn(`${this.service}/${id} not started: its lease ran out while it waited`);
      await this.#release([[id, token]]);
      return false;
    }
    if (!this.#held.isOpen(id, token)) {
      // Settled meanwhile: the heartbeat found its lease lost (reclaimed).
      this.#held.drop(id, token);
      return false;
    }
    if (!ev.mustStart) return true; // the fast path: no extra call
    /** @type {unknown} */
    let out;
    try {
      [out] = await this.client.start(this.service, [[id, token]]);
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc; // a bug: not taken for a refusal
      out = exc;
    }
    if (typeof out !== "number") {
      // Not marked, so not run: its lease expires and it comes back.
      this.log.warn(`${this.service}/${id} not started: ${describe(out)}`);
      if (this.#held.settle(id, token)) this.stats.lost += 1;
      this.#held.drop(id, token);
      return false;
    }
    return true;
  }

  /**
   * @param {number} slot
   * @param {Consumer} consumer
   * @param {Event} ev
   * @param {unknown} state
   */
  async #handle(slot, consumer, ev, state) {
    let newState;
    const controller = new AbortController();
    this.#watch.begin(slot, ev, controller);
    consumer._event = ev; // for complete(): the token of this delivery
    try {
      newState = await observe(this.instruments, ev, async () => consumer.handleEvent(ev, state, { signal: controller.signal }));
    } catch (exc) {
      // Whatever it throws (not only an Error), a handler must not take its
      // slot down while the event stays leased and heartbeaten.
      consumer._event = null;
      if (this.#watch.end(slot)) {
        this.#late(ev, `threw after its timeout: ${describe(exc)}`);
      } else {
        await this.#failed(ev, exc);
      }
      return state;
    }
    consumer._event = null;
    const timedOut = this.#watch.end(slot);
    if (!this.#held.settle(ev.id, ev.token)) {
      // The consumer completed it, the heartbeat found it lost, or the
      // watchdog failed it: nothing more to send.
      if (timedOut) this.#late(ev, "returned after its timeout");
      else this.#held.dropOwn(ev.id, ev.token);
    } else if (ev.mustStart) {
      // Charged already (marked started): acknowledged now, not in a batch a
      // crash could lose, so a crash charges it only while it ran.
      await this.#ackNow(ev);
    } else {
      this.#queueAcks([[ev.id, ev.token, null]]);
    }
    return newState;
  }

  /**
   * A handler that the watchdog had given up on finished: its slot is free
   * again, and what it did is not reported (the event was failed).
   * @param {Event} ev
   * @param {string} how
   */
  #late(ev, how) {
    this.log.info(`${this.service}/${ev.id}: the handler ${how}; its slot is free again`);
    this.#held.dropOwn(ev.id, ev.token);
  }

  /**
   * Acknowledge one event at once; on any trouble hand it to the acker.
   * @param {Event} ev
   */
  async #ackNow(ev) {
    /** @type {HomingError | null} */
    let err;
    try {
      [err] = await accepted(this._replication,
        () => this.client.completeMany(this.service, [[ev.id, ev.token, null]]));
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc; // a bug: not taken for a lost connection
      // Not sent (a lost connection, say): the acker sends it with its backoff.
      this.#queueAcks([[ev.id, ev.token, null]], true);
      return;
    }
    if (err === null) {
      this.stats.completed += 1;
      this.#held.drop(ev.id, ev.token);
    } else if (err instanceof RedisFullError) {
      this.#queueAcks([[ev.id, ev.token, null]], true);
    } else {
      this.stats.lost += 1;
      countError(this.stats, err.code);
      this.log.warn(`completion refused: ${err.message}`);
      this.#held.drop(ev.id, ev.token);
    }
  }

  /**
   * Hand settled completions to the acker.
   * @param {[string, number, unknown][]} items id, token, result
   * @param {boolean} [resend] refused by a full Redis: keep extending their leases
   */
  #queueAcks(items, resend = false) {
    if (resend) this.#held.resend(items);
    // The acker takes the whole queue when it wakes, so only the first of a
    // batch needs to wake it.
    if (this.#acks.length === 0) this.#ackSignal.notify();
    this.#acks.push(...items);
    this.#acking += items.length;
    // Handled events need no slot any more: room for the fetcher's next batch.
    this.#roomSignal.notify();
  }

  /**
   * @param {Event} ev
   * @param {unknown} exc
   */
  async #failed(ev, exc) {
    const { dead, reject, timeout, reason, detail } = failure(exc);
    if (!this.#held.settle(ev.id, ev.token)) {
      // Its outcome is settled already (the consumer completed it, or the
      // heartbeat found the lease lost): there is nothing left to fail.
      this.log.warn(`${this.service}/${ev.id} raised after its outcome was settled: ${reason}`);
      this.#held.dropOwn(ev.id, ev.token);
      return;
    }
    if (timeout) {
      this.stats.timedOut += 1;
      this.log.error(`${this.service}/${ev.id} attempt ${ev.attempt}: ${reason}; failing it`);
    } else if (!reject) {
      this.log.warn(`${this.service}/${ev.id} attempt ${ev.attempt} failed: ${reason}${detail}`);
    }
    await sendFail(this, this.#stop, ev, reason, dead);
    this.#held.drop(ev.id, ev.token);
  }

  async #ackLoop() {
    const pause = { ms: 50 };
    let fullPause = 50;
    for (;;) {
      while (this.#acks.length === 0 && !this.#handlersDone) await this.#ackSignal.wait(100);
      if (this.#acks.length === 0 && this.#handlersDone) return;
      const batch = this.#acks.splice(0, MAX_BATCH);
      /** @type {(HomingError | null)[] | null} */
      let errors = null;
      for (;;) {
        errors = await retrying(
          this.log,
          this.#stop,
          "complete",
          () => accepted(this._replication, () => this.client.completeMany(this.service, batch)),
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
      // A full Redis refuses a completion whose result would grow it, and
      // leaves the event leased: kept (and extended), sent again after a pause.
      const { settled, full } = countAcks(this.stats, this.log, batch, errors);
      this.#acking -= settled.length;
      this.#held.dropMany(settled);
      if (full.length === 0) {
        fullPause = 50;
        continue;
      }
      if (this.#handlersDone && fullPause >= MAX_PAUSE) {
        this.log.error(
          `giving up ${full.length} completions refused by a full Redis at shutdown; they ` +
            "will be redelivered after their leases expire",
        );
        this.#acking -= full.length;
        this.#held.dropMany(full);
        continue;
      }
      this.log.warn(`${full.length} completions refused by a full Redis; sending them again in ${fullPause} ms`);
      this.#held.resend(full);
      this.#acks.push(...full);
      await sleep(fullPause); // not cut short by stop(): it would spin on a full Redis
      fullPause = Math.min(fullPause * 2, MAX_PAUSE);
    }
  }

  /**
   * Beat three times per lease. With no leaseMs of its own, the worker follows
   * the service's policy, re-read with every beat (as in Python): a lease_ms
   * lowered by configure while it runs must not let its leases run out. The
   * handler timeout is read the same way.
   */
  async #paceHeartbeat() {
    let lease = this.leaseMs;
    let timeout = this.handlerTimeoutMs;
    if (lease == null || timeout == null) {
      const policy = await this.client.stats(this.service);
      lease ??= policy["policy.lease_ms"];
      timeout ??= policy["policy.handler_timeout_ms"] ?? 0;
    }
    this.#leaseMs = lease;
    this.#beatEvery = lease / 3;
    this.#timeoutMs = timeout;
  }

  async #beatLoop() {
    const pause = { ms: 50 };
    while (!(await this.#beatStop.wait(this.#beatEvery))) {
      // Keep the service registered, so a scheduler can reclaim these leases
      // even after the registry was lost.
      await retrying(this.log, this.#stop, "register", () => this.client.register(this.service), pause);
      if (this.leaseMs == null || this.handlerTimeoutMs == null) {
        await retrying(this.log, this.#stop, "read the policy", () => this.#paceHeartbeat(), pause);
      }
      // Started or not: an unstarted event's lease is kept too, until it runs.
      const held = this.#held.toExtend();
      for (let i = 0; i < held.length; i += MAX_BATCH) {
        const chunk = held.slice(i, i + MAX_BATCH);
        const sent = performance.now();
        const out = await retrying(
          this.log,
          this.#stop,
          "extend",
          () => this.client.extendMany(this.service, chunk, this.leaseMs),
          pause,
        );
        if (out === null) continue;
        this.#held.renew(chunk.filter((_, j) => !(out[j] instanceof HomingError)), sent + this.#leaseMs);
        out.forEach((r, j) => {
          const [eventId, token] = chunk[j];
          // settle() makes this the event's one outcome: counted once, and its
          // handler's completion is not sent to be refused again (as in Python).
          if (r instanceof HomingError && this.#held.isOpen(eventId, token) && this.#held.settle(eventId, token)) {
            this.log.warn(`lease of ${this.service}/${eventId} lost: ${r.message}`);
            this.stats.lost += 1;
          }
        });
      }
      await this.#presence?.beat(held, this.#beatEvery); // after the extends: never before them
    }
  }

  /**
   * Fail events whose handlers overran the timeout (aborting their signals);
   * stop the worker when every slot is hung. A slot counts as hung from the
   * tick after its handler was aborted, so a handler that honours its signal
   * has that long to return.
   */
  async #watchLoop() {
    while (!(await this.#beatStop.wait(Math.min(Math.max(this.#timeoutMs / 10, 20), 500)))) {
      this.#checkReadOnly();
      if (this.#watch.hung >= this.concurrency && !this.hung && !this.#stop.isSet) {
        this.hung = true;
        this.log.error(
          `all ${this.concurrency} slots are hung in handlers past the ${this.#timeoutMs} ms ` +
            "timeout: stopping this worker so that its supervisor restarts it",
        );
        this.stop();
      }
      const timeout = this.#timeoutMs;
      if (!timeout) continue;
      for (const { ev, controller } of this.#watch.overdue(timeout)) {
        const exc = new HandlerTimeoutError(timeout);
        // Abort first, so that the handler can stop while the fail is sent;
        // #failed settles the event before its first await, so whatever the
        // handler does after the abort is not reported.
        controller.abort(exc);
        await this.#failed(ev, exc);
      }
    }
  }

  /**
   * Stop once every write was answered READONLY for readonlyGiveUpMs: the
   * node the URL names is a replica now, and retrying would loop for ever
   * (through Sentinel the client asks for the primary again meanwhile, so
   * there it means no sentinel names a writable one).
   */
  #checkReadOnly() {
    const client = /** @type {any} */ (this.client);
    if (this.readOnly || this.#stop.isSet) return;
    const ms = typeof client.readOnlyForMs === "function" ? client.readOnlyForMs() : 0;
    if (ms === 0 || ms < this.readonlyGiveUpMs) return;
    this.readOnly = true;
    this.gaveUp = new ReadOnlyError(
      `every write for ${Math.round(ms / 1000)} s was answered READONLY (readonlyGiveUpMs ` +
        `${this.readonlyGiveUpMs}): the Redis this worker uses is a replica now. Point it at the ` +
        "primary, or use a redis+sentinel:// URL to follow failovers",
    );
    this.log.error(`worker ${this.service}: ${this.gaveUp.message}`);
    this.stop();
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
