// The durability settings a client reads when it connects (issue 7 item 2,
// python/tests/test_durability_warnings.py for the JavaScript client): a
// warning once per process and server for an evicting or non-persistent
// server, once for a server that refuses CONFIG, and requireDurable refusing
// such a server with NotDurableError before anything is written.

import assert from "node:assert/strict";
import { after, beforeEach, describe, test } from "node:test";

import { Client, NotDurableError, durability } from "../src/index.js";
import { RedisCluster, RedisServer } from "./servers.js";
import { recordingLogger, uniquePrefix } from "./helpers.js";

/** @param {string[]} extra @param {boolean} [appendonly] */
async function serverWith(extra, appendonly = false) {
  const server = await new RedisServer({ appendonly, extra }).start();
  after(() => server.close());
  return server;
}

const volatile = await serverWith([]); // the tests' default: no AOF, save ""
const durable = await serverWith([], true); // appendonly yes, appendfsync always
const everysec = await serverWith(["--appendfsync", "everysec"], true);
const evicting = await serverWith(["--maxmemory-policy", "allkeys-lru"], true);
const snapshots = await serverWith(["--save", "900 1"]);

/**
 * @param {string} url
 * @param {Record<string, any>} [options]
 */
async function connectLogged(url, options = {}) {
  const logger = recordingLogger();
  const client = await Client.connect(url, { prefix: uniquePrefix(), logger, ...options });
  after(() => client.close());
  return { client, warnings: logger.lines.filter((l) => l.level === "warn").map((l) => l.text) };
}

beforeEach(() => durability.forget());

describe("warnings on connect", () => {
  test("no persistence: one warning naming the server, the setting and the cost", async () => {
    const { warnings } = await connectLogged(volatile.url);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], new RegExp(`^Redis at 127\\.0\\.0\\.1:${volatile.port}: appendonly is "no": ` +
      'no persistence at all \\(save ""\\): a restart loses every queued event; set appendonly yes'));
    assert.match(warnings[0], /see docs\/guarantees\.md/);
  });

  test("once per process and server: a second client says nothing", async () => {
    await connectLogged(volatile.url);
    const second = await connectLogged(volatile.url);
    assert.deepEqual(second.warnings, []);
    const other = await connectLogged(snapshots.url);
    assert.equal(other.warnings.length, 1);
    assert.match(other.warnings[0], /RDB snapshots only \(save "900 1"\): a crash loses every event/);
  });

  test("a durable server: no warning; everysec: a warning, not fatal", async () => {
    assert.deepEqual((await connectLogged(durable.url)).warnings, []);
    const { client, warnings } = await connectLogged(everysec.url);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /appendfsync is "everysec": a crash may lose about the last second/);
    const [report] = await client.checkDurability({ require: true });
    assert.equal(report.durable, true);
  });

  test("an eviction policy is warned about: it may silently delete queued events", async () => {
    const { client, warnings } = await connectLogged(evicting.url);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /maxmemory-policy is "allkeys-lru": when memory runs out Redis evicts keys/);
    const [report] = await client.checkDurability();
    assert.equal(report.durable, false);
    assert.equal(report.settings["maxmemory-policy"], "allkeys-lru");
    assert.match(durability.summary([report]), /^durability: NOT DURABLE/);
  });

  test("CONFIG refused (an ACL): said once, and INFO is used instead", async () => {
    const admin = await Client.connect(durable.url, { prefix: uniquePrefix(), logger: recordingLogger() });
    after(() => admin.close());
    await admin.connection.sendCommand(["ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "+@all", "-config"]);
    durability.forget();
    const url = durable.url.replace("redis://", "redis://noconfig:pw@");
    const { client, warnings } = await connectLogged(url);
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0], /refused CONFIG GET \(NOPERM[^)]*\): its durability settings could not all be checked; what INFO showed was used/);
    assert.match(warnings[1], /appendfsync could not be read: how much a crash may lose is unknown/);
    const [report] = await client.checkDurability();
    assert.deepEqual(report.settings, { "maxmemory-policy": "noeviction", appendonly: "yes", appendfsync: null, save: null });
    assert.equal(report.durable, true, "INFO showed enough: noeviction and the AOF on");
    assert.equal((await connectLogged(url)).warnings.length, 0, "once per process and server");
  });

  test("neither CONFIG nor INFO: unknown, and requireDurable cannot be met", async () => {
    const admin = await Client.connect(durable.url, { prefix: uniquePrefix(), logger: recordingLogger() });
    after(() => admin.close());
    await admin.connection.sendCommand(["ACL", "SETUSER", "blind", "on", ">pw", "~*", "+@all", "-config", "-info"]);
    durability.forget();
    const url = durable.url.replace("redis://", "redis://blind:pw@");
    const { warnings } = await connectLogged(url);
    assert.ok(warnings.some((w) => /maxmemory-policy could not be read/.test(w)), warnings.join("\n"));
    await assert.rejects(Client.connect(url, { requireDurable: true, logger: recordingLogger() }), (/** @type {any} */ err) => {
      assert.ok(err instanceof NotDurableError);
      assert.match(err.message, /CONFIG GET or INFO refused: durability cannot be shown/);
      return true;
    });
  });
});

