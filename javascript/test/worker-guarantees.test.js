// The worker's half of issue 7 (python/tests/test_worker_guarantees.py): a
// crash charges only what ran, a hung handler is failed at its timeout, a
// worker whose slots all hang stops itself, an event whose lease ran out is
// never started, and completions a full Redis refuses are sent again.
//
// Each test runs a real Worker (in this process, or a child process that
// dies) against a private Redis and checks where every event ended up.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";

import { Client, Consumer, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, started, uniquePrefix, until } from "./helpers.js";
import { RedisServer } from "./servers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Sleeps as long as the payload says (ms), deaf to its signal. */
class Sleeps extends Consumer {
  /** @param {import("../src/index.js").Event} event @param {unknown} state */
  async handleEvent(event, state) {
    await sleep(/** @type {number} */ (event.payload));
    return state;
  }
}

/**
 * A child process running test/fixtures/<name> with args; its stdout lines
 * parsed as JSON, its stderr kept.
 * @param {string} name
 * @param {string[]} args
 */
function child(name, args) {
  const proc = spawn(process.execPath, [new URL(`./fixtures/${name}`, import.meta.url).pathname, ...args],
    { stdio: ["ignore", "pipe", "pipe"] });
  const out = { proc, stderr: "", /** @type {any[]} */ messages: [], exited: once(proc, "exit") };
  proc.stderr?.on("data", (chunk) => {
    out.stderr += chunk;
  });
  createInterface({ input: /** @type {any} */ (proc.stdout) }).on("line", (line) => out.messages.push(JSON.parse(line)));
  after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });
  return out;
}

// -- the handler timeout ------------------------------------------------------

test("a handler past its timeout is failed and retried, then dead-lettered", async () => {
  const service = "timeout-dead";
  await client.configure(service, { maxAttempts: 2, backoffBaseMs: 0 });
  const id = await client.enqueue(service, 800);
  const logger = recordingLogger();
  const scheduler = runScheduler(client, service);
  const worker = await started(new Worker(client, service, Sleeps, { concurrency: 3, handlerTimeoutMs: 200, logger }));
  try {
    await until(async () => (await client.status(service, id)).state === "dead", 15000, "the dead letter");
    // The retry runs on another slot while the first still sleeps: two of
    // three slots hung at most, so the worker keeps going.
    assert.equal(worker.hung, false);
    await sleep(1000); // both handlers return late: nothing of theirs is sent
  } finally {
    await worker.shutdown();
    await scheduler.stop();
  }
  const st = await client.status(service, id);
  assert.deepEqual([st.detail, st.attempt], ["handler timed out after 200 ms (attempt 2 of 2)", 2]);
  assert.equal(worker.stats.timedOut, 2);
  assert.equal(worker.stats.failed, 2);
  assert.equal(worker.stats.completed, 0, "the late returns are not acknowledged");
  assert.deepEqual(worker.stats.errors, {});
  assert.ok(logger.lines.some((l) => l.level === "error" && l.text.includes("handler timed out after 200 ms; failing it")));
});

test("the policy sets the timeout when the worker has none", async () => {
  const service = "timeout-policy";
  await client.configure(service, { handlerTimeoutMs: 150, maxAttempts: 1 });
  const id = await client.enqueue(service, 600);
  const worker = await started(new Worker(client, service, Sleeps, { concurrency: 2, logger: recordingLogger() }));
  await until(async () => (await client.status(service, id)).state === "dead", 10000, "the dead letter");
  await worker.shutdown();
  assert.equal(worker.stats.timedOut, 1);
  assert.match((await client.status(service, id)).detail, /^handler timed out after 150 ms/);
});

test("a handler that honours its signal is aborted at the timeout and frees its slot", async () => {
  const service = "timeout-abort";
  await client.configure(service, { maxAttempts: 1, doneTtlMs: 600_000 }); // status answers done for completions without a result
  /** @type {unknown[]} */
  const reasons = [];
  class Aborts extends Consumer {
    /**
     * @param {import("../src/index.js").Event} event
     * @param {unknown} state
     * @param {{signal: AbortSignal}} context
     */
    async handleEvent(event, state, { signal }) {
      if (event.payload === "slow") {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 30000);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reasons.push(signal.reason);
            reject(signal.reason);
          });
        });
      }
      return state;
    }
  }
  const [slow, fast] = await client.enqueueMany(service, ["slow", "fast"]);
  const logger = recordingLogger();
  // One slot: the second event runs only because the first handler stopped.
  const worker = await started(new Worker(client, service, Aborts, { handlerTimeoutMs: 200, logger }));
  await until(async () => (await client.status(service, fast)).state === "done", 10000, "the second event");
  await sleep(600); // a few watchdog ticks: the slot is not counted hung
  await worker.shutdown();
  assert.equal(worker.hung, false);
  assert.equal(worker.stats.timedOut, 1);
  assert.equal(reasons.length, 1);
  assert.equal(/** @type {Error} */ (reasons[0]).name, "HandlerTimeoutError");
  assert.equal(/** @type {Error} */ (reasons[0]).message, "handler timed out after 200 ms");
  assert.match((await client.status(service, slow)).detail, /^handler timed out after 200 ms/);
  assert.ok(!logger.lines.some((l) => l.text.includes("raised after its outcome was settled")),
    "the aborted handler's rejection is expected, not a warning");
});

