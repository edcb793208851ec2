// The neutral client vocabulary of calls.json, mapped onto the JavaScript
// Client (python/homing/conformance/calls.py, call for call).
//
// Each function takes the client, the service and the step's decoded
// arguments (snake_case, as in the vectors) and returns the neutral form that
// vectors compare with: plain arrays, objects, numbers and strings, a
// per-item failure as {"$error": CODE}. The runner goes through the public
// Client API, not `ops` directly, because that API is what a user trusts.

import * as envelope from "../envelope.js";
import { HomingError } from "../errors.js";
import { POLICY_FIELDS } from "../argtypes.js";

/** @typedef {import("../client.js").Client} Client */
/** @typedef {Record<string, any>} Args */

/**
 * A decoded payload, or {"$error": code} when the bytes are not an envelope.
 * @param {Uint8Array} raw
 */
export function payloadOf(raw) {
  try {
    return envelope.decode(raw);
  } catch (exc) {
    if (exc instanceof HomingError) return { $error: exc.code };
    throw exc;
  }
}

/** @param {unknown} outcome */
const item = (outcome) => (outcome instanceof HomingError ? { $error: outcome.code } : outcome);

/** @param {Args} a @returns {[string, number][]} */
const pairs = (a) => a.items.map((/** @type {Args} */ i) => [i.id, i.token]);

/** @param {import("../types.js").Event} e */
const event = (e) => ({
  id: e.id,
  token: e.token,
  attempt: e.attempt,
  deadline_ms: e.deadlineMs,
  must_start: e.mustStart,
  payload: payloadOf(e.raw),
});

/** @param {import("../types.js").Status} st */
function status(st) {
  if (st.state === "done") {
    return { state: "done", result: st.rawResult.length ? payloadOf(st.rawResult) : null };
  }
  if (st.state === "dead") return { state: st.state, detail: st.detail, attempt: st.attempt };
  if (st.state === "pending") {
    return { state: st.state, detail: st.detail, attempt: st.attempt, snoozes: st.snoozes, progress: st.progress,
      priority: st.priority };
  }
  return { state: st.state };
}

