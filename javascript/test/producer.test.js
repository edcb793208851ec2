// Producer API against a private Redis: enqueue, idempotency, feedback
// results, timers on the frozen test clock, the service registry.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { EventDeadError, ResultTimeoutError, UnknownEventError } from "../src/index.js";
import { connect, privateServer, setClock } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

describe("enqueue", () => {
  test("returns ids and delivers FIFO with payloads intact", async () => {
    const ids = await client.enqueueMany("orders", [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
    const events = await client.dequeue("orders", 10);
    assert.deepEqual(events.map((e) => e.id), ids);
    assert.deepEqual(events.map((e) => e.payload), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.ok(events.every((e) => e.attempt === 1 && e.service === "orders"));
  });

  test("an explicit id is kept, and a second one is a DuplicateIdError", async () => {
    assert.equal(await client.enqueue("dups", "x", { id: "order-7" }), "order-7");
    await assert.rejects(client.enqueue("dups", "y", { id: "order-7" }), {
      name: "DuplicateIdError",
      code: "DUPLICATE_ID",
      message: "event order-7 already exists",
    });
  });

  test("an idempotency key returns the first id and adds nothing", async () => {
    const first = await client.enqueue("idem", { a: 1 }, { key: "k1" });
    const again = await client.enqueue("idem", { a: 2 }, { key: "k1" });
    assert.equal(again, first);
    const many = await client.enqueueMany("idem", [1, 2], { keys: ["k1", null] });
    assert.equal(many[0], first);
    assert.notEqual(many[1], first);
    assert.equal((await client.stats("idem")).ready, 2);
  });

  test("payload types survive the round trip", async () => {
    const payloads = [
      null,
      true,
      -17,
      2 ** 40,
      12345678901234567890n,
      1.25,
      "zoë ☃ 🎉",
      Buffer.from([0, 1, 254, 255]),
      [1, [2, [3, { deep: ["x"] }]]],
      { "": 0, nested: { list: [null, false], bin: Buffer.from("hi") } },
    ];
    await client.enqueueMany("types", payloads);
    const got = (await client.dequeue("types", 20)).map((e) => e.payload);
    assert.deepEqual(got, payloads);
  });

  test("the first write registers the service", async () => {
    await client.enqueue("registered-svc", 1);
    assert.ok((await client.services()).includes("registered-svc"));
  });
});

describe("result", () => {
  test("waits for the consumer's result", async () => {
    const id = await client.enqueue("fb", { q: "2+2" });
    const waiting = client.result("fb", id, { timeoutMs: 5000 });
    const [ev] = await client.dequeue("fb");
    await client.complete("fb", ev.id, ev.token, { answer: 4, raw: Buffer.from([9]) });
    assert.deepEqual(await waiting, { answer: 4, raw: Buffer.from([9]) });
    const st = await client.status("fb", id);
    assert.equal(st.state, "done");
  });

  test("is null when the consumer gave no result, on a service that asks (done_ttl_ms)", async () => {
    await client.configure("fb-done", { done_ttl_ms: 60_000 });
    const id = await client.enqueue("fb-done", 1);
    const [ev] = await client.dequeue("fb-done");
    await client.complete("fb-done", ev.id, ev.token);
    assert.equal(await client.result("fb-done", id), null);
  });

  test("no result and nobody asked: nothing is kept, the event is unknown", async () => {
    const id = await client.enqueue("fb-none", 1);
    const [ev] = await client.dequeue("fb-none");
    await client.complete("fb-none", ev.id, ev.token);
    assert.equal((await client.status("fb-none", id)).state, "unknown");
    await assert.rejects(client.result("fb-none", id), { name: "UnknownEventError" });
  });

  test("times out with ResultTimeoutError naming the state", async () => {
    const id = await client.enqueue("fb-slow", 1);
    await assert.rejects(client.result("fb-slow", id, { timeoutMs: 30 }), (err) => {
      assert.ok(err instanceof ResultTimeoutError);
      assert.equal(err.code, "TIMEOUT");
      assert.match(err.message, /within 30 ms \(it is ready, attempt 0\)/);
      return true;
    });
  });

  test("raises EventDeadError for a dead-lettered event", async () => {
    const id = await client.enqueue("fb-dead", 1);
    const [ev] = await client.dequeue("fb-dead");
    await client.fail("fb-dead", ev.id, ev.token, "no good", { dead: true });
    await assert.rejects(client.result("fb-dead", id), (err) => {
      assert.ok(err instanceof EventDeadError);
      assert.match(err.message, /was dead-lettered: no good/);
      return true;
    });
  });

  test("raises UnknownEventError for an id homing never saw", async () => {
    await assert.rejects(client.result("fb", "never-enqueued"), UnknownEventError);
  });
});

describe("timers", () => {
  test("fire by the Redis clock (frozen), not before", async () => {
    await setClock(client, "tick", 1_000_000);
    const id = await client.createTimer("tick", { t: 1 }, { delayMs: 5000 });
    assert.equal((await client.status("tick", id)).detail, "timer");
    await setClock(client, "tick", 1_004_999);
    assert.equal((await client.promote("tick")).timers, 0);
    assert.deepEqual(await client.dequeue("tick"), []);
    await setClock(client, "tick", 1_005_000);
    const step = await client.promote("tick");
    assert.equal(step.timers, 1);
    const [ev] = await client.dequeue("tick");
    assert.equal(ev.id, id);
    assert.deepEqual(ev.payload, { t: 1 });
  });

  test("at takes a Date or epoch ms", async () => {
    await setClock(client, "tick-at", 2_000_000);
    const a = await client.createTimer("tick-at", "a", { at: new Date(2_000_100) });
    const b = await client.createTimer("tick-at", "b", { at: 2_000_050 });
    const st = await client.stats("tick-at");
    assert.equal(st.timers, 2);
    await setClock(client, "tick-at", 2_000_060);
    assert.equal((await client.promote("tick-at")).timers, 1);
    assert.equal((await client.dequeue("tick-at"))[0].id, b);
    await setClock(client, "tick-at", 2_000_100);
    await client.promote("tick-at");
    assert.equal((await client.dequeue("tick-at"))[0].id, a);
  });

  test("cancelTimer removes a pending timer once", async () => {
    await setClock(client, "tick-cancel", 5000);
    const id = await client.createTimer("tick-cancel", 1, { delayMs: 10, id: "t-1" });
    assert.equal(id, "t-1");
    assert.equal(await client.cancelTimer("tick-cancel", id), true);
    assert.equal(await client.cancelTimer("tick-cancel", id), false);
    await setClock(client, "tick-cancel", 9000);
    assert.equal((await client.promote("tick-cancel")).timers, 0);
    assert.equal((await client.status("tick-cancel", id)).state, "unknown");
  });

  test("a timer's idempotency key returns the first timer", async () => {
    await setClock(client, "tick-idem", 100);
    const a = await client.createTimer("tick-idem", 1, { delayMs: 10, key: "once" });
    const b = await client.createTimer("tick-idem", 2, { delayMs: 99, key: "once" });
    assert.equal(a, b);
    assert.equal((await client.stats("tick-idem")).timers, 1);
  });

  test("without a frozen clock a timer waits for real time", async () => {
    const id = await client.createTimer("tick-real", 1, { delayMs: 60000 });
    await client.promote("tick-real");
    assert.equal((await client.status("tick-real", id)).detail, "timer");
  });
});