test("a worker whose slots all hang stops itself: hung, run() returns", async () => {
  const service = "all-hung";
  await client.configure(service, { backoffBaseMs: 60000 });
  const [stuck, other] = await client.enqueueMany(service, ["stuck", "never started"]);
  /** @type {() => void} */
  let release = () => {};
  const gate = new Promise((r) => {
    release = () => r(undefined);
  });
  class Hangs extends Consumer {
    async handleEvent() {
      await gate; // deaf to its signal
      return null;
    }
  }
  const logger = recordingLogger();
  const worker = new Worker(client, service, Hangs, { handlerTimeoutMs: 200, prefetch: 5, graceMs: 30000, logger });
  const began = performance.now();
  try {
    const stats = await worker.run({ signals: [] }); // returns by itself
    assert.ok(performance.now() - began < 5000, "a hung slot is not waited for over the grace");
    assert.equal(worker.hung, true);
    assert.equal(stats.timedOut, 1);
    const st = await client.status(service, stuck);
    assert.deepEqual([st.state, st.detail, st.attempt], ["pending", "waiting", 1], "failed: waiting for its retry");
    const unstarted = await client.status(service, other);
    assert.deepEqual([unstarted.detail, unstarted.attempt], ["ready", 0], "released unstarted");
    assert.ok(logger.lines.some((l) => l.level === "error" && l.text.includes("all 1 slots are hung")));
    assert.ok(logger.lines.some((l) => l.level === "error" && l.text.startsWith(
      "worker all-hung hung: received=2 completed=0 failed=1 released=1 lost=0 timed_out=1")));
  } finally {
    release();
  }
});

test("worker options are checked in the constructor", () => {
  /** @type {[string, unknown][]} */
  const bad = [["handlerTimeoutMs", -1], ["handlerTimeoutMs", 86400001], ["handlerTimeoutMs", Number.NaN],
    ["handlerTimeoutMs", "100"], ["leaseMs", 0], ["leaseMs", Number.NaN], ["leaseMs", 1.5],
    ["concurrency", "4"], ["prefetch", Infinity], ["graceMs", -1], ["pollMaxMs", Number.NaN]];
  for (const [name, value] of bad) {
    assert.throws(() => new Worker(client, "x", Sleeps, { [name]: value }), { name: "InvalidArgumentError" },
      `${name}: ${String(value)}`);
  }
  assert.equal(new Worker(client, "x", Sleeps, { handlerTimeoutMs: 0, leaseMs: null }).handlerTimeoutMs, 0);
});

// -- a crash charges only what ran -----------------------------------------------

test("prefetched and running events of a SIGKILLed worker come back uncharged", async () => {
  const service = "sigkill-prefetch";
  await client.configure(service, { leaseMs: 300 });
  // Two slots busy for a minute, four prefetched behind them (worker-child.js:
  // concurrency 2, prefetch 10).
  const ids = await client.enqueueMany(service, Array.from({ length: 6 }, () => 60000));
  const worker = child("worker-child.js", [server.url, client.prefix, service]);
  await until(() => worker.messages.length === 1, 10000, "the child to start");
  await until(async () => (await client.stats(service)).in_flight === 6, 5000, "all six held");
  worker.proc.kill("SIGKILL");
  await worker.exited;
  for (const id of ids) {
    const st = await client.status(service, id);
    assert.deepEqual([st.detail, st.attempt], ["reserved", 0]);
  }
  // After the lease the scheduler puts them back, no attempt counted.
  const scheduler = runScheduler(client, service);
  try {
    await until(async () => (await client.stats(service)).ready === 6, 5000, "all six returned");
  } finally {
    await scheduler.stop();
  }
  for (const id of ids) {
    const st = await client.status(service, id);
    assert.deepEqual([st.detail, st.attempt], ["ready", 0], "uncharged");
  }
  const st = await client.stats(service);
  assert.deepEqual([st["total.returned"], st["total.expired"] ?? 0, st.dead], [6, 0, 0]);
  // The next worker marks each started before it runs it (they came back unstarted).
  /** @type {[number, boolean][]} */
  const seen = [];
  class Quick extends Consumer {
    /** @param {import("../src/index.js").Event} event */
    handleEvent(event) {
      seen.push([event.attempt, event.mustStart]);
      return null;
    }
  }
  const next = await started(new Worker(client, service, Quick, { prefetch: 10 }));
  await until(() => next.stats.completed === 6, 10000, "six completions");
  await next.shutdown();
  assert.deepEqual(seen, ids.map(() => [1, true]));
});

