// The table-driven call layer without Redis (src/calls.js): for each call of
// the manifest's table, the script it runs, the exact ARGV it sends and the
// values it makes of a reply. A conformance runner drives the same Calls.

import assert from "node:assert/strict";
import { test } from "node:test";

import { decode } from "../src/envelope.js";
import { BY_CODE, HomingError } from "../src/errors.js";
import {
  Batch,
  DeadPage,
  DistributeResult,
  Event,
  FailOutcome,
  InvalidArgumentError,
  PromoteResult,
  RecurringPage,
  StaleLeaseError,
  Status,
  UnknownEventError,
  ops,
} from "../src/index.js";
import { SCRIPTS } from "../src/manifest.js";
import { workerBeatCall } from "../src/worker-beat.js";

const { call, CALLS } = ops;
const b = (/** @type {string} */ s) => Buffer.from(s);
/** ARGV as text, envelopes decoded: what a reader compares. */
const argv = (/** @type {import("../src/index.js").Call} */ c) =>
  c.args.map((a) => (Buffer.isBuffer(a) ? { env: decode(a) } : a));

test("every call of the table builds a Call of a manifest script; every script is reached", () => {
  const samples = /** @type {Record<string, Record<string, unknown>>} */ ({
    enqueue: { payload: 1 }, enqueue_many: { payloads: [1] }, create_timer: { payload: 1, delayMs: 5 },
    cancel_timer: { id: "t" }, status: { id: "i" }, result: { id: "i" }, dequeue: {}, dequeue_batch: {},
    start: { items: [["i", 1]] }, complete: { id: "i", token: 1 }, complete_many: { items: [["i", 1]] },
    extend_lease: { id: "i", token: 1 }, extend_many: { items: [["i", 1]] }, fail: { id: "i", token: 1 },
    release: { items: [["i", 1]] }, stats: {}, configure: { policy: {} }, dead_list: {}, dead_requeue: {},
    dead_purge: {}, promote: {}, distribute: {}, beat: { name: "d:h:1" },
    worker_beat: { name: "w", service: "s", host: "h", pid: 1, concurrency: 1, held: 0, everyMs: 10 },
    cancel: { id: "i" }, recurring_put: { name: "n", payload: 1, everyMs: 1000 },
    recurring_remove: { name: "n" }, recurring_list: {},
    due_take: {}, due_settle: { claim: 2 ** 50 + 1, items: [["s", 5]] }, forget: {},
    snooze: { id: "i", token: 1, delayMs: 10 }, progress: { id: "i", token: 1, value: 5 },
    enqueue_group: { payloads: [1, 2] }, group_status: { group: "g1" }, group_result: { group: "g1" },
    group_forget: { group: "g1" },
  });
  assert.deepEqual(Object.keys(CALLS).sort(), Object.keys(samples).sort(), "a sample for each call");
  const scripts = new Set();
  for (const [name, args] of Object.entries(samples)) {
    const c = call(name, name === "beat" ? "" : "s", args, 100);
    assert.ok(Object.hasOwn(SCRIPTS, c.script), name);
    assert.equal(c.script, CALLS[name].script);
    assert.ok(c.args.every((a) => typeof a === "string" || Buffer.isBuffer(a)), name);
    scripts.add(c.script);
  }
  assert.deepEqual([...scripts].sort(), Object.keys(SCRIPTS).sort());
});

test("enqueue_group: max, count, then id, envelope, priority per member; the group and its ids come back", () => {
  const c = call("enqueue_group", "s", { payloads: [{ a: 1 }, "x"], ids: ["m1", "m2"] }, 500);
  assert.equal(c.script, "group_enqueue");
  assert.deepEqual(argv(c), ["500", "2", "m1", { env: { a: 1 } }, "0", "m2", { env: "x" }, "0"]);
  const levels = call("enqueue_group", "s", { payloads: [1, 2], ids: ["a", "b"], priorities: [9, 0] }, 500);
  assert.deepEqual(argv(levels).slice(2), ["a", { env: 1 }, "9", "b", { env: 2 }, "0"]);
  assert.deepEqual(c.parse([b("g3"), b("m1"), b("m2")]), { group: "g3", items: [{ id: "m1" }, { id: "m2" }] });
  const st = call("group_status", "s", { group: "g3" }, 500).parse([2, 1, b(""), 0]);
  assert.deepEqual([st.total, st.done, st.failed, st.finishedMs, st.finished], [2, 1, "", 0, false]);
});

