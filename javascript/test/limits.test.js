// Rate and concurrency limits through the JavaScript client and Worker
// against a private Redis: the script rules are the conformance vectors'
// (limits.json, frozen clock); here, many callers on the real clock: a
// hundred concurrent dequeues never exceed a concurrency limit, workers
// together respect a rate limit and sleep the reply's waitMs meanwhile, and
// a paused service delivers nothing.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Batch, Consumer, Event, Limits, Worker } from "../src/index.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("dequeue keeps its array; dequeueBatch says how long to wait; limits and setLimits", async () => {
  await client.enqueueMany("lim-api", [1, 2, 3]);
  let lim = await client.setLimits("lim-api", { rateLimit: 1, rateWindowMs: 60000 });
  assert.ok(lim instanceof Limits);
  assert.deepEqual([lim.rateLimit, lim.rateWindowMs, lim.concurrency, lim.paused], [1, 60000, 0, false]);
  const [ev, ...rest] = await client.dequeue("lim-api", 3);
  assert.ok(ev instanceof Event);
  assert.equal(rest.length, 0);
  const b = await client.dequeueBatch("lim-api", 3);
  assert.ok(b instanceof Batch);
  assert.deepEqual(b.events, []);
  assert.ok(b.waitMs > 59000 && b.waitMs <= 60000, `the oldest start leaves in ${b.waitMs} ms`);
  lim = await client.setLimits("lim-api", { rateLimit: 0, concurrency: 1 });
  assert.deepEqual([lim.rateLimit, lim.concurrency, lim.inFlight, lim.ready], [0, 1, 1, 2]);
  assert.equal((await client.configure("lim-api", {})).rateLimit, 0);
  const held = await client.dequeueBatch("lim-api", 3);
  assert.deepEqual([held.events.length, held.waitMs], [0, 100]);
  await client.complete("lim-api", ev.id, ev.token);
  const next = await client.dequeueBatch("lim-api", 3);
  assert.deepEqual(next.events.map((e) => e.payload), [2]);
});

test("a hundred concurrent dequeues never exceed a concurrency limit", async () => {
  await client.enqueueMany("lim-100", Array.from({ length: 500 }, (_, i) => i));
  await client.setLimits("lim-100", { concurrency: 7 });
  const clients = await Promise.all(Array.from({ length: 10 }, () => connect(server.url, { prefix: client.prefix })));
  try {
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => clients[i % 10].dequeue("lim-100", 5)));
    const leased = got.flat();
    assert.equal(leased.length, 7);
    assert.equal(new Set(leased.map((e) => e.id)).size, 7);
    assert.equal((await client.limits("lim-100")).inFlight, 7);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

/** Handlers that record when they start and how many run at once. */
function timed() {
  const seen = { starts: /** @type {number[]} */ ([]), running: 0, most: 0 };
  class Timed extends Consumer {
    async handleEvent() {
      seen.starts.push(performance.now());
      seen.running += 1;
      seen.most = Math.max(seen.most, seen.running);
      await sleep(20);
      seen.running -= 1;
    }
  }
  return { seen, Timed };
}

test("several workers together respect the rate limit and sleep the wait meanwhile", async () => {
  const { seen, Timed } = timed();
  await client.setLimits("lim-rate", { rateLimit: 20, rateWindowMs: 1000 });
  await client.enqueueMany("lim-rate", Array.from({ length: 60 }, (_, i) => i));
  const workers = await Promise.all([0, 1, 2].map(() =>
    started(new Worker(client, "lim-rate", Timed, { concurrency: 4, prefetch: 10 }))));
  try {
    await until(() => workers.reduce((n, w) => n + w.stats.completed, 0) === 60, 30000, "all 60 handled");
  } finally {
    await Promise.all(workers.map((w) => w.shutdown()));
  }
  const starts = seen.starts.sort((a, b) => a - b);
  // The window is Redis's, judged at the dequeue; a handler starts up to the slack later.
  const slack = 200;
  starts.forEach((t, i) => assert.ok(starts.slice(i).filter((u) => u < t + 1000 - slack).length <= 20));
  assert.ok(starts.at(-1) - starts[0] >= 2000 - slack, "three windows' worth took two windows");
  const limited = workers.reduce((n, w) => n + w.stats.limited, 0);
  assert.ok(limited > 0 && limited < 200, `slept ${limited} times: the wait, not a busy poll`);
});

test("several workers together respect the concurrency limit", async () => {
  const { seen, Timed } = timed();
  await client.setLimits("lim-conc", { concurrency: 2 });
  await client.enqueueMany("lim-conc", Array.from({ length: 30 }, (_, i) => i));
  const workers = await Promise.all([0, 1, 2].map(() =>
    started(new Worker(client, "lim-conc", Timed, { concurrency: 4, prefetch: 10 }))));
  try {
    await until(() => workers.reduce((n, w) => n + w.stats.completed, 0) === 30, 30000, "all 30 handled");
  } finally {
    await Promise.all(workers.map((w) => w.shutdown()));
  }
  assert.ok(seen.most <= 2, `${seen.most} handlers at once`);
});

test("a paused worker sleeps and delivers nothing until resume", async () => {
  const { seen, Timed } = timed();
  await client.enqueueMany("lim-pause", [1, 2]);
  await client.pause("lim-pause");
  const worker = await started(new Worker(client, "lim-pause", Timed));
  try {
    await until(() => worker.stats.limited >= 2, 10000, "two waits while paused");
    assert.equal(worker.stats.received, 0);
    assert.equal(seen.starts.length, 0);
    await client.resume("lim-pause");
    await until(() => worker.stats.completed === 2, 10000, "both handled after resume");
  } finally {
    await worker.shutdown();
  }
  assert.ok(worker.stats.limited < 40, "250 ms at a time, not a busy loop");
});
