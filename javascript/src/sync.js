// Small coordination primitives for the worker's loops: the event-loop
// counterparts of the threading.Event / Condition the Python worker uses.

/**
 * Sleep ms milliseconds.
 * @param {number} ms
 * @returns {Promise<void>}
 */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wakes every waiter at once; a waiter that times out simply goes on. */
export class Signal {
  /** @type {(value?: any) => void} */
  #resolve = () => {};
  /** @type {Promise<void>} */
  #promise;

  constructor() {
    this.#promise = this.#fresh();
  }

  #fresh() {
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Wake everyone waiting now. */
  notify() {
    const resolve = this.#resolve;
    this.#promise = this.#fresh();
    resolve();
  }

  /**
   * Wait until notify() or ms milliseconds, whichever comes first.
   * @param {number} ms
   * @returns {Promise<void>}
   */
  wait(ms) {
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
