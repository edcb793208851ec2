// The Client's script calls: producer, consumer and admin methods
// (python/homing/client.py, method for method, in camelCase).
//
// Every method is one script call of the manifest's call table (calls.js),
// so each is atomic in Redis, and none shapes arguments or parses a reply by
// hand: it only names its arguments. `call(name, service, args)` reaches any
// call of the table, one with no method here too. Client (client.js) adds the
// connection and run().

import { whole } from "./argtypes.js";
import { atMs, perItem } from "./checks.js";
import { call } from "./calls.js";
import { InvalidArgumentError } from "./errors.js";
import { groupArgs, groupOf, resultsOf, waitGroup } from "./group-wait.js";
import { LimitCalls } from "./limits.js";
import { ResultWait } from "./result-wait.js";
import { producing } from "./tracing.js";
import { workerBeatCall } from "./worker-beat.js";

/**
 * @typedef {import("./calls.js").Call} Call
 * @typedef {import("./ops.js").CompleteItem} CompleteItem
 * @typedef {import("./ops.js").LeaseItem} LeaseItem
 * @typedef {import("./ops.js").Token} Token
 * @typedef {import("./errors.js").HomingError} HomingError
 * @typedef {import("./types.js").Status} Status
 */

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** null means "the default" in the public options. @param {unknown} v */
const given = (v) => (v === null ? undefined : v);

export class ScriptCalls extends LimitCalls {
  /** @param {number} maxPayload largest encoded envelope accepted, in bytes */
  constructor(maxPayload) {
    super();
    this.maxPayload = whole(maxPayload, "maxPayload (bytes)", 1);
  }

  /**
   * Execute one operation (Client.run).
   * @param {Call} _call
   * @param {Array<[string, number]> | null} [_hints]
   * @returns {Promise<any>}
   */
  async run(_call, _hints) {
    throw new Error("ScriptCalls.run is Client's");
  }

  /**
   * Any call of the manifest's call table by name (snake_case or camelCase),
   * its arguments by the table's names or their camelCase; returns what the
   * table's reply shape gives (this port's value type where it names one).
   * A new script with its header is callable here with no code of its own.
   * @param {string} name
   * @param {string} service "" for a call without one (beat)
   * @param {Record<string, unknown>} [args]
   * @returns {Promise<any>}
   */
  async call(name, service, args = {}) {
    return this.run(call(name, service, args, this.maxPayload));
  }

  // -- producer --------------------------------------------------------------

  /**
   * Add one event to service; returns its id.
   *
   * With `key` (an idempotency key), a second enqueue with the same key within
   * the service's idem_ttl_ms returns the first event's id and adds nothing:
   * safe to retry after a timeout. `priority` is its level, 0..9: ready
   * events of a higher level are delivered first, FIFO within a level (0, the
   * default, is the lowest).
   * @param {string} service
   * @param {unknown} payload
   * @param {{key?: string | null, id?: string, priority?: number}} [options]
   * @returns {Promise<string>}
   */
  async enqueue(service, payload, options = {}) {
    // The envelope is encoded before call() awaits: inside the producer span (tracing.js).
    return producing(service, "enqueue", 1, options.id == null,
      () => this.call("enqueue", service,
        { payload, key: options.key, id: options.id, priority: options.priority }));
  }

  /**
   * Add up to 1000 events in one atomic call; returns their ids in order.
   * `priority`: one level (0..9) for all of them, or an array of one per payload.
   * @param {string} service
   * @param {Iterable<unknown>} payloads
   * @param {{keys?: ReadonlyArray<string | null | undefined> | null, ids?: ReadonlyArray<string> | null,
   *   priority?: number | ReadonlyArray<number> | null}} [options]
   * @returns {Promise<string[]>}
   */
  async enqueueMany(service, payloads, options = {}) {
    const [rows, priorities] = perItem(options.priority, payloads);
    const count = Array.isArray(rows) ? rows.length : 0;
    return producing(service, "enqueue", count, options.ids == null,
      () => this.call("enqueue_many", service, { payloads: rows, keys: options.keys, ids: options.ids, priorities }));
  }

  /**
   * Schedule an event to become ready after `delayMs` or at `at` (a Date or
   * ms since the epoch); returns its id. Due times are judged by the Redis
   * server's clock, so a timer never fires early because a producer's clock
   * is ahead. It fires into its `priority` level (0..9, as for enqueue).
   * @param {string} service
   * @param {unknown} payload
   * @param {{delayMs?: number, at?: Date | number, key?: string | null, id?: string, priority?: number}} options
   * @returns {Promise<string>}
   */
  async createTimer(service, payload, options = {}) {
    const { delayMs, at, key, id, priority } = options;
    // schedule.lua refuses it too; here it is named as this API spells it.
    if ((delayMs == null) === (at == null)) throw new InvalidArgumentError("give exactly one of delayMs or at");
    return producing(service, "create_timer", 1, id == null,
      () => this.call("create_timer", service, { payload, delayMs, atMs: atMs(at), key, id, priority }));
  }

