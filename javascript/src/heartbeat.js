// The worker's heartbeat (the heartbeat thread of python/homing/worker.py):
// every lease / 3 it extends every lease the worker holds and has no outcome
// for yet, re-registers the service and re-reads the lease and timeout
// policy, then sends the worker's beat for the dashboard (worker-beat.js),
// after the extends, never before them. Kept apart from worker.js because it
// outlives stop(): it runs until the handlers are done (end()), so a handler
// finishing within the shutdown grace keeps its lease; the watchdog paces
// itself by the same clock.

import { HomingError } from "./errors.js";
import { MAX_BATCH } from "./manifest.js";
import { retrying } from "./outcomes.js";
import { Stopper } from "./sync.js";

/** @typedef {import("./client.js").Client} Client */
/** @typedef {import("./holding.js").Held} Held */
/** @typedef {import("./holding.js").WorkerStats} WorkerStats */
/** @typedef {import("./worker-support.js").Logger} Logger */

export class Heartbeat {
  /** Ends the beats, which keep running handlers' leases alive through the grace period. */
  #end = new Stopper();
  #every = 1000;
  /** The effective lease length, ms: the worker's leaseMs, or the service's policy. */
  leaseMs = 30000;
  /** The effective handler timeout, ms (0: none): the worker's, or the policy's. */
  timeoutMs = 0;
  /** @type {import("./worker-beat.js").WorkerBeat | null} set by the worker's start() */
  presence = null;

  /**
   * @param {{client: Client, service: string, stats: WorkerStats, log: Logger,
   *   leaseMs: number | null, handlerTimeoutMs: number | null}} worker its options
   * (null: follow the service's policy)
   * @param {Held} held
   * @param {Stopper} stop the worker's: ends the retries' pauses early
   */
  constructor(worker, held, stop) {
    this.worker = worker;
    this.held = held;
    this.stop = stop;
  }

  /**
   * Beat three times per lease. With no leaseMs of its own, the worker follows
   * the service's policy, re-read with every beat (as in Python): a lease_ms
   * lowered by configure while it runs must not let its leases run out. The
   * handler timeout is read the same way.
   */
  async pace() {
    const { client, service } = this.worker;
    let lease = this.worker.leaseMs;
    let timeout = this.worker.handlerTimeoutMs;
    if (lease == null || timeout == null) {
      const policy = await client.stats(service);
      lease ??= policy["policy.lease_ms"];
      timeout ??= policy["policy.handler_timeout_ms"] ?? 0;
    }
    this.leaseMs = lease;
    this.#every = lease / 3;
    this.timeoutMs = timeout;
  }

  /** How often it beats, ms (a third of the lease). */
  get everyMs() {
    return this.#every;
  }

  /** Stop beating (the handlers are done, or given up on). */
  end() {
    this.#end.set();
  }

  /**
   * Wait ms, or less once end() was called.
   * @param {number} ms
   * @returns {Promise<boolean>} whether it has ended
   */
  wait(ms) {
    return this.#end.wait(ms);
  }

  async loop() {
    const { client, service, stats, log } = this.worker;
    const pause = { ms: 50 };
    while (!(await this.#end.wait(this.#every))) {
      // Keep the service registered, so a scheduler can reclaim these leases
      // even after the registry was lost.
      await retrying(log, this.stop, "register", () => client.register(service), pause);
      if (this.worker.leaseMs == null || this.worker.handlerTimeoutMs == null) {
        await retrying(log, this.stop, "read the policy", () => this.pace(), pause);
      }
      // Started or not: an unstarted event's lease is kept too, until it runs.
      const held = this.held.toExtend();
      for (let i = 0; i < held.length; i += MAX_BATCH) {
        const chunk = held.slice(i, i + MAX_BATCH);
        const sent = performance.now();
        const out = await retrying(log, this.stop, "extend",
          () => client.extendMany(service, chunk, this.worker.leaseMs), pause);
        if (out === null) continue;
        this.held.renew(chunk.filter((_, j) => !(out[j] instanceof HomingError)), sent + this.leaseMs);
        out.forEach((r, j) => {
          const [eventId, token] = chunk[j];
          // settle() makes this the event's one outcome: counted once, and its
          // handler's completion is not sent to be refused again (as in Python).
          if (r instanceof HomingError && this.held.isOpen(eventId, token) && this.held.settle(eventId, token)) {
            log.warn(`lease of ${service}/${eventId} lost: ${r.message}`);
            stats.lost += 1;
          }
        });
      }
      await this.presence?.beat(held, this.#every); // after the extends: never before them
    }
  }
}