/** @type {Record<string, (c: Client, s: string, a: Args) => Promise<unknown>>} */
export const CALLS = {
  enqueue: (c, s, a) => c.enqueue(s, a.payload, { key: a.key, id: a.id, priority: a.priority }),
  enqueue_many: (c, s, a) =>
    c.enqueueMany(s, a.payloads, { keys: a.keys, ids: a.ids, priority: a.priorities }),
  create_timer: (c, s, a) =>
    c.createTimer(s, a.payload, { delayMs: a.delay_ms, at: a.at_ms, key: a.key, id: a.id, priority: a.priority }),
  cancel_timer: (c, s, a) => c.cancelTimer(s, a.id),
  cancel: async (c, s, a) => {
    const [cancelled, state] = await c.cancel(s, a.id);
    return { cancelled, state };
  },
  recurring_put: (c, s, a) =>
    c.recurringPut(s, a.name, a.payload, { everyMs: a.every_ms, cron: a.cron, catchUp: a.catch_up,
      priority: a.priority }),
  recurring_remove: (c, s, a) => c.recurringRemove(s, a.name),
  recurring_list: async (c, s, a) => {
    const page = await c.recurringList(s, { offset: a.offset ?? 0, count: a.count ?? 100 });
    return {
      total: page.total,
      schedules: page.schedules.map((r) => ({
        name: r.name, spec: r.spec, next_ms: r.nextMs, fired: r.fired, skipped: r.skipped, priority: r.priority,
      })),
    };
  },
  dequeue: async (c, s, a) =>
    (await c.dequeue(s, a.count ?? 1, { leaseMs: a.lease_ms, reserve: a.reserve ?? false })).map(event),
  dequeue_batch: async (c, s, a) => {
    const b = await c.dequeueBatch(s, a.count ?? 1, { leaseMs: a.lease_ms, reserve: a.reserve ?? false });
    return { wait_ms: b.waitMs, events: b.events.map(event) };
  },
  start: async (c, s, a) => (await c.start(s, pairs(a))).map(item),
  complete: async (c, s, a) => (await c.complete(s, a.id, a.token, a.result)) ?? null,
  complete_many: async (c, s, a) =>
    (await c.completeMany(s, a.items.map((/** @type {Args} */ i) => [i.id, i.token, i.result]))).map(item),
  extend_lease: (c, s, a) => c.extendLease(s, a.id, a.token, a.lease_ms),
  extend_many: async (c, s, a) => (await c.extendMany(s, pairs(a), a.lease_ms)).map(item),
  fail: async (c, s, a) => {
    // reason left out: the method's default (""); given as null, refused as every port refuses it
    const o = await c.fail(s, a.id, a.token, a.reason, { dead: a.dead ?? false, delayMs: a.delay_ms });
    return { action: o.action, at_ms: o.atMs };
  },
  snooze: async (c, s, a) => {
    const o = await c.snooze(s, a.id, a.token, a.delay_ms);
    return { action: o.action, at_ms: o.atMs };
  },
  progress: (c, s, a) => c.progress(s, a.id, a.token, a.value),
  release: async (c, s, a) => (await c.release(s, pairs(a))).map(item),
  status: async (c, s, a) => status(await c.status(s, a.id)),
  // Zero timeout: look once, never wait, so no vector depends on timing.
  result: (c, s, a) => c.result(s, a.id, { timeoutMs: 0 }),
  enqueue_group: async (c, s, a) => {
    const g = await c.enqueueGroup(s, a.payloads, { ids: a.ids, priority: a.priorities });
    return { group: g.id, ids: g.eventIds };
  },
  group_status: async (c, s, a) => {
    const st = await c.groupStatus(s, a.group);
    return { total: st.total, done: st.done, failed: st.failed, finished_ms: st.finishedMs };
  },
  group_result: (c, s, a) => c.groupResult(s, a.group),
  group_forget: (c, s, a) => c.groupForget(s, a.group),
  stats: (c, s) => c.stats(s),
  configure: async (c, s, a) => {
    // The client answers in camelCase; the vocabulary's names are the script's.
    const policy = await c.configure(s, a.policy);
    return Object.fromEntries(
      Object.entries(policy).map(([k, v]) => [Object.hasOwn(POLICY_FIELDS, k) ? POLICY_FIELDS[k] : k, v]),
    );
  },
  dead_list: async (c, s, a) => {
    const page = await c.deadList(s, { offset: a.offset ?? 0, count: a.count ?? 100 });
    const letters = page.letters.map((d) => ({
      id: d.id, died_ms: d.diedMs, attempt: d.attempt, reason: d.reason, payload: payloadOf(d.raw),
    }));
    return { total: page.total, letters };
  },
  dead_requeue: (c, s, a) => c.deadRequeue(s, { ids: a.ids, count: a.count ?? 100 }),
  dead_purge: (c, s, a) => c.deadPurge(s, { ids: a.ids, count: a.count ?? 100 }),
  promote: async (c, s, a) => {
    const r = await c.promote(s, a.limit ?? 1000);
    return {
      timers: r.timers, retries: r.retries, expired: r.expired, more: r.more, next_due_ms: r.nextDueMs,
      returned: r.returned,
    };
  },
  distribute: async (c, s, a) => {
    const r = await c.distribute(s, a.limit ?? 1000);
    return { retried: r.retried, dead: r.dead, more: r.more };
  },
  // A daemon's beat: no service; the time it records is the Redis clock, never frozen.
  beat: async (c, _s, a) => {
    await c.beat(a.name);
    return null;
  },
  // A worker's beat: the service is data (the one it consumes); returns how many it pruned.
  worker_beat: async (c, _s, a) => {
    return c.workerBeat({
      name: a.name, service: a.service, host: a.host, pid: a.pid, concurrency: a.concurrency, held: a.held,
      everyMs: a.every_ms, stopped: a.stopped ?? false, ids: a.ids ?? [], forgetMs: a.forget_ms ?? 3_600_000,
    });
  },
  // The due-time index (global key due, no service) and forget, through the call table:
  // the schedulers and `homing services` are Python's.
  due_take: (c, _s, a) => c.call("due_take", "", a),
  due_settle: (c, _s, a) => c.call("due_settle", "", a),
  forget: (c, s) => c.call("forget", s, {}),
};