  /**
   * Cancel a pending timer. False if it already fired or never existed.
   * @param {string} service
   * @param {string} timerId
   * @returns {Promise<boolean>}
   */
  async cancelTimer(service, timerId) {
    return this.call("cancel_timer", service, { id: timerId });
  }

  /**
   * Where an event stands right now (done, dead, pending or unknown).
   * @param {string} service
   * @param {string} eventId
   * @returns {Promise<Status>}
   */
  async status(service, eventId) {
    return this.call("status", service, { id: eventId });
  }

  /**
   * Wait for the consumer's result of an event (the producer's feedback).
   *
   * Throws EventDeadError if the event was dead-lettered, ResultTimeoutError
   * after `timeoutMs`, UnknownEventError if homing has no trace of it (never
   * enqueued, its result outlived result_ttl_ms, or it completed without a
   * result: that leaves no trace unless the service sets done_ttl_ms).
   * @param {string} service
   * @param {string} eventId
   * @param {{timeoutMs?: number | null}} [options] no timeout: wait for good
   * @returns {Promise<unknown>} the result, null if the consumer gave none
   */
  async result(service, eventId, options = {}) {
    const wait = new ResultWait(service, eventId, options.timeoutMs ?? null);
    for (;;) {
      const [settled, value] = wait.check(await this.status(service, eventId));
      if (settled) return value;
      await sleep(/** @type {number} */ (value));
    }
  }

  // -- groups (group-wait.js) -------------------------------------------------

  /**
   * Add up to 1000 events as one group in one atomic call (every id new); `priority` as for enqueueMany.
   * @param {string} service
   * @param {unknown[]} payloads
   * @param {{ids?: string[] | null, priority?: number | ReadonlyArray<number> | null}} [options]
   * @returns {Promise<import("./types.js").Group>}
   */
  async enqueueGroup(service, payloads, options = {}) {
    const [count, args] = groupArgs(payloads, options);
    return producing(service, "enqueue_group", count, options.ids == null,
      async () => groupOf(await this.call("enqueue_group", service, args)));
  }

  /** Where a group stands now (UnknownGroupError once it is gone).
   * @param {string} service @param {string} group @returns {Promise<import("./types.js").GroupStatus>} */
  async groupStatus(service, group) {
    return this.call("group_status", service, { group });
  }

  /**
   * The members' results in order, or null while the group runs; looks once
   * (GroupFailedError once a member was dead-lettered or cancelled).
   * @param {string} service @param {string} group @returns {Promise<unknown[] | null>}
   */
  async groupResult(service, group) {
    return resultsOf(await this.call("group_result", service, { group }));
  }

  /**
   * Wait until every member completed; resolves to their results in order.
   * Throws GroupFailedError at the first member dead-lettered or cancelled,
   * ResultTimeoutError after `timeoutMs`, UnknownGroupError if it is gone.
   * @param {string} service @param {string} group @param {{timeoutMs?: number | null}} [options]
   * @returns {Promise<unknown[]>}
   */
  async waitGroup(service, group, options = {}) {
    return waitGroup(this, service, group, options.timeoutMs ?? null);
  }

  /** Remove a group and its members' results now; resolves to how many went.
   * @param {string} service @param {string} group @returns {Promise<number>} */
  async groupForget(service, group) {
    return this.call("group_forget", service, { group });
  }

  // -- consumer --------------------------------------------------------------

  /**
   * Lease up to count ready events (an empty array if none are ready).
   *
   * Each delivery counts as an attempt at once. With `reserve` (what the
   * Worker uses for its prefetch) it counts only once the handler is known to
   * have started (`start`, or `fail`): a lease that runs out unstarted,
   * because this process died, returns the event uncharged. Honour
   * `Event.mustStart`: call `start` before running such an event.
   * @param {string} service
   * @param {number} [count]
   * @param {{leaseMs?: number | null, reserve?: boolean}} [options]
   * @returns {Promise<import("./types.js").Event[]>}
   */
  async dequeue(service, count = 1, options = {}) {
    return this.call("dequeue", service, { count, leaseMs: given(options.leaseMs), reserve: options.reserve });
  }

  /**
   * Mark reserved events as started ([id, token] or {id, token}); per item
   * the attempt now charged, or its error.
   * @param {string} service
   * @param {ReadonlyArray<LeaseItem>} items
   * @returns {Promise<(number | HomingError)[]>}
   */
  async start(service, items) {
    return this.call("start", service, { items });
  }

