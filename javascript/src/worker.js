// The worker runner: leases events for one service and feeds them to
// consumers (python/homing/worker.py, with async loops for its threads).
// This file holds the lifecycle (start, stop, run with its signals,
// shutdown, releaseHeld), consumers' completions and the watchdog loop, and
// wires the parts together; each other part is a module of its own, with the
// rules it alone keeps: the loops in fetcher.js, slots.js, acker.js and
// heartbeat.js, the bookkeeping in holding.js and watchdog.js, how outcomes
// reach Redis in outcomes.js.
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
// On stop() (run() calls it on SIGTERM/SIGINT) the fetcher stops,
// prefetched events that no slot started are released (they go next, no attempt counted) and handlers
// get `graceMs` to finish. Events whose handlers still run after that are not
// released (the handler may still act on them): the heartbeat stops, their
// leases expire and they are redelivered then (charged only if they had been
// marked started). Only the impatient stop (releaseHeld(), run() on a second
// signal) releases them; the process is the program's to exit (see run()).
// A worker whose slots are all hung gets no grace.

import { Acker } from "./acker.js";
import { ReadOnlyError, RedisFullError, StaleLeaseError } from "./errors.js";
import { Fetcher } from "./fetcher.js";
import { Heartbeat } from "./heartbeat.js";
import { Held, WorkerStats } from "./holding.js";
import { MAX_BATCH, checkService } from "./manifest.js";
import { ReplicationWarning, accepted, release } from "./outcomes.js";
import { Slots } from "./slots.js";
import { Stopper, within } from "./sync.js";
import { workerSnapshot } from "./metrics.js";
import { defaultInstruments } from "./tracing.js";
import { HandlerTimeoutError, Watchdog } from "./watchdog.js";
import { WorkerBeat } from "./worker-beat.js";
import {
  DEFAULT_LOGGER,
  READONLY_GIVE_UP_MS,
  checkWorkerOptions,
  describe,
  makeConsumer,
  onSignals,
  summary,
} from "./worker-support.js";

export { WorkerStats };
export { ROOM_WAIT_MS } from "./fetcher.js";

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./consumer.js").Consumer} Consumer */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./worker-support.js").Logger} Logger */
/** @typedef {import("./holding.js").Lease} Lease */

/** Run consumer instances against one service until stop(). */
export class Worker {
  #stop = new Stopper();
  /** Room for the fetcher whenever a lease is dropped. */
  #held = new Held(() => this.#fetcher.roomMayOpen());
  #watch = new Watchdog();
  #beat = new Heartbeat(this, this.#held, this.#stop);
  #acker = new Acker(this, this.#held, this.#stop, () => this.#fetcher.roomMayOpen(),
    () => this.#fetcher.dequeueing);
  #fetcher = new Fetcher(this, this.#stop, () => ({
    held: this.#held, acking: this.#acker.acking, leaseMs: this.#beat.leaseMs,
  }));
  /** Runs each slot's loop (one consumer instance each). */
  #slotsRun = new Slots(this, {
    held: this.#held, watch: this.#watch, acker: this.#acker, fetcher: this.#fetcher, beat: this.#beat,
    stop: this.#stop, release: (items) => this.#release(items),
  });
  /** @type {WorkerBeat | null} the dashboard's view of this worker (worker-beat.js) */
  #presence = null;
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
    await this.#beat.pace();
    this.#presence = new WorkerBeat(this.client, this.service, this.concurrency, this.log);
    this.#beat.presence = this.#presence;
    await this.#presence.beat([], this.#beat.everyMs);
    this.#loops.fetch = this.#guard("fetch", this.#fetcher.loop());
    this.#loops.ack = this.#guard("ack", this.#acker.start());
    this.#loops.beat = this.#guard("heartbeat", this.#beat.loop());
    this.#loops.watch = this.#guard("watchdog", this.#watchLoop());
    this.#slots = consumers.map(({ consumer, state }, slot) =>
      this.#guard(`slot ${slot}`, this.#slotsRun.run(slot, consumer, state)));
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

  /** @internal the blocking waits the idle fetcher made (tests) */
  _readyWaits() {
    return this.#fetcher.ready?.waits ?? 0;
  }

  /** Ask the worker to shut down gracefully (safe from a signal handler). */
  stop() {
    this.#stop.set();
    this.#fetcher.wake();
    this.#acker.wake();
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
    this.#acker.finish();
    await within(this.#loops.ack, 10000);
    this.#beat.end();
    await this.#loops.beat;
    await this.#loops.watch;
    const leftover = this.#held.unsettled();
    await this.#presence?.beat(leftover, this.#beat.everyMs, true);
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
    this.#acker.finish();
    await within(this.#loops.ack, timeoutMs);
    this.#beat.end();
  }

  // -- called by consumers -------------------------------------------------

  /**
   * Consumer.progress: the event's own token fences it (the event passed to
   * the handler is the delivery it holds).
   * @param {{service: string, id: string, token: number}} event
   * @param {number} value
   * @returns {Promise<number>}
   */
  async progressFor(event, value) {
    return this.client.progress(event.service, event.id, event.token, value);
  }

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
      this.#acker.queue([[eventId, token, result]], true);
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

  /**
   * Fail events whose handlers overran the timeout (aborting their signals);
   * stop the worker when every slot is hung. A slot counts as hung from the
   * tick after its handler was aborted, so a handler that honours its signal
   * has that long to return.
   */
  async #watchLoop() {
    while (!(await this.#beat.wait(Math.min(Math.max(this.#beat.timeoutMs / 10, 20), 500)))) {
      this.#checkReadOnly();
      if (this.#watch.hung >= this.concurrency && !this.hung && !this.#stop.isSet) {
        this.hung = true;
        this.log.error(
          `all ${this.concurrency} slots are hung in handlers past the ${this.#beat.timeoutMs} ms ` +
            "timeout: stopping this worker so that its supervisor restarts it",
        );
        this.stop();
      }
      const timeout = this.#beat.timeoutMs;
      if (!timeout) continue;
      for (const { ev, controller } of this.#watch.overdue(timeout)) {
        const exc = new HandlerTimeoutError(timeout);
        // Abort first, so that the handler can stop while the fail is sent;
        // failed() settles the event before its first await, so whatever the
        // handler does after the abort is not reported.
        controller.abort(exc);
        await this.#slotsRun.failed(ev, exc);
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
    const items = this.#fetcher.drain().map((ev) => /** @type {Lease} */ ([ev.id, ev.token]));
    await this.#release(items);
  }

  /** @param {Lease[]} items */
  #release(items) {
    return release(this, this.#held, items);
  }
}
