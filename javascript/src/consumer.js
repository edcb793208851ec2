// The consumer behaviour, after the original system's gen_queue_consumer
// (python/homing/consumer.py). A consumer is a class with two callbacks:
//
//   class WeatherConsumer extends Consumer {
//     init() {
//       return { seen: 0 };                              // -> initial state
//     }
//     async handleEvent(event, state) {                  // -> new state
//       await postToSite(event.payload);
//       await this.complete(event.service, event.id, "posted");
//       return { seen: state.seen + 1 };
//     }
//   }
//
// A Worker runs it. The consumer may call `await this.complete(service, id,
// result)` itself, as in the original API; if it returns without doing so,
// the worker completes the event for it (with no result). If it throws, the
// event is failed and retried after the service's backoff, or dead-lettered
// when its attempts are used up; throwing Reject dead-letters it at once.
// Returning or throwing a Snooze (`return new Snooze(5000)`) asks for the
// event again after that many ms without it counting as an attempt (Oban's
// {:snooze, s}), up to the service's max_snoozes (default 100), after which
// a snooze dead-letters it. `await this.progress(event, 50)` records how far
// the handler got (a whole percentage 0..100), shown by status and the
// dashboard. Both callbacks may be sync or async.
//
// handleEvent gets a third argument, `{ signal }`: an AbortSignal the worker
// aborts when the handler runs past the handler timeout (the worker's
// handlerTimeoutMs, else the service's handler_timeout_ms policy). By then
// the event is failed (retried or dead-lettered by the policy) and whatever
// the handler does with it is dropped; pass the signal on (fetch, timers,
// database calls) so the handler stops and its slot is free again. A handler
// that ignores it keeps its slot hung until it returns.

/** Throw from handleEvent to dead-letter the event at once (no retry). */
export class Reject extends Error {
  /**
   * @param {string} [message]
   * @param {ErrorOptions} [options]
   */
  constructor(message = "", options = undefined) {
    super(message, options);
    this.name = "Reject";
  }
}

/**
 * Return or throw from handleEvent to have the event delivered again after
 * delayMs, without the delivery counting as an attempt. A returned Snooze
 * may carry the slot's next state (`new Snooze(5000, { state })`); without
 * one the state is kept. Past the service's max_snoozes the snooze
 * dead-letters the event instead, with the reason.
 */
export class Snooze extends Error {
  /**
   * @param {number} delayMs whole ms, 0..43200000 (12 h)
   * @param {{state?: unknown}} [options] the state a returned Snooze hands on
   */
  constructor(delayMs, options = {}) {
    super(`snooze ${delayMs} ms`);
    this.name = "Snooze";
    this.delayMs = delayMs;
    /** whether a state was given (undefined is a state too) */
    this.hasState = Object.hasOwn(options, "state");
    this.state = options.state;
  }
}

/** @typedef {{id: string, token: number}} Delivery an event and the token of its lease */

/**
 * @typedef {object} HandlerContext what the worker passes with each event
 * @property {AbortSignal} signal aborted when the handler runs past the
 * handler timeout; its reason is an Error named HandlerTimeoutError whose
 * message is the fail reason ("handler timed out after N ms")
 */

/**
 * @typedef {object} Acker the worker, as seen by its consumers
 * @property {(service: string, eventId: string, result: unknown, current?: Delivery | null) =>
 *   Promise<void>} completeFor
 * @property {(event: Delivery & {service: string}, value: number) => Promise<number>} progressFor
 */

/** Base class of consumers; override `init` and `handleEvent`. */
export class Consumer {
  /** @type {Acker | null} set by the Worker that runs this consumer */
  _acker = null;
  /**
   * The event this consumer's slot is handling (set by the Worker): a slot
   * handles one event at a time, as a Python worker thread does.
   * @type {Delivery | null}
   */
  _event = null;

  /**
   * Return the initial state (called once per concurrent slot).
   * @returns {unknown}
   */
  init() {
    return null;
  }

  /**
   * Handle one event and return the new state.
   * @param {import("./types.js").Event} event
   * @param {any} state
   * @param {HandlerContext} context `signal` aborts at the handler timeout
   * @returns {unknown}
   */
  handleEvent(event, state, context) {
    void event, state, context;
    throw new Error(`${this.constructor.name} must override handleEvent(event, state)`);
  }

  /**
   * Acknowledge an event this consumer holds, optionally with a result.
   *
   * The worker knows the lease token, so the consumer names the event as in
   * the original API: the token of the event the calling handler is handling
   * (even if the same event was redelivered to this worker meanwhile), else
   * the newest this worker holds for the id. Rejects with StaleLeaseError if
   * the lease was lost (the event expired and went to another consumer).
   * Await it.
   * @param {string} service
   * @param {string} eventId
   * @param {unknown} [result]
   * @returns {Promise<void>}
   */
  async complete(service, eventId, result = null) {
    if (this._acker === null) {
      throw new Error("complete() is available while the consumer runs under a Worker");
    }
    await this._acker.completeFor(service, eventId, result, this._event);
  }

  /**
   * Record how far the handler got with an event this consumer holds: a
   * whole percentage 0..100, fenced by its lease token (StaleLeaseError once
   * the lease was lost). status and the dashboard show it. Await it.
   * @param {import("./types.js").Event} event
   * @param {number} value
   * @returns {Promise<number>} the progress now stored
   */
  async progress(event, value) {
    if (this._acker === null) {
      throw new Error("progress() is available while the consumer runs under a Worker");
    }
    return this._acker.progressFor(event, value);
  }
}
