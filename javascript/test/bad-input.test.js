// Bad input of every kind (issue 7 item 6, python/tests/test_bad_input_typed.py
// for the JavaScript client): the exact homing error class, and nothing
// written, the service registry included.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import * as homing from "../src/index.js";
import { RedisCluster } from "./servers.js";
import { connect, privateServer } from "./helpers.js";

const {
  Client,
  CorruptEnvelopeError,
  InvalidArgumentError,
  PermissionDeniedError,
  PayloadNotEncodableError,
  SchemaMismatchError,
  WrongTypeError,
  envelope,
  ops,
} = homing;

const server = await privateServer();

/** @param {number} levels */
function nest(levels) {
  let v = /** @type {any} */ (1);
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}
const loop = /** @type {any[]} */ ([]);
loop.push(loop);

/**
 * Every key under the client's prefix with its type and content.
 * @param {homing.Client} client
 */
async function snapshot(client) {
  const c = client.connection;
  /** @type {Record<string, unknown>} */
  const out = {};
  for await (const keys of c.scanIterator({ MATCH: `${client.prefix}:*`, COUNT: 1000 })) {
    for (const k of keys) {
      const type = await c.type(k);
      const read = {
        string: () => c.get(k),
        hash: () => c.hGetAll(k),
        list: () => c.lRange(k, 0, -1),
        set: async () => (await c.sMembers(k)).sort(),
        zset: () => c.zRangeWithScores(k, 0, -1),
      }[/** @type {"string"} */ (type)];
      out[k] = [type, await read()];
    }
  }
  return out;
}

/** @param {homing.Client} client @param {string} service @param {string} name */
const key = (client, service, name) => `${client.prefix}:{${service}}:${name}`;

/**
 * A prefix with a leased event, a service of another schema and one with a broken key.
 * @param {homing.Client} c
 */
async function world(c) {
  await c.enqueue("live", "payload");
  const [ev] = await c.dequeue("live", 1, { leaseMs: 600_000 });
  await c.connection.hSet(key(c, "schema", "config"), "schema", "1");
  await c.connection.set(key(c, "wt", "ready"), "not a list");
  return ev;
}

