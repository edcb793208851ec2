// The conformance suite (the repository's conformance/) run by the JavaScript
// client: every vector on a private standalone Redis and a private 3-master
// Cluster, the golden envelope vectors byte for byte through src/envelope.js,
// and the runner's own contract (it touches no key it did not create, reports
// failures, exits 0/1/2 like Python's command). The files themselves are
// checked once, for every runner, by conformance/build.py (schema, lint,
// coverage rule: python/tests/test_conformance.py tests it), not here.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { createClient } from "redis";

import { connect as connectRedis } from "../src/connection.js";
import { CALLS } from "../src/conformance/calls.js";
import { REPO_VECTORS, VectorFileError, loadSuite, operations, toValue, toWire } from "../src/conformance/loader.js";
import { PrefixInUseError, Runner, closedPort, compare, runEnvelopeCase, runSuite, send } from "../src/conformance/runner.js";
import { uniquePrefix } from "./helpers.js";
import { RedisCluster, RedisServer } from "./servers.js";

const CLI = fileURLToPath(new URL("../src/conformance/cli.js", import.meta.url));
const REPO = path.join(REPO_VECTORS, "..");
const absent = existsSync(path.join(REPO_VECTORS, "calls.json")) ? false : "no conformance/ beside the package";
const SUITE = absent ? null : loadSuite();
const suite = () => /** @type {import("../src/conformance/loader.js").Suite} */ (SUITE);
const tmp = mkdtempSync(path.join(tmpdir(), "homing-js-conformance-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** @type {{standalone: RedisServer | null, cluster: RedisCluster | null}} */
const servers = { standalone: null, cluster: null };
if (!absent) {
  [servers.standalone, servers.cluster] = await Promise.all([new RedisServer().start(), new RedisCluster().start()]);
  after(() => Promise.all([servers.standalone?.close(), servers.cluster?.close()]));
}
const url = (/** @type {"standalone" | "cluster"} */ t) => /** @type {{url: string}} */ (servers[t]).url;

/** Every key on the server (all nodes of a Cluster). @param {{url: string}[]} nodes */
async function allKeys(nodes) {
  const keys = new Set();
  for (const node of nodes) {
    const c = createClient({ url: node.url });
    await c.connect();
    for await (const batch of c.scanIterator({ COUNT: 1000 })) for (const k of batch) keys.add(k);
    await c.close();
  }
  return keys;
}

// -- the vectors, on both topologies --------------------------------------------

for (const topology of /** @type {const} */ (["standalone", "cluster"])) {
  describe(`vectors on ${topology}`, { skip: absent }, () => {
    /** @type {any} */
    let conn;
    /** @type {Runner} */
    let runner;
    before(async () => {
      conn = await connectRedis(url(topology));
      runner = new Runner(conn, uniquePrefix());
    });
    after(() => conn?.close());
    for (const op of absent ? [] : operations(suite())) {
      test(op, async () => {
        const vectors = suite().vectors.filter((v) => v.operation === op);
        const failures = [];
        for (const vec of vectors) {
          const r = await runner.runVector(vec);
          if (!r.passed) failures.push(`${r.name}: ${r.detail}`);
        }
        assert.deepEqual(failures, []);
        assert.ok(vectors.length > 0);
      });
    }
  });
}

describe("golden envelope vectors through src/envelope.js", { skip: absent }, () => {
  for (const c of absent ? [] : suite().envelopes) {
    test(c.name, () => {
      const r = runEnvelopeCase(c);
      assert.ok(r.passed, r.detail);
    });
  }
});

// -- the suite itself --------------------------------------------------------------

test("every call of the vocabulary is implemented, every operation file reported", { skip: absent }, () => {
  assert.deepEqual(Object.keys(CALLS).sort(), Object.keys(suite().calls).sort());
  const files = readdirSync(path.join(REPO_VECTORS, "vectors")).map((f) => f.replace(/\.json$/, ""));
  assert.deepEqual(operations(suite()).sort(), files.sort());
  assert.ok(suite().vectors.length >= 150);
  const scripts = readdirSync(path.join(REPO, "lua", "scripts")).map((f) => f.replace(/\.lua$/, ""));
  assert.deepEqual(Object.values(suite().calls).map((c) => c.script).filter((s) => !scripts.includes(s)), []);
});

test("a file that is not a vector file is refused by the loader", { skip: absent }, () => {
  const root = mkdtempSync(path.join(tmp, "notvectors-"));
  cpSync(REPO_VECTORS, root, { recursive: true, filter: (f) => !/\.(py|md)$/.test(f) });
  writeFileSync(path.join(root, "vectors", "enqueue.json"), "{}");
  assert.throws(() => loadSuite(root), (exc) => exc instanceof VectorFileError && /enqueue\.json: not a vector file/.test(exc.message));
  writeFileSync(path.join(root, "vectors", "enqueue.json"), "{");
  assert.throws(() => loadSuite(root), VectorFileError);
});

test("value conventions and comparison rules", () => {
  assert.deepEqual(toValue({ a: [{ $hex: "00ff" }, { $bytes: "é" }, { $int: "18446744073709551615" }] }),
    { a: [Buffer.from([0, 255]), Buffer.from("é"), 18446744073709551615n] });
  assert.deepEqual(toValue({ $envelope: null }), Buffer.from("82a17601a170c0", "hex"));
  assert.deepEqual(toWire(30000), Buffer.from("30000"));
  assert.throws(() => toValue({ $hexx: "00" }), VectorFileError);
  assert.throws(() => toValue({ $hex: "0" }), VectorFileError);
  assert.deepEqual(compare({ $int: "5" }, 5, "v", "value"), []);
  assert.deepEqual(compare(1, 1.0, "v", "value"), []);
  assert.deepEqual(compare(true, 1, "v", "value"), ["v: expected true, got 1"]);
  assert.deepEqual(compare("30000", Buffer.from("30000"), "v", "raw"), []);
  assert.deepEqual(compare(30000, Buffer.from("30000"), "v", "raw").length, 1, "a raw number is an integer reply");
  assert.deepEqual(compare(30000, Buffer.from("30000"), "v", "state"), []);
  assert.deepEqual(compare({ $subset: { a: 1 } }, { a: 1, b: 2 }, "v", "value"), []);
  assert.deepEqual(compare({ a: 1 }, { a: 1, b: 2 }, "v", "value"), ["v.b: unexpected"]);
  assert.deepEqual(compare([{ $error: "X" }], [{ $error: "Y" }], "v", "value"), ['v[0]: expected error X, got {"$error":"Y"}']);
  assert.deepEqual(compare({ $hex: "00" }, new Uint8Array([0]), "v", "value"), []);
});

test("the runner touches no other key and leaves none behind", { skip: absent }, async () => {
  for (const topology of /** @type {const} */ (["standalone", "cluster"])) {
    const nodes = topology === "cluster" ? /** @type {RedisCluster} */ (servers.cluster).nodes : [/** @type {RedisServer} */ (servers.standalone)];
    const prefix = uniquePrefix();
    const conn = await connectRedis(url(topology));
    const sentinels = [`${prefix}-other:{svc}:ready`, `${prefix}.x:services`, "homing:{stats.0}:ready", "sentinel-plain"];
    try {
      for (const k of sentinels) await send(conn, k, ["SET", k, "keep"]);
      const before = await allKeys(nodes);
      const report = await runSuite(url(topology), suite(), { prefix });
      assert.deepEqual(report.results.filter((r) => !r.passed), []);
      assert.equal(report.results.length, suite().vectors.length + suite().envelopes.length);
      assert.match(report.server, new RegExp(`^(redis|valkey) \\S+ ${topology}$`));
      assert.deepEqual(await allKeys(nodes), before);
      for (const k of sentinels) assert.equal(String(await send(conn, k, ["GET", k])), "keep");
    } finally {
      for (const k of sentinels) await send(conn, k, ["DEL", k]);
      await conn.close();
    }
  }
});

test("a prefix that holds a registry is refused and left alone", { skip: absent }, async () => {
  const prefix = uniquePrefix();
  const conn = await connectRedis(url("standalone"));
  const registry = `${prefix}:services`;
  try {
    await send(conn, registry, ["SADD", registry, "live"]);
    await assert.rejects(runSuite(url("standalone"), suite(), { prefix, operations: ["stats"] }), PrefixInUseError);
    assert.deepEqual((await send(conn, registry, ["SMEMBERS", registry])).map(String), ["live"]);
  } finally {
    await send(conn, registry, ["DEL", registry]);
    await conn.close();
  }
});

/** @param {string[]} args */
const cli = (args) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60000 });

