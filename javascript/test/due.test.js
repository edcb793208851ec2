// The due-time index's hints (issue 10) from the JS client, and the JS
// worker's blocking wait on its ready queue, against a private Redis.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, Worker } from "../src/index.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @returns {Promise<Record<string, number>>} */
async function dueIndex() {
  const flat = await client.connection.sendCommand(["ZRANGE", `${client.prefix}:due`, "0", "-1", "WITHSCORES"]);
  /** @type {Record<string, number>} */
  const out = {};
  for (let i = 0; i < flat.length; i += 2) out[String(flat[i])] = Number(flat[i + 1]);
  return out;
}

test("a timer, a lease and a retry lower the service's due-time entry, never raise it", async () => {
  await client.createTimer("idx", "later", { delayMs: 60_000 });
  const [, due] = await client.connection.sendCommand(["ZRANGE", `${client.prefix}:{idx}:timers`, "0", "0", "WITHSCORES"]);
  assert.deepEqual(await dueIndex(), { idx: Number(due) });
  await client.enqueue("idx", "job");
  const [ev] = await client.dequeue("idx", 1, { leaseMs: 5000 });
  assert.deepEqual(await dueIndex(), { idx: ev.deadlineMs });
  const out = await client.fail("idx", ev.id, ev.token, "again", { delayMs: 1000 });
  assert.equal(out.action, "retry");
  assert.deepEqual(await dueIndex(), { idx: out.atMs });
  await client.createTimer("idx", "later still", { delayMs: 120_000 });
  assert.deepEqual(await dueIndex(), { idx: out.atMs });
});

test("an idle worker blocks on its ready queue instead of polling", async () => {
  /** @type {string[]} */
  const seen = [];
  class Noting extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      seen.push(event.id);
    }
  }
  const worker = new Worker(client, "idle", Noting);
  await started(worker);
  try {
    await sleep(1000);
    // @ts-ignore: internal, read for this test only
    const waits = worker._readyWaits();
    // Blocking waits of 0.1 s: about ten a second; polling made 20 and more dequeues.
    assert.ok(waits >= 1 && waits <= 15, `waits ${waits}`);
    const id = await client.enqueue("idle", "x");
    await until(() => seen.length === 1, 5000, "the event handled");
    assert.deepEqual(seen, [id]);
  } finally {
    await worker.shutdown();
  }
});
