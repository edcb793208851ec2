// The worker's slots (the handler threads of python/homing/worker.py): each
// takes the next leased event, decides whether it may start (its lease is
// still the worker's by the local clock, and it is marked started in Redis
// first if it came back unstarted before), runs the consumer's handleEvent
// and hands the outcome on: the acker for a completion, a fail for a throw.
// Kept apart from worker.js, which owns the lifecycle: these are the rules
// of docs/worker.md's "Starting an event" and "Handling".

import { Snooze } from "./consumer.js";
import { HomingError } from "./errors.js";
import { sendFail, sendSnooze } from "./outcomes.js";

/**
 * Whether a handler's value (returned or thrown) is a Snooze. A handler may
 * throw or return anything, a Proxy whose prototype lookup throws too, and
 * instanceof would then throw in the slot: such a value is no Snooze.
 * @param {unknown} x
 * @returns {x is Snooze}
 */
function isSnooze(x) {
  try {
    return x instanceof Snooze;
  } catch {
    return false;
  }
}
import { observe } from "./tracing.js";
import { LazyAbort } from "./watchdog.js";
import { START_MARGIN, describe, failure } from "./worker-support.js";

/** @typedef {import("./types.js").Event} Event */
/** @typedef {import("./consumer.js").Consumer} Consumer */
/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./sync.js").Stopper} Stopper */
/** @typedef {import("./holding.js").Held} Held */
/** @typedef {import("./holding.js").Lease} Lease */
/** @typedef {import("./holding.js").WorkerStats} WorkerStats */
/** @typedef {import("./watchdog.js").Watchdog} Watchdog */
/** @typedef {import("./acker.js").Acker} Acker */
/** @typedef {import("./fetcher.js").Fetcher} Fetcher */
/** @typedef {import("./heartbeat.js").Heartbeat} Heartbeat */
/** @typedef {import("./outcomes.js").ReplicationWarning} ReplicationWarning */
/** @typedef {import("./worker-support.js").Logger} Logger */

export class Slots {
  /**
   * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
   *   _replication: ReplicationWarning, instruments: import("./tracing.js").Instrument[]}} worker
   * @param {{held: Held, watch: Watchdog, acker: Acker, fetcher: Fetcher, beat: Heartbeat,
   *   stop: Stopper, release: (items: Lease[]) => Promise<void>}} parts the worker's
   */
  constructor(worker, { held, watch, acker, fetcher, beat, stop, release }) {
    this.worker = worker;
    this.held = held;
    this.watch = watch;
    this.acker = acker;
    this.fetcher = fetcher;
    this.beat = beat;
    this.stop = stop;
    this.release = release;
  }

  /**
   * One slot's loop, until the worker stops: the state its consumer returns
   * is handed to its next event.
   * @param {number} slot
   * @param {Consumer} consumer
   * @param {unknown} state
   */
  async run(slot, consumer, state) {
    for (;;) {
      // Per event, the common case costs no promise of its own: an event
      // already in the inbox is taken at once, and one that may start with
      // no call to Redis is known to without an await (issue 10).
      const ev = this.fetcher.next() ?? (await this.fetcher.take());
      if (ev === null) return;
      const may = this.#mayStart(ev);
      if (may === true || (may !== false && (await may))) state = await this.#handle(slot, consumer, ev, state);
    }
  }