test("enqueue_many: max, count, then id, envelope, key, priority per event; the ids come back", () => {
  const c = call("enqueue_many", "s", { payloads: [{ a: 1 }, "x"], keys: ["k", null], ids: ["id-1", "id-2"] }, 500);
  assert.equal(c.script, "enqueue");
  assert.deepEqual(argv(c), ["500", "2", "id-1", { env: { a: 1 } }, "k", "0", "id-2", { env: "x" }, "", "0"]);
  const levels = call("enqueue_many", "s", { payloads: [1, 2], ids: ["a", "b"], priorities: [9, 0] }, 500);
  assert.deepEqual(argv(levels).slice(2), ["a", { env: 1 }, "", "9", "b", { env: 2 }, "", "0"]);
  assert.deepEqual(c.parse([b("id-1"), 1, b("id-2"), 0]), ["id-1", "id-2"]);
  const made = call("enqueueMany", "s", { payloads: new Set([1]) }, 500); // camelCase name, any iterable
  assert.match(String(made.args[2]), /^[0-9a-f]{32}$/);
  assert.deepEqual(argv(made).slice(3), [{ env: 1 }, "", "0"]);
  const one = call("enqueue", "s", { payload: 2, id: "e", key: "k" }, 500); // the batch of one
  assert.deepEqual(argv(one), ["500", "1", "e", { env: 2 }, "k", "0"]);
  assert.deepEqual(argv(call("enqueue", "s", { payload: 2, id: "e", priority: 3 }, 500)).slice(5), ["3"]);
  assert.equal(one.parse([b("e"), 1]), "e");
});

test("create_timer: delay_ms or at_ms, the other ''", () => {
  const delay = call("create_timer", "s", { payload: 1, delayMs: 1500.7, id: "t1", key: "k" }, 100);
  assert.deepEqual(argv(delay), ["100", "t1", { env: 1 }, "k", "1500", "", "0"]);
  assert.deepEqual(call("create_timer", "s", { payload: 1, at_ms: 99, id: "t" }).args.slice(4), ["", "99", "0"]);
  assert.equal(delay.parse([b("t1"), 1, 123]), "t1");
  const at = ops.createTimer("s", 1, 100, { at: new Date(1_700_000_000_123), id: "t" });
  assert.deepEqual(at.args.slice(4), ["", "1700000000123", "0"]);
});

test("dequeue: count, lease_ms, reserve; events with the head's deadline, payloads decoded lazily", () => {
  assert.deepEqual(call("dequeue", "s", { count: 3, leaseMs: 2500 }).args, ["3", "2500", "0"]);
  assert.deepEqual(call("dequeue", "s").args, ["1", "0", "0"]);
  assert.deepEqual(call("dequeue", "s", { reserve: true }).args, ["1", "0", "1"]);
  const env = call("enqueue", "s", { payload: "hello" }).args[3];
  const [ev, bad] = call("dequeue", "s").parse([9000, 0, b("a"), 7, 2, env, 0, b("z"), 8, 1, b("junk"), 1]);
  assert.ok(ev instanceof Event);
  assert.deepEqual([ev.service, ev.id, ev.token, ev.attempt, ev.deadlineMs, ev.mustStart], ["s", "a", 7, 2, 9000, false]);
  assert.equal(ev.payload, "hello");
  assert.equal(bad.mustStart, true);
  assert.throws(() => bad.payload, { name: "CorruptEnvelopeError" });
  assert.deepEqual(call("dequeue", "s").parse([9000, 250]), []);
});

test("dequeue_batch: the events and the reply's wait_ms (a limit or the pause held events back)", () => {
  assert.deepEqual(call("dequeue_batch", "s", { count: 3, reserve: true }).args, ["3", "0", "1"]);
  const env = call("enqueue", "s", { payload: "hello" }).args[3];
  const batch = call("dequeue_batch", "s").parse([9000, 1000, b("a"), 7, 2, env, 0]);
  assert.ok(batch instanceof Batch);
  assert.equal(batch.waitMs, 1000);
  assert.deepEqual(batch.events.map((e) => [e.service, e.id, e.token, e.deadlineMs, e.payload]), [["s", "a", 7, 9000, "hello"]]);
  assert.deepEqual(call("dequeue_batch", "s").parse([9000, 40]), new Batch([], 40));
  // A reply of the wrong length is refused: a cut row first, then a cut head.
  for (const name of ["dequeue", "dequeue_batch"]) {
    assert.throws(() => call(name, "s").parse([9000, 0, b("a"), 7, 2, env]),
      { name: "HomingError", message: /reply has 4 fields, the table says 5/ });
    assert.throws(() => call(name, "s").parse([9000]), { name: "HomingError", message: /reply has 1 fields, the table says 2/ });
  }
});

