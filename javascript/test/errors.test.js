// Every error a caller can meet, against a private Redis: the same cases the
// Python client refuses, with the same codes and class names.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";

import * as homing from "../src/index.js";
import { translate } from "../src/connection.js";
import { freePort } from "./servers.js";
import { connect, privateServer, setClock } from "./helpers.js";

const {
  Client,
  ConnectionLostError,
  CorruptEnvelopeError,
  CorruptStateError,
  HomingError,
  InvalidArgumentError,
  InvalidNameError,
  PayloadNotEncodableError,
  PayloadTooLargeError,
  SchemaMismatchError,
  ScriptError,
  StaleLeaseError,
  UnknownEventError,
  WrongTypeError,
  ops,
} = homing;

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {string} service @param {string} name */
const key = (service, name) => `${client.prefix}:{${service}}:${name}`;

test("one class per code of lua/errors.json, with Python's class names", () => {
  const table = JSON.parse(readFileSync(new URL("../../lua/errors.json", import.meta.url), "utf8"));
  for (const e of table.errors) {
    const cls = /** @type {any} */ (homing)[e.class];
    assert.equal(typeof cls, "function", e.class);
    assert.equal(cls.code, e.code);
    const err = new cls("boom");
    assert.ok(err instanceof HomingError && err instanceof Error);
    assert.equal(err.code, e.code);
    assert.equal(err.name, e.class);
    assert.equal(err.message, "boom");
    assert.equal(homing.errorFor(e.code, "m").constructor, cls);
  }
  assert.equal(new InvalidNameError().message, InvalidNameError.description);
  const unknown = homing.errorFor("NEW_CODE", "later version");
  assert.equal(unknown.constructor, HomingError);
  assert.equal(unknown.message, "NEW_CODE later version");
});

describe("names", () => {
  const bad = ["", "a:b", "{x}", "x}", ".x", "-x", "a b", "é", "x".repeat(129), "abc\n", 7, null];
  test("invalid service names are refused before Redis is asked", async () => {
    for (const name of bad) {
      await assert.rejects(client.enqueue(/** @type {any} */ (name), 1), InvalidNameError, String(name));
      await assert.rejects(client.dequeue(/** @type {any} */ (name)), InvalidNameError);
    }
    assert.deepEqual(await client.services(), []);
  });

  test("valid edge names are accepted", async () => {
    for (const name of ["a", "_", "0", "A.b-c_d", "x".repeat(128)]) {
      await client.enqueue(name, 1);
    }
    assert.equal((await client.services()).length, 5);
  });

  test("invalid event ids and prefixes are refused", async () => {
    await assert.rejects(client.enqueue("ids", 1, { id: "a:b" }), InvalidNameError);
    await assert.rejects(client.createTimer("ids", 1, { delayMs: 1, id: "" }), InvalidNameError);
    await assert.rejects(client.cancelTimer("ids", "{x}"), InvalidNameError);
    await assert.rejects(Client.connect(server.url, { prefix: "a:b" }), InvalidNameError);
    assert.throws(() => new Client(client.connection, { prefix: "{p}" }), /invalid key prefix/);
  });
});

describe("arguments", () => {
  test("client-side checks throw InvalidArgumentError", async () => {
    await assert.rejects(client.dequeue("args", 0), /count must be a whole number in \[1, 1000\], got 0/);
    await assert.rejects(client.dequeue("args", 1001), InvalidArgumentError);
    await assert.rejects(client.enqueueMany("args", []), /enqueueMany takes a list of 1\.\.1000 items, got an array of 0/);
    await assert.rejects(client.enqueueMany("args", [1, 2], { keys: ["k"] }), /keys must be as many/);
    await assert.rejects(client.createTimer("args", 1, {}), /exactly one of delayMs or at/);
    await assert.rejects(client.createTimer("args", 1, { delayMs: 1, at: 5 }), InvalidArgumentError);
    await assert.rejects(client.createTimer("args", 1, { delayMs: -1 }), /delayMs must be a finite number in \[0, 2\^53 - 1\], got -1/);
    await assert.rejects(client.createTimer("args", 1, { at: new Date(NaN) }), InvalidArgumentError);
    await assert.rejects(client.configure("args", { leaseMillis: 5 }), /leaseMillis must be a policy field \([^)]*leaseMs[^)]*\) set to a finite number or none/);
    await assert.rejects(client.complete("args", "x", "not-a-token"), InvalidArgumentError);
    await assert.rejects(client.completeMany("args", []), /completeMany takes a list of 1\.\.1000/);
    assert.equal((await client.stats("args")).ready, 0);
  });

  test("the scripts' own checks arrive as InvalidArgumentError with their message", async () => {
    await assert.rejects(client.deadList("args", { count: 0 }), {
      name: "InvalidArgumentError",
      message: "count must be a whole number in [1, 1000], got 0",
    });
    await assert.rejects(client.configure("args", { maxAttempts: 0 }), /max_attempts must be in \[1, 1000\]/);
    await assert.rejects(client.configure("args", { backoffJitter: 1.5 }), InvalidArgumentError);
  });
});

