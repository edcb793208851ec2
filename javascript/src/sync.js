// Small coordination primitives for the worker's loops: the event-loop
// counterparts of the threading.Event / Condition the Python worker uses.

/**
 * Sleep ms milliseconds.
 * @param {number} ms
 * @returns {Promise<void>}
 */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolve on the event loop's next turn (setImmediate), after every
 * microtask queued now: the worker's fetcher and acker wait this long before
 * a round trip, so that handlers that can run without I/O (any number of
 * them, sync or async) all finish first and their events go in one batch
 * (issue 10: one dequeue and one completeMany per window, not one per
 * handler that happened to finish first).
 * @returns {Promise<void>}
 */
export const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Wakes every waiter at once; a waiter that times out simply goes on.
 * notify() with nobody waiting costs nothing: the worker notifies once per
 * handled event, and a promise made each time was visible in its profile.
 */
export class Signal {
  /** @type {((value?: any) => void) | null} */
  #resolve = null;
  /** @type {Promise<void> | null} */
  #promise = null;

  /** Wake everyone waiting now. */
  notify() {
    const resolve = this.#resolve;
    if (resolve === null) return;
    this.#promise = null;
    this.#resolve = null;
    resolve();
  }

  /**
   * Wait until notify() or ms milliseconds, whichever comes first.
   * @param {number} ms
   * @returns {Promise<void>}
   */
  wait(ms) {
    this.#promise ??= new Promise((resolve) => {
      this.#resolve = resolve;
    });
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return Promise.race([this.#promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** A one-way flag that also wakes sleepers, like threading.Event for stop. */
export class Stopper {
  isSet = false;
  /** @type {(value?: any) => void} */
  #resolve = () => {};
  /** Resolves when set() is called. */
  promise = new Promise((resolve) => {
    this.#resolve = resolve;
  });

  set() {
    this.isSet = true;
    this.#resolve();
  }

  /**
   * Wait ms milliseconds, or less if set() is called.
   * @param {number} ms
   * @returns {Promise<boolean>} whether the flag is set
   */
  async wait(ms) {
    if (this.isSet) return true;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    await Promise.race([this.promise, timeout]).finally(() => clearTimeout(timer));
    return this.isSet;
  }
}

/**
 * Wait for promise, but at most ms milliseconds (the timer never outlives it).
 * @param {Promise<unknown> | undefined} promise
 * @param {number} ms
 * @returns {Promise<void>}
 */
export async function within(promise, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
