// Event priorities through the JavaScript client and Worker against a private
// Redis. The script rules (order across and within levels, a release and a
// retry keeping the level, the wake marker, refusals writing nothing) are the
// conformance vectors' (priority.json); these tests are about the port: the
// {priority} options, enqueueMany's per-call and per-item forms, the checks
// made before anything is sent, a Worker taking higher levels first, and an
// idle Worker blocked on the ready list woken by a prioritised event.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, InvalidArgumentError, Worker } from "../src/index.js";
import { serviceKey } from "../src/manifest.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {string} service */
const readyList = (service) => client.connection.lRange(serviceKey(client.prefix, service, "ready"), 0, -1);

/** A consumer class that records the payloads in delivery order. @param {unknown[]} seen */
function recorder(seen) {
  return class Recorder extends Consumer {
    /** @param {any} event @param {any} state */
    handleEvent(event, state) {
      seen.push(event.payload);
      return state;
    }
  };
}

test("enqueue, enqueueMany and createTimer take a level; dequeue takes higher levels first", async () => {
  const svc = "prio-order";
  await client.enqueue(svc, "plain");
  await client.enqueue(svc, "seven", { priority: 7 });
  await client.enqueueMany(svc, ["two-a", "two-b"], { priority: 2 });
  await client.enqueueMany(svc, ["nine", "zero"], { priority: [9, 0] });
  const timer = await client.createTimer(svc, "timer", { delayMs: 0, priority: 8 });
  assert.equal((await client.status(svc, timer)).priority, 8);
  await client.promote(svc);
  assert.equal((await client.stats(svc)).ready, 7);
  const got = await client.dequeue(svc, 10);
  assert.deepEqual(got.map((e) => e.payload), ["nine", "timer", "seven", "two-a", "two-b", "plain", "zero"]);
  assert.deepEqual(await readyList(svc), [], "no marker left behind");
});

test("a release keeps the level; status shows it", async () => {
  const svc = "prio-release";
  const low = await client.enqueue(svc, "low");
  const high = await client.enqueue(svc, "high", { priority: 4 });
  const [ev] = await client.dequeue(svc);
  assert.equal(ev.id, high);
  assert.deepEqual(await client.release(svc, [[ev.id, ev.token]]), [null]);
  const st = await client.status(svc, high);
  assert.deepEqual([st.state, st.detail, st.attempt, st.priority], ["pending", "ready", 0, 4]);
  assert.deepEqual((await client.dequeue(svc, 2)).map((e) => e.id), [high, low]);
});

test("a bad priority is refused before anything is sent", async () => {
  const svc = "prio-bad";
  for (const bad of [10, -1, 1.5, "5", true]) {
    await assert.rejects(client.enqueue(svc, 1, { priority: /** @type {any} */ (bad) }), InvalidArgumentError);
    await assert.rejects(client.enqueueMany(svc, [1, 2], { priority: [0, /** @type {any} */ (bad)] }),
      InvalidArgumentError);
    await assert.rejects(client.createTimer(svc, 1, { delayMs: 1, priority: /** @type {any} */ (bad) }),
      InvalidArgumentError);
  }
  await assert.rejects(client.enqueueMany(svc, [1, 2], { priority: [1] }), InvalidArgumentError);
  for (const name of ["ready", "prio", "data", "meta"]) {
    assert.equal(await client.connection.exists(serviceKey(client.prefix, svc, name)), 0, name);
  }
});

test("a Worker takes higher levels first, FIFO within a level", async () => {
  const svc = "prio-worker";
  const levels = [0, 3, 9, 0, 3, 9, 5];
  await client.enqueueMany(svc, levels.map((lv, n) => `${lv}-${n}`), { priority: levels });
  /** @type {unknown[]} */
  const seen = [];
  const worker = await started(new Worker(client, svc, recorder(seen), { prefetch: 1 }));
  try {
    await until(() => worker.stats.completed === levels.length, 10000, "all handled");
  } finally {
    await worker.shutdown();
  }
  assert.deepEqual(seen, ["9-2", "9-5", "5-6", "3-1", "3-4", "0-0", "0-3"]);
});