describe("payloads", () => {
  test("over maxPayload: PayloadTooLargeError and nothing written", async () => {
    const small = await connect(server.url, { maxPayload: 64 });
    try {
      await assert.rejects(small.enqueue("big", "x".repeat(100)), (err) => {
        assert.ok(err instanceof PayloadTooLargeError);
        assert.match(err.message, /encoded payload is \d+ bytes, over the limit of 64; nothing was written/);
        return true;
      });
      await assert.rejects(small.enqueueMany("big", [1, "x".repeat(100)]), PayloadTooLargeError);
      assert.equal((await small.stats("big")).ready, 0);
      await small.enqueue("big", "ok");
      const [ev] = await small.dequeue("big");
      await assert.rejects(small.complete("big", ev.id, ev.token, "y".repeat(100)), PayloadTooLargeError);
      await small.complete("big", ev.id, ev.token, "fits");
    } finally {
      await small.close();
    }
  });

  test("the script's own limit reports PAYLOAD_TOO_LARGE too", async () => {
    const call = ops.enqueueMany("big-lua", ["x".repeat(50)], 1000);
    call.args[0] = "10";
    await assert.rejects(client.run(call), {
      name: "PayloadTooLargeError",
      message: /^envelope of \w+ is \d+ bytes, over the limit of 10$/,
    });
  });

  test("what msgpack cannot carry is PayloadNotEncodableError, nothing written", async () => {
    for (const p of [new Date(), new Map(), new Set([1]), () => 1, Symbol("s"), 2n ** 64n, "\ud800", new (class Foo {})()]) {
      await assert.rejects(client.enqueue("enc", p), PayloadNotEncodableError);
    }
    assert.equal((await client.stats("enc")).ready, 0);
  });
});

describe("leases", () => {
  test("a stale token is refused by complete, extendLease, fail and release", async () => {
    await client.enqueue("stale", 1, { id: "s1" });
    const [ev] = await client.dequeue("stale");
    const wrong = ev.token + 1;
    await assert.rejects(client.complete("stale", "s1", wrong), {
      name: "StaleLeaseError",
      message: `STALE_LEASE: event s1 (token ${wrong}): ${StaleLeaseError.description}`,
    });
    await assert.rejects(client.extendLease("stale", "s1", wrong), StaleLeaseError);
    await assert.rejects(client.fail("stale", "s1", wrong, "r"), {
      name: "StaleLeaseError",
      message: `token ${wrong} is not the current lease of s1`,
    });
    const [rel] = await client.release("stale", [["s1", wrong]]);
    assert.ok(rel instanceof StaleLeaseError);
    await client.complete("stale", "s1", ev.token);
    await assert.rejects(client.complete("stale", "s1", ev.token), UnknownEventError);
  });

  test("an unknown id is UnknownEventError", async () => {
    await assert.rejects(client.complete("unknown", "nope", 1), UnknownEventError);
    await assert.rejects(client.fail("unknown", "nope", 1), { name: "UnknownEventError", message: "no event nope" });
    const out = await client.extendMany("unknown", [["nope", 1]]);
    assert.ok(out[0] instanceof UnknownEventError);
    assert.equal((await client.status("unknown", "nope")).state, "unknown");
  });

  test("per-item results of a batch carry each item's error", async () => {
    await client.enqueueMany("batch", [1, 2]);
    const [a, b] = await client.dequeue("batch", 2);
    const out = await client.completeMany("batch", [
      { id: a.id, token: a.token, result: "r" },
      [b.id, b.token + 100],
      ["ghost", 1],
    ]);
    assert.equal(out[0], null);
    assert.ok(out[1] instanceof StaleLeaseError);
    assert.ok(out[2] instanceof UnknownEventError);
    assert.match(out[2].message, /^UNKNOWN_EVENT: event ghost \(token 1\): No event/);
  });
});

