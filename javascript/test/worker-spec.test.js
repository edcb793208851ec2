// Points of docs/worker.md where the JavaScript port had drifted from the
// Python one (issue 9), each held to the spec here: the registry is recorded
// only after its SADD succeeded, a worker registers only once every init()
// succeeded, only homing errors are retried (anything else stops the worker
// and run() rejects with it), the full-inbox wait is Python's, the batch
// size and the reason cap come from the manifest's limits, not a literal.

import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { after, test } from "node:test";

import { Client, ConnectionLostError, Consumer, Worker } from "../src/index.js";
import { MAX_BATCH, MAX_REASON } from "../src/manifest.js";
import { ROOM_WAIT_MS } from "../src/worker.js";
import { failure } from "../src/worker-support.js";
import { connect, privateServer, recordingLogger, uniquePrefix, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

class Quick extends Consumer {
  handleEvent() {
    return null;
  }
}

test("a refused SADD is not recorded as registered: the next call registers", async () => {
  // A user that may run the scripts and read the registry but not SADD: the
  // enqueue is written, its registration refused (and warned about).
  const user = `nosadd${uniquePrefix()}`;
  await client.connection.sendCommand(["ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-sadd"]);
  const url = server.url.replace("redis://", `redis://${user}:pw@`);
  const logger = recordingLogger();
  const producer = await Client.connect(url, { prefix: uniquePrefix(), logger });
  after(() => producer.close());
  await producer.enqueue("fresh", 1);
  assert.ok(logger.lines.some((l) => /could not be added to the registry/.test(l.text)), "warned");
  assert.deepEqual(await producer.services(), []);
  // Allowed again: the very next call registers, not one registerEveryMs
  // (10 s) later, as it would if the failed SADD had been recorded.
  await client.connection.sendCommand(["ACL", "SETUSER", user, "+sadd"]);
  await producer.enqueue("fresh", 2);
  assert.deepEqual(await producer.services(), ["fresh"]);
});

test("a worker whose init() fails registers nothing", async () => {
  class Broken extends Consumer {
    init() {
      throw new Error("no database");
    }
  }
  const own = await connect(server.url);
  after(() => own.close());
  await assert.rejects(new Worker(own, "never", Broken).start(), /no database/);
  assert.deepEqual(await own.services(), []);
});

test("a homing error in a loop is retried with a warning; any other error stops the worker", async () => {
  const own = await connect(server.url);
  after(() => own.close());
  await own.enqueue("buggy", 1);
  const real = own.dequeueBatch.bind(own);
  let calls = 0;
  // The client's own dequeue (the fetcher's: dequeueBatch, with the limits' wait),
  // made to fail: first as a lost connection would, then with an error no homing
  // call throws (a bug).
  own.dequeueBatch = /** @type {any} */ (async (/** @type {any[]} */ ...args) => {
    calls += 1;
    if (calls === 1) throw new ConnectionLostError("Redis could not be reached: test");
    if (calls === 3) throw new TypeError("a bug in the fetch path");
    return real(...args);
  });
  const logger = recordingLogger();
  const worker = new Worker(own, "buggy", Quick, { logger });
  // Before, every error was retried (and logged as an error) for ever, so
  // run() never returned: the race below fails then.
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const ran = await Promise.race([
    worker.run({ signals: [] }).then(() => "returned", (err) => err),
    new Promise((r) => {
      timer = setTimeout(r, 20000, "still running");
    }),
  ]);
  clearTimeout(timer);
  assert.ok(ran instanceof TypeError, String(ran));
  assert.ok(logger.lines.some((l) => l.level === "warn" && /^dequeue: ConnectionLostError/.test(l.text)),
    "the homing error was retried, as a warning");
  assert.ok(logger.lines.some((l) => l.level === "error" && /the fetch loop failed, stopping: TypeError/.test(l.text)));
  assert.ok(!logger.lines.some((l) => /TypeError.*retrying/.test(l.text)), "the bug was not retried");
  // Stopped as on a signal: what it had leased was handled or released, none left leased.
  assert.equal(worker.stats.completed + worker.stats.released, 1, JSON.stringify(worker.stats));
  assert.equal((await own.stats("buggy")).in_flight, 0);
});

test("the full-inbox wait is Python's", () => {
  // python/homing/fetching.py (the worker's fetch loop): `if room <= 0: ... w._room.wait(S)`.
  const py = readFileSync(new URL("../../python/homing/fetching.py", import.meta.url), "utf8");
  // A few lines may come before the wait (send_hints, the parked flag, comments).
  const m = /if room <= 0:\s*\n(?:[^\n]*\n){0,6}?\s*w\._(?:stop|room)\.wait\(([\d.]+)\)/.exec(py);
  assert.ok(m, "python/homing/fetching.py sleeps when it has no room");
  assert.equal(ROOM_WAIT_MS, Number(m[1]) * 1000);
  const spec = readFileSync(new URL("../../docs/worker.md", import.meta.url), "utf8");
  assert.match(spec, new RegExp(`looks again within\\s+${ROOM_WAIT_MS} ms`));
});

test("batches are the manifest's size, never a literal", async () => {
  assert.equal(new Worker(client, "big", Quick, { prefetch: 10 * MAX_BATCH }).prefetch, MAX_BATCH);
  const src = new URL("../src/", import.meta.url);
  const literal = /(?:splice\(0, |slice\(\w+, \w+ \+ |\w+ \+= |Math\.min\(\w+, )1000\b/;
  const offenders = readdirSync(src).filter((f) => /^(worker|fetcher|acker|heartbeat|holding|watchdog|outcomes|slots)/.test(f))
    .filter((f) => literal.test(readFileSync(new URL(f, src), "utf8")));
  assert.deepEqual(offenders, []);
});

test("room opens when handled events are handed to the acker, not only when leases drop", async () => {
  // concurrency 1 + prefetch 1: a window of 2 leases, 4 at most while acks are
  // in flight. With every completeMany held back, the worker still leases all
  // four events: two handled, queued for the acker, make room for two more.
  const own = await connect(server.url);
  after(() => own.close());
  await own.enqueueMany("overlap", [1, 2, 3, 4, 5, 6]);
  /** @type {() => void} */
  let release = () => {};
  const held = new Promise((r) => {
    release = () => r(undefined);
  });
  const real = own.completeMany.bind(own);
  own.completeMany = /** @type {any} */ (async (/** @type {any[]} */ ...args) => {
    await held;
    return real(...args);
  });
  const worker = new Worker(own, "overlap", Quick, { concurrency: 1, prefetch: 1 });
  await worker.start();
  try {
    await until(() => worker.stats.received === 4, 10000, "four leases while the acks wait");
    assert.equal((await own.stats("overlap")).ready, 2, "never more than two windows");
  } finally {
    release();
    await until(() => worker.stats.completed === 6, 10000, "every event acknowledged");
    await worker.shutdown();
  }
});

test("a fail reason is cut to the manifest's cap in UTF-8 bytes, on a character boundary", () => {
  // "Error: " (7 bytes) then two-byte characters: the cap falls inside one.
  const { reason } = failure(new Error("é".repeat(MAX_REASON)));
  const bytes = new TextEncoder().encode(reason).length;
  assert.ok(bytes <= MAX_REASON && bytes >= MAX_REASON - 1, `${bytes} bytes`);
  assert.equal(reason, `Error: ${"é".repeat(Math.floor((MAX_REASON - 7) / 2))}`, "a prefix, no split character");
  assert.equal(failure(new Error("short")).reason, "Error: short");
});