  /**
   * Acknowledge an event; throws StaleLeaseError if the lease was reclaimed.
   * @param {string} service
   * @param {string} eventId
   * @param {Token} token
   * @param {unknown} [result] kept for the producer; null or undefined: none
   * @returns {Promise<void>}
   */
  async complete(service, eventId, token, result = null) {
    await this.call("complete", service, { id: eventId, token, result });
  }

  /**
   * Acknowledge up to 1000 items ([id, token, result] or {id, token, result});
   * per item null or its error.
   * @param {string} service
   * @param {ReadonlyArray<CompleteItem>} items
   * @returns {Promise<(HomingError | null)[]>}
   */
  async completeMany(service, items) {
    return this.call("complete_many", service, { items });
  }

  /**
   * Push an event's lease deadline to now + leaseMs; returns the deadline (ms).
   * @param {string} service
   * @param {string} eventId
   * @param {Token} token
   * @param {number | null} [leaseMs] null: the service's lease_ms
   * @returns {Promise<number>}
   */
  async extendLease(service, eventId, token, leaseMs = null) {
    return this.call("extend_lease", service, { id: eventId, token, leaseMs: given(leaseMs) });
  }

  /**
   * Extend several leases in one call; per item the new deadline or its error.
   * @param {string} service
   * @param {ReadonlyArray<LeaseItem>} items
   * @param {number | null} [leaseMs]
   * @returns {Promise<(number | HomingError)[]>}
   */
  async extendMany(service, items, leaseMs = null) {
    return this.call("extend_many", service, { items, leaseMs: given(leaseMs) });
  }

  /**
   * Give up on a leased event: retry after backoff (or delayMs), or dead-letter it.
   * @param {string} service
   * @param {string} eventId
   * @param {Token} token
   * @param {string} [reason]
   * @param {{dead?: boolean, delayMs?: number | null}} [options]
   * @returns {Promise<import("./types.js").FailOutcome>}
   */
  async fail(service, eventId, token, reason = "", options = {}) {
    return this.call("fail", service, { id: eventId, token, reason, dead: options.dead, delayMs: options.delayMs });
  }

  /**
   * Ask for a leased event again in delayMs ms without it counting as an
   * attempt (Oban's snooze). Resolves to FailOutcome("snoozed", dueMs), or
   * FailOutcome("dead", diedMs) once the event had used up the service's
   * max_snoozes (default 100): it cannot snooze for ever unnoticed. Rejects
   * with StaleLeaseError if the lease was lost, like complete.
   * @param {string} service
   * @param {string} eventId
   * @param {Token} token
   * @param {number} delayMs
   * @returns {Promise<{action: "snoozed" | "dead", atMs: number}>}
   */
  async snooze(service, eventId, token, delayMs) {
    return this.call("snooze", service, { id: eventId, token, delayMs });
  }

  /**
   * Record how far the handler got with a leased event: a whole percentage
   * 0..100, fenced by the lease token; status and the dashboard show it.
   * @param {string} service
   * @param {string} eventId
   * @param {Token} token
   * @param {number} value
   * @returns {Promise<number>} the progress now stored
   */
  async progress(service, eventId, token, value) {
    return this.call("progress", service, { id: eventId, token, value });
  }

  /**
   * Hand leased events back unprocessed; they go next and no attempt is counted.
   * @param {string} service
   * @param {ReadonlyArray<LeaseItem>} items
   * @returns {Promise<(HomingError | null)[]>}
   */
  async release(service, items) {
    return this.call("release", service, { items });
  }

  // -- admin and daemons -----------------------------------------------------

  /**
   * Queue lengths, running totals and effective policy of a service, by the
   * script's names ('ready', 'total.completed', 'policy.lease_ms', ...).
   * @param {string} service
   * @returns {Promise<Record<string, number>>}
   */
  async stats(service) {
    return this.call("stats", service);
  }

  /**
   * Override policy fields (null removes an override); returns the effective policy.
   * @param {string} service
   * @param {Record<string, number | null | undefined>} policy
   * @returns {Promise<Record<string, number>>}
   */
  async configure(service, policy) {
    return this.call("configure", service, { policy });
  }

  /**
   * Cancel a queued event: ready, waiting out a retry, or a pending timer.
   * Returns [true, the state it left] or [false, why not]: a leased or
   * reserved event is left to its holder, a dead letter to deadPurge, a
   * recurring timer to recurringRemove; "unknown" for no such event.
   * O(1) whatever the queue's length: a ready event's id stays in the ready
   * list as a dead copy that dequeue skips (docs/architecture.md).
   * @param {string} service
   * @param {string} eventId
   * @returns {Promise<[boolean, string]>}
   */
  async cancel(service, eventId) {
    return this.call("cancel", service, { id: eventId });
  }