describe("foreign data", () => {
  test("a key of the wrong type is WrongTypeError, nothing written", async () => {
    await client.connection.set(key("wrong", "ready"), "a string");
    await assert.rejects(client.enqueue("wrong", 1), {
      name: "WrongTypeError",
      message: `key ${key("wrong", "ready")} holds a string, expected a list`,
    });
    assert.equal(await client.connection.exists(key("wrong", "data")), 0);
    assert.ok(new WrongTypeError() instanceof HomingError);
  });

  test("a corrupt envelope is CorruptEnvelopeError on access, not on dequeue", async () => {
    await client.enqueueMany("corrupt", [1, 2], {});
    const ids = await client.connection.hKeys(key("corrupt", "data"));
    await client.connection.hSet(key("corrupt", "data"), ids[0], Buffer.from([0xc1, 0xff]));
    const events = await client.dequeue("corrupt", 2);
    const bad = events.find((e) => e.id === ids[0]);
    const good = events.find((e) => e.id !== ids[0]);
    assert.throws(() => bad?.payload, CorruptEnvelopeError);
    assert.ok(good !== undefined);
    assert.ok([1, 2].includes(/** @type {number} */ (good.payload)));
  });

  test("a corrupt record is CorruptStateError per item", async () => {
    await client.enqueue("rec", 1, { id: "r1" });
    const [ev] = await client.dequeue("rec");
    await client.connection.hSet(key("rec", "meta"), "r1", "garbage");
    const [err] = await client.completeMany("rec", [[ev.id, ev.token]]);
    assert.ok(err instanceof CorruptStateError);
  });

  test("data of another schema version is SchemaMismatchError", async () => {
    await client.connection.hSet(key("schema", "config"), "schema", "99");
    await assert.rejects(client.enqueue("schema", 1), {
      name: "SchemaMismatchError",
      message: `service data has schema 99, this client speaks schema ${homing.SCHEMA}`,
    });
    await assert.rejects(client.dequeue("schema"), SchemaMismatchError);
  });
});

describe("connection", () => {
  test("connection refused is ConnectionLostError", async () => {
    const port = await freePort();
    await assert.rejects(Client.connect(`redis://127.0.0.1:${port}/0`), (err) => {
      assert.ok(err instanceof ConnectionLostError);
      assert.equal(err.code, "CONNECTION");
      assert.match(err.message, /^Redis could not be reached: .*ECONNREFUSED/);
      return true;
    });
  });

  test("scripts reload after SCRIPT FLUSH (NOSCRIPT is transparent)", async () => {
    await client.enqueue("flush", 1);
    await client.connection.scriptFlush();
    await client.enqueue("flush", 2);
    assert.equal((await client.dequeue("flush", 5)).length, 2);
  });

  test("translate maps replies: HOMING codes, suffix stripped, others ScriptError", () => {
    const e1 = translate(new Error("HOMING STALE_LEASE token 3 is old script: 0123abcd, on @user_script:57."));
    assert.ok(e1 instanceof StaleLeaseError);
    assert.equal(e1.message, "token 3 is old");
    const e2 = translate(new Error("HOMING UNKNOWN_EVENT no event x"));
    assert.equal(e2.message, "no event x");
    const e3 = translate(new Error("ERR unknown command"));
    assert.ok(e3 instanceof ScriptError);
    assert.equal(e3.message, "Redis refused a homing script: ERR unknown command");
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    assert.ok(translate(refused) instanceof ConnectionLostError);
    // As redis-py's BusyLoadingError: a restarting server is retried like a lost one.
    const loading = translate(new Error("LOADING Redis is loading the dataset in memory"));
    assert.ok(loading instanceof ConnectionLostError);
    // Redis 7.0's refusal inside a script names no command; a plain command's is NOPERM.
    const inScript = translate(new Error("ERR The user executing the script can't run this command or subcommand " +
      "script: 0123abcd, on @user_script:3."));
    assert.equal(inScript.code, "NO_PERMISSION");
    assert.equal(translate(new Error("NOPERM User u has no permissions to run the 'time' command")).code, "NO_PERMISSION");
    assert.equal(translate(new Error("WRONGTYPE Operation against a key holding the wrong kind of value"), "k:services")
      .message.startsWith("key k:services holds a value of the wrong Redis type"), true);
  });

  test("the reply format, statuses and prefix pattern come from the manifest (lua/keys.json)", () => {
    const { LAYOUT, ERROR_REPLY_RE, STATUSES, STATUS_NAMES, MAX_REASON, checkPrefix } = homing.manifest;
    assert.equal(ERROR_REPLY_RE.source, new RegExp(LAYOUT.error_reply.pattern).source);
    assert.ok(LAYOUT.error_reply.pattern.startsWith(`^${LAYOUT.error_reply.prefix} `));
    const multi = translate(new Error("HOMING STALE_LEASE two\nlines script: 0123abcd, on @user_script:5."));
    assert.ok(multi instanceof StaleLeaseError);
    assert.equal(multi.message, "two\nlines");
    assert.ok(translate(new Error("HOMINGX STALE_LEASE no")) instanceof ScriptError);
    assert.deepEqual(STATUSES, LAYOUT.statuses);
    assert.equal(STATUS_NAMES[STATUSES.reserved], "reserved");
    assert.equal(MAX_REASON, LAYOUT.limits.reason_bytes);
    assert.equal(checkPrefix("x.y-z_0"), "x.y-z_0");
    for (const bad of ["", "a".repeat(65), "a:b", "{a}"]) {
      assert.throws(() => checkPrefix(bad), (exc) => exc instanceof InvalidNameError && exc.message.includes(LAYOUT.prefix_pattern));
    }
  });
});