const NAN = NaN;
const INF = Infinity;
/** @typedef {(c: homing.Client, ev: homing.Event) => Promise<unknown> | unknown} Call */
/** @type {[string, Call, typeof homing.HomingError][]} */
const CASES = [
  // delays, due times, leases and fail delays that are not finite whole milliseconds
  ...[NAN, INF, -INF, 1e30, -1, "5", true].map((v) => /** @type {const} */ ([
    `delayMs=${String(v)}`, (/** @type {homing.Client} */ c) => c.createTimer("fresh", 1, { delayMs: /** @type {any} */ (v) }),
    InvalidArgumentError])),
  ...[NAN, INF, -INF, 1e300, 2 ** 53, -5, "2030", new Date(NaN)].map((v) => /** @type {const} */ ([
    `at=${String(v)}`, (/** @type {homing.Client} */ c) => c.createTimer("fresh", 1, { at: /** @type {any} */ (v) }),
    InvalidArgumentError])),
  ...[NAN, INF, 1e30, -1, "x", 43_200_001].map((v) => /** @type {const} */ ([
    `dequeue leaseMs=${String(v)}`, (/** @type {homing.Client} */ c) => c.dequeue("live", 1, { leaseMs: /** @type {any} */ (v) }),
    InvalidArgumentError])),
  ["extend leaseMs=NaN", (c, ev) => c.extendLease("live", ev.id, ev.token, NAN), InvalidArgumentError],
  ...[NAN, INF, 1e30, -1].map((v) => /** @type {const} */ ([
    `fail delayMs=${v}`, (/** @type {homing.Client} */ c, /** @type {homing.Event} */ ev) =>
      c.fail("live", ev.id, ev.token, "x", { delayMs: v }), InvalidArgumentError])),
  ["fail reason Buffer", (c, ev) => c.fail("live", ev.id, ev.token, /** @type {any} */ (Buffer.from("x"))), InvalidArgumentError],
  ["fail reason number", (c, ev) => c.fail("live", ev.id, ev.token, /** @type {any} */ (5)), InvalidArgumentError],
  // counts, offsets, limits and timeouts
  ...["3", null, 2.5, NAN, 0, 1001].map((v) => /** @type {const} */ ([
    `dequeue count=${String(v)}`, (/** @type {homing.Client} */ c) => c.dequeue("live", /** @type {any} */ (v)),
    InvalidArgumentError])),
  ["deadList count=NaN", (c) => c.deadList("live", { count: NAN }), InvalidArgumentError],
  ["deadList count='x'", (c) => c.deadList("live", { count: /** @type {any} */ ("x") }), InvalidArgumentError],
  ["deadList offset=-1", (c) => c.deadList("live", { offset: -1 }), InvalidArgumentError],
  ["deadRequeue count=Infinity", (c) => c.deadRequeue("live", { count: INF }), InvalidArgumentError],
  ["deadPurge ids='abc'", (c) => c.deadPurge("live", { ids: /** @type {any} */ ("abc") }), InvalidArgumentError],
  ["promote limit=Infinity", (c) => c.promote("live", INF), InvalidArgumentError],
  ["promote limit='x'", (c) => c.promote("live", /** @type {any} */ ("x")), InvalidArgumentError],
  ["distribute limit=1e30", (c) => c.distribute("live", 1e30), InvalidArgumentError],
  ...[NAN, "1", -1].map((v) => /** @type {const} */ ([
    `result timeoutMs=${String(v)}`, (/** @type {homing.Client} */ c, /** @type {homing.Event} */ ev) =>
      c.result("live", ev.id, { timeoutMs: /** @type {any} */ (v) }), InvalidArgumentError])),
  ["takeHints count='x'", (c) => c.takeHints(/** @type {any} */ ("x")), InvalidArgumentError],
  // tokens that are not integers in [0, 2^53 - 1] (text too, even of digits: "7")
  ...["abc", 1.5, -1, null, 2n ** 70n, "-3", "1e5", 2 ** 53, "", NAN, "7", true].flatMap((t) => {
    const tk = /** @type {any} */ (t);
    return /** @type {[string, Call, typeof homing.HomingError][]} */ ([
      [`complete token=${String(t)}`, (c, ev) => c.complete("live", ev.id, tk), InvalidArgumentError],
      [`fail token=${String(t)}`, (c, ev) => c.fail("live", ev.id, tk), InvalidArgumentError],
      [`extend token=${String(t)}`, (c, ev) => c.extendLease("live", ev.id, tk), InvalidArgumentError],
      [`release token=${String(t)}`, (c, ev) => c.release("live", [[ev.id, tk]]), InvalidArgumentError],
      [`start token=${String(t)}`, (c, ev) => c.start("live", [[ev.id, tk]]), InvalidArgumentError],
    ]);
  }),
  // batches whose items are not the documented shapes
  ["completeMany [id]", (c, ev) => c.completeMany("live", /** @type {any} */ ([ev.id])), InvalidArgumentError],
  ["completeMany [[id]]", (c, ev) => c.completeMany("live", /** @type {any} */ ([[ev.id]])), InvalidArgumentError],
  ["release 'abc'", (c) => c.release("live", /** @type {any} */ ("abc")), InvalidArgumentError],
  ["extendMany [id]", (c, ev) => c.extendMany("live", /** @type {any} */ ([ev.id])), InvalidArgumentError],
  ["start [[id]]", (c, ev) => c.start("live", /** @type {any} */ ([[ev.id]])), InvalidArgumentError],
  ["start [[id, token, x, y]]", (c, ev) => c.start("live", /** @type {any} */ ([[ev.id, ev.token, 1, 2]])), InvalidArgumentError],
  ...[null, 5, "abc", { a: 1 }].map((v) => /** @type {const} */ ([
    `enqueueMany ${JSON.stringify(v)}`, (/** @type {homing.Client} */ c) => c.enqueueMany("fresh", /** @type {any} */ (v)),
    InvalidArgumentError])),
  ["enqueueMany keys='a'", (c) => c.enqueueMany("fresh", [1], { keys: /** @type {any} */ ("a") }), InvalidArgumentError],
  ...[5, Buffer.from("k"), ["a"]].map((k) => /** @type {const} */ ([
    `enqueue key=${String(k)}`, (/** @type {homing.Client} */ c) => c.enqueue("fresh", 1, { key: /** @type {any} */ (k) }),
    InvalidArgumentError])),
  ["createTimer key=['a']", (c) => c.createTimer("fresh", 1, { delayMs: 1, key: /** @type {any} */ (["a"]) }), InvalidArgumentError],
  // payloads nested too deep (the limit is lua/keys.json limits.nesting)
  ...[["101", nest(101)], ["10000", nest(10_000)], ["in itself", loop]].flatMap(([name, p]) =>
    /** @type {[string, Call, typeof homing.HomingError][]} */ ([
      [`enqueue nested ${name}`, (c) => c.enqueue("fresh", p), PayloadNotEncodableError],
      [`createTimer nested ${name}`, (c) => c.createTimer("fresh", p, { delayMs: 1 }), PayloadNotEncodableError],
      [`complete result nested ${name}`, (c, ev) => c.complete("live", ev.id, ev.token, p), PayloadNotEncodableError],
    ])),
  // refused by a script (or the client): the service must not be registered for it
  ...[["leaseMs", 0], ["leaseMs", 1e30], ["leaseMs", NAN], ["leaseMs", "5"], ["backoffJitter", 2],
    ["maxAttempts", 1.5], ["nope", 1], ["handlerTimeoutMs", -1]].map(([f, v]) => /** @type {const} */ ([
    `configure ${f}=${String(v)}`, (/** @type {homing.Client} */ c) => c.configure("fresh", { [f]: /** @type {any} */ (v) }),
    InvalidArgumentError])),
  ["configure null", (c) => c.configure("fresh", /** @type {any} */ (null)), InvalidArgumentError],
  ["enqueue schema mismatch", (c) => c.enqueue("schema", 1), SchemaMismatchError],
  ["configure schema mismatch", (c) => c.configure("schema", { leaseMs: 5 }), SchemaMismatchError],
  ["timer schema mismatch", (c) => c.createTimer("schema", 1, { delayMs: 1 }), SchemaMismatchError],
  ["enqueue wrong-typed key", (c) => c.enqueue("wt", 1), WrongTypeError],
  // settings refused when made
  ...["x", 0, -1, NAN, 1.5].map((v) => /** @type {const} */ ([
    `maxPayload=${String(v)}`, (/** @type {homing.Client} */ c) => new Client(c.connection, { maxPayload: /** @type {any} */ (v) }),
    InvalidArgumentError])),
];

