// The producer's wait for a consumer's result, as a sans-IO state machine
// (Python's ResultWait): the client feeds it statuses and sleeps as told.

import { EventDeadError, InvalidArgumentError, ResultTimeoutError, UnknownEventError } from "./errors.js";

/**
 * The producer's wait for feedback, without I/O (Python's ResultWait).
 *
 * Feed it each status; it says whether the event settled (and its result), or
 * how long to sleep before asking again: from 2 ms, doubling to 100 ms, so a
 * fast consumer's result arrives quickly and a slow one costs few calls.
 */
export class ResultWait {
  /**
   * @param {string} service
   * @param {string} eventId
   * @param {number | null} timeoutMs null: no limit
   */
  constructor(service, eventId, timeoutMs) {
    // NaN passes no comparison: a NaN timeout would wait for ever.
    if (timeoutMs != null && (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a finite number of ms >= 0, got ${String(timeoutMs)}`);
    }
    this.service = service;
    this.eventId = eventId;
    this.timeoutMs = timeoutMs;
    this.end = timeoutMs == null ? null : performance.now() + timeoutMs;
    this.pause = 2;
  }

  /**
   * [true, result] once done; [false, ms to sleep] while pending.
   * Throws EventDeadError, UnknownEventError or ResultTimeoutError.
   * @param {import("./types.js").Status} st
   * @returns {[boolean, unknown]}
   */
  check(st) {
    if (st.state === "done") return [true, st.result];
    if (st.state === "dead") {
      throw new EventDeadError(`event ${this.service}/${this.eventId} was dead-lettered: ${st.detail}`);
    }
    if (st.state === "unknown") {
      // Plain about the likeliest cause: by default a completion without a
      // result keeps nothing (done_ttl_ms 0), so it reads as unknown.
      throw new UnknownEventError(
        `no event ${this.eventId} in service ${this.service}: never enqueued, ` +
          "or completed and no longer kept (an event completed without a result " +
          "leaves no trace unless the service sets done_ttl_ms; a result is kept " +
          "for result_ttl_ms)",
      );
    }
    const left = this.end === null ? null : this.end - performance.now();
    if (left !== null && left <= 0) {
      throw new ResultTimeoutError(
        `no result for ${this.service}/${this.eventId} within ${this.timeoutMs} ms ` +
          `(it is ${st.detail}, attempt ${st.attempt})`,
      );
    }
    const pause = left === null ? this.pause : Math.min(this.pause, left);
    this.pause = Math.min(this.pause * 2, 100);
    return [false, pause];
  }
}
