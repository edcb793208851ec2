// Graceful shutdown: prefetched events are released at once, running handlers
// get their grace period and are left to their leases after it (not released
// while they may still act), SIGTERM and SIGINT stop a worker process the same
// way, and a second signal releases everything held and run() returns at once
// (the program exits 130). A handler still running after the grace does not
// keep the documented pattern's process alive.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, test } from "node:test";

import { Consumer, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** A consumer whose handlers wait until the test opens the gate. */
function gated() {
  /** @type {() => void} */
  let open = () => {};
  const gate = new Promise((r) => {
    open = () => r(undefined);
  });
  class Gated extends Consumer {
    async handleEvent() {
      await gate;
      return null;
    }
  }
  return { Gated, open };
}

test("shutdown releases prefetched events at once and lets the running one finish", async () => {
  const ids = await client.enqueueMany("grace", Array.from({ length: 10 }, (_, i) => i));
  const { Gated, open } = gated();
  const worker = new Worker(client, "grace", Gated, { prefetch: 20, graceMs: 10000 });
  await started(worker);
  await until(() => worker.stats.received === 10, 5000, "10 deliveries");
  const stopping = worker.shutdown();
  // The nine unstarted events go back while the handler still runs.
  await until(async () => (await client.stats("grace")).ready === 9, 5000, "9 released");
  open();
  await stopping;
  assert.equal(worker.stats.completed, 1);
  assert.equal(worker.stats.released, 9);
  const st = await client.stats("grace");
  assert.deepEqual([st.ready, st.in_flight, st["total.completed"]], [9, 0, 1]);
  const statuses = await Promise.all(ids.map((id) => client.status("grace", id)));
  const pending = statuses.filter((s) => s.state === "pending");
  assert.equal(pending.length, 9);
  assert.ok(pending.every((s) => s.detail === "ready" && s.attempt === 0), "no attempt counted");
});

test("a handler still running after the grace period is left to its lease", async () => {
  const id = await client.enqueue("overrun", "stuck");
  const { Gated, open } = gated();
  const logger = recordingLogger();
  const worker = new Worker(client, "overrun", Gated, { leaseMs: 400, graceMs: 200, logger });
  await started(worker);
  await until(() => worker.stats.received === 1, 5000, "the delivery");
  await worker.shutdown();
  // Still running after the grace: not handed to another consumer while its
  // handler may still act on it; no longer extended either.
  const st = await client.status("overrun", id);
  assert.deepEqual([st.state, st.detail, st.attempt], ["pending", "reserved", 0], "held, no attempt charged");
  assert.equal(worker.stats.released, 0);
  assert.ok(logger.lines.some((l) => l.level === "warn" && l.text.includes(
    "1 events still running after the 200 ms grace are left to their leases")));
  await new Promise((r) => setTimeout(r, 600)); // past the lease
  assert.equal((await client.promote("overrun")).returned, 1, "the lease ran out: redelivered from here");
  assert.equal((await client.status("overrun", id)).detail, "ready");
  open();
});

for (const signal of /** @type {const} */ (["SIGTERM", "SIGINT"])) {
  test(`${signal} shuts a worker process down gracefully`, async () => {
    const service = `sig-${signal}`;
    // Two slots busy for 400 ms each, eight prefetched behind them.
    await client.enqueueMany(service, Array.from({ length: 10 }, () => 400));
    const child = spawn(process.execPath, [
      new URL("./fixtures/worker-child.js", import.meta.url).pathname,
      server.url, client.prefix, service,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    const lines = createInterface({ input: /** @type {any} */ (child.stdout) });
    const messages = [];
    lines.on("line", (line) => messages.push(JSON.parse(line)));
    await until(() => messages.length === 1, 10000, "the child to start");
    child.kill(signal);
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    const { stats } = messages[1];
    assert.equal(stats.completed, 2, "the two running handlers finish in their grace");
    assert.equal(stats.released, 8);
    const st = await client.stats(service);
    assert.deepEqual([st.ready, st.in_flight, st["total.completed"]], [8, 0, 2]);
  });
}

test("SIGTERM: a handler still running after the grace does not keep the process alive", async () => {
  const service = "sig-overrun";
  // Two slots busy for a minute, eight prefetched behind them; a 300 ms grace.
  const ids = await client.enqueueMany(service, Array.from({ length: 10 }, () => 60000));
  const child = spawn(process.execPath, [
    new URL("./fixtures/worker-child.js", import.meta.url).pathname,
    server.url, client.prefix, service, "300",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  const lines = createInterface({ input: /** @type {any} */ (child.stdout) });
  /** @type {any[]} */
  const messages = [];
  lines.on("line", (line) => messages.push(JSON.parse(line)));
  const exited = once(child, "exit");
  await until(() => messages.length === 1, 10000, "the child to start");
  child.kill("SIGTERM");
  // Without the pattern's process.exit the two handlers' timers would keep it
  // alive for a minute: until() fails first.
  let code = null;
  exited.then(([c]) => {
    code = c;
  });
  await until(() => code !== null, 15000, "the child to exit");
  assert.equal(code, 0);
  assert.equal(messages[1].interrupted, null);
  assert.equal(messages[1].stats.released, 8);
  const st = await client.stats(service);
  assert.deepEqual([st.ready, st.in_flight], [8, 2], "the unstarted are back; the running are left to their leases");
  const statuses = await Promise.all(ids.map((id) => client.status(service, id)));
  assert.equal(statuses.filter((s) => s.detail === "ready" && s.attempt === 0).length, 8, "no attempt counted");
});

test("a second signal releases what is held, running handlers too, and exits with 130", async () => {
  const service = "sig-twice";
  // Two slots busy for a minute, eight prefetched behind them.
  const ids = await client.enqueueMany(service, Array.from({ length: 10 }, () => 60000));
  const child = spawn(process.execPath, [
    new URL("./fixtures/worker-child.js", import.meta.url).pathname,
    server.url, client.prefix, service,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: /** @type {any} */ (child.stdout) });
  /** @type {any[]} */
  const messages = [];
  lines.on("line", (line) => messages.push(JSON.parse(line)));
  const exited = once(child, "exit");
  await until(() => messages.length === 1, 10000, "the child to start");
  child.kill("SIGTERM");
  // The graceful stop hands back the eight unstarted events and waits.
  await until(async () => (await client.stats(service)).ready === 8, 5000, "8 released");
  child.kill("SIGINT");
  const [code] = await exited;
  assert.equal(code, 130, "the program exits 130 (the library never exits the process)");
  assert.deepEqual(messages.slice(1).map((m) => m.interrupted), ["SIGINT"], "run() returned at once");
  assert.match(stderr, /SIGINT again: releasing the events still held\n/);
  assert.match(stderr, /worker sig-twice interrupted: received=10 completed=0 failed=0 released=10 lost=0 timed_out=0\n/);
  const st = await client.stats(service);
  assert.deepEqual([st.ready, st.in_flight, st["total.released"]], [10, 0, 10]);
  const statuses = await Promise.all(ids.map((id) => client.status(service, id)));
  assert.ok(statuses.every((s) => s.detail === "ready" && s.attempt === 0), "no attempt counted");
});

test("a worker process killed mid-event: the event is redelivered and completed", async () => {
  const service = "sigkill";
  await client.configure(service, { leaseMs: 500, backoffBaseMs: 0 });
  const id = await client.enqueue(service, 60000); // a handler that would run for a minute
  const child = spawn(process.execPath, [
    new URL("./fixtures/worker-child.js", import.meta.url).pathname,
    server.url, client.prefix, service,
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: /** @type {any} */ (child.stdout) });
  let running = false;
  lines.on("line", () => {
    running = true;
  });
  await until(() => running, 10000, "the child to start");
  child.kill("SIGKILL");
  await once(child, "exit");
  assert.equal((await client.status(service, id)).detail, "reserved");
  // No one extends the lease any more: the scheduler reclaims it and puts it
  // back uncharged (the killed worker never told Redis it had started it, its
  // fast path), and another worker marks it started and completes it.
  /** @type {[number, boolean][]} */
  const attempts = [];
  class Quick extends Consumer {
    /** @param {import("../src/index.js").Event} event */
    handleEvent(event) {
      attempts.push([event.attempt, event.mustStart]);
      return null;
    }
  }
  const scheduler = runScheduler(client, service);
  const worker = await started(new Worker(client, service, Quick));
  try {
    await until(() => worker.stats.completed === 1, 15000, "the redelivery");
  } finally {
    await worker.shutdown();
    await scheduler.stop();
  }
  assert.deepEqual(attempts, [[1, true]], "attempt 1, marked started first");
  const st = await client.stats(service);
  assert.deepEqual([st["total.delivered"], st["total.returned"], st["total.expired"] ?? 0, st["total.completed"]],
    [2, 1, 0, 1]);
});