test("records replies of each shape: record pages, neutral objects in camelCase, a cut reply refused", () => {
  const recurring = call("recurring_list", "s").parse([1, b("r"), b("every 5 skip"), 10, 2, 0, 3]);
  assert.ok(recurring instanceof RecurringPage);
  assert.equal(recurring.total, 1);
  assert.deepEqual({ ...recurring.schedules[0] }, { name: "r", spec: "every 5 skip", nextMs: 10, fired: 2, skipped: 0, priority: 3 });
  assert.deepEqual(call("due_take", "s").parse([5, -1, 7, b("s1"), b("s2")]),
    { now: 5, nextDue: -1, nextClaim: 7, items: [{ service: "s1" }, { service: "s2" }] });
  assert.deepEqual(call("group_result", "s", { group: "g" }).parse([1, b("a"), b("")]),
    { finished: true, items: [{ id: "a", rawResult: Buffer.alloc(0) }] });
  assert.deepEqual(call("enqueue_many", "s", { payloads: [1, 2] }).parse([b("a"), 1, b("b"), 0]), ["a", "b"]);
  assert.equal(call("enqueue", "s", { payload: 1 }).parse([b("a"), 1]), "a");
  assert.throws(() => call("dead_list", "s").parse([3, b("x"), 111, 2, b("bad")]),
    { name: "HomingError", message: /^reply has 4 fields, the table says 5$/ });
  assert.throws(() => call("dead_list", "s").parse([]), { name: "HomingError", message: /^reply has 0 fields, the table says 1$/ });
  assert.throws(() => call("due_take", "s").parse([5, -1]), { name: "HomingError", message: /^reply has 2 fields, the table says 3$/ });
});

test("batch items are [id, token, result] or {id, token, result}; per item null, a number or its error", () => {
  const c = call("complete_many", "s", { items: [["a", 1, null], { id: "b", token: 2n, result: 5 }, { id: "c", token: 3 }] }, 100);
  // A token is an integer (a number or a bigint), never text: as in Python and Erlang.
  assert.throws(() => call("complete_many", "s", { items: [{ id: "c", token: "3" }] }, 100), InvalidArgumentError);
  assert.deepEqual(argv(c), ["100", "3", "a", "1", "", "b", "2", { env: 5 }, "c", "3", ""]);
  // A number token must be a safe integer in range, as a bigint or digits are.
  for (const token of [-1, 1.5, 2 ** 53, Number.NaN]) {
    assert.throws(() => call("complete_many", "s", { items: [["a", token]] }), { name: "InvalidArgumentError" }, String(token));
  }
  assert.deepEqual(call("complete_many", "s", { items: [["a", 2 ** 53 - 1]] }).args.slice(2, 4), ["a", String(2 ** 53 - 1)]);
  const out = c.parse([b("OK"), b("STALE_LEASE"), b("UNKNOWN_EVENT")]);
  assert.equal(out[0], null);
  assert.ok(out[1] instanceof StaleLeaseError);
  assert.match(out[1].message, /^STALE_LEASE: event b \(token 2\): The lease token is not/);
  assert.ok(out[2] instanceof UnknownEventError);
  const ext = call("extend_many", "s", { items: [["a", 1], ["b", 2]], leaseMs: 100 });
  assert.deepEqual(ext.args, ["100", "2", "a", "1", "b", "2"]);
  const parsed = ext.parse([12345, b("STALE_LEASE")]);
  assert.equal(parsed[0], 12345);
  assert.ok(parsed[1] instanceof StaleLeaseError);
  const start = call("start", "s", { items: [["a", 1000000001], { id: "b", token: 2n }] });
  assert.deepEqual(start.args, ["2", "a", "1000000001", "b", "2"]);
  assert.equal(start.parse([3, b("OK")])[0], 3);
  assert.deepEqual(call("release", "s", { items: [{ id: "a", token: 4 }] }).args, ["1", "a", "4"]);
  // A lease item has no result: a third field is refused, not dropped.
  assert.throws(() => call("release", "s", { items: [["a", 4, "x"]] }), InvalidArgumentError);
});

