// The due-time index's hint (see python/homing/due.py and docs/architecture.md):
// after a script that added work due at some time, the client lowers the
// service's entry in the global zset <prefix>:due (ZADD LT: idempotent, it
// only ever lowers) and, when that lowered it, PUBLISHes <prefix>:wake so a
// sleeping scheduler looks at once. A hint only: a failure is warned about,
// never thrown (the script's write is in Redis), and the scheduler's backstop
// sweep finds what a lost hint left out.

/**
 * The due time (ms, Redis clock) a successful reply of script added, or null.
 * `schedule`'s due_ms and `recurring_put`'s next_ms are its third field;
 * `distribute` does not say when its retries are due: 0 ("look now").
 * @param {string} script
 * @param {any} reply
 * @returns {number | null}
 */
export function dueOf(script, reply) {
  if (!Array.isArray(reply)) return null;
  const num = (/** @type {unknown} */ v) => Number(String(v));
  if (script === "schedule" || script === "recurring_put") return num(reply[2]) >= 0 ? num(reply[2]) : null;
  if (script === "fail") return String(reply[0]) === "retry" ? num(reply[1]) : null;
  if (script === "snooze") return String(reply[0]) === "snoozed" ? num(reply[1]) : null;
  if (script === "dequeue") return reply.length > 2 ? num(reply[0]) : null; // deadline, wait, events
  if (script === "distribute") return num(reply[0]) > 0 ? 0 : null;
  return null;
}

/** @param {string} prefix @returns {string} the schedulers' wake-up channel (not a key) */
export function wakeChannel(prefix) {
  return `${prefix}:wake`;
}

/** Warn about a failing hint once a minute, not once per call. */
export class HintWarning {
  #at = -Infinity;

  /** @param {{warn: (msg: string) => void}} logger */
  constructor(logger) {
    this.logger = logger;
  }

  /** @param {string} service @param {unknown} exc */
  told(service, exc) {
    const now = performance.now();
    if (now - this.#at < 60_000) return;
    this.#at = now;
    this.logger.warn(`the due-time index was not updated for ${service} ` +
      `(${exc instanceof Error ? exc.message : String(exc)}): its timers, retries and leases wait ` +
      "for the scheduler's backstop sweep");
  }
}
