// Python <-> JavaScript on one Redis: the two clients share scripts, keys,
// envelope and error codes, so events, results, timers, retries and dead
// letters cross languages in both directions. The Python side runs as
// fixtures/interop.py in the repository's venv (../.venv), one command per
// process; without the venv these tests are skipped.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, test } from "node:test";

import { EventDeadError, Worker, envelope } from "../src/index.js";
import { compare } from "../src/conformance/runner.js";
import { toValue } from "../src/conformance/loader.js";
import { NO_PYTHON, PAYLOADS, Scripted, python } from "./fixtures/interop.js";
import { connect, privateServer, recordingLogger, runScheduler, started, until } from "./helpers.js";

const skip = NO_PYTHON;
const server = skip ? null : await privateServer();
const client = skip ? null : await connect(/** @type {any} */ (server).url);
after(() => client?.close());
const c = () => /** @type {import("../src/index.js").Client} */ (client);
const base = () => ({ url: /** @type {any} */ (server).url, prefix: c().prefix });
const ids = (/** @type {string} */ tag, /** @type {number} */ n) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

/** @param {unknown} expected conformance JSON @param {unknown} actual @param {string} where */
function same(expected, actual, where) {
  assert.deepEqual(compare(expected, actual, where, "value"), []);
}

/** A JS worker running Scripted (and the scheduler it needs for timers and retries). */
async function jsWorker(/** @type {string} */ service) {
  const logger = recordingLogger(); // the failures are on purpose: keep them out of the output
  const worker = await started(new Worker(c(), service, Scripted, { concurrency: 2, logger }));
  const scheduler = runScheduler(c(), service);
  return { worker, stop: async () => Promise.all([worker.shutdown(), scheduler.stop()]) };
}

test("Python producer -> JS consumer: every payload type arrives intact, byte for byte", { skip }, async () => {
  const service = "py-to-js";
  // A null result (one of the payloads) leaves a trace only with doneTtlMs.
  await c().configure(service, { doneTtlMs: 600_000 });
  const want = ids("p", PAYLOADS.length);
  const [{ ids: got }] = await python({ ...base(), op: "enqueue", service, payloads: PAYLOADS, ids: want }).done();
  assert.deepEqual(got, want);
  const events = await c().dequeue(service, PAYLOADS.length);
  assert.deepEqual(events.map((e) => e.id), want);
  events.forEach((ev, i) => {
    same(PAYLOADS[i], ev.payload, `payload ${i}`);
    // Re-encoding gives Python's bytes (a whole float is the one value JavaScript cannot keep).
    if (!JSON.stringify(PAYLOADS[i]).includes("$float")) {
      assert.equal(envelope.encode(ev.payload).toString("hex"), Buffer.from(ev.raw).toString("hex"), `payload ${i}`);
    }
  });
  // JS results -> Python's result().
  await c().completeMany(service, events.map((ev) => [ev.id, ev.token, ev.payload]));
  const [{ results }] = await python({ ...base(), op: "results", service, ids: want }).done();
  results.forEach((/** @type {any} */ r, /** @type {number} */ i) => same(PAYLOADS[i], toValue(r.value), `result ${i}`));
});

test("JS producer -> Python consumer: every payload type arrives intact, byte for byte", { skip }, async () => {
  const service = "js-to-py";
  await c().configure(service, { doneTtlMs: 600_000 }); // a null result leaves a trace
  const want = ids("j", PAYLOADS.length);
  await c().enqueueMany(service, PAYLOADS.map((p) => toValue(p)), { ids: want });
  const [{ events }] = await python({ ...base(), op: "consume", service, count: PAYLOADS.length }).done();
  assert.deepEqual(events.map((/** @type {any} */ e) => e.id), want);
  events.forEach((/** @type {any} */ ev, /** @type {number} */ i) => {
    same(PAYLOADS[i], toValue(ev.payload), `payload ${i}`);
    assert.equal(ev.same_bytes, true, `Python re-encodes payload ${i} to the same bytes`);
  });
  // Python results (its consume completes each event with its payload) -> JS result().
  for (const [i, id] of want.entries()) same(PAYLOADS[i], await c().result(service, id), `result ${i}`);
});

test("a Python producer waits with result() for a JS worker", { skip }, async () => {
  const service = "py-waits";
  const payloads = [{ a: 40, b: 2 }, "second", { $int: "18446744073709551615" }];
  const producer = python({ ...base(), op: "produce_wait", service, payloads, timeout_ms: 15000 });
  const { ids: sent } = await producer.line(0);
  // Python is now polling result(); the worker starts only afterwards.
  const { stop } = await jsWorker(service);
  try {
    const [, { results }] = await producer.done();
    results.forEach((/** @type {any} */ r, /** @type {number} */ i) =>
      same({ echo: payloads[i], attempt: 1, by: "js" }, toValue(r.value), `result ${i}`));
    assert.equal(sent.length, 3);
  } finally {
    await stop();
  }
});

