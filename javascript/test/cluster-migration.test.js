// A Cluster that stays up while slots migrate (issue 8): a service's slot is
// set MIGRATING/IMPORTING by hand (CLUSTER SETSLOT) with its keys split
// between the two nodes, so Redis answers its multi-key scripts TRYAGAIN: the
// client retries (10 ms doubling to 200 ms) for up to 5 s, then gives up with
// a typed ConnectionLostError. WAIT goes to the node of the key. And a client
// starts while its first seed node is down. A private 3-master cluster.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Client, ConnectionLostError, NotReplicatedError, manifest } from "../src/index.js";
import { recordingLogger, uniquePrefix } from "./helpers.js";
import { command } from "./sentinel-servers.js";
import { HOST, RedisCluster } from "./servers.js";

// Partial coverage: with one master stopped (the last test) the others serve their slots.
const cluster = await new RedisCluster({ extra: ["--cluster-require-full-coverage", "no"] }).start();
after(() => cluster.close());
const prefix = uniquePrefix();
const client = await Client.connect(cluster.url, { prefix, logger: recordingLogger() });
after(() => client.close());

/** @param {string} tag */
const slotOf = async (tag) => Number(await command(cluster.nodes[0].port, ["CLUSTER", "KEYSLOT", `{${tag}}`]));

/** The node (of cluster.nodes) that serves slot, by CLUSTER NODES. */
async function ownerOf(/** @type {number} */ slot) {
  const text = String(await command(cluster.nodes[0].port, ["CLUSTER", "NODES"]));
  for (const line of text.trim().split("\n")) {
    const [, addr, , , , , , , ...ranges] = line.split(" ");
    const port = Number(addr.split("@")[0].split(":")[1]);
    for (const r of ranges) {
      const [lo, hi = lo] = r.split("-").map(Number);
      if (!r.startsWith("[") && slot >= lo && slot <= hi) return cluster.nodes.find((n) => n.port === port);
    }
  }
  throw new Error(`no owner for slot ${slot}`);
}

/** @param {number} port */
const idOf = async (port) => String(await command(port, ["CLUSTER", "MYID"]));

/**
 * @param {number} port
 * @param {number} slot
 */
async function keysIn(port, slot) {
  return /** @type {string[]} */ (await command(port, ["CLUSTER", "GETKEYSINSLOT", String(slot), "1000"]));
}

/**
 * @param {number} from
 * @param {number} to
 * @param {string[]} keys
 */
async function migrate(from, to, keys) {
  if (keys.length) await command(from, ["MIGRATE", HOST, String(to), "", "0", "5000", "KEYS", ...keys]);
}