test("a single form is the batch of one: its value, or its item's error thrown", () => {
  const c = call("complete", "s", { id: "a", token: 7, result: { ok: true } }, 100);
  assert.deepEqual(argv(c), ["100", "1", "a", "7", { env: { ok: true } }]);
  assert.equal(c.parse([b("OK")]), null);
  assert.throws(() => c.parse([b("STALE_LEASE")]), { name: "StaleLeaseError", message: /^STALE_LEASE: event a \(token 7\)/ });
  const ext = call("extend_lease", "s", { id: "a", token: 7 });
  assert.deepEqual(ext.args, ["0", "1", "a", "7"]);
  assert.equal(ext.parse([555]), 555);
});

test("per-item errors read on one line, for every code", () => {
  const codes = Object.keys(BY_CODE);
  const items = codes.map((_, i) => /** @type {[string, number]} */ ([`e${i}`, i + 1]));
  for (const name of ["complete_many", "extend_many", "release", "start"]) {
    const errors = call(name, "s", { items }).parse(codes.map((c) => b(c)));
    errors.forEach((/** @type {HomingError} */ err, /** @type {number} */ i) => {
      assert.ok(err instanceof BY_CODE[/** @type {keyof typeof BY_CODE} */ (codes[i])]);
      assert.match(err.message, new RegExp(`^${codes[i]}: event e${i} \\(token ${i + 1}\\): \\S`));
      assert.ok(!/\n|\s{2}|\s$/.test(err.message), err.message);
    });
  }
});

test("fail, status, configure, stats and the dead letters", () => {
  const fail = call("fail", "s", { id: "i", token: 4, reason: "why", dead: true });
  assert.deepEqual(fail.args, ["i", "4", "why", "1", ""]);
  assert.deepEqual(call("fail", "s", { id: "i", token: 4, delayMs: 10 }).args, ["i", "4", "", "0", "10"]);
  const outcome = fail.parse([b("retry"), 777]);
  assert.ok(outcome instanceof FailOutcome);
  assert.deepEqual({ ...outcome }, { action: "retry", atMs: 777 });

  const st = call("status", "s", { id: "i" });
  assert.deepEqual(st.args, ["i"]);
  assert.deepEqual({ ...st.parse([b("pending"), b("w"), 2, 0, 0, 0]) }, { ...new Status("pending", "waiting", 2) });
  assert.equal(st.parse([b("pending"), b("v"), 0, 0, 0, 0]).detail, "reserved");
  assert.deepEqual([st.parse([b("pending"), b("l"), 1, 2, 40, 7])].map((x) => [x.snoozes, x.progress, x.priority]),
    [[2, 40, 7]]);
  assert.equal(st.parse([b("dead"), b("reason"), 3]).detail, "reason");
  assert.equal(st.parse([b("unknown")]).state, "unknown");
  assert.equal(st.parse([b("done"), b("")]).result, null);
  assert.throws(() => st.parse([b("lost")]), HomingError);

  const conf = call("configure", "s", { policy: { leaseMs: 100, backoff_jitter: 0.5, maxAttempts: null } });
  assert.deepEqual(conf.args, ["lease_ms", "100", "backoff_jitter", "0.5", "max_attempts", ""]);
  assert.deepEqual(conf.parse([b("lease_ms"), b("100"), b("backoff_jitter"), b("0.5")]), { leaseMs: 100, backoffJitter: 0.5 });
  const stats = call("stats", "s");
  assert.deepEqual(stats.args, []);
  // The script's names are kept; text numbers are read, other text stays text.
  assert.deepEqual(stats.parse([b("ready"), 3, b("policy.backoff_jitter"), b("0.5"), b("test_clock"), b("tomorrow")]),
    { ready: 3, "policy.backoff_jitter": 0.5, test_clock: "tomorrow" });

  assert.deepEqual(call("dead_requeue", "s", { count: 7 }).args, ["7"]);
  assert.deepEqual(call("dead_purge", "s", { ids: ["a", "b"] }).args, ["100", "a", "b"]);
  assert.deepEqual(call("dead_purge", "s").parse([2, 5]), [2, 5]);
  const list = call("dead_list", "s", { offset: 5, count: 10 });
  assert.deepEqual(list.args, ["5", "10"]);
  const page = list.parse([3, b("x"), 111, 2, b("bad"), b("")]);
  assert.ok(page instanceof DeadPage);
  assert.equal(page.total, 3);
  assert.deepEqual({ ...page.letters[0], raw: null }, { id: "x", diedMs: 111, attempt: 2, reason: "bad", raw: null });
});