describe("refused, typed, and nothing written", () => {
  /** @type {homing.Client} */
  let client;
  /** @type {homing.Event} */
  let ev;
  /** @type {Record<string, unknown>} */
  let state;
  before(async () => {
    client = await connect(server.url);
    ev = await world(client);
    state = await snapshot(client);
  });
  after(() => client.close());

  for (const [name, call, cls] of CASES) {
    test(name, async () => {
      await assert.rejects(async () => call(client, ev), (/** @type {any} */ err) => {
        assert.equal(err.constructor, cls, `${err.constructor.name}: ${err.message}`);
        return true;
      });
      assert.deepEqual(await snapshot(client), state);
      assert.deepEqual(await client.services(), ["live"]);
    });
  }
});

describe("the registry", () => {
  test("a refused creating call leaves it alone; a successful one registers", async () => {
    const client = await connect(server.url);
    after(() => client.close());
    await assert.rejects(client.configure("fresh", { leaseMs: 0 }), InvalidArgumentError);
    await assert.rejects(client.createTimer("fresh", 1, { delayMs: 1e30 }), InvalidArgumentError);
    await assert.rejects(client.enqueue("fresh", nest(10_000)), PayloadNotEncodableError);
    assert.deepEqual(await client.services(), []);
    await client.configure("fresh", { leaseMs: 5000 });
    assert.deepEqual(await client.services(), ["fresh"]);
  });

  test("a service dropped from the registry is added again after registerEveryMs", async () => {
    const client = await connect(server.url);
    after(() => client.close());
    await client.enqueue("again", 1);
    await client.connection.del(`${client.prefix}:services`);
    await client.enqueue("again", 2);
    assert.deepEqual(await client.services(), [], "checked at most every registerEveryMs");
    client.registerEveryMs = 0;
    await client.enqueue("again", 3);
    assert.deepEqual(await client.services(), ["again"]);
  });

  test("a wrong-typed registry is WrongTypeError naming it, nothing written", async () => {
    const client = await connect(server.url);
    after(() => client.close());
    const registry = `${client.prefix}:services`;
    await client.connection.set(registry, "not a set");
    for (const call of [() => client.enqueue("fresh", 1), () => client.services(),
      () => client.register("fresh"), () => client.createTimer("fresh", 1, { delayMs: 1 })]) {
      await assert.rejects(call(), (/** @type {any} */ err) => {
        assert.ok(err instanceof WrongTypeError, err.message);
        assert.ok(err.message.includes(registry), err.message);
        return true;
      });
    }
    assert.deepEqual(Object.keys(await snapshot(client)), [registry]);
    const hints = `${client.prefix}:hints`;
    await client.connection.set(hints, "x");
    await assert.rejects(client.hintExpired("fresh"), WrongTypeError);
    await assert.rejects(client.takeHints(), WrongTypeError);
  });
});

