// Sentinel (issue 8): redis+sentinel:// URLs, and a SENTINEL FAILOVER while a
// JS producer and a JS Worker run. They follow the new master by themselves
// within a few seconds, and with WAIT 1 nothing acknowledged is lost (what
// reached only the old master is refused as NotReplicatedError and resent
// with the same id). A private primary, a replica and three sentinels
// (sentinel-servers.js); never 6379.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Client, Consumer, InvalidArgumentError, Worker } from "../src/index.js";
import { isSentinel, parseSentinel } from "../src/urls.js";
import { recordingLogger, runScheduler, uniquePrefix, until } from "./helpers.js";
import { SentinelGroup, onNode } from "./sentinel-servers.js";

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("redis+sentinel:// URLs: hosts, master name, db, credentials, sentinel_password, TLS", () => {
  assert.equal(isSentinel("redis+sentinel://h:1/m"), true);
  assert.equal(isSentinel("REDISS+SENTINEL://h:1/m"), true);
  assert.equal(isSentinel("redis://h:1/0"), false);
  assert.deepEqual(parseSentinel("redis+sentinel://u:p%40ss@a:26380,b,[::1]:7/mymaster/3?sentinel_password=s3"), {
    sentinels: [{ host: "a", port: 26380 }, { host: "b", port: 26379 }, { host: "::1", port: 7 }],
    master: "mymaster",
    db: 3,
    username: "u",
    password: "p@ss",
    sentinelPassword: "s3",
    tls: false,
  });
  const tls = parseSentinel("rediss+sentinel://:secret@h/m");
  assert.equal(tls.tls, true);
  assert.equal(tls.username, undefined);
  assert.equal(tls.password, "secret");
  assert.equal(tls.db, 0);
  for (const bad of ["redis+sentinel://h:1", "redis+sentinel://h:1/m/x", "redis+sentinel://h:1/m/0/9",
    "redis+sentinel://h:99999/m", "redis+sentinel://h:1/m?db=2", "redis+sentinel://:1/m"]) {
    assert.throws(() => parseSentinel(bad), InvalidArgumentError, bad);
  }
});

const group = await new SentinelGroup({ replicas: 1, sentinels: 3 }).start();
after(() => group.close());

test("a client through Sentinel reaches the primary, in the URL's database", async () => {
  const prefix = uniquePrefix();
  const client = await Client.connect(group.url(2), { prefix, logger: recordingLogger() });
  after(() => client.close());
  assert.equal(client.kind, "sentinel");
  assert.equal(client.connection.getMasterNode()?.port, group.primary?.port);
  const id = await client.enqueue("s", { hello: "sentinel" });
  const [ev] = await client.dequeue("s");
  assert.equal(ev.id, id);
  await client.complete("s", ev.id, ev.token, "ok");
  assert.equal(await client.result("s", id), "ok");
  const inDb = (/** @type {number} */ db) => onNode(/** @type {number} */ (group.primary?.port), async (c) => {
    await c.sendCommand(["SELECT", String(db)]);
    return (/** @type {string[]} */ (await c.sendCommand(["KEYS", `${prefix}:*`]))).length;
  });
  assert.ok((await inDb(2)) > 0);
  assert.equal(await inDb(0), 0);
  const reports = await client.checkDurability();
  assert.equal(reports[0].node, `127.0.0.1:${group.primary?.port}`);
});

