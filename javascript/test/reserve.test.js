// The schema-2 protocol through the JavaScript client (issue 7): reserved
// deliveries charged only once started, mustStart and start, promote's
// returned count, the token floor, the beat script on the global daemons key.
// Time-dependent steps run on the frozen test clock.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { InvalidArgumentError, StaleLeaseError, UnknownEventError, manifest } from "../src/index.js";
import { connect, privateServer, setClock } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {string} service @param {string} name */
const key = (service, name) => `${client.prefix}:{${service}}:${name}`;

describe("reserve mode", () => {
  test("a reserved delivery is not charged until it starts; start charges it once", async () => {
    await setClock(client, "res", 1_000_000);
    await client.configure("res", { doneTtlMs: 600_000 }); // status answers done for completions without a result
    const id = await client.enqueue("res", "job");
    const [ev] = await client.dequeue("res", 1, { reserve: true });
    assert.equal(ev.id, id);
    assert.equal(ev.attempt, 1, "the attempt this delivery becomes once started");
    assert.equal(ev.mustStart, false, "a first delivery runs at once");
    const st = await client.status("res", id);
    assert.deepEqual([st.state, st.detail, st.attempt], ["pending", "reserved", 0]);
    assert.deepEqual(await client.start("res", [[ev.id, ev.token]]), [1]);
    assert.deepEqual(await client.start("res", [{ id: ev.id, token: ev.token }]), [1], "already started: kept");
    const now = await client.status("res", id);
    assert.deepEqual([now.detail, now.attempt], ["leased", 1]);
    await client.complete("res", ev.id, ev.token);
    assert.equal((await client.status("res", id)).state, "done");
  });

  test("an expired reserved lease returns uncharged; the next delivery must start", async () => {
    await setClock(client, "back", 1_000_000);
    const id = await client.enqueue("back", "job");
    const [first] = await client.dequeue("back", 1, { reserve: true, leaseMs: 100 });
    await setClock(client, "back", 1_000_101);
    const step = await client.promote("back");
    assert.deepEqual([step.expired, step.returned], [1, 1]);
    assert.equal((await client.status("back", id)).detail, "ready");
    const [second] = await client.dequeue("back", 1, { reserve: true });
    assert.equal(second.attempt, 1, "still uncharged");
    assert.equal(second.mustStart, true, "it came back unstarted: start it first");
    const [stale, fresh] = await client.start("back", [[first.id, first.token], [second.id, second.token]]);
    assert.ok(stale instanceof StaleLeaseError);
    assert.match(stale.message, new RegExp(`^STALE_LEASE: event ${id} \\(token ${first.token}\\): `));
    assert.equal(fresh, 1);
    const [ghost] = await client.start("back", [["ghost", 1]]);
    assert.ok(ghost instanceof UnknownEventError);
  });

  test("fail on a reserved lease charges the attempt; plain dequeue charges at once", async () => {
    await client.configure("charge", { backoffBaseMs: 0, backoffJitter: 0 });
    await setClock(client, "charge", 1_000_000);
    await client.enqueue("charge", 1, { id: "c1" });
    const [ev] = await client.dequeue("charge", 1, { reserve: true });
    await client.fail("charge", ev.id, ev.token, "boom");
    assert.equal((await client.status("charge", "c1")).attempt, 1);
    await client.promote("charge");
    const [again] = await client.dequeue("charge");
    assert.deepEqual([again.attempt, again.mustStart], [2, false]);
    assert.equal((await client.status("charge", "c1")).detail, "leased");
  });

  test("tokens start at the clock floor: max(seq + 1, now_ms * 1000)", async () => {
    await setClock(client, "floor", 1_000_000);
    await client.enqueueMany("floor", [1, 2]);
    const [a, b] = await client.dequeue("floor", 2);
    assert.deepEqual([a.token, b.token], [1_000_000_001, 1_000_000_002]);
    // A counter rolled back (a restore from older data) is overtaken by the clock.
    await client.connection.set(key("floor", "seq"), "5");
    await client.release("floor", [[a.id, a.token]]);
    await setClock(client, "floor", 1_000_001);
    const [c] = await client.dequeue("floor");
    assert.equal(c.token, 1_000_001_001);
    assert.equal(await client.connection.get(key("floor", "seq")), "1000001001");
  });
});

describe("beat", () => {
  test("beat writes the global <prefix>:daemons hash, by the Redis clock", async () => {
    const client = await connect(server.url);
    after(() => client.close());
    const before = Date.now();
    const at = await client.beat("scheduler:host-a:1");
    assert.ok(Math.abs(at - before) < 5000, `${at} is the Redis time in ms`);
    const beats = await client.connection.hGetAll(`${client.prefix}:daemons`);
    assert.deepEqual(Object.keys(beats), ["scheduler:host-a:1"]);
    assert.equal(Number(beats["scheduler:host-a:1"]), at);
    await assert.rejects(client.beat(""), InvalidArgumentError);
    await assert.rejects(client.beat("x".repeat(257)), InvalidArgumentError);
    await assert.rejects(client.beat(/** @type {any} */ (7)), InvalidArgumentError);
    assert.deepEqual(await client.services(), [], "a beat registers no service");
  });
});

test("the manifest's layout drives the client: statuses, limits, global keys", () => {
  assert.equal(manifest.STATUS_NAMES.v, "reserved");
  assert.equal(manifest.STATUS_NAMES.l, "leased");
  assert.equal(manifest.MAX_BATCH, manifest.LAYOUT.limits.batch);
  assert.equal(manifest.MAX_NESTING, manifest.LAYOUT.limits.nesting ?? 100);
  assert.ok(manifest.GLOBAL_KEYS.has("daemons"));
  assert.deepEqual(manifest.SCRIPTS.beat.keys, ["daemons"]);
  assert.equal(manifest.SCRIPTS.enqueue.memory, "grows");
  assert.equal(manifest.POLICY.handler_timeout_ms.default, 600000);
});
