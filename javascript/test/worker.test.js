// The worker end to end against a private Redis: slots with their own
// consumer and state, prefetch, batched acknowledgements, consumer-side
// completion with a result, failures, Reject, and the lease heartbeat.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, Reject, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, setClock, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("concurrent slots each keep their own consumer and state", async () => {
  let inits = 0;
  let running = 0;
  let peak = 0;
  const seen = new Set();
  class Counter extends Consumer {
    init() {
      inits += 1;
      return { handled: 0, slot: inits };
    }

    /** @param {any} event @param {any} state */
    async handleEvent(event, state) {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(2);
      seen.add(event.payload.n);
      running -= 1;
      return { ...state, handled: state.handled + 1 };
    }
  }
  const payloads = Array.from({ length: 300 }, (_, n) => ({ n }));
  for (let i = 0; i < payloads.length; i += 100) {
    await client.enqueueMany("e2e", payloads.slice(i, i + 100));
  }
  const worker = new Worker(client, "e2e", Counter, { concurrency: 4, prefetch: 10, leaseMs: 10000 });
  await started(worker);
  await until(() => worker.stats.completed === 300, 20000, "300 completions");
  await worker.shutdown();
  assert.equal(inits, 4);
  assert.equal(peak, 4);
  assert.equal(seen.size, 300);
  assert.equal(worker.stats.received, 300);
  assert.equal(worker.stats.lost, 0);
  const st = await client.stats("e2e");
  assert.equal(st["total.completed"], 300);
  assert.equal(st.ready + st.in_flight, 0);
});

test("a consumer may complete with a result; the producer reads it", async () => {
  class Squarer extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      await this.complete(event.service, event.id, { square: event.payload ** 2 });
      return null;
    }
  }
  const ids = await client.enqueueMany("squares", [2, 3, 4]);
  const worker = new Worker(client, "squares", Squarer, { concurrency: 2 });
  await started(worker);
  const results = await Promise.all(ids.map((id) => client.result("squares", id, { timeoutMs: 10000 })));
  await worker.shutdown();
  assert.deepEqual(results, [{ square: 4 }, { square: 9 }, { square: 16 }]);
  assert.equal(worker.stats.completed, 3);
  assert.equal(worker.stats.lost, 0);
  assert.deepEqual(worker.stats.errors, {});
  assert.equal((await client.stats("squares"))["total.completed"], 3);
});

test("a factory function and a sync handler work; complete outside a worker is refused", async () => {
  const handled = [];
  const factory = () => {
    const c = new Consumer();
    c.handleEvent = (event, state) => {
      handled.push(event.payload);
      return state;
    };
    return c;
  };
  await client.enqueueMany("sync", ["x", "y"]);
  const worker = new Worker(client, "sync", factory);
  await started(worker);
  await until(() => worker.stats.completed === 2, 10000, "2 completions");
  await worker.shutdown();
  assert.deepEqual(handled.sort(), ["x", "y"]);
  await assert.rejects(new Consumer().complete("sync", "id"), /available while the consumer runs under a Worker/);
});

test("a throwing handler is retried; Reject and a corrupt envelope go dead at once", async () => {
  await client.configure("failing", { backoffBaseMs: 60000, backoffJitter: 0 });
  const flaky = await client.enqueue("failing", "flaky");
  const poison = await client.enqueue("failing", "poison");
  const corrupt = await client.enqueue("failing", "corrupt");
  await client.connection.hSet(`${client.prefix}:{failing}:data`, corrupt, Buffer.from([0xc1]));
  class Picky extends Consumer {
    /** @param {any} event */
    handleEvent(event) {
      const p = event.payload;
      if (p === "flaky") throw new TypeError("not today");
      if (p === "poison") throw new Reject("never");
      return null;
    }
  }
  const logger = recordingLogger();
  const worker = new Worker(client, "failing", Picky, { logger });
  await started(worker);
  await until(() => worker.stats.failed === 3, 10000, "3 failures");
  await worker.shutdown();
  const st = await client.status("failing", flaky);
  assert.deepEqual([st.state, st.detail, st.attempt], ["pending", "waiting", 1]);
  const dead = await client.deadList("failing");
  assert.deepEqual(dead.letters.map((l) => l.id).sort(), [poison, corrupt].sort());
  const reasons = Object.fromEntries(dead.letters.map((l) => [l.id, l.reason]));
  assert.equal(reasons[poison], "Reject: never");
  assert.match(reasons[corrupt], /^CorruptEnvelopeError: not msgpack/);
  assert.ok(logger.lines.some((l) => l.level === "warn" && l.text.includes("TypeError: not today")));
  assert.ok(!logger.lines.some((l) => l.text.includes("never")), "a Reject is not a warning");
});