test("SENTINEL FAILOVER under a producer and a worker: both follow the new master; with WAIT 1 nothing acknowledged is lost", async (t) => {
  const prefix = uniquePrefix();
  const service = "orders";
  const options = { prefix, waitReplicas: 1, waitTimeoutMs: 300 };
  const plog = recordingLogger();
  const wlog = recordingLogger();
  const producer = await Client.connect(group.url(), { ...options, logger: plog });
  after(() => producer.close());
  const consumer = await Client.connect(group.url(), { ...options, logger: wlog });
  after(() => consumer.close());
  const admin = await Client.connect(group.url(), { prefix, logger: recordingLogger() });
  await admin.configure(service, { doneTtlMs: 600_000 }); // status answers done for completions without a result
  after(() => admin.close());
  const sched = runScheduler(admin, service);
  after(() => sched.stop());

  /** @type {Set<string>} ids whose enqueue returned (WAIT 1 confirmed them) */
  const acked = new Set();
  /** @type {Record<string, number>} */
  const refusals = {};
  let lastAck = 0;
  let producing = true;
  let current = "";
  const produced = (async () => {
    for (let i = 0; producing; i++) {
      const id = `e${i}`;
      current = id;
      for (;;) {
        try {
          await producer.enqueue(service, { i }, { id }); // the same id when resent: idempotent
          acked.add(id);
          lastAck = performance.now();
          break;
        } catch (exc) {
          const code = /** @type {any} */ (exc).code ?? String(exc);
          refusals[code] = (refusals[code] ?? 0) + 1;
          if (code === "DUPLICATE_ID") {
            // A resend found the event there already (and consumed, or it
            // would be an idempotent repeat): an earlier attempt landed.
            acked.add(id);
            lastAck = performance.now();
            break;
          }
          if (!producing) return; // the test is over (or failed)
          await sleep(50);
        }
      }
      await sleep(5);
    }
  })();

  /** @type {Map<string, number>} */
  const handled = new Map();
  class Record extends Consumer {
    /** @param {any} ev */
    handleEvent(ev) {
      handled.set(ev.id, (handled.get(ev.id) ?? 0) + 1);
      return null;
    }
  }
  const worker = new Worker(consumer, service, Record, { concurrency: 4, leaseMs: 1000, logger: wlog });
  after(() => worker.shutdown());
  after(() => {
    producing = false;
  });
  await worker.start();
  await until(() => acked.size >= 50 && handled.size >= 20, 10000, "traffic before the failover");

  const oldPort = group.primary?.port;
  const t0 = performance.now();
  const newPort = await group.failover();
  assert.notEqual(newPort, oldPort);
  const failedOver = performance.now() - t0;
  // Both clients are on the new master within a few seconds, by themselves.
  await until(() => producer.connection.getMasterNode()?.port === newPort &&
    consumer.connection.getMasterNode()?.port === newPort, 5000, "clients on the new master");
  const followed = performance.now() - t0;
  // The event the producer sends now lands on the new master (refused as
  // NotReplicated until WAIT can be met, and resent): the worker gets it there.
  const sentThen = current;
  await until(() => handled.has(sentThen), 10000, "the worker handles an event from the new master");
  const handledNew = performance.now() - t0;
  // With one replica, WAIT 1 holds only once Sentinel has made the old master
  // a replica of the new one (about 10 s); until then every write is
  // NotReplicatedError and resent, and a resend that finds the event there
  // (DuplicateIdError: consumed already) tells that it landed.
  const ackedThen = acked.size;
  await until(() => acked.size >= ackedThen + 20, 25000, "acknowledged enqueues again");
  const resumed = performance.now() - t0;
  producing = false;
  await produced;

  await until(async () => (await Promise.all([...acked].map((id) => admin.status(service, id))))
    .every((st) => st.state === "done"), 20000, "every acknowledged event done");
  await worker.shutdown();
  const again = [...handled.values()].reduce((n, c) => n + (c - 1), 0);
  t.diagnostic(`failover ${Math.round(failedOver)} ms; clients followed ${Math.round(followed)} ms; ` +
    `the worker handled an event from the new master ${Math.round(handledNew)} ms; ` +
    `20 more enqueues acknowledged ${Math.round(resumed)} ms after SENTINEL FAILOVER; ${acked.size} in all, ` +
    `none lost; refusals ${JSON.stringify(refusals)}; ${again} redeliveries; worker ${JSON.stringify(worker.stats)}`);
  assert.ok(followed < 5000, `followed after ${Math.round(followed)} ms`);
  assert.ok((refusals.NOT_REPLICATED ?? 0) > 0, "writes the replica did not confirm were refused, not acknowledged");
  for (const id of acked) assert.ok(handled.has(id), `${id} handled`);
  assert.ok(handledNew < 8000, `the worker followed after ${Math.round(handledNew)} ms`);
  assert.ok(!refusals.SCRIPT && !refusals.HOMING, `only typed refusals: ${JSON.stringify(refusals)}`);
});

