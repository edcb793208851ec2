// A plain redis:// URL through a failover (issue 8): READONLY is a typed
// ReadOnlyError and drops the connection, the client reconnects by itself
// when the node is a primary again, and a Worker pointed at a node that stays
// a replica stops after readonlyGiveUpMs instead of retrying for ever. And
// the WAIT option: NotReplicatedError for producers, taken as done (with one
// warning) by the Worker. A private primary and a replica; never 6379.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  Client,
  ConnectionLostError,
  Consumer,
  InvalidArgumentError,
  NotReplicatedError,
  ReadOnlyError,
  Worker,
} from "../src/index.js";
import { recordingLogger, runScheduler, uniquePrefix, until } from "./helpers.js";
import { FAST_SYNC, ReplicaServer, caughtUp, command } from "./sentinel-servers.js";
import { HOST, RedisServer } from "./servers.js";

const primary = await new RedisServer({ extra: FAST_SYNC }).start();
after(() => primary.close());
const replica = await new ReplicaServer(primary.port).start();
after(() => replica.close());
await replica.synced();

/** Make the replica the primary and the primary its replica (a failover by hand). */
async function demote() {
  await caughtUp(primary.port, replica.port); // what was written so far survives
  await command(replica.port, ["REPLICAOF", "NO", "ONE"]);
  await command(primary.port, ["REPLICAOF", HOST, String(replica.port)]);
}

/** Undo demote(): the primary is the primary again. */
async function promote() {
  await command(primary.port, ["REPLICAOF", "NO", "ONE"]);
  await command(replica.port, ["REPLICAOF", HOST, String(primary.port)]);
  await replica.synced();
}

/** @param {Record<string, any>} [options] */
function connect(options = {}) {
  return Client.connect(primary.url, { prefix: uniquePrefix(), ...options });
}

class Quick extends Consumer {
  handleEvent() {
    return null;
  }
}

test("WAIT: a write the replica confirmed returns; one it did not is NotReplicatedError carrying the result", async () => {
  const log = recordingLogger();
  const client = await connect({ waitReplicas: 1, waitTimeoutMs: 300, logger: log });
  after(() => client.close());
  assert.deepEqual(client.wait, { replicas: 1, timeoutMs: 300 });
  await client.configure("waited", { doneTtlMs: 600_000 }); // status answers done for completions without a result
  const id = await client.enqueue("waited", { n: 1 });
  assert.equal((await client.status("waited", id)).state, "pending");

  await command(replica.port, ["REPLICAOF", "NO", "ONE"]); // no replica any more
  try {
    const t0 = performance.now();
    const err = await client.enqueue("waited", { n: 2 }, { id: "second" }).catch((e) => e);
    assert.ok(err instanceof NotReplicatedError, String(err));
    assert.ok(performance.now() - t0 >= 250, "WAIT waited for its timeout");
    assert.equal(err.result, "second", "the write happened: the error carries its result");
    assert.equal(err.acked, 0);
    assert.match(err.message, /only 0 of the 1 replicas.*same id safely/);
    // Resent with the same id: an idempotent repeat, not a second event, and
    // still not vouched for (the repeat's own WAIT covers the first send).
    const again = await client.enqueue("waited", { n: 2 }, { id: "second" }).catch((e) => e);
    assert.ok(again instanceof NotReplicatedError, String(again));
    assert.equal((await client.stats("waited")).ready, 2);
    assert.ok(await client.enqueue("kept", "unconfirmed", { id: "third" }).catch((e) => e) instanceof NotReplicatedError);

    // min-replicas-to-write: the primary refuses instead (nothing written), typed.
    await command(primary.port, ["CONFIG", "SET", "min-replicas-to-write", "1"]);
    try {
      const refused = await client.enqueue("waited", { n: 3 }).catch((e) => e);
      assert.ok(refused instanceof ConnectionLostError, String(refused));
      assert.match(refused.message, /min-replicas-to-write.*nothing was written/);
    } finally {
      await command(primary.port, ["CONFIG", "SET", "min-replicas-to-write", "0"]);
    }

    // A worker takes an unconfirmed acknowledgement as done, and says so once.
    const wlog = recordingLogger();
    const worker = new Worker(client, "waited", Quick, { logger: wlog, leaseMs: 5000 });
    await worker.start();
    await until(() => worker.stats.completed === 2, 5000, "2 completions");
    await worker.shutdown();
    assert.ok(worker.stats.unreplicated >= 1);
    assert.equal(worker.stats.lost, 0);
    const warned = wlog.lines.filter((l) => l.text.includes("taken as done"));
    assert.equal(warned.length, 1, "one warning, not one per acknowledgement");
    assert.equal((await client.status("waited", id)).state, "done");
  } finally {
    await command(replica.port, ["REPLICAOF", HOST, String(primary.port)]);
    await replica.synced();
  }
  assert.equal((await client.stats("waited")).ready, 0);
  // Once the replica is back, the same resend is acknowledged: the first send is on it.
  assert.equal(await client.enqueue("kept", "unconfirmed", { id: "third" }), "third");
  assert.equal((await client.stats("kept")).ready, 1);
});