test("the heartbeat keeps a slow handler's lease alive", async () => {
  await client.enqueue("slow", "take your time");
  let done = false;
  class Slow extends Consumer {
    async handleEvent() {
      await sleep(1200);
      done = true;
      return null;
    }
  }
  const worker = new Worker(client, "slow", Slow, { leaseMs: 300 });
  await started(worker);
  let reclaimed = 0;
  while (!done) {
    reclaimed += (await client.promote("slow")).expired; // a scheduler on the real clock
    await sleep(50);
  }
  await until(() => worker.stats.completed === 1, 5000, "the completion");
  await worker.shutdown();
  assert.equal(reclaimed, 0);
  assert.equal(worker.stats.lost, 0);
  assert.equal((await client.stats("slow"))["total.completed"], 1);
});

test("a lease lost to expiry is reported once and its late completion not sent", async () => {
  await client.enqueue("lost", 1);
  let release = () => {};
  const gate = new Promise((r) => {
    release = r;
  });
  let returned = false;
  class Stuck extends Consumer {
    async handleEvent() {
      await gate;
      returned = true;
      return null;
    }
  }
  const logger = recordingLogger();
  const worker = new Worker(client, "lost", Stuck, { leaseMs: 90, logger });
  await started(worker);
  await until(() => worker.stats.received === 1, 5000, "the delivery");
  // Freeze the clock far ahead: the lease is expired for the scheduler, and
  // every heartbeat after that is refused.
  await setClock(client, "lost", Date.now() + 3_600_000);
  assert.equal((await client.promote("lost")).expired, 1);
  await until(() => worker.stats.lost >= 1, 5000, "the heartbeat to notice");
  await sleep(300); // several more refused heartbeats: still counted once
  release();
  await until(() => returned, 5000, "the handler to return");
  // The reserved lease went straight back to ready, uncharged, and came back
  // to this worker under a new token: that delivery is the one completed.
  await until(() => worker.stats.completed === 1, 5000, "the redelivery");
  await worker.shutdown();
  assert.equal(worker.stats.received, 2);
  assert.equal(worker.stats.lost, 1);
  assert.equal(worker.stats.errors.STALE_LEASE ?? 0, 0, "the late completion is not sent");
  assert.ok(logger.lines.some((l) => l.text.includes("lease of lost/")));
});

test("the heartbeat runs through the shutdown grace", async () => {
  await client.configure("grace-beat", { doneTtlMs: 600_000 }); // result() sees the null result
  const id = await client.enqueue("grace-beat", 1000);
  let handling = false;
  class Sleeper extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      handling = true;
      await sleep(event.payload);
      return null;
    }
  }
  const scheduler = runScheduler(client, "grace-beat");
  const worker = await started(new Worker(client, "grace-beat", Sleeper, { leaseMs: 300, graceMs: 5000 }));
  try {
    await until(() => handling, 5000, "the handler to start");
    await worker.shutdown(); // the handler has about 1 s left, well within the grace
  } finally {
    await scheduler.stop();
  }
  assert.equal(await client.result("grace-beat", id, { timeoutMs: 5000 }), null);
  const st = await client.stats("grace-beat");
  assert.deepEqual([st["total.delivered"], st["total.expired"] ?? 0, st["total.completed"]], [1, 0, 1]);
});

test("a handler that completes and then throws is not failed", async () => {
  const id = await client.enqueue("complete-then-throw", 1);
  class Oops extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      await this.complete(event.service, event.id, "done");
      throw new Error("after the fact");
    }
  }
  const logger = recordingLogger();
  const worker = await started(new Worker(client, "complete-then-throw", Oops, { logger }));
  assert.equal(await client.result("complete-then-throw", id, { timeoutMs: 5000 }), "done");
  await until(() => logger.lines.some((l) => l.text.includes("raised after its outcome was settled: Error: after the fact")),
    5000, "the warning");
  await worker.shutdown();
  assert.equal(worker.stats.failed, 0);
  assert.equal(worker.stats.completed, 1);
});