  /**
   * Pause a service: dequeue hands out nothing until resume. Producers still
   * enqueue, timers still fire, leases already out run to completion (the
   * policy field paused, shown by stats).
   * @param {string} service
   * @returns {Promise<void>}
   */
  async pause(service) {
    await this.configure(service, { paused: 1 });
  }

  /**
   * Resume a paused service.
   * @param {string} service
   * @returns {Promise<void>}
   */
  async resume(service) {
    await this.configure(service, { paused: null });
  }

  /**
   * Register the recurring timer `name`: every `everyMs`, or by `cron` (five
   * fields, UTC). Each tick fires the event `<name>.<tickMs>` carrying
   * payload, once however many daemons run, never early by the Redis clock.
   * The same name again is the same schedule. `catchUp` (default true): after
   * downtime one event stands for the missed ticks; false: they fire nothing.
   * Each tick fires into the `priority` level (0..9). Returns the next tick (ms since the epoch).
   * @param {string} service
   * @param {string} name
   * @param {unknown} payload
   * @param {{everyMs?: number | null, cron?: string | null, catchUp?: boolean, priority?: number}} [options]
   * @returns {Promise<number>}
   */
  async recurringPut(service, name, payload, options = {}) {
    return this.call("recurring_put", service, {
      name, payload, everyMs: given(options.everyMs), cron: options.cron ?? "",
      catchUp: options.catchUp ?? true, priority: options.priority,
    });
  }

  /**
   * Remove the recurring timer `name` (the events it fired stay); false if none.
   * @param {string} service
   * @param {string} name
   * @returns {Promise<boolean>}
   */
  async recurringRemove(service, name) {
    return this.call("recurring_remove", service, { name });
  }

  /**
   * A page of the service's recurring timers, by name.
   * @param {string} service
   * @param {{offset?: number, count?: number}} [options]
   * @returns {Promise<import("./types.js").RecurringPage>}
   */
  async recurringList(service, options = {}) {
    return this.call("recurring_list", service, { offset: options.offset, count: options.count });
  }

  /**
   * A page of dead letters, oldest first.
   * @param {string} service
   * @param {{offset?: number, count?: number}} [options]
   * @returns {Promise<import("./types.js").DeadPage>}
   */
  async deadList(service, options = {}) {
    return this.call("dead_list", service, { offset: options.offset, count: options.count });
  }

  /**
   * Requeue the named dead letters, or the oldest count; returns [moved, remaining].
   * @param {string} service
   * @param {{ids?: ReadonlyArray<string> | null, count?: number}} [options]
   * @returns {Promise<[number, number]>}
   */
  async deadRequeue(service, options = {}) {
    return this.call("dead_requeue", service, { ids: options.ids, count: options.count });
  }

  /**
   * Delete the named dead letters, or the oldest count; returns [purged, remaining].
   * @param {string} service
   * @param {{ids?: ReadonlyArray<string> | null, count?: number}} [options]
   * @returns {Promise<[number, number]>}
   */
  async deadPurge(service, options = {}) {
    return this.call("dead_purge", service, { ids: options.ids, count: options.count });
  }

  /**
   * One scheduler step for a service: due timers and retries to ready, expired leases reclaimed.
   * @param {string} service
   * @param {number} [limit]
   * @returns {Promise<import("./types.js").PromoteResult>}
   */
  async promote(service, limit = 1000) {
    return this.call("promote", service, { limit });
  }

  /**
   * One distributor step for a service: reclaimed events to retry or to the dead letters.
   * @param {string} service
   * @param {number} [limit]
   * @returns {Promise<import("./types.js").DistributeResult>}
   */
  async distribute(service, limit = 1000) {
    return this.call("distribute", service, { limit });
  }

  /**
   * Record that daemon `name` is alive, by the Redis clock (`homing stats`
   * reads the beats). A script (`beat`) that runs on a full Redis too: a
   * daemon draining a full Redis must not look dead.
   * @param {string} name the daemon's name (role:host:pid), 1..256 bytes
   * @returns {Promise<number>} the beat's time (ms, Redis clock)
   */
  async beat(name) {
    return this.call("beat", "", { name });
  }

  /**
   * Record a worker's beat, for the dashboard (see worker-beat.js); returns
   * how many silent workers' fields it pruned.
   * @param {import("./index.js").WorkerBeatOptions} options
   * @returns {Promise<number>}
   */
  async workerBeat(options) {
    return this.run(workerBeatCall(options));
  }
}
