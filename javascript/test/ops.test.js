// The sans-IO operations without Redis: the script each one calls, the
// arguments it sends and how it reads a reply. A conformance runner drives the
// same Call objects.

import assert from "node:assert/strict";
import { test } from "node:test";

import { decode } from "../src/envelope.js";
import { BY_CODE } from "../src/errors.js";
import { Event, Status, StaleLeaseError, UnknownEventError, ops } from "../src/index.js";
import { SCRIPTS } from "../src/manifest.js";
import { workerBeatCall } from "../src/worker-beat.js";

const b = (/** @type {string} */ s) => Buffer.from(s);

test("every operation names a script of the manifest", () => {
  const calls = [
    ops.enqueueMany("s", [1], 100),
    ops.createTimer("s", 1, 100, { delayMs: 5 }),
    ops.cancelTimer("s", "t"),
    ops.dequeue("s", 1),
    ops.completeMany("s", [["i", 1]], 100),
    ops.extendMany("s", [["i", 1]]),
    ops.fail("s", "i", 1, "r", false),
    ops.releaseMany("s", [["i", 1]]),
    ops.status("s", "i"),
    ops.stats("s"),
    ops.configure("s", {}),
    ops.deadList("s", 0, 10),
    ops.deadRequeue("s", null, 10),
    ops.deadPurge("s", ["a"], 10),
    ops.promote("s", 10),
    ops.distribute("s", 10),
    ops.startMany("s", [["i", 1]]),
  ];
  for (const c of calls) {
    assert.ok(Object.hasOwn(SCRIPTS, c.script), c.script);
    assert.equal(c.service, "s");
    assert.ok(c.args.every((a) => typeof a === "string" || Buffer.isBuffer(a)), c.script);
  }
  // beat takes no service: its only key is the global <prefix>:daemons.
  const beat = ops.beat("scheduler:h:1");
  assert.deepEqual([beat.script, beat.service, beat.args, beat.parse(1234)], ["beat", "", ["scheduler:h:1"], 1234]);
  // worker_beat neither: its only key is the global <prefix>:workers (src/worker-beat.js).
  const workerBeat = workerBeatCall({ name: "w", service: "s", host: "h", pid: 1, concurrency: 1, held: 0, everyMs: 10 });
  assert.equal(workerBeat.service, "");
  assert.equal(new Set([...calls, beat, workerBeat].map((c) => c.script)).size, Object.keys(SCRIPTS).length);
});

test("enqueueMany sends max, count, then id, envelope, key per event", () => {
  const c = ops.enqueueMany("s", [{ a: 1 }, "x"], 500, ["k", null], ["id-1", "id-2"]);
  assert.equal(c.script, "enqueue");
  assert.deepEqual(c.args.filter((_, i) => i !== 3 && i !== 6), ["500", "2", "id-1", "k", "id-2", ""]);
  assert.deepEqual(decode(/** @type {Buffer} */ (c.args[3])), { a: 1 });
  assert.deepEqual(c.parse([b("id-1"), 1, b("id-2"), 0]), ["id-1", "id-2"]);
  const generated = ops.enqueueMany("s", [1], 500);
  assert.match(String(generated.args[2]), /^[0-9a-f]{32}$/);
});

test("createTimer: 'in' for a delay, 'at' for a Date or epoch ms", () => {
  const delay = ops.createTimer("s", 1, 100, { delayMs: 1500.7, id: "t1", key: "k" });
  assert.deepEqual([delay.args[1], delay.args[3], delay.args[4], delay.args[5]], ["t1", "k", "1500", ""]);
  const at = ops.createTimer("s", 1, 100, { at: new Date(1_700_000_000_123) });
  assert.deepEqual(at.args.slice(4), ["", "1700000000123"]);
  assert.deepEqual(ops.createTimer("s", 1, 100, { at: 99 }).args.slice(4), ["", "99"]);
  assert.equal(delay.parse([b("t1"), 1, 123]), "t1");
});

test("dequeue parses events; their payload decodes lazily", () => {
  const c = ops.dequeue("s", 3, 2500);
  assert.deepEqual(c.args, ["3", "2500", "0"]);
  assert.deepEqual(ops.dequeue("s", 1).args, ["1", "0", "0"]);
  assert.deepEqual(ops.dequeue("s", 1, null, true).args, ["1", "0", "1"]);
  const env = ops.enqueueMany("s", ["hello"], 100).args[3];
  const [ev, bad] = c.parse([9000, b("a"), 7, 2, env, 0, b("z"), 8, 1, b("junk"), 1]);
  assert.ok(ev instanceof Event);
  assert.deepEqual([ev.service, ev.id, ev.token, ev.attempt, ev.deadlineMs, ev.mustStart], ["s", "a", 7, 2, 9000, false]);
  assert.equal(ev.payload, "hello");
  assert.equal(bad.mustStart, true);
  assert.throws(() => bad.payload, { name: "CorruptEnvelopeError" });
});

