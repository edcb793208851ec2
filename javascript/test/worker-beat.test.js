// Worker beats (src/worker-beat.js, script worker_beat): what a running JS
// Worker leaves in the global <prefix>:workers hash for the dashboard, in the
// same format the Python worker writes (homing.presence reads both).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, InvalidArgumentError, Worker } from "../src/index.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** The fields of the workers hash, parsed as the dashboard does. */
async function beats() {
  const raw = await client.connection.hGetAll(`${client.prefix}:workers`);
  return Object.fromEntries(Object.entries(raw).map(([name, v]) => {
    const p = String(v).split(";");
    return [name, {
      every: Number(p[1]), pid: Number(p[2]), concurrency: Number(p[3]), held: Number(p[4]),
      stopped: p[5] === "1", service: p[6], ids: p[7] ? p[7].split(" ") : [], host: p.slice(8).join(";"),
    }];
  }));
}

test("a JS worker beats while it runs, with what it holds, and says when it stopped", async () => {
  /** @type {() => void} */
  let release = () => {};
  const gate = new Promise((r) => { release = () => r(undefined); });
  class Holding extends Consumer {
    async handleEvent() {
      await gate;
    }
  }
  const ids = await client.enqueueMany("beats", ["a", "b"]);
  const worker = new Worker(client, "beats", Holding, { concurrency: 2, leaseMs: 3000, graceMs: 5000 });
  await started(worker);
  let mine;
  await until(async () => {
    mine = Object.values(await beats()).find((b) => b.pid === process.pid && b.held === 2);
    return mine !== undefined;
  }, 10000, "a beat holding two events");
  assert.equal(mine.service, "beats");
  assert.equal(mine.concurrency, 2);
  assert.equal(mine.every, 1000);
  assert.equal(mine.stopped, false);
  assert.deepEqual([...mine.ids].sort(), [...ids].sort());
  release();
  await until(() => worker.stats.completed === 2, 10000, "both completed");
  await worker.shutdown();
  const last = Object.values(await beats()).find((b) => b.pid === process.pid);
  assert.equal(last.stopped, true);
  assert.equal(last.held, 0);
});

test("workerBeat refuses bad input before sending anything", async () => {
  const before = await beats();
  const base = { name: "w", service: "svc", host: "h", pid: 1, concurrency: 1, held: 0, everyMs: 1000 };
  await assert.rejects(client.workerBeat({ ...base, name: "" }), InvalidArgumentError);
  await assert.rejects(client.workerBeat({ ...base, concurrency: 0 }), InvalidArgumentError);
  await assert.rejects(client.workerBeat({ ...base, host: "h".repeat(256) }), InvalidArgumentError);
  assert.deepEqual(await beats(), before);
  const pruned = await client.workerBeat({ ...base, name: "w-ok" });
  assert.equal(pruned, 0);
  assert.ok("w-ok" in (await beats()));
});