  /**
   * Whether to run ev: its lease is still this worker's, and marked started
   * in Redis first if it must be. A boolean when that needs no call to
   * Redis (the fast path), else a promise of one.
   * @param {Event} ev
   * @returns {boolean | Promise<boolean>}
   */
  #mayStart(ev) {
    const { id, token } = ev;
    const how = this.held.startable(id, token, START_MARGIN * this.beat.leaseMs);
    if (how === "expired") return this.#expired(ev);
    if (how === "settled") {
      // Settled meanwhile: the heartbeat found its lease lost (reclaimed).
      this.held.drop(id, token);
      return false;
    }
    if (!ev.mustStart) return true; // the fast path: no extra call
    return this.#markStarted(ev);
  }

  /**
   * Its lease ran out while it waited (a Redis outage, a stalled process):
   * it may be someone else's by now. Not run; released in case it was not
   * reclaimed yet (a refused release is fine).
   * @param {Event} ev
   */
  async #expired(ev) {
    const { id, token } = ev;
    this.worker.stats.expiredUnstarted += 1;
    this.worker.log.warn(`${this.worker.service}/${id} not started: its lease ran out while it waited`);
    await this.release([[id, token]]);
    return false;
  }

  /**
   * An event that came back unstarted before: marked started in Redis before
   * it runs, so a poison event that kills its worker is charged its attempts.
   * @param {Event} ev
   */
  async #markStarted(ev) {
    const { id, token } = ev;
    /** @type {unknown} */
    let out;
    try {
      [out] = await this.worker.client.start(this.worker.service, [[id, token]]);
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc; // a bug: not taken for a refusal
      out = exc;
    }
    if (typeof out !== "number") {
      // Not marked, so not run: its lease expires and it comes back.
      this.worker.log.warn(`${this.worker.service}/${id} not started: ${describe(out)}`);
      if (this.held.settle(id, token)) this.worker.stats.lost += 1;
      this.held.drop(id, token);
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
    const controller = new LazyAbort(); // its signal made only if the handler reads it
    this.watch.begin(slot, ev, controller);
    consumer._event = ev; // for complete(): the token of this delivery
    try {
      const { instruments } = this.worker;
      // With no instrument the handler is called directly: a throw is caught
      // here as a rejection would be, a plain value awaited as a promise.
      newState = await (instruments.length === 0 ? consumer.handleEvent(ev, state, controller)
        : observe(instruments, ev, async () => consumer.handleEvent(ev, state, controller)));
    } catch (exc) {
      // Whatever it throws (not only an Error), a handler must not take its
      // slot down while the event stays leased and heartbeaten.
      consumer._event = null;
      if (this.watch.end(slot)) {
        this.#late(ev, `threw after its timeout: ${describe(exc)}`);
      } else if (isSnooze(exc)) {
        await this.#snoozed(ev, exc);
      } else {
        await this.failed(ev, exc);
      }
      return state;
    }
    consumer._event = null;
    const timedOut = this.watch.end(slot);
    if (isSnooze(newState)) {
      if (timedOut) this.#late(ev, "snoozed after its timeout");
      else await this.#snoozed(ev, newState);
      return newState.hasState ? newState.state : state;
    }
    if (!this.held.settle(ev.id, ev.token)) {
      // The consumer completed it, the heartbeat found it lost, or the
      // watchdog failed it: nothing more to send.
      if (timedOut) this.#late(ev, "returned after its timeout");
      else this.held.dropOwn(ev.id, ev.token);
    } else if (ev.mustStart) {
      // Charged already (marked started): acknowledged now, not in a batch a
      // crash could lose, so a crash charges it only while it ran.
      await this.acker.now(ev);
    } else {
      this.acker.queueOne(ev.id, ev.token);
    }
    return newState;
  }

  /**
   * The handler returned or threw a Snooze: settled first (so the heartbeat
   * stops extending it), then sent; nothing if its outcome was settled
   * already (the consumer completed it, or the lease was found lost).
   * @param {Event} ev
   * @param {Snooze} snooze
   */
  async #snoozed(ev, snooze) {
    if (!this.held.settle(ev.id, ev.token)) {
      this.worker.log.warn(`${this.worker.service}/${ev.id} snoozed after its outcome was settled`);
      this.held.dropOwn(ev.id, ev.token);
      return;
    }
    await sendSnooze(this.worker, this.stop, ev, snooze.delayMs);
    this.held.drop(ev.id, ev.token);
  }

  /**
   * A handler that the watchdog had given up on finished: its slot is free
   * again, and what it did is not reported (the event was failed).
   * @param {Event} ev
   * @param {string} how
   */
  #late(ev, how) {
    this.worker.log.info(`${this.worker.service}/${ev.id}: the handler ${how}; its slot is free again`);
    this.held.dropOwn(ev.id, ev.token);
  }

  /**
   * Fail ev for what its handler threw, or for the handler timeout (the
   * watchdog calls this too): settled first, before any await, so whatever
   * the handler reports afterwards is dropped.
   * @param {Event} ev
   * @param {unknown} exc
   */
  async failed(ev, exc) {
    const { dead, reject, timeout, reason, detail } = failure(exc);
    if (!this.held.settle(ev.id, ev.token)) {
      // Its outcome is settled already (the consumer completed it, or the
      // heartbeat found the lease lost): there is nothing left to fail.
      this.worker.log.warn(`${this.worker.service}/${ev.id} raised after its outcome was settled: ${reason}`);
      this.held.dropOwn(ev.id, ev.token);
      return;
    }
    if (timeout) {
      this.worker.stats.timedOut += 1;
      this.worker.log.error(`${this.worker.service}/${ev.id} attempt ${ev.attempt}: ${reason}; failing it`);
    } else if (!reject) {
      this.worker.log.warn(`${this.worker.service}/${ev.id} attempt ${ev.attempt} failed: ${reason}${detail}`);
    }
    await sendFail(this.worker, this.stop, ev, reason, dead);
    this.held.drop(ev.id, ev.token);
  }
}