test("the command exits 0 on a good server, 1 on a failing vector, 2 when it cannot run", { skip: absent }, async () => {
  const good = cli(["--redis-url", url("cluster"), "--filter", "dequeue", "--filter", "envelope"]);
  assert.equal(good.status, 0, good.stdout + good.stderr);
  const n = suite().vectors.filter((v) => v.operation === "dequeue").length + suite().envelopes.length;
  assert.match(good.stdout, new RegExp(`PASS: all ${n} vectors passed in 2 operations`));

  const root = mkdtempSync(path.join(tmp, "broken-"));
  cpSync(REPO_VECTORS, root, { recursive: true });
  const file = path.join(root, "vectors", "dequeue.json");
  const doc = JSON.parse(readFileSync(file, "utf8"));
  doc.vectors[0].steps[2].returns[0].token = 2; // the Lua issues 1000000001
  writeFileSync(file, JSON.stringify(doc));
  const bad = cli(["--redis-url", url("standalone"), "--vectors", root, "--filter", "dequeue"]);
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /FAIL dequeue: the oldest ready event is leased/);
  assert.match(bad.stdout, /returns\[0\]\.token: expected 2, got 1000000001\n/);
  assert.match(bad.stdout, /FAIL: 1 of \d+ vectors failed in 1 of 1 operation\n?$/);

  const refused = cli(["--redis-url", `redis://127.0.0.1:${await closedPort()}/0`]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /CONNECTION/);
  const unknown = cli(["--redis-url", url("standalone"), "--filter", "nope"]);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown operation nope/);
});

test("the runner's sources type-check against their JSDoc", async (t) => {
  let ts;
  try {
    ts = (await import("typescript")).default;
  } catch {
    t.skip("typescript is not installed");
    return;
  }
  const dir = fileURLToPath(new URL("../src/conformance/", import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => path.join(dir, f));
  const program = ts.createProgram(files, {
    allowJs: true, checkJs: true, noEmit: true, noUnusedLocals: true, noUnusedParameters: true,
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, lib: ["lib.esnext.d.ts"], types: ["node"], skipLibCheck: true,
  });
  const text = ts.getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
  assert.deepEqual(text, []);
});
