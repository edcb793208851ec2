// The same client on a 3-master Redis Cluster: detected by INFO cluster, every
// service's keys in one slot (hash tag), scripts reloaded per node.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { createClient } from "redis";

import { Consumer, Worker } from "../src/index.js";
import { connect, started, until } from "./helpers.js";
import { RedisCluster } from "./servers.js";

const cluster = await new RedisCluster().start();
after(() => cluster.close());
const client = await connect(cluster.url);
after(() => client.close());
// Names chosen to land on different nodes.
const services = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

test("the client detects the cluster and spreads services over the nodes", async () => {
  assert.equal(typeof client.connection.getSlotMaster, "function", "a cluster client");
  const masters = new Set();
  for (const s of services) {
    const slot = await direct(cluster.nodes[0].url, (c) => c.clusterKeySlot(`{${s}}`));
    masters.add(client.connection.getSlotMaster(slot).id);
    const ids = await client.enqueueMany(s, [{ s, n: 1 }, { s, n: 2 }]);
    const events = await client.dequeue(s, 5);
    assert.deepEqual(events.map((e) => e.id), ids);
    await client.completeMany(s, events.map((e) => [e.id, e.token, e.payload.n]));
    assert.equal(await client.result(s, ids[1]), 2);
  }
  assert.ok(masters.size >= 2, "services on more than one node");
  assert.deepEqual(await client.services(), [...services].sort());
});

test("scripts reload on every node after SCRIPT FLUSH", async () => {
  for (const node of cluster.nodes) {
    await direct(node.url, (c) => c.scriptFlush());
  }
  for (const s of services) {
    await client.enqueue(s, "again");
    assert.equal((await client.dequeue(s)).length, 1);
  }
});

test("a worker runs against the cluster", async () => {
  const got = [];
  class Collect extends Consumer {
    /** @param {any} event */
    handleEvent(event) {
      got.push(event.payload);
      return null;
    }
  }
  await client.enqueueMany("cluster-work", [1, 2, 3, 4, 5]);
  const worker = await started(new Worker(client, "cluster-work", Collect, { concurrency: 2 }));
  await until(() => worker.stats.completed === 5, 10000, "5 completions");
  await worker.shutdown();
  assert.deepEqual(got.sort(), [1, 2, 3, 4, 5]);
});

/**
 * Run fn on a plain connection to one node.
 * @template T
 * @param {string} url
 * @param {(c: any) => Promise<T>} fn
 */
async function direct(url, fn) {
  const c = createClient({ url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