test("an idle Worker blocked on the ready list wakes for a prioritised event", async () => {
  const svc = "prio-wake";
  await client.enqueue(svc, "first");
  /** @type {unknown[]} */
  const seen = [];
  const worker = await started(new Worker(client, svc, recorder(seen)));
  try {
    await until(() => worker.stats.completed === 1, 10000, "the first");
    const waits = worker._readyWaits();
    await until(() => worker._readyWaits() > waits + 2, 10000, "blocking on the empty list");
    const t0 = Date.now();
    await client.enqueue(svc, "urgent", { priority: 7 });
    await until(() => worker.stats.completed === 2, 5000, "the urgent one");
    assert.ok(Date.now() - t0 < 1000, `woken by the marker, not a poll (${Date.now() - t0} ms)`);
    for (let n = 0; n < 20; n++) await client.enqueue(svc, n, { priority: 1 + (n % 9) });
    await until(() => worker.stats.completed === 22, 10000, "the rest");
    await until(async () => (await readyList(svc)).length === 0, 5000, "no marker piles up");
  } finally {
    await worker.shutdown();
  }
  assert.ok(!seen.includes("~"), "the marker never reaches a handler");
  assert.equal((await client.stats(svc))["total.orphaned"] ?? 0, 0);
});

test("a recurring timer fires each occurrence into its level; recurringList shows it", async () => {
  const svc = "prio-recurring";
  const config = serviceKey(client.prefix, svc, "config");
  await client.connection.hSet(config, "test_clock", "1000000");
  await client.enqueue(svc, "plain");
  assert.equal(await client.recurringPut(svc, "hot", "tick", { everyMs: 1000, priority: 6 }), 1001000);
  const [sched] = (await client.recurringList(svc)).schedules;
  assert.deepEqual([sched.name, sched.priority], ["hot", 6]);
  await client.connection.hIncrBy(config, "test_clock", 1000);
  assert.equal((await client.promote(svc)).timers, 1);
  assert.equal((await client.status(svc, "hot.1001000")).priority, 6);
  const got = await client.dequeue(svc, 5);
  assert.deepEqual(got.map((e) => e.payload), ["tick", "plain"]);
  // Another level alone keeps the next tick.
  assert.equal(await client.recurringPut(svc, "hot", "tick", { everyMs: 1000, priority: 1 }), 1002000);
  assert.equal((await client.recurringList(svc)).schedules[0].priority, 1);
});

test("enqueueGroup takes one level for the group or one per member", async () => {
  const svc = "prio-group";
  await client.enqueue(svc, "plain");
  const g = await client.enqueueGroup(svc, ["a", "b"], { priority: 5 });
  const h = await client.enqueueGroup(svc, ["c", "d"], { priority: [0, 9] });
  const levels = [];
  for (const id of [...g.eventIds, ...h.eventIds]) levels.push((await client.status(svc, id)).priority);
  assert.deepEqual(levels, [5, 5, 0, 9]);
  const got = await client.dequeue(svc, 10);
  assert.deepEqual(got.map((e) => e.payload), ["d", "a", "b", "plain", "c"]);
});

test("a bad level of a schedule or a group is refused, nothing written", async () => {
  const svc = "prio-bad-2";
  for (const bad of [10, -1, 1.5, "5", true]) {
    const level = /** @type {any} */ (bad);
    await assert.rejects(client.recurringPut(svc, "n", 1, { everyMs: 1000, priority: level }), InvalidArgumentError);
    await assert.rejects(client.enqueueGroup(svc, [1, 2], { priority: level }), InvalidArgumentError);
    await assert.rejects(client.enqueueGroup(svc, [1, 2], { priority: [0, level] }), InvalidArgumentError);
  }
  await assert.rejects(client.enqueueGroup(svc, [1, 2], { priority: [1] }), InvalidArgumentError);
  for (const name of ["ready", "prio", "data", "meta", "results", "timers", "recurring", "counters"]) {
    assert.equal(await client.connection.exists(serviceKey(client.prefix, svc, name)), 0, name);
  }
});