describe("envelopes nested too deep", () => {
  test("are CorruptEnvelopeError on decode, not a stack overflow", async () => {
    const client = await connect(server.url);
    after(() => client.close());
    const ids = await client.enqueueMany("deep", ["ok", "deep", "deeper", "empty"]);
    const data = key(client, "deep", "data");
    const head = Buffer.from("82a17601a170", "hex"); // {"v": 1, "p": ...}
    await client.connection.hSet(data, ids[1], Buffer.concat([head, Buffer.alloc(101, 0x91), Buffer.from([1])]));
    await client.connection.hSet(data, ids[2], Buffer.concat([head, Buffer.alloc(100_000, 0x91), Buffer.from([1])]));
    // An empty array at level 101 opens no decoder state: the walk must see it.
    await client.connection.hSet(data, ids[3], Buffer.concat([head, Buffer.alloc(100, 0x91), Buffer.from([0x90])]));
    const events = await client.dequeue("deep", 4);
    const byId = Object.fromEntries(events.map((e) => [e.id, e]));
    assert.equal(byId[ids[0]].payload, "ok");
    for (const id of ids.slice(1)) {
      assert.throws(() => byId[id].payload, (/** @type {any} */ err) =>
        err instanceof CorruptEnvelopeError && /nested deeper than the limit of 100/.test(err.message));
    }
    assert.deepEqual(envelope.decode(envelope.encode(nest(100))), nest(100));
    assert.deepEqual(envelope.decode(envelope.encode({ a: nest(99) })), { a: nest(99) });
    assert.throws(() => envelope.encode({ a: nest(100) }), PayloadNotEncodableError);
    // Any branch counts, not only the first one walked.
    assert.throws(() => envelope.encode([nest(99), nest(100)]), PayloadNotEncodableError);
    assert.deepEqual(envelope.decode(envelope.encode([nest(98), []])), [nest(98), []]);
  });
});

describe("connecting", () => {
  test("a database index the server does not have is InvalidArgumentError", async () => {
    const url = server.url.replace(/\/0$/, "/99");
    await assert.rejects(Client.connect(url), (/** @type {any} */ err) => {
      assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
      assert.match(err.message, /database index .* out of range/);
      return true;
    });
  });

  for (const url of ["http://x", "redis://:::", "not a url", "redis://127.0.0.1:1/x"]) {
    test(`a malformed URL is InvalidArgumentError: ${url}`, async () => {
      await assert.rejects(Client.connect(url), (/** @type {any} */ err) =>
        err instanceof InvalidArgumentError && /invalid Redis URL/.test(err.message));
    });
  }

  test("refused credentials and an ACL refusal are PermissionDeniedError", async () => {
    const admin = await connect(server.url);
    after(() => admin.close());
    await admin.connection.sendCommand(["ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "+@all", "-evalsha", "-eval"]);
    const url = (/** @type {string} */ auth) => server.url.replace("redis://", `redis://${auth}@`);
    await assert.rejects(Client.connect(url("noscripts:wrong")), (/** @type {any} */ err) => {
      assert.ok(err instanceof PermissionDeniedError, `${err.name}: ${err.message}`);
      assert.equal(err.code, "NO_PERMISSION");
      assert.match(err.message, /^Redis refused the user: WRONGPASS/);
      return true;
    });
    const limited = await Client.connect(url("noscripts:pw"), { prefix: admin.prefix });
    after(() => limited.close());
    await assert.rejects(limited.enqueue("acl", 1), (/** @type {any} */ err) => {
      assert.ok(err instanceof PermissionDeniedError, `${err.name}: ${err.message}`);
      assert.match(err.message, /NOPERM/);
      return true;
    });
    assert.deepEqual(await admin.services(), [], "refused: nothing written");
  });

  test("on a Cluster only database 0 exists", async () => {
    const cluster = await new RedisCluster().start();
    after(() => cluster.close());
    for (const opts of [{}, { cluster: true }]) {
      await assert.rejects(Client.connect(cluster.url.replace(/\/0$/, "/1"), opts), (/** @type {any} */ err) => {
        assert.ok(err instanceof InvalidArgumentError, `${err.name}: ${err.message}`);
        assert.match(err.message, /Cluster has only database 0/);
        return true;
      });
    }
  });
});

test("the checks are in ops, before any I/O (the conformance runner gets them too)", () => {
  assert.throws(() => ops.dequeue("svc", /** @type {any} */ ("3")), InvalidArgumentError);
  assert.throws(() => ops.startMany("svc", [["a", -1]]), InvalidArgumentError);
  assert.throws(() => ops.fail("svc", "a", 1, /** @type {any} */ (null), false), InvalidArgumentError);
  assert.throws(() => ops.createTimer("svc", 1, 100, { delayMs: 2 ** 53 }), InvalidArgumentError);
  assert.throws(() => ops.beat(""), InvalidArgumentError);
  // a token is an integer (a number or a bigint), never text: as Python and Erlang
  assert.throws(() => ops.completeMany("svc", [["a", /** @type {any} */ ("0007")]], 100), InvalidArgumentError);
  assert.deepEqual(ops.completeMany("svc", [["a", 7n]], 100).args.slice(2, 4), ["a", "7"]);
  assert.deepEqual(ops.createTimer("svc", 1, 100, { delayMs: 2 ** 53 - 1, id: "t" }).args[4], String(2 ** 53 - 1));
});