test("SENTINEL FAILOVER without WAIT: writes stop going to the old primary when the promotion starts", async (t) => {
  const prefix = uniquePrefix();
  const service = "unwaited";
  const log = recordingLogger();
  const producer = await Client.connect(group.url(), { prefix, logger: log });
  after(() => producer.close());
  const admin = await Client.connect(group.url(), { prefix, logger: recordingLogger() });
  after(() => admin.close());
  /** @type {string[]} */
  const acked = [];
  /** @type {Record<string, number>} */
  const refusals = {};
  let producing = true;
  after(() => {
    producing = false;
  });
  const produced = (async () => {
    for (let i = 0; producing; i++) {
      try {
        acked.push(await producer.enqueue(service, { i }, { id: `u${i}` }));
      } catch (exc) {
        const code = /** @type {any} */ (exc).code ?? String(exc);
        refusals[code] = (refusals[code] ?? 0) + 1;
      }
      await sleep(2);
    }
  })();
  await until(() => acked.length >= 200, 10000, "traffic before the failover");
  const before = acked.length;
  const newPort = await group.failover();
  await until(() => producer.connection.getMasterNode()?.port === newPort, 5000, "the producer on the new master");
  const target = acked.length + 100;
  await until(() => acked.length >= target, 10000, "writes on the new master");
  producing = false;
  await produced;
  // An acknowledged write the new primary has no trace of went to the old one
  // after the promotion: it is wiped when the old one rejoins as a replica.
  const states = await Promise.all(acked.map((id) => admin.status(service, id)));
  const wiped = acked.filter((_, i) => states[i].state === "unknown");
  t.diagnostic(`${acked.length} acknowledged (${before} before the failover), ${wiped.length} the new primary ` +
    `has no trace of ${JSON.stringify(wiped.slice(0, 5))}; refusals ${JSON.stringify(refusals)}; ` +
    `${log.lines.filter((l) => /promoting a replica/.test(l.text)).length} drop(s) on the promotion notice`);
  assert.ok(log.lines.some((l) => /Sentinel is promoting a replica/.test(l.text)), "the promotion was heard");
  assert.ok(wiped.length <= 2, `${wiped.length} acknowledged writes would be wiped (a call in flight at the notice may be)`);
});

test("kill -9 of the master: a producer and a worker are back on the new master within seconds (losses counted)", async (t) => {
  const prefix = uniquePrefix();
  const service = "killed";
  const log = recordingLogger();
  const producer = await Client.connect(group.url(), { prefix, logger: log });
  after(() => producer.close());
  const consumer = await Client.connect(group.url(), { prefix, logger: log });
  after(() => consumer.close());
  /** @type {Map<string, number>} id -> when its enqueue returned */
  const acked = new Map();
  /** @type {Record<string, number>} */
  const refusals = {};
  let producing = true;
  after(() => {
    producing = false;
  });
  const produced = (async () => {
    for (let i = 0; producing; i++) {
      try {
        acked.set(await producer.enqueue(service, { i }, { id: `k${i}` }), performance.now());
      } catch (exc) {
        const code = /** @type {any} */ (exc).code ?? String(exc);
        refusals[code] = (refusals[code] ?? 0) + 1;
        await sleep(50);
      }
      await sleep(5);
    }
  })();
  /** @type {Map<string, number>} id -> when it was first handled */
  const handled = new Map();
  const worker = new Worker(consumer, service, () => new (class extends Consumer {
    /** @param {any} ev */
    handleEvent(ev) {
      if (!handled.has(ev.id)) handled.set(ev.id, performance.now());
      return null;
    }
  })(), { concurrency: 2, leaseMs: 1000, logger: log });
  after(() => worker.shutdown());
  await worker.start();
  await until(() => acked.size >= 30 && handled.size >= 10, 10000, "traffic before the kill");

  const oldPort = await group.masterPort();
  const t0 = performance.now();
  await group.node(oldPort).kill();
  await until(async () => (await group.masterPort()) !== oldPort, 15000, "Sentinel promoting the replica");
  const promoted = performance.now() - t0;
  await until(() => [...acked.values()].some((at) => at > t0 + promoted), 10000, "an enqueue on the new master");
  const produceBack = performance.now() - t0;
  await until(() => [...handled.entries()].some(([id, at]) => at > t0 + promoted && acked.has(id) &&
    /** @type {number} */ (acked.get(id)) > t0 + promoted), 10000, "the worker on the new master");
  const consumeBack = performance.now() - t0;
  producing = false;
  await produced;
  await worker.shutdown();
  const lost = [...acked.keys()].filter((id) => !handled.has(id) && /** @type {number} */ (acked.get(id)) < t0);
  t.diagnostic(`promoted ${Math.round(promoted)} ms after kill -9; producer back ${Math.round(produceBack)} ms, ` +
    `worker back ${Math.round(consumeBack)} ms; ${acked.size} acknowledged, ${lost.length} acknowledged before ` +
    `the kill and not handled since (asynchronous replication, no WAIT); refusals ${JSON.stringify(refusals)}`);
  assert.ok(produceBack - promoted < 5000, "the producer followed within seconds of the promotion");
  assert.ok(consumeBack - promoted < 5000, "the worker followed within seconds of the promotion");
});
