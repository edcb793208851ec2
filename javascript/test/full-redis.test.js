// A full Redis (maxmemory with noeviction, issue 7 item 1) through the
// JavaScript client: producers are refused with RedisFullError and nothing
// written, while everything that frees memory or keeps it level still runs,
// so a full Redis can be drained.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { RedisFullError, StaleLeaseError } from "../src/index.js";
import { translate } from "../src/connection.js";
import { connect, privateServer } from "./helpers.js";
import { RedisServer } from "./servers.js";

const server = await privateServer({
  extra: ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
});

test("Redis's OOM reply, plain or from a script, is RedisFullError", () => {
  const plain = translate(new Error("OOM command not allowed when used memory > 'maxmemory'."));
  assert.ok(plain instanceof RedisFullError);
  assert.match(plain.message, /^Redis is full, nothing was written: OOM command not allowed/);
  const script = translate(new Error("OOM command not allowed when used memory > 'maxmemory'. " +
    "script: 0123abcd, on @user_script:9."));
  assert.ok(script instanceof RedisFullError);
  assert.equal(plain.code, "REDIS_FULL");
});

describe("on a full Redis", () => {
  /** @type {import("../src/index.js").Client} */
  let client;
  /** @type {import("../src/index.js").Event[]} */
  let small;
  before(async () => {
    client = await connect(server.url);
    // Small events first, then fill the server with big ones until it refuses.
    await client.enqueueMany("drain", Array.from({ length: 6 }, (_, i) => `small-${i}`));
    const big = "x".repeat(64 * 1024);
    let refused = null;
    for (let i = 0; i < 500 && refused === null; i++) {
      refused = await client.enqueue("fill", big).then(() => null, (/** @type {unknown} */ e) => e);
    }
    assert.ok(refused instanceof RedisFullError, String(refused));
    small = await client.dequeue("drain", 6, { reserve: true });
    assert.equal(small.length, 6, "dequeue runs on a full Redis");
  });
  after(() => client.close());

  test("a producer is refused with RedisFullError: nothing written, not even the registry", async () => {
    const st = await client.stats("fill");
    await assert.rejects(client.enqueue("fill", "more"), (/** @type {any} */ err) => {
      assert.ok(err instanceof RedisFullError, `${err.name}: ${err.message}`);
      assert.equal(err.code, "REDIS_FULL");
      return true;
    });
    await assert.rejects(client.createTimer("fill", "later", { delayMs: 1000 }), RedisFullError);
    assert.equal((await client.stats("fill")).ready, st.ready);
    await assert.rejects(client.enqueue("newcomer", 1), RedisFullError);
    assert.ok(!(await client.services()).includes("newcomer"));
    assert.equal(await client.connection.exists(`${client.prefix}:{newcomer}:data`), 0);
  });

  test("register: fine for a service already registered, RedisFullError for a new one", async () => {
    await client.register("drain");
    await assert.rejects(client.register("brand-new"), RedisFullError);
    assert.ok(!(await client.services()).includes("brand-new"));
  });

  test("start, extend, release, fail, promote and beat run", async () => {
    const [a, b, c] = small;
    assert.deepEqual(await client.start("drain", [[a.id, a.token]]), [1]);
    const [deadline] = await client.extendMany("drain", [[a.id, a.token]], 60_000);
    assert.equal(typeof deadline, "number");
    assert.deepEqual(await client.release("drain", [[b.id, b.token]]), [null]);
    const out = await client.fail("drain", c.id, c.token, "on a full Redis", { dead: true });
    assert.equal(out.action, "dead");
    await client.promote("drain");
    assert.equal(typeof (await client.beat("scheduler:full:1")), "number");
  });

  test("complete lands without a result, or with one no larger than the payload; a larger one is REDIS_FULL per item", async () => {
    const [, , , d, e, f] = small;
    const out = await client.completeMany("drain", [
      [d.id, d.token],
      [e.id, e.token, "ok"],
      [f.id, f.token, "r".repeat(200 * 1024)],
    ]);
    assert.deepEqual(out.slice(0, 2), [null, null]);
    assert.ok(out[2] instanceof RedisFullError, String(out[2]));
    assert.match(String(out[2]?.message), new RegExp(`^REDIS_FULL: event ${f.id} \\(token ${f.token}\\): `));
    assert.equal((await client.status("drain", f.id)).detail, "reserved", "left as it was: sent again later");
    await client.complete("drain", f.id, f.token);
    await assert.rejects(client.complete("drain", d.id, d.token), (/** @type {any} */ err) =>
      !(err instanceof RedisFullError) && !(err instanceof StaleLeaseError) && err.code === "UNKNOWN_EVENT");
  });

  test("draining frees memory: producers are accepted again", async () => {
    const events = await client.dequeue("fill", 1000);
    assert.ok(events.length > 0);
    for (let i = 0; i < events.length; i += 100) {
      const errors = await client.completeMany("fill", events.slice(i, i + 100).map((ev) => [ev.id, ev.token]));
      assert.deepEqual(errors.filter((x) => x !== null), []);
    }
    await client.enqueue("fill", "accepted again");
  });
});

test("a worker's client starts on a full Redis: its service is registered already", async () => {
  const srv = await new RedisServer({ extra: ["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"] }).start();
  after(() => srv.close());
  const client = await connect(srv.url);
  after(() => client.close());
  await client.enqueue("svc", 1);
  const big = "y".repeat(64 * 1024);
  for (let i = 0; i < 500; i++) {
    if (await client.enqueue("other", big).then(() => false, () => true)) break;
  }
  const fresh = await connect(srv.url, { prefix: client.prefix });
  after(() => fresh.close());
  await fresh.register("svc");
  const [ev] = await fresh.dequeue("svc");
  await fresh.complete("svc", ev.id, ev.token);
});
