// Cancelling queued events through the JavaScript client and Worker against a
// private Redis. The script rules (a ready event at level 0 left in the ready
// list as a dead copy counted in void, dequeue skipping it, a reused id
// delivered once) are the conformance vectors' (cancel.json); these tests are
// about scale and the port: many cancels from a long queue, the bound of dead
// copies one dequeue skips (waitMs 1), and a Worker that does not stall
// behind a long run of them.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, Worker } from "../src/index.js";
import { serviceKey } from "../src/manifest.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {string} service @param {string} name */
const exists = (service, name) => client.connection.exists(serviceKey(client.prefix, service, name));

/** @param {string} service @param {number} n @param {string} tag */
async function fill(service, n, tag) {
  const ids = Array.from({ length: n }, (_, i) => `${tag}${String(i).padStart(5, "0")}`);
  for (let at = 0; at < n; at += 1000) {
    await client.enqueueMany(service, ids.slice(at, at + 1000).map((_, i) => at + i), { ids: ids.slice(at, at + 1000) });
  }
  return ids;
}

/** @param {string} service @param {string[]} ids */
async function cancelAll(service, ids) {
  for (const id of ids) assert.deepEqual(await client.cancel(service, id), [true, "ready"]);
}

test("many cancels from a long queue: none is delivered, the rest arrive once, in order", async () => {
  const svc = "cancel-many";
  const ids = await fill(svc, 5000, "e");
  // A run longer than one dequeue skips (1200 at the front), then every fourth.
  const cancelled = new Set([...ids.slice(0, 1200), ...ids.filter((_, i) => i >= 1200 && i % 4 === 0)]);
  await cancelAll(svc, ids.filter((id) => cancelled.has(id)));
  const live = ids.filter((id) => !cancelled.has(id));
  const st = await client.stats(svc);
  assert.equal(st.ready, live.length);
  assert.equal(st["total.cancelled"], cancelled.size);
  /** @type {string[]} */
  const got = [];
  let stopped = 0;
  for (let n = 0; n < 200; n++) {
    const batch = await client.dequeueBatch(svc, 100);
    if (batch.events.length === 0) {
      if (batch.waitMs === 1) {
        stopped += 1; // the bound of dead copies one call skips: ask again at once
        continue;
      }
      break;
    }
    got.push(...batch.events.map((e) => e.id));
    await client.completeMany(svc, batch.events.map((e) => [e.id, e.token, null]));
  }
  assert.deepEqual(got, live);
  assert.equal(stopped, 1);
  assert.equal(await exists(svc, "void"), 0);
  assert.equal(await exists(svc, "ready"), 0);
  assert.equal((await client.stats(svc))["total.orphaned"] ?? 0, 0);
});

test("an id enqueued again after its cancel is delivered once", async () => {
  const svc = "cancel-reuse";
  await client.enqueueMany(svc, [1, 2], { ids: ["a", "b"] });
  assert.deepEqual(await client.cancel(svc, "a"), [true, "ready"]);
  assert.equal(await client.enqueue(svc, "again", { id: "a" }), "a");
  const got = await client.dequeue(svc, 10);
  assert.deepEqual(got.map((e) => [e.id, e.payload]), [["b", 2], ["a", "again"]]);
  assert.deepEqual(await client.dequeue(svc, 10), []);
  assert.equal(await exists(svc, "void"), 0);
});

test("a Worker does not stall behind a long run of dead copies", async () => {
  const svc = "cancel-worker";
  const ids = await fill(svc, 3000, "w");
  await cancelAll(svc, ids.slice(0, 2500));
  /** @type {string[]} */
  const seen = [];
  class Recorder extends Consumer {
    /** @param {any} event @param {any} state */
    handleEvent(event, state) {
      seen.push(event.id);
      return state;
    }
  }
  const worker = await started(new Worker(client, svc, Recorder, { leaseMs: 5000 }));
  try {
    await until(() => worker.stats.completed === 500, 20000, "the live events handled");
  } finally {
    await worker.shutdown();
  }
  assert.deepEqual(seen, ids.slice(2500));
  assert.equal(await exists(svc, "void"), 0);
});
