// Client conveniences that are no call argument of the table: a due time as a
// Date, one priority level spread over a batch. Kept out of argtypes.js (the
// table's types) as python/homing/checks.py keeps at_ms, seconds and
// worker_options out of argtypes.py.

import { ms } from "./argtypes.js";
import { InvalidArgumentError } from "./errors.js";

/**
 * A due time as ms since the epoch: a valid Date, or a number of ms (rounded).
 * @param {Date | number | null | undefined} at
 * @returns {number | undefined} undefined when not given
 */
export function atMs(at) {
  if (at == null) return undefined;
  if (at instanceof Date) {
    if (Number.isNaN(at.getTime())) throw new InvalidArgumentError("at is an invalid Date");
    return at.getTime();
  }
  ms(at, "at (ms since the epoch)"); // validates before rounding
  return Math.round(/** @type {number} */ (at));
}

/**
 * enqueueMany's `priority`: one level for every payload, or an array of one
 * per payload. The call table takes a level per item (`priorities`); a single
 * level is spread over the batch here, the only thing the port adds. A bad
 * value is left to the table's check (InvalidArgumentError, nothing sent).
 * @param {unknown} priority
 * @param {Iterable<unknown>} payloads
 * @returns {[Iterable<unknown>, unknown]}
 */
export function perItem(priority, payloads) {
  if (priority == null || Array.isArray(priority)) return [payloads, priority ?? undefined];
  let rows = payloads;
  if (!Array.isArray(rows) && rows != null && typeof rows !== "string" &&
      typeof (/** @type {any} */ (rows))[Symbol.iterator] === "function") {
    rows = Array.from(rows);
  }
  return [rows, Array.isArray(rows) ? rows.map(() => priority) : undefined];
}