describe("state of the client after errors", () => {
  test("a corrupt test clock is CorruptStateError, nothing written", async () => {
    await setClock(client, "clockbad", "tomorrow");
    // An enqueue reads the clock only for an idempotency key.
    await assert.rejects(client.enqueue("clockbad", 1, { key: "k" }), { name: "CorruptStateError", message: /clock/ });
    assert.equal(await client.connection.exists(key("clockbad", "data")), 0);
    assert.deepEqual({ ...(await client.connection.hGetAll(key("clockbad", "config"))) }, { test_clock: "tomorrow" });
  });

  test("raw calls the scripts refuse: batch bounds and per-item limits", async () => {
    const raw = (/** @type {string} */ script, /** @type {string[]} */ args) =>
      client.run({ script, service: "rawcalls", args, parse: (r) => r });
    await assert.rejects(raw("dequeue", ["0", "0"]), InvalidArgumentError);
    await assert.rejects(raw("enqueue", ["100", "2", "a", "x", "", "0"]), /expected 10 arguments, got 6/);
    await assert.rejects(raw("fail", ["a", "1", "r", "maybe", ""]), /dead must be 1 or 0/);
    await assert.rejects(raw("schedule", ["10", "t", "x".repeat(11), "", "10", "", "0"]), PayloadTooLargeError);
    assert.equal(await client.connection.exists(key("rawcalls", "data")), 0);
    await client.enqueue("rawcalls", 1);
    const [ev] = await client.dequeue("rawcalls");
    const out = await raw("complete", ["10", "1", ev.id, String(ev.token), "x".repeat(11)]);
    assert.deepEqual(out.map(String), ["PAYLOAD_TOO_LARGE"]);
    assert.equal((await client.status("rawcalls", ev.id)).detail, "leased");
  });

  test("after refused calls the same client keeps working", async () => {
    const codes = [];
    for (const call of [
      () => client.enqueue("after-errors", new Date()),
      () => client.complete("after-errors", "ghost", 1),
      () => client.run({ script: "dequeue", service: "after-errors", args: ["0", "0"], parse: (r) => r }),
    ]) {
      await call().catch((/** @type {any} */ e) => codes.push(e.code));
    }
    assert.deepEqual(codes, ["PAYLOAD_NOT_ENCODABLE", "UNKNOWN_EVENT", "INVALID_ARGUMENT"]);
    await client.enqueue("after-errors", "after");
    const [ev] = await client.dequeue("after-errors");
    await client.complete("after-errors", ev.id, ev.token);
    assert.equal((await client.stats("after-errors"))["total.completed"], 1);
  });

  test("ids are checked in every call that names one", async () => {
    for (const call of [
      () => client.complete("ids2", "a:b", 1),
      () => client.fail("ids2", "{x}", 1),
      () => client.extendLease("ids2", "", 1),
      () => client.release("ids2", [["a b", 1]]),
      () => client.status("ids2", "x".repeat(129)),
      () => client.deadRequeue("ids2", { ids: ["ok", "not ok"] }),
    ]) {
      await assert.rejects(call(), InvalidNameError);
    }
  });
});
