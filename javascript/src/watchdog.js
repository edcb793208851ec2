// The handler timeout's bookkeeping (Python's homing.watchdog): which slot
// runs what since when, and the error a handler past its timeout is failed
// with. The watchdog loop that acts on it is in worker.js, which owns the
// slots; this is only the record, so it can be tested without a Redis.

/** @typedef {import("./types.js").Event} Event */

/** The reason an event is failed with when its handler ran past the handler timeout. */
export class HandlerTimeoutError extends Error {
  /** @param {number} ms the timeout */
  constructor(ms) {
    super(`handler timed out after ${Math.round(ms)} ms`);
    this.name = "HandlerTimeoutError";
    this.timeoutMs = ms;
  }
}


/**
 * The handler timeout's bookkeeping (Python's homing.watchdog): per slot, the
 * event it runs, since when (performance.now()) and the AbortController its
 * handler was given.
 *
 * Node cannot stop a running function, so what the worker does for a handler
 * past its timeout is stop holding the event for it: the event is failed
 * (retried or dead-lettered by the service's policy), its lease is no longer
 * extended and whatever the handler reports later is dropped; the handler's
 * signal is aborted, so one that listens stops. The slot counts as hung
 * until the handler's promise settles.
 */
export class Watchdog {
  /** @type {Map<number, {ev: Event, since: number, controller: {abort(reason: unknown): void}}>} */
  #running = new Map();
  /** @type {Set<number>} */
  #hung = new Set();

  /**
   * @param {number} slot
   * @param {Event} ev
   * @param {{abort(reason: unknown): void}} controller an AbortController, or a LazyAbort
   */
  begin(slot, ev, controller) {
    this.#running.set(slot, { ev, since: performance.now(), controller });
  }

  /**
   * The handler returned or threw: the slot is free again, hung or not.
   * @param {number} slot
   * @returns {boolean} whether it had been reported past its timeout
   */
  end(slot) {
    this.#running.delete(slot);
    return this.#hung.delete(slot);
  }

  /**
   * Handlers running past timeoutMs, not reported yet; each is reported once
   * and its slot marked hung until the handler returns.
   * @param {number} timeoutMs
   * @returns {{ev: Event, controller: {abort(reason: unknown): void}}[]}
   */
  overdue(timeoutMs) {
    const now = performance.now();
    const out = [];
    for (const [slot, run] of this.#running) {
      if (!this.#hung.has(slot) && now - run.since > timeoutMs) {
        this.#hung.add(slot);
        out.push(run);
      }
    }
    return out;
  }

  /** How many slots run a handler past its timeout right now. */
  get hung() {
    return this.#hung.size;
  }
}

/**
 * The options a handler gets ({ signal }), its AbortController made only if
 * the handler reads the signal: one per event was a visible share of the
 * worker's CPU and of its garbage (issue 10), and most handlers never look.
 * Aborted before it was read, the signal is made already aborted.
 */
export class LazyAbort {
  /** @type {AbortController | null} */
  #controller = null;
  #aborted = false;
  /** @type {unknown} */
  #reason = undefined;

  get signal() {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** @param {unknown} reason */
  abort(reason) {
    if (this.#controller !== null) this.#controller.abort(reason);
    else if (!this.#aborted) [this.#aborted, this.#reason] = [true, reason];
  }
}
