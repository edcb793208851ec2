// Dead connections (issue 8): a TCP proxy started here, on loopback, stops
// forwarding (a partition: bytes are held, not dropped, as TCP would) for
// longer than the lease. The Worker behind it must notice within its
// commandTimeoutMs, log it, reconnect, and complete every event after the
// partition: redeliveries after a lease ended are allowed (counted), losses
// are not. Plus the connection defaults homing sets. A private Redis; never 6379.

import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";

import { Client, ConnectionLostError, Consumer, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, uniquePrefix, until } from "./helpers.js";
import { HOST } from "./servers.js";

const server = await privateServer();

/** A TCP proxy to a Redis port that can stop forwarding (hold every byte) and resume. */
class Proxy {
  /** @type {Set<net.Socket>} */
  sockets = new Set();
  held = false;

  /** @param {number} target */
  constructor(target) {
    this.target = target;
    this.server = net.createServer((down) => {
      const up = net.connect(target, HOST);
      for (const [a, b] of [[down, up], [up, down]]) {
        this.sockets.add(a);
        a.on("data", (chunk) => b.write(chunk));
        a.on("error", () => b.destroy());
        a.on("close", () => {
          this.sockets.delete(a);
          b.destroy();
        });
        if (this.held) a.pause();
      }
    });
  }

  /** @returns {Promise<number>} the port */
  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, HOST, () => resolve(/** @type {net.AddressInfo} */ (this.server.address()).port));
    });
  }

  /** The partition: nothing is read from either side (TCP backpressure holds it). */
  hold() {
    this.held = true;
    for (const s of this.sockets) s.pause();
  }

  /** The partition heals: what was held flows on. */
  release() {
    this.held = false;
    for (const s of this.sockets) s.resume();
  }

  close() {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r(null)));
  }
}

const proxy = new Proxy(server.port);
const proxyPort = await proxy.listen();
after(() => proxy.close());
const proxyUrl = `redis://${HOST}:${proxyPort}/0`;

test("connect sets a connect timeout, keepalive, a PING interval and a command timeout, unless given", async () => {
  const client = await connect(server.url);
  after(() => client.close());
  const opts = client.connection.options;
  assert.equal(opts.pingInterval, 5000);
  assert.equal(opts.socket.connectTimeout, 5000);
  assert.equal(opts.socket.keepAlive, true);
  assert.equal(opts.socket.keepAliveInitialDelay, 5000);
  assert.equal(client.commandTimeoutMs, 10000);

  const own = await connect(server.url, {
    commandTimeoutMs: 3000,
    redisOptions: { pingInterval: 0, socket: { connectTimeout: 1000, keepAlive: false } },
  });
  after(() => own.close());
  assert.equal(own.connection.options.pingInterval, 0);
  assert.equal(own.connection.options.socket.connectTimeout, 1000);
  assert.equal(own.connection.options.socket.keepAlive, false);
  assert.equal(own.commandTimeoutMs, 3000);
});

test("a call that gets no reply is ConnectionLostError after commandTimeoutMs; the client reconnects", async () => {
  const log = recordingLogger();
  const client = await Client.connect(proxyUrl, { prefix: uniquePrefix(), commandTimeoutMs: 500, logger: log });
  after(() => client.close());
  await client.enqueue("bounded", 1);
  const before = client.connection;
  proxy.hold();
  try {
    const t0 = performance.now();
    const err = await client.enqueue("bounded", 2).catch((e) => e);
    const took = performance.now() - t0;
    assert.ok(err instanceof ConnectionLostError, String(err));
    assert.match(err.message, /did not answer within 500 ms.*may have run/);
    assert.ok(took >= 450 && took < 2000, `${Math.round(took)} ms`);
    assert.ok(log.lines.some((l) => /dropped the connection to Redis \(no reply within 500 ms\)/.test(l.text)));
    // Connecting again through the partition is bounded too.
    await assert.rejects(client.enqueue("bounded", 3), ConnectionLostError);
  } finally {
    proxy.release();
  }
  await until(async () => client.enqueue("bounded", 4).then(() => true, () => false), 5000, "a reconnect");
  assert.notEqual(client.connection, before, "a new node-redis client");
  // The call cut off by the timer was not sent again by the client; it may
  // have run once the partition healed (the held bytes flowed on).
  assert.ok((await client.stats("bounded")).ready <= 4);
});

test("a worker behind a partition longer than its lease notices, reconnects and completes everything", async (t) => {
  const producer = await connect(server.url); // not through the proxy
  after(() => producer.close());
  const sched = runScheduler(producer, "part");
  after(() => sched.stop());
  await producer.configure("part", { doneTtlMs: 600_000 }); // status answers done for completions without a result
  const ids = await producer.enqueueMany("part", Array.from({ length: 300 }, (_, i) => i));

  const log = recordingLogger();
  const client = await Client.connect(proxyUrl, { prefix: producer.prefix, commandTimeoutMs: 1000, logger: log });
  after(() => client.close());
  /** @type {Map<string, number>} id -> deliveries handled */
  const handled = new Map();
  class Slow extends Consumer {
    /** @param {any} ev */
    async handleEvent(ev) {
      await new Promise((r) => setTimeout(r, 5));
      handled.set(ev.id, (handled.get(ev.id) ?? 0) + 1);
      return null;
    }
  }
  const worker = new Worker(client, "part", Slow, { concurrency: 4, prefetch: 20, leaseMs: 1000, logger: log });
  after(() => worker.shutdown());
  await worker.start();
  await until(() => handled.size >= 40, 10000, "some handled");

  proxy.hold();
  const cut = performance.now();
  await new Promise((r) => setTimeout(r, 2500)); // longer than the lease
  const noticed = log.lines.find((l) => /ConnectionLostError|dropped the connection/.test(l.text));
  proxy.release();
  assert.ok(noticed, "the worker logged the lost connection during the partition");

  await until(async () => (await Promise.all(ids.map((id) => producer.status("part", id))))
    .every((st) => st.state === "done"), 20000, "every event done");
  const healedIn = performance.now() - cut;
  await worker.shutdown();
  const again = [...handled.values()].reduce((n, c) => n + (c - 1), 0);
  t.diagnostic(`all ${ids.length} done ${Math.round(healedIn)} ms after the cut; ` +
    `${again} redeliveries after leases ended; stats ${JSON.stringify(worker.stats)}`);
  assert.equal(handled.size, ids.length, "every event handled");
  assert.equal((await producer.stats("part")).dead, 0);
});