test("the daemons' steps and the beat", () => {
  const promote = call("promote", "s", { limit: 10 });
  assert.deepEqual(promote.args, ["10"]);
  const r = promote.parse([1, 2, 3, 0, -1, 4]);
  assert.ok(r instanceof PromoteResult);
  assert.deepEqual({ ...r }, { timers: 1, retries: 2, expired: 3, more: false, nextDueMs: -1, returned: 4 });
  assert.deepEqual(call("distribute", "s").args, ["1000"]);
  const d = call("distribute", "s").parse([1, 2, 1]);
  assert.ok(d instanceof DistributeResult);
  assert.deepEqual({ ...d }, { retried: 1, dead: 2, more: true });
  // beat takes no service: its only key is the global <prefix>:daemons.
  const beat = call("beat", "", { name: "scheduler:h:1" });
  assert.deepEqual([beat.script, beat.service, beat.args, beat.parse(1234)], ["beat", "", ["scheduler:h:1"], 1234]);
  assert.equal(call("cancel_timer", "s", { id: "t" }).parse(1), true);
  // worker_beat: its only key is the global <prefix>:workers; service is data too.
  const worker = { name: "w", service: "s", host: "h", pid: 7, concurrency: 2, held: 1, everyMs: 10 };
  const wb = call("worker_beat", "s", { ...worker, ids: ["e1"] });
  assert.deepEqual(wb.args, ["w", "s", "h", "7", "2", "1", "10", "0", "3600000", "e1"]);
  assert.equal(wb.parse([123, 4]), 4);
  assert.deepEqual(workerBeatCall({ ...worker, ids: [], stopped: true }).args,
    ["w", "s", "h", "7", "2", "1", "10", "1", "3600000"]);
  assert.throws(() => workerBeatCall({ ...worker, service: "bad:name" }), { name: "InvalidNameError" });
});

test("what the table does not know is refused, typed, before anything is built", () => {
  assert.throws(() => call("enqueue_one", "s", {}), { name: "InvalidArgumentError", message: /no call "enqueue_one"/ });
  assert.throws(() => call("enqueue", "s", { payload: 1, colour: "red" }), /enqueue takes no argument colour/);
  assert.throws(() => call("dequeue", "s", { count: null }), /count must be a whole number/); // null is not "left out"
  assert.throws(() => call("dequeue", "s", { leaseMs: 2 ** 40 }), /leaseMs must be a whole number in \[0, 43200000\]/);
  assert.throws(() => call("dequeue", "bad:name"), { name: "InvalidNameError" });
  assert.throws(() => call("enqueue_many", "s", { payloads: "abc" }), /payloads takes a list \(or any iterable\), got the string "abc"/);
  assert.throws(() => call("dead_purge", "s", { ids: [] }), /ids takes none or a list of 1\.\.1000 items, got an array of 0/); // never "the oldest"
  assert.throws(() => call("stats", "s", /** @type {any} */ ([1])), /takes an object of arguments/);
});

test("the positional ops functions build the very Calls of call()", () => {
  const same = (/** @type {import("../src/index.js").Call} */ a, /** @type {import("../src/index.js").Call} */ c) =>
    assert.deepEqual([a.script, a.service, a.args], [c.script, c.service, c.args]);
  same(ops.dequeue("s", 2, null, true), call("dequeue", "s", { count: 2, reserve: true }));
  same(ops.fail("s", "i", 1, "r", false, null), call("fail", "s", { id: "i", token: 1, reason: "r" }));
  same(ops.deadRequeue("s", null, 9), call("dead_requeue", "s", { count: 9 }));
  same(ops.completeMany("s", [["i", 1]], 50), call("complete_many", "s", { items: [["i", 1]] }, 50));
  same(ops.beat("d:h:1"), call("beat", "", { name: "d:h:1" }));
});

test("an entry the table gains is callable with no code: neutral records in camelCase", () => {
  // enqueue_many's entry without its pick, as a new calls.json entry would be.
  const entry = structuredClone(CALLS.enqueue_many);
  delete entry.pick;
  entry.shape = {}; // what the build derives for an entry with no pick
  CALLS.enqueue_added = entry;
  try {
    const c = call("enqueueAdded", "s", { payloads: [1, 2], ids: ["a", "b"] }, 100);
    assert.deepEqual(argv(c), ["100", "2", "a", { env: 1 }, "", "0", "b", { env: 2 }, "", "0"]);
    assert.deepEqual(c.parse([b("a"), 1, b("b"), 0]), { items: [{ id: "a", added: true }, { id: "b", added: false }] });
    assert.throws(() => c.parse([b("a"), 1, b("b")]), { name: "HomingError", message: /reply has 1 fields, the table says 2/ });
  } finally {
    delete CALLS.enqueue_added;
  }
});