test("while a slot migrates with its keys split, calls wait (TRYAGAIN retried), then fail typed or go through", async () => {
  const service = "moving";
  const slot = await slotOf(service);
  const src = /** @type {import("./servers.js").RedisServer} */ (await ownerOf(slot));
  const dst = cluster.nodes.find((n) => n !== src) ?? src;
  const [srcId, dstId] = [await idOf(src.port), await idOf(dst.port)];
  await client.enqueueMany(service, Array.from({ length: 10 }, (_, i) => i));

  await command(dst.port, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", srcId]);
  await command(src.port, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", dstId]);
  const keys = await keysIn(src.port, slot);
  assert.ok(keys.length >= 3, `the service has keys: ${keys}`);
  await migrate(src.port, dst.port, keys.slice(0, 2)); // split: some here, some there

  // A migration that does not finish: the call gives up after the 5 s budget, typed.
  let t0 = performance.now();
  const err = await client.enqueue(service, "stuck").catch((e) => e);
  const took = performance.now() - t0;
  assert.ok(err instanceof ConnectionLostError, String(err));
  assert.match(err.message, /kept refusing the call for 5 s.*nothing was run.*TRYAGAIN/);
  assert.ok(took >= 4500 && took < 8000, `gave up after ${Math.round(took)} ms`);

  // One that finishes while the call waits: it goes through.
  t0 = performance.now();
  const pending = client.enqueue(service, "waited");
  await new Promise((r) => setTimeout(r, 700));
  await migrate(src.port, dst.port, await keysIn(src.port, slot));
  for (const n of cluster.nodes) await command(n.port, ["CLUSTER", "SETSLOT", String(slot), "NODE", dstId]);
  const id = await pending;
  assert.ok(performance.now() - t0 >= 650, "it waited for the migration");
  assert.equal((await client.status(service, id)).state, "pending");
  const st = await client.stats(service);
  assert.equal(st.ready, 11, "the 10 events moved, the stuck call wrote nothing, the waited one landed");
  assert.equal((await ownerOf(slot))?.port, dst.port);
  const events = await client.dequeue(service, 20);
  assert.equal(events.length, 11);
  assert.deepEqual(await client.completeMany(service, events.map((e) => [e.id, e.token])), events.map(() => null));
});

test("WAIT goes to the node of the service's slot (no replicas here: NotReplicatedError, acked 0)", async () => {
  const waiting = await Client.connect(cluster.url, { prefix, waitReplicas: 1, waitTimeoutMs: 50, logger: recordingLogger() });
  after(() => waiting.close());
  const ports = new Set();
  for (const service of ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]) {
    ports.add((await ownerOf(await slotOf(service)))?.port);
    const err = await waiting.enqueue(service, { service }, { id: `w-${service}` }).catch((e) => e);
    assert.ok(err instanceof NotReplicatedError, `${service}: ${err}`);
    assert.equal(err.acked, 0);
    assert.equal(err.result, `w-${service}`);
    assert.equal((await waiting.status(service, `w-${service}`)).state, "pending", "written on its master");
  }
  assert.ok(ports.size >= 2, "services on more than one node");
});

test("a cluster client starts while its first seed node is down; that node's services fail fast, typed", async () => {
  const [down, up] = cluster.nodes;
  // Services on a live node and on the node about to stop.
  const names = Array.from({ length: 40 }, (_, i) => `svc${i}`);
  const owners = await Promise.all(names.map(async (n) => (await ownerOf(await slotOf(n)))?.port));
  const live = names.find((n, i) => owners[i] !== down.port);
  const dead = names.find((n, i) => owners[i] === down.port);
  assert.ok(live && dead);
  // A prefix whose registry (a global key) is on the node that goes down: a
  // producer on a live node must not depend on it.
  let orphan = "";
  for (let i = 0; !orphan; i++) {
    const slot = Number(await command(down.port, ["CLUSTER", "KEYSLOT", manifest.globalKey(`${prefix}r${i}`, "services")]));
    if ((await ownerOf(slot))?.port === down.port) orphan = `${prefix}r${i}`;
  }
  await down.stop();
  try {
    await assert.rejects(Client.connect(down.url, { prefix }), ConnectionLostError, "that seed alone");
    const log = recordingLogger();
    const url = `redis://${HOST}:${down.port},${HOST}:${up.port}/0`;
    const t0 = performance.now();
    const seeded = await Client.connect(url, { prefix, logger: log });
    after(() => seeded.close());
    assert.ok(performance.now() - t0 < 8000);
    assert.equal(seeded.kind, "cluster");
    assert.ok(log.lines.some((l) => l.text.includes(`${down.port}`)), "the unreadable node is warned about");
    const id = await seeded.enqueue(live, "ok");
    assert.equal((await seeded.status(live, id)).state, "pending");
    const t1 = performance.now();
    await assert.rejects(seeded.enqueue(dead, "no"), ConnectionLostError);
    assert.ok(performance.now() - t1 < 8000, "not a hang");
    assert.ok(await seeded.enqueue(live, "still ok"), "the live node's services carry on");
    const plog = recordingLogger();
    const unregistered = await Client.connect(url, { prefix: orphan, logger: plog });
    after(() => unregistered.close());
    assert.ok(await unregistered.enqueue(live, "registry down"), "written though the registry is unreachable");
    assert.ok(plog.lines.some((l) => /could not be added to the registry/.test(l.text)), "and said so");
  } finally {
    await down.start();
  }
});