test("start sends count, then id, token per item; per item the attempt or its error", () => {
  const c = ops.startMany("s", [["a", 1000000001], { id: "b", token: 2n }]);
  assert.deepEqual([c.script, c.args], ["start", ["2", "a", "1000000001", "b", "2"]]);
  const [attempt, stale] = c.parse([3, b("STALE_LEASE")]);
  assert.equal(attempt, 3);
  assert.ok(stale instanceof StaleLeaseError);
  assert.match(stale.message, /^STALE_LEASE: event b \(token 2\): /);
});

test("promote reads the returned count; status names come from the manifest", () => {
  const r = ops.promote("s", 10).parse([1, 2, 3, 0, -1, 4]);
  assert.deepEqual({ ...r }, { timers: 1, retries: 2, expired: 3, more: false, nextDueMs: -1, returned: 4 });
  const st = ops.status("s", "i");
  assert.equal(st.parse([b("pending"), b("v"), 0]).detail, "reserved");
  assert.equal(st.parse([b("pending"), b("l"), 1]).detail, "leased");
});

test("batch items are [id, token, result] or {id, token, result}", () => {
  const c = ops.completeMany("s", [["a", 1, null], { id: "b", token: 2n, result: 5 }, { id: "c", token: "3" }], 100);
  assert.deepEqual(c.args.slice(0, 5), ["100", "3", "a", "1", ""]);
  assert.deepEqual([c.args[5], c.args[6]], ["b", "2"]);
  assert.equal(decode(/** @type {Buffer} */ (c.args[7])), 5);
  assert.deepEqual(c.args.slice(8), ["c", "3", ""]);
  const out = c.parse([b("OK"), b("STALE_LEASE"), b("UNKNOWN_EVENT")]);
  assert.equal(out[0], null);
  assert.ok(out[1] instanceof StaleLeaseError);
  assert.match(out[1].message, /^STALE_LEASE: event b \(token 2\): The lease token is not/);
  assert.ok(out[2] instanceof UnknownEventError);
  const ext = ops.extendMany("s", [["a", 1], ["b", 2]], 100);
  assert.deepEqual(ext.args, ["100", "2", "a", "1", "b", "2"]);
  const parsed = ext.parse([12345, b("STALE_LEASE")]);
  assert.equal(parsed[0], 12345);
  assert.ok(parsed[1] instanceof StaleLeaseError);
});

test("per-item errors read on one line, for every code", () => {
  const codes = Object.keys(BY_CODE);
  const items = codes.map((_, i) => /** @type {[string, number]} */ ([`e${i}`, i + 1]));
  const completed = ops.completeMany("s", items, 100).parse(codes.map((c) => b(c)));
  const extended = ops.extendMany("s", items).parse(codes.map((c) => b(c)));
  const released = ops.releaseMany("s", items).parse(codes.map((c) => b(c)));
  const started = ops.startMany("s", items).parse(codes.map((c) => b(c)));
  for (const errors of [completed, extended, released, started]) {
    errors.forEach((err, i) => {
      assert.ok(err instanceof BY_CODE[/** @type {keyof typeof BY_CODE} */ (codes[i])]);
      assert.match(err.message, new RegExp(`^${codes[i]}: event e${i} \\(token ${i + 1}\\): \\S`));
      assert.ok(!/\n|\s{2}|\s$/.test(err.message), err.message);
    });
  }
});

test("fail, status, configure and dead letters", () => {
  assert.deepEqual(ops.fail("s", "i", 4, "why", true).args, ["i", "4", "why", "1", ""]);
  assert.deepEqual(ops.fail("s", "i", 4, "why", false, 10).args, ["i", "4", "why", "0", "10"]);
  const st = ops.status("s", "i");
  assert.deepEqual({ ...st.parse([b("pending"), b("w"), 2]) }, { ...new Status("pending", "waiting", 2) });
  assert.equal(st.parse([b("dead"), b("reason"), 3]).detail, "reason");
  assert.equal(st.parse([b("unknown")]).state, "unknown");
  assert.equal(st.parse([b("done"), b("")]).result, null);
  const conf = ops.configure("s", { leaseMs: 100, backoff_jitter: 0.5, maxAttempts: null });
  assert.deepEqual(conf.args, ["lease_ms", "100", "backoff_jitter", "0.5", "max_attempts", ""]);
  assert.deepEqual(conf.parse([b("lease_ms"), b("100"), b("backoff_jitter"), b("0.5")]), {
    leaseMs: 100,
    backoffJitter: 0.5,
  });
  assert.deepEqual(ops.deadRequeue("s", null, 7).args, ["7"]);
  assert.deepEqual(ops.deadPurge("s", ["a", "b"], 7).args, ["7", "a", "b"]);
  const page = ops.deadList("s", 5, 10).parse([3, b("x"), 111, 2, b("bad"), b("")]);
  assert.equal(page.total, 3);
  assert.deepEqual({ ...page.letters[0], raw: null }, { id: "x", diedMs: 111, attempt: 2, reason: "bad", raw: null });
});

test("stats keeps the script's names and reads policy fractions", () => {
  const out = ops.stats("s").parse([b("ready"), 3, b("total.enqueued"), 9, b("policy.backoff_jitter"), b("0.5"), b("policy.lease_ms"), b("30000")]);
  assert.deepEqual(out, { ready: 3, "total.enqueued": 9, "policy.backoff_jitter": 0.5, "policy.lease_ms": 30000 });
});
