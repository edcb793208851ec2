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

/**
 * A client of its own whose dequeues through run() (the separate call, not the
 * one behind a wait) are counted, and a consumer noting the ids it handles.
 */
async function countingClient() {
  const own = await connect(server.url);
  after(() => own.close());
  const count = { separate: 0 };
  const real = own.run.bind(own);
  own.run = /** @type {any} */ ((/** @type {any} */ call, /** @type {any} */ hints) => {
    if (call.script === "dequeue") count.separate += 1;
    return real(call, hints);
  });
  /** @type {string[]} */
  const seen = [];
  class Noting extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      seen.push(event.id);
    }
  }
  return { own, count, seen, Noting };
}

test("an idle worker's dequeue waits behind its BLMOVE: the event comes in the wait's round trip", async () => {
  const { own, count, seen, Noting } = await countingClient();
  const worker = await started(new Worker(own, "piped", Noting));
  try {
    await until(() => count.separate >= 1, 5000, "the first (empty) dequeue");
    await sleep(300);
    const before = count.separate;
    // @ts-ignore: internal, read for this test only
    assert.ok(worker._readyWaits() >= 1, "it waits on its ready queue");
    const first = await own.enqueueMany("piped", ["a", "b"]);
    await until(() => seen.length === 2, 5000, "both events handled");
    assert.deepEqual(seen, first);
    assert.equal(count.separate, before, "no dequeue of its own: it ran behind the wait");
    // The scripts gone (a restart, SCRIPT FLUSH): the wait's EVALSHA is refused
    // with NOSCRIPT, and the dequeue runs again through run(), which loads it.
    await client.connection.sendCommand(["SCRIPT", "FLUSH"]);
    await sleep(300);
    const [again] = await own.enqueueMany("piped", ["c"]);
    await until(() => seen.length === 3, 5000, "the event after SCRIPT FLUSH handled");
    assert.equal(seen[2], again);
    assert.ok(count.separate > before, "NOSCRIPT: sent again through run()");
    assert.equal(worker.stats.completed >= 2, true);
  } finally {
    await worker.shutdown();
  }
  assert.equal((await own.stats("piped")).in_flight, 0);
});

test("where the client sends them apart (a Cluster, Sentinel) the wait and the dequeue are two calls", async () => {
  const { own, count, seen, Noting } = await countingClient();
  own._leasesWhenReady = () => false; // what a Cluster or a Sentinel client answers
  const worker = await started(new Worker(own, "unpiped", Noting));
  try {
    await sleep(300);
    const before = count.separate;
    // @ts-ignore: internal, read for this test only
    const waits = worker._readyWaits();
    assert.ok(waits >= 1 && waits <= 10, `blocking waits ${waits}, not polls`);
    const id = await own.enqueue("unpiped", "x");
    await until(() => seen.length === 1, 5000, "the event handled");
    assert.deepEqual(seen, [id]);
    assert.ok(count.separate > before, "a dequeue of its own after the wait returned");
  } finally {
    await worker.shutdown();
  }
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