test("a JS producer waits with result() for a Python worker; a JS timer fires for Python", { skip }, async () => {
  const service = "js-waits";
  const id = await c().enqueue(service, { a: 40, b: 2 });
  const timer = await c().createTimer(service, "later", { delayMs: 300 });
  assert.equal((await c().status(service, timer)).detail, "timer");
  const worker = python({ ...base(), op: "worker", service, until: { completed: 2 }, timeout_ms: 20000 });
  await worker.line(0);
  same({ echo: { a: 40, b: 2 }, attempt: 1, by: "python" }, await c().result(service, id, { timeoutMs: 15000 }), "result");
  same({ echo: "later", attempt: 1, by: "python" }, await c().result(service, timer, { timeoutMs: 15000 }), "timer");
  await worker.done();
});

test("a Python timer fires for a JS worker", { skip }, async () => {
  const service = "py-timer";
  const [{ id }] = await python({ ...base(), op: "timer", service, payload: { $hex: "beef" }, id: "t1", delay_ms: 300 }).done();
  assert.equal(id, "t1");
  assert.equal((await c().status(service, id)).detail, "timer");
  const { stop } = await jsWorker(service);
  try {
    same({ echo: { $hex: "beef" }, attempt: 1, by: "js" }, await c().result(service, id, { timeoutMs: 15000 }), "timer");
  } finally {
    await stop();
  }
});

const SCRIPT = [{ act: "fail_until", n: 3 }, { act: "reject" }, { act: "fail" }];

test("retries and dead letters: a JS producer, a Python worker", { skip }, async () => {
  const service = "py-retries";
  await c().configure(service, { maxAttempts: 3, backoffBaseMs: 10 });
  const [ok, rejected, failing] = await c().enqueueMany(service, SCRIPT);
  const worker = python({ ...base(), op: "worker", service, until: { completed: 1, dead: 2 }, timeout_ms: 20000 });
  const [, { seen }] = await worker.done();
  same({ echo: SCRIPT[0], attempt: 3, by: "python" }, await c().result(service, ok), "retried");
  await assert.rejects(c().result(service, rejected), EventDeadError);
  await assert.rejects(c().result(service, failing), EventDeadError);
  const { letters } = await c().deadList(service);
  const byId = Object.fromEntries(letters.map((d) => [d.id, d]));
  assert.equal(byId[rejected].attempt, 1);
  assert.match(byId[rejected].reason, /rejected by python/);
  assert.equal(byId[failing].attempt, 3);
  assert.match(byId[failing].reason, /ValueError: python failed attempt 3/);
  assert.deepEqual(seen.filter((/** @type {any} */ s) => s.id === ok).map((/** @type {any} */ s) => s.attempt), [1, 2, 3]);
});

test("retries and dead letters: a Python producer, a JS worker", { skip }, async () => {
  const service = "js-retries";
  await c().configure(service, { maxAttempts: 3, backoffBaseMs: 10 });
  const want = ["r-ok", "r-reject", "r-fail"];
  await python({ ...base(), op: "enqueue", service, payloads: SCRIPT, ids: want }).done();
  const { stop } = await jsWorker(service);
  try {
    await until(async () => {
      const st = await c().stats(service);
      return st["total.completed"] === 1 && st.dead === 2;
    }, 15000, "one completion and two dead letters");
  } finally {
    await stop();
  }
  const [{ results }] = await python({ ...base(), op: "results", service, ids: want }).done();
  same({ echo: SCRIPT[0], attempt: 3, by: "js" }, toValue(results[0].value), "retried");
  assert.deepEqual(results[1], { error: "EVENT_DEAD", detail: "Reject: rejected by js", attempt: 1 });
  assert.deepEqual(results[2], { error: "EVENT_DEAD", detail: "Error: js failed attempt 3 (attempt 3 of 3)", attempt: 3 });
});

test("a JS worker killed mid-event: a Python worker completes the event", { skip }, async () => {
  const service = "js-killed";
  await c().configure(service, { leaseMs: 500, backoffBaseMs: 0 });
  const id = await c().enqueue(service, 60000); // worker-child's handler would run for a minute
  const child = spawn(process.execPath, [
    new URL("./fixtures/worker-child.js", import.meta.url).pathname, base().url, c().prefix, service,
  ], { stdio: ["ignore", "pipe", "inherit"] });
  let running = false;
  createInterface({ input: /** @type {any} */ (child.stdout) }).on("line", () => {
    running = true;
  });
  await until(() => running, 10000, "the JS worker to take the event");
  child.kill("SIGKILL");
  await once(child, "exit");
  assert.deepEqual([(await c().status(service, id)).detail], ["reserved"]);
  // Nobody extends the lease now: Python's scheduler reclaims it and puts it
  // back uncharged (the JS worker never marked it started, its fast path),
  // and the Python worker marks it started and completes attempt 1.
  await python({ ...base(), op: "worker", service, until: { completed: 1 }, timeout_ms: 20000 }).done();
  same({ echo: 60000, attempt: 1, by: "python" }, await c().result(service, id), "result");
  const st = await c().stats(service);
  assert.deepEqual([st["total.completed"], st.ready, st.in_flight, st.dead], [1, 0, 0, 0]);
});
