// A Redis restart: calls fail with ConnectionLostError while it is down, the
// connection comes back by itself, scripts reload (the new server's script
// cache is empty), and a running worker carries on without losing an event.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { ConnectionLostError, Consumer, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, until } from "./helpers.js";

// Append-only with fsync always: what was acknowledged survives the restart.
const server = await privateServer({ appendonly: true });
const client = await connect(server.url);
after(() => client.close());

test("the client reports the outage, then reconnects and reloads its scripts", async () => {
  await client.enqueue("outage", "before");
  await server.stop();
  await assert.rejects(client.enqueue("outage", "during"), ConnectionLostError);
  await assert.rejects(client.services(), ConnectionLostError);
  await server.start();
  const id = await until(
    () => client.enqueue("outage", "after").catch((e) => {
      if (!(e instanceof ConnectionLostError)) throw e;
      return null;
    }),
    10000,
    "the reconnection",
  );
  assert.equal(typeof id, "string");
  const events = await client.dequeue("outage", 10);
  assert.deepEqual(events.map((e) => e.payload), ["before", "after"]);
});

test("a worker survives a Redis restart and every event completes", async () => {
  const seen = new Map();
  class Tally extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      seen.set(event.payload, (seen.get(event.payload) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 5));
      return null;
    }
  }
  const logger = recordingLogger();
  // A dequeue whose reply the restart swallows leaves a lease no worker
  // knows of: a short lease and a scheduler bring that event back.
  await client.configure("restart", { backoffBaseMs: 0 });
  await client.enqueueMany("restart", Array.from({ length: 100 }, (_, i) => i));
  const worker = new Worker(client, "restart", Tally, { concurrency: 3, prefetch: 5, leaseMs: 1000, logger });
  const scheduler = runScheduler(client, "restart");
  await worker.start();
  try {
    await until(() => worker.stats.completed >= 20, 10000, "some progress");
    await server.restart();
    await until(
      () => client.enqueueMany("restart", Array.from({ length: 100 }, (_, i) => 100 + i)).catch(() => null),
      10000,
      "the second batch",
    );
    await until(
      async () => (await client.stats("restart").catch(() => ({})))["total.completed"] === 200,
      30000,
      "200 completions",
    );
  } finally {
    await worker.shutdown();
    await scheduler.stop();
  }
  assert.equal(seen.size, 200);
  assert.ok(logger.lines.some((l) => l.text.includes("Redis could not be reached")), "the outage was seen");
  const st = await client.stats("restart");
  assert.deepEqual([st.ready, st.in_flight, st.dead], [0, 0, 0]);
});