test("a poison event that kills its process dies alone, with prefetch 100", async () => {
  const service = "poison";
  await client.configure(service, { maxAttempts: 3, backoffBaseMs: 0, doneTtlMs: 600_000 });
  const payloads = Array.from({ length: 40 }, (_, i) => `job-${i}`);
  payloads[5] = "poison";
  const ids = await client.enqueueMany(service, payloads);
  const poison = ids[5];
  const dir = mkdtempSync(path.join(tmpdir(), "homing-js-poison-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, "ran.log");
  let crashes = 0;
  const scheduler = runScheduler(client, service);
  try {
    while ((await client.status(service, poison)).state !== "dead" && crashes < 8) {
      const worker = child("poison-child.js", [server.url, client.prefix, service, log, "300"]);
      const [code] = await worker.exited;
      assert.equal(code, 17, `the worker died on the poison\n${worker.stderr}`);
      crashes += 1;
      // Until the scheduler has routed it (back to ready, a retry, or the dead letters).
      await until(async () => !["reserved", "leased", "expired"].includes((await client.status(service, poison)).detail),
        10000, "the poison event to be reclaimed");
    }
    class Completes extends Consumer {
      /** @param {unknown} event @param {unknown} state */
      handleEvent(event, state) {
        return state;
      }
    }
    const last = await started(new Worker(client, service, Completes, { prefetch: 100 }));
    await until(async () => (await client.stats(service))["total.completed"] === ids.length - 1, 15000,
      "every other event completed");
    await last.shutdown();
  } finally {
    await scheduler.stop();
  }
  const st = await client.status(service, poison);
  assert.deepEqual([st.state, st.attempt], ["dead", 3]);
  // One uncharged crash (its first run was never marked started), then three charged ones.
  assert.equal(crashes, 4);
  assert.equal((await client.deadList(service)).total, 1, "no collateral in the dead letters");
  const ran = readFileSync(log, "utf8").trim().split("\n").map((line) => line.split(" "));
  assert.deepEqual(ran.filter(([id]) => id === poison).map(([, attempt, must]) => [Number(attempt), must]),
    [[1, "0"], [1, "1"], [2, "1"], [3, "1"]]);
  const stats = await client.stats(service);
  assert.deepEqual([stats["total.dead"], stats["total.completed"]], [1, ids.length - 1]);
  for (const id of ids) {
    if (id !== poison) assert.equal((await client.status(service, id)).state, "done");
  }
});

// -- an event whose lease ran out is never started --------------------------------

/**
 * Events wait for the one slot while the first handler runs across a Redis
 * outage longer than the lease. Once it returns, the worker must not start
 * the others (by its own clock their leases ended: they may be someone
 * else's), and each of them still runs exactly once.
 * @param {(srv: RedisServer) => Promise<void>} outage
 */
async function inboxOutlivesLease(outage) {
  const srv = await new RedisServer({ appendonly: true }).start();
  after(() => srv.close());
  const c = await Client.connect(srv.url, { prefix: uniquePrefix(), logger: recordingLogger() });
  after(() => c.close());
  const service = "outage";
  await c.configure(service, { doneTtlMs: 600_000 }); // status answers done for completions without a result
  /** @type {string[]} */
  const ran = [];
  let firstReturned = false;
  class Records extends Consumer {
    /** @param {import("../src/index.js").Event} event @param {unknown} state */
    async handleEvent(event, state) {
      ran.push(event.id);
      if (ran.length === 1) {
        await sleep(1000); // returns while Redis is still away
        firstReturned = true;
      }
      return state;
    }
  }
  const ids = await c.enqueueMany(service, [0, 1, 2, 3, 4, 5]);
  const worker = await started(new Worker(c, service, Records, { prefetch: 10, leaseMs: 600, logger: recordingLogger() }));
  await until(() => ran.length === 1, 5000, "the first handler");
  await outage(srv);
  assert.ok(firstReturned);
  const scheduler = runScheduler(c, service);
  try {
    await until(async () => {
      const states = await Promise.all(ids.map((id) => c.status(service, id).catch(() => null)));
      return states.every((s) => s?.state === "done");
    }, 20000, "every event done");
  } finally {
    await scheduler.stop();
    await worker.shutdown();
  }
  // The five that waited in the inbox across the outage, each not started.
  // 10 in about one run in fifteen on this 2-core VM (with the code before the
  // fresh events too), presumably copies redelivered after the restart that
  // also outlived their 600 ms lease while the slot was still releasing the
  // stale five over the reconnecting client: not started either, and every
  // event still runs exactly once (asserted below).
  assert.ok(worker.stats.expiredUnstarted >= 5, `expiredUnstarted ${worker.stats.expiredUnstarted}`);
  // The first one ran during the outage, and its lease may have been
  // reclaimed before its ack: it alone may run twice (after its lease ended).
  assert.deepEqual([...new Set(ran)].sort(), [...ids].sort());
  for (const id of ids.slice(1)) assert.equal(ran.filter((r) => r === id).length, 1, `${id} ran once`);
}

test("events whose lease ran out in the inbox during a Redis outage are not started", async () => {
  await inboxOutlivesLease(async (srv) => {
    await srv.kill();
    await sleep(1500);
    await srv.start();
  });
});

test("events whose lease ran out while Redis was stopped (SIGSTOP) are not started", async () => {
  // The extends sent while Redis is stopped are answered after SIGCONT, but
  // a lease is renewed only from when its extend was sent: still over.
  await inboxOutlivesLease(async (srv) => {
    srv.proc?.kill("SIGSTOP");
    try {
      await sleep(1500);
    } finally {
      srv.proc?.kill("SIGCONT");
    }
  });
});

// -- acks refused by a full Redis -----------------------------------------------------

test("a completion a full Redis refuses is kept, extended and sent again", async () => {
  const srv = await new RedisServer({ extra: ["--maxmemory-policy", "noeviction"] }).start();
  after(() => srv.close());
  const c = await Client.connect(srv.url, { prefix: uniquePrefix(), logger: recordingLogger() });
  after(() => c.close());
  const service = "full";
  const id = await c.enqueue(service, "small");
  // Full: a maxmemory below what it uses already (noeviction frees nothing).
  const used = Number(/used_memory:(\d+)/.exec(await c.connection.info("memory"))?.[1]);
  await c.connection.configSet("maxmemory", String(Math.floor(used / 2)));
  await assert.rejects(c.enqueue(service, "refused"), { name: "RedisFullError" });
  const big = "r".repeat(200 * 1024); // larger than the payload it frees
  class Answers extends Consumer {
    /** @param {import("../src/index.js").Event} event @param {unknown} state */
    async handleEvent(event, state) {
      await this.complete(event.service, event.id, big);
      return state;
    }
  }
  const logger = recordingLogger();
  const worker = await started(new Worker(c, service, Answers, { leaseMs: 300, logger }));
  const scheduler = runScheduler(c, service);
  try {
    await until(() => logger.lines.some((l) => l.text.includes("refused by a full Redis")), 5000, "the refusal");
    await sleep(1000); // several leases long: only the heartbeat keeps it
    const st = await c.status(service, id);
    assert.equal(st.state, "pending", "not completed yet");
    await c.connection.configSet("maxmemory", "0"); // room again
    assert.equal(await c.result(service, id, { timeoutMs: 10000 }), big);
  } finally {
    await scheduler.stop();
    await worker.shutdown();
  }
  assert.equal(worker.stats.completed, 1);
  assert.equal(worker.stats.lost, 0, "a refusal by a full Redis is not a lost completion");
  assert.deepEqual(worker.stats.errors, {});
  const st = await c.stats(service);
  assert.deepEqual([st["total.expired"] ?? 0, st["total.returned"] ?? 0, st["total.delivered"]], [0, 0, 1],
    "the lease was extended all along, never reclaimed");
});

test("requireDurable: the worker refuses to start on a Redis that may lose events", async () => {
  // The test server runs without the AOF.
  const worker = new Worker(client, "durable", Sleeps, { requireDurable: true });
  await assert.rejects(worker.start(), { name: "NotDurableError" });
});
