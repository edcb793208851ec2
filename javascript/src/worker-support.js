// The worker's bookkeeping: which leases it holds (Python's _Held), its
// counts, its default logger and small helpers. Kept apart from the loops in
// worker.js.

import { Consumer } from "./consumer.js";

/**
 * @typedef {object} Logger
 * @property {(...args: any[]) => void} debug
 * @property {(...args: any[]) => void} info
 * @property {(...args: any[]) => void} warn
 * @property {(...args: any[]) => void} error
 */

/** The longest pause of a loop's backoff, in ms. */
export const MAX_PAUSE = 2000;

/**
 * `Name: message`, as a fail reason and in logs.
 * @param {unknown} exc
 */
export const describe = (exc) =>
  exc instanceof Error ? `${exc.constructor.name}: ${exc.message}` : `${typeof exc}: ${String(exc)}`;

/**
 * A new consumer from a Consumer subclass or a function that returns one.
 * @param {(() => Consumer) | (new () => Consumer)} factory
 * @returns {Consumer}
 */
export function makeConsumer(factory) {
  const isClass = factory === Consumer || factory.prototype instanceof Consumer;
  // @ts-ignore either a Consumer subclass or a function returning a consumer
  return isClass ? new factory() : factory();
}

/** Counts since the worker started. */
export class WorkerStats {
  received = 0;
  completed = 0;
  failed = 0;
  released = 0;
  lost = 0;
  /** @type {Record<string, number>} refusals by error code */
  errors = {};
}

const noop = () => {};
/** Warnings and errors to the console, as Python's logging does by default. */
export const DEFAULT_LOGGER = Object.freeze({
  debug: noop,
  info: noop,
  warn: (/** @type {any[]} */ ...a) => console.warn("homing.worker:", ...a),
  error: (/** @type {any[]} */ ...a) => console.error("homing.worker:", ...a),
});

/**
 * Events a worker holds a lease on, keyed by id (the service is fixed).
 *
 * `settling` holds ids whose outcome (complete or fail) is being sent: the
 * heartbeat stops extending them, and an extend refused for one of them is the
 * expected race with its acknowledgement, not a lost lease.
 */
export class Held {
  /** @type {Map<string, number>} event id -> lease token */
  tokens = new Map();
  /** @type {Set<string>} */
  settling = new Set();

  /** @param {() => void} onDrop called whenever an event leaves (room for the fetcher) */
  constructor(onDrop) {
    this.onDrop = onDrop;
  }

  get size() {
    return this.tokens.size;
  }

  /** @param {Iterable<{id: string, token: number}>} events */
  add(events) {
    for (const ev of events) this.tokens.set(ev.id, ev.token);
  }

  /**
   * Mark an outcome as being sent; false if one already was.
   * @param {string} eventId
   */
  settle(eventId) {
    if (this.settling.has(eventId)) return false;
    this.settling.add(eventId);
    return true;
  }

  /** @param {string} eventId */
  drop(eventId) {
    this.tokens.delete(eventId);
    this.settling.delete(eventId);
    this.onDrop();
  }

  /**
   * Drop a batch, waking the fetcher once.
   * @param {string[]} eventIds
   */
  dropMany(eventIds) {
    for (const eventId of eventIds) {
      this.tokens.delete(eventId);
      this.settling.delete(eventId);
      }
    this.onDrop();
  }

  /** @returns {[string, number][]} leases to keep alive: held, with no outcome on its way */
  unsettled() {
    return [...this.tokens].filter(([id]) => !this.settling.has(id));
  }

  /**
   * Still held under this token, with no outcome on its way.
   * @param {string} eventId
   * @param {number} token
   */
  isOpen(eventId, token) {
    return this.tokens.get(eventId) === token && !this.settling.has(eventId);
  }

  /** @returns {[string, number][]} */
  snapshot() {
    return [...this.tokens];
  }
}