test("WAIT options are checked before connecting", async () => {
  await assert.rejects(connect({ waitReplicas: 1, waitTimeoutMs: 0 }), InvalidArgumentError);
  await assert.rejects(connect({ waitReplicas: 1, waitTimeoutMs: 10000 }), /below commandTimeoutMs/);
  await assert.rejects(connect({ waitReplicas: -1 }), InvalidArgumentError);
  const off = await connect({ waitReplicas: 0 });
  assert.equal(off.wait, null);
  await off.close();
});

test("READONLY is ReadOnlyError; the client reconnects and carries on once the node is a primary again", async () => {
  const log = recordingLogger();
  const client = await connect({ logger: log });
  after(() => client.close());
  const id = await client.enqueue("ro", "before");
  await demote();
  try {
    const err = await client.enqueue("ro", "during").catch((e) => e);
    assert.ok(err instanceof ReadOnlyError, String(err));
    assert.equal(err.code, "READ_ONLY");
    assert.ok(client.readOnlyForMs() > 0);
    assert.ok(log.lines.some((l) => /dropped the connection.*READONLY/.test(l.text)), JSON.stringify(log.lines));
    // Reads still work on the replica, and do not reset the READONLY clock.
    assert.equal((await client.status("ro", id)).state, "pending");
    assert.ok(client.readOnlyForMs() > 0);
  } finally {
    await promote();
  }
  assert.ok(await client.enqueue("ro", "after"));
  assert.equal(client.readOnlyForMs(), 0, "a write went through");
  assert.equal((await client.stats("ro")).ready, 2);
});

test("a worker rides out a demotion shorter than readonlyGiveUpMs and completes everything", async () => {
  const client = await connect();
  after(() => client.close());
  await client.configure("ride", { doneTtlMs: 600_000 }); // status answers done for completions without a result
  const ids = await client.enqueueMany("ride", Array.from({ length: 50 }, (_, i) => i));
  const sched = runScheduler(client, "ride");
  after(() => sched.stop());
  const log = recordingLogger();
  const done = new Set();
  const worker = new Worker(client, "ride", () => new (class extends Consumer {
    /** @param {any} ev */
    async handleEvent(ev) {
      await new Promise((r) => setTimeout(r, 20));
      done.add(ev.id);
      return null;
    }
  })(), { logger: log, leaseMs: 3000, readonlyGiveUpMs: 4000 });
  const running = worker.run({ signals: [] });
  await until(() => done.size >= 5, 5000, "some handled");
  await demote();
  await new Promise((r) => setTimeout(r, 1500));
  await promote();
  // Writes the primary took between the two REPLICAOF commands are wiped by
  // its resync (what a failover loses): those events come back after their
  // leases, so wait for every one to be done, not for a count.
  await until(async () => (await Promise.all(ids.map((id) => client.status("ride", id))))
    .every((st) => st.state === "done"), 20000, "all done");
  worker.stop();
  await running;
  assert.equal(worker.readOnly, false);
  for (const id of ids) assert.equal((await client.status("ride", id)).state, "done", id);
  assert.ok(log.lines.some((l) => l.text.includes("ReadOnlyError")), "the READONLY replies were logged");
});

test("with a plain URL that stays a replica the worker stops after readonlyGiveUpMs; run() rejects with ReadOnlyError", async () => {
  const client = await connect();
  after(() => client.close());
  await client.enqueueMany("stuck", [1, 2, 3]);
  const log = recordingLogger();
  /** @type {() => void} */
  let free = () => {};
  const held = new Promise((r) => {
    free = () => r(null);
  });
  after(free);
  const worker = new Worker(client, "stuck", () => new (class extends Consumer {
    async handleEvent() {
      await held; // holds its slot: the rest stay ready
    }
  })(), { logger: log, readonlyGiveUpMs: 1000, graceMs: 0, prefetch: 1, leaseMs: 600 });
  const running = worker.run({ signals: [] });
  await until(() => worker.stats.received >= 1, 5000, "a delivery");
  await demote();
  try {
    const t0 = performance.now();
    const err = await running.then(() => null, (e) => e);
    const took = performance.now() - t0;
    assert.ok(err instanceof ReadOnlyError, String(err));
    assert.equal(err, worker.gaveUp);
    assert.equal(worker.readOnly, true);
    assert.match(err.message, /every write for \d+ s was answered READONLY.*redis\+sentinel/);
    assert.ok(took >= 1000 && took < 8000, `stopped after ${Math.round(took)} ms`);
    assert.ok(log.lines.some((l) => l.level === "error" && /worker stuck: every write/.test(l.text)),
      JSON.stringify(log.lines.slice(-5)));
    assert.ok(log.lines.some((l) => /worker stuck gave up: received=/.test(l.text)));
  } finally {
    await promote();
  }
  // The events the worker did not take are still ready.
  assert.ok((await client.stats("stuck")).ready >= 1);
});

test("a worker started against a replica fails at once with ReadOnlyError", async () => {
  const client = await connect();
  after(() => client.close());
  await demote();
  try {
    await assert.rejects(new Worker(client, "late", Quick, { graceMs: 0 }).run({ signals: [] }), ReadOnlyError);
  } finally {
    await promote();
  }
});

test("a lost connection is ConnectionLostError, not READONLY", async () => {
  const client = await connect();
  after(() => client.close());
  await primary.stop();
  try {
    await assert.rejects(client.enqueue("gone", 1), ConnectionLostError);
    assert.equal(client.readOnlyForMs(), 0);
  } finally {
    await primary.start();
  }
});
