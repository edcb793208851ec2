// Plain value types that the client returns (python/homing/types.py).

import * as envelope from "./envelope.js";

const UNSET = Symbol("unset");

/**
 * A leased event, as handed to a consumer.
 *
 * `token` is the lease's fencing token: `complete`, `extendLease`, `fail`
 * and `release` must present it, and are refused once the lease was
 * reclaimed and the event went to someone else. `attempt` counts deliveries,
 * starting at 1 (for a reserved event: the attempt this delivery becomes once
 * it starts). The payload is decoded on first access so that one corrupt
 * envelope in a batch cannot stop the others from being handled.
 *
 * `mustStart` is set on a reserved event (`dequeue(..., {reserve: true})`)
 * that came back unstarted before: call `start` before running it, so that a
 * poison event that kills its process is charged its attempts.
 */
export class Event {
  /** @type {unknown} */
  #payload = UNSET;

  /**
   * @param {string} service
   * @param {string} id
   * @param {number} token
   * @param {number} attempt
   * @param {number} deadlineMs
   * @param {Uint8Array} raw the envelope's bytes
   * @param {boolean} [mustStart] call start before running it
   */
  constructor(service, id, token, attempt, deadlineMs, raw, mustStart = false) {
    this.service = service;
    this.id = id;
    this.token = token;
    this.attempt = attempt;
    this.deadlineMs = deadlineMs;
    this.raw = raw;
    this.mustStart = mustStart;
  }

  /** The decoded payload; throws CorruptEnvelopeError if the stored bytes are not one. */
  get payload() {
    if (this.#payload === UNSET) {
      this.#payload = envelope.decode(this.raw);
    }
    return this.#payload;
  }
}

/**
 * What one dequeueBatch handed out, and how long to wait before asking again:
 * `waitMs` is 0, or the ms after which the service's limits (rateLimit per
 * rateWindowMs, concurrency) or its pause may let out the ready events they
 * held back. A worker sleeps that long instead of polling.
 */
export class Batch {
  /**
   * @param {Event[]} events
   * @param {number} waitMs
   */
  constructor(events, waitMs) {
    this.events = events;
    this.waitMs = waitMs;
  }
}

/** A service's limits across all its workers (0: none), its pause, and its leases out now. */
export class Limits {
  /**
   * @param {number} rateLimit events handed out per rateWindowMs at most
   * @param {number} rateWindowMs
   * @param {number} concurrency leases out at once at most
   * @param {boolean} paused
   * @param {number} inFlight leases out now
   * @param {number} ready events ready now
   */
  constructor(rateLimit, rateWindowMs, concurrency, paused, inFlight, ready) {
    this.rateLimit = rateLimit;
    this.rateWindowMs = rateWindowMs;
    this.concurrency = concurrency;
    this.paused = paused;
    this.inFlight = inFlight;
    this.ready = ready;
  }
}

/** Where a failed event went: `"retry"` at `atMs`, or `"dead"` since `atMs`. */
export class FailOutcome {
  /**
   * @param {"retry" | "dead"} action (a snooze's reply is this record too, with
   * "snoozed" or "dead": index.d.ts calls it SnoozeOutcome)
   * @param {number} atMs
   */
  constructor(action, atMs) {
    this.action = action;
    this.atMs = atMs;
  }
}

/** A dead-lettered event with why it died. `raw` is empty if the payload was lost. */
export class DeadLetter {
  /**
   * @param {string} id
   * @param {number} diedMs
   * @param {number} attempt
   * @param {string} reason
   * @param {Uint8Array} raw
   */
  constructor(id, diedMs, attempt, reason, raw) {
    this.id = id;
    this.diedMs = diedMs;
    this.attempt = attempt;
    this.reason = reason;
    this.raw = raw;
  }

  /** The decoded payload (throws CorruptEnvelopeError when `raw` is not an envelope). */
  get payload() {
    return envelope.decode(this.raw);
  }
}

/** One page of a service's dead letters and how many there are in all. */
export class DeadPage {
  /**
   * @param {number} total
   * @param {DeadLetter[]} letters
   */
  constructor(total, letters) {
    this.total = total;
    this.letters = letters;
  }
}