describe("requireDurable", () => {
  test("connect rejects with NotDurableError on a server that may lose events", async () => {
    for (const server of [volatile, evicting, snapshots]) {
      await assert.rejects(Client.connect(server.url, { requireDurable: true, logger: recordingLogger() }), (/** @type {any} */ err) => {
        assert.ok(err instanceof NotDurableError, `${err.name}: ${err.message}`);
        assert.equal(err.code, "NOT_DURABLE");
        assert.match(err.message, /^durability was required and this server may lose acknowledged events: Redis at /);
        return true;
      });
    }
    const { client } = await connectLogged(durable.url, { requireDurable: true });
    await client.enqueue("ok", 1);
  });

  test("a wrapped client with requireDurable refuses every call, and writes nothing", async () => {
    const plain = await Client.connect(volatile.url, { prefix: uniquePrefix(), logger: recordingLogger() });
    after(() => plain.close());
    const strict = new Client(plain.connection, { prefix: plain.prefix, requireDurable: true, logger: recordingLogger() });
    for (let i = 0; i < 2; i++) await assert.rejects(strict.enqueue("svc", 1), NotDurableError);
    assert.deepEqual(await plain.services(), []);
    await plain.enqueue("svc", 1);
    await assert.rejects(plain.checkDurability({ require: true }), NotDurableError);
  });
});

test("on a Cluster every master is read", async () => {
  const cluster = await new RedisCluster().start();
  after(() => cluster.close());
  const { client, warnings } = await connectLogged(cluster.url);
  const reports = await client.checkDurability();
  assert.deepEqual(reports.map((r) => r.node).sort(), cluster.nodes.map((n) => `127.0.0.1:${n.port}`).sort());
  assert.equal(warnings.length, 3, warnings.join("\n"));
  assert.ok(reports.every((r) => r.settings.appendonly === "no"));
});

test("assess: the table of docs/guarantees.md", () => {
  const ok = { "maxmemory-policy": "noeviction", appendonly: "yes", appendfsync: "always", save: "" };
  assert.deepEqual(durability.assess(ok), []);
  const fatal = (/** @type {Record<string, string | null>} */ s) =>
    durability.assess({ ...ok, ...s }).map((f) => [f.setting, f.fatal]);
  assert.deepEqual(fatal({ "maxmemory-policy": "volatile-lru" }), [["maxmemory-policy", true]]);
  assert.deepEqual(fatal({ appendonly: "no" }), [["appendonly", true]]);
  assert.deepEqual(fatal({ appendfsync: "no" }), [["appendfsync", false]]);
  assert.deepEqual(fatal({ appendfsync: null }), [["appendfsync", false]]);
  assert.deepEqual(fatal({ "maxmemory-policy": null, appendonly: null }),
    [["maxmemory-policy", true], ["appendonly", true]]);
});