/**
 * Where an event stands: `done`, `dead`, `pending` or `unknown`. For
 * `pending`, `detail` is one of ready, reserved (held by a worker that has not
 * started it), leased, timer, waiting (a retry backoff) or expired (awaiting
 * the distributor); for `dead`, the reason. `attempt` counts charged attempts.
 */
export class Status {
  /**
   * @param {"done" | "dead" | "pending" | "unknown"} state
   * @param {string} [detail]
   * @param {number} [attempt]
   * @param {Uint8Array} [rawResult]
   * @param {number} [snoozes] pending: the snoozes it took (bounded by max_snoozes)
   * @param {number} [progress] pending: the last percentage its handler reported (0..100)
   * @param {number} [priority] pending: its priority level (0..9, 0 the default)
   */
  constructor(state, detail = "", attempt = 0, rawResult = Buffer.alloc(0), snoozes = 0, progress = 0, priority = 0) {
    this.state = state;
    this.detail = detail;
    this.attempt = attempt;
    this.rawResult = rawResult;
    this.snoozes = snoozes;
    this.progress = progress;
    this.priority = priority;
  }

  /** The consumer's result of a `done` event (null if it gave none). */
  get result() {
    return this.rawResult.length ? envelope.decode(this.rawResult) : null;
  }
}

/** What one scheduler step did for a service. */
export class PromoteResult {
  /**
   * @param {number} timers
   * @param {number} retries
   * @param {number} expired leases reclaimed, reserved ones included
   * @param {boolean} more
   * @param {number} nextDueMs
   * @param {number} [returned] reserved leases put back in the ready queue uncharged
   */
  constructor(timers, retries, expired, more, nextDueMs, returned = 0) {
    this.timers = timers;
    this.retries = retries;
    this.expired = expired;
    this.more = more;
    this.nextDueMs = nextDueMs;
    this.returned = returned;
  }
}

/** What one distributor step did for a service. */
export class DistributeResult {
  /**
   * @param {number} retried
   * @param {number} dead
   * @param {boolean} more
   */
  constructor(retried, dead, more) {
    this.retried = retried;
    this.dead = dead;
    this.more = more;
  }
}

/**
 * A recurring timer: its spec ("every <ms> <catchUp>" or "cron <catchUp>
 * <expression>"), its next tick, and how many ticks fired or were skipped.
 * Each tick fires the event `<name>.<tickMs>`, into its priority level.
 */
export class Recurring {
  /**
   * @param {string} name
   * @param {string} spec
   * @param {number} nextMs
   * @param {number} fired
   * @param {number} skipped
   * @param {number} [priority] the level its occurrences fire into (0..9, 0 the default)
   */
  constructor(name, spec, nextMs, fired, skipped, priority = 0) {
    this.name = name;
    this.spec = spec;
    this.nextMs = nextMs;
    this.fired = fired;
    this.skipped = skipped;
    this.priority = priority;
  }
}

/** One page of a service's recurring timers, by name, and how many there are. */
export class RecurringPage {
  /**
   * @param {number} total
   * @param {Recurring[]} schedules
   */
  constructor(total, schedules) {
    this.total = total;
    this.schedules = schedules;
  }
}

/** A group of events enqueued together (enqueueGroup): its id and its members' ids. */
export class Group {
  /**
   * @param {string} id
   * @param {string[]} eventIds
   */
  constructor(id, eventIds) {
    this.id = id;
    this.eventIds = eventIds;
  }
}

/**
 * Where a group stands: `done` of `total` members completed; `failed` the
 * first member dead-lettered or cancelled ("" if none); `finishedMs` when
 * every member completed or the first failed (0 while it runs).
 */
export class GroupStatus {
  /**
   * @param {number} total
   * @param {number} done
   * @param {string} failed
   * @param {number} finishedMs
   */
  constructor(total, done, failed, finishedMs) {
    this.total = total;
    this.done = done;
    this.failed = failed;
    this.finishedMs = finishedMs;
  }

  /** Whether the group finished (all completed, or its first failure). */
  get finished() {
    return this.finishedMs > 0;
  }
}
