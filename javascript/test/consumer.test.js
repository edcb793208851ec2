// Consumer API against a private Redis: leases, acknowledgements, retries,
// dead letters, policy. Time-dependent steps run on the frozen test clock.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { DeadLetter, FailOutcome, SCHEMA, StaleLeaseError } from "../src/index.js";
import { connect, privateServer, setClock } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

describe("leases", () => {
  test("dequeue leases with a deadline, a token and an attempt count", async () => {
    await setClock(client, "lease", 10_000);
    await client.enqueue("lease", "a");
    const [ev] = await client.dequeue("lease", 1, { leaseMs: 500 });
    assert.equal(ev.deadlineMs, 10_500);
    assert.equal(ev.attempt, 1);
    assert.ok(Number.isInteger(ev.token) && ev.token > 0);
    assert.deepEqual(await client.dequeue("lease"), []);
    const st = await client.status("lease", ev.id);
    assert.deepEqual([st.state, st.detail, st.attempt], ["pending", "leased", 1]);
  });

  test("extendLease moves the deadline; the default is the service's lease_ms", async () => {
    await setClock(client, "extend", 50_000);
    await client.enqueue("extend", 1);
    const [ev] = await client.dequeue("extend", 1, { leaseMs: 100 });
    assert.equal(await client.extendLease("extend", ev.id, ev.token, 2000), 52_000);
    assert.equal(await client.extendLease("extend", ev.id, ev.token), 50_000 + 30_000);
    const out = await client.extendMany("extend", [{ id: ev.id, token: ev.token }], 10);
    assert.deepEqual(out, [50_010]);
  });

  test("an expired, reclaimed lease is fenced off; the next delivery counts attempt 2", async () => {
    await client.configure("expire", { backoffBaseMs: 0 });
    await setClock(client, "expire", 1_000);
    await client.enqueue("expire", { job: 1 });
    const [first] = await client.dequeue("expire", 1, { leaseMs: 100 });
    await setClock(client, "expire", 1_101);
    assert.equal((await client.promote("expire")).expired, 1);
    await assert.rejects(client.complete("expire", first.id, first.token), StaleLeaseError);
    assert.deepEqual({ ...(await client.distribute("expire")) }, { retried: 1, dead: 0, more: false });
    await client.promote("expire");
    const [second] = await client.dequeue("expire");
    assert.equal(second.id, first.id);
    assert.equal(second.attempt, 2);
    assert.notEqual(second.token, first.token);
    await client.complete("expire", second.id, second.token);
    assert.equal((await client.stats("expire"))["total.completed"], 1);
  });

  test("release hands events back first in line, without counting an attempt", async () => {
    await client.enqueueMany("rel", ["a", "b", "c"]);
    const [a, b] = await client.dequeue("rel", 2);
    const out = await client.release("rel", [[a.id, a.token], { id: b.id, token: b.token }]);
    assert.deepEqual(out, [null, null]);
    const again = await client.dequeue("rel", 3);
    // Back to the front of the line, in the order given.
    assert.deepEqual(again.map((e) => e.payload), ["a", "b", "c"]);
    assert.deepEqual(again.map((e) => e.attempt), [1, 1, 1]);
  });
});

describe("fail", () => {
  test("retries after the backoff policy, then goes dead when attempts are used up", async () => {
    await client.configure("retry", { maxAttempts: 2, backoffBaseMs: 1000, backoffJitter: 0 });
    await setClock(client, "retry", 100_000);
    const id = await client.enqueue("retry", "job");
    let [ev] = await client.dequeue("retry");
    const out = await client.fail("retry", ev.id, ev.token, "flaky");
    assert.ok(out instanceof FailOutcome);
    assert.deepEqual({ ...out }, { action: "retry", atMs: 101_000 });
    assert.equal((await client.status("retry", id)).detail, "waiting");
    await setClock(client, "retry", 101_000);
    assert.equal((await client.promote("retry")).retries, 1);
    [ev] = await client.dequeue("retry");
    assert.equal(ev.attempt, 2);
    const last = await client.fail("retry", ev.id, ev.token, "still flaky");
    assert.deepEqual({ ...last }, { action: "dead", atMs: 101_000 });
    const st = await client.status("retry", id);
    assert.equal(st.state, "dead");
    assert.equal(st.detail, "still flaky (attempt 2 of 2)");
  });

  test("delayMs overrides the backoff; dead: true dead-letters at once", async () => {
    await setClock(client, "fail2", 7_000);
    await client.enqueueMany("fail2", [1, 2]);
    const [a, b] = await client.dequeue("fail2", 2);
    assert.equal((await client.fail("fail2", a.id, a.token, "later", { delayMs: 250 })).atMs, 7_250);
    const dead = await client.fail("fail2", b.id, b.token, "poison", { dead: true });
    assert.equal(dead.action, "dead");
  });
});

describe("dead letters", () => {
  test("list, requeue and purge", async () => {
    await setClock(client, "dl", 5_000);
    const ids = await client.enqueueMany("dl", [{ n: 0 }, { n: 1 }, { n: 2 }]);
    for (const ev of await client.dequeue("dl", 3)) {
      await client.fail("dl", ev.id, ev.token, `bad ${ev.payload.n}`, { dead: true });
    }
    const page = await client.deadList("dl", { offset: 0, count: 2 });
    assert.equal(page.total, 3);
    assert.equal(page.letters.length, 2);
    const [first] = page.letters;
    assert.ok(first instanceof DeadLetter);
    assert.equal(first.diedMs, 5_000);
    assert.equal(first.attempt, 1);
    assert.match(first.reason, /^bad \d$/);
    assert.ok(ids.includes(first.id));
    assert.deepEqual(first.payload, { n: Number(first.reason.slice(4)) });

    assert.deepEqual(await client.deadRequeue("dl", { ids: [first.id, "not-dead"] }), [1, 2]);
    const [back] = await client.dequeue("dl");
    assert.equal(back.id, first.id);
    assert.equal(back.attempt, 1);
    assert.deepEqual(await client.deadPurge("dl", { count: 1 }), [1, 1]);
    assert.deepEqual(await client.deadRequeue("dl", { count: 10 }), [1, 0]);
    assert.equal((await client.deadList("dl")).total, 0);
  });
});

describe("policy and stats", () => {
  test("configure returns the effective policy by camelCase name; null removes an override", async () => {
    const p = await client.configure("pol", { leaseMs: 5000, backoff_jitter: 0.25 });
    assert.equal(p.leaseMs, 5000);
    assert.equal(p.backoffJitter, 0.25);
    assert.equal(p.maxAttempts, 5);
    const reset = await client.configure("pol", { leaseMs: null });
    assert.equal(reset.leaseMs, 30000);
    assert.ok((await client.services()).includes("pol"));
  });

  test("stats reports lengths, totals, policy and the test clock", async () => {
    await setClock(client, "st", 42);
    await client.enqueueMany("st", [1, 2, 3]);
    const [ev] = await client.dequeue("st");
    await client.complete("st", ev.id, ev.token, "done");
    const st = await client.stats("st");
    assert.equal(st.ready, 2);
    assert.equal(st.in_flight, 0);
    assert.equal(st.results, 1);
    assert.equal(st["total.enqueued"], 3);
    assert.equal(st["total.completed"], 1);
    assert.equal(st["policy.backoff_jitter"], 0.5);
    assert.equal(st.test_clock, 42);
    assert.equal(st.schema, SCHEMA);
  });
});

describe("hints", () => {
  test("hintExpired and takeHints", async () => {
    await client.hintExpired("h1");
    await client.hintExpired("h2");
    assert.deepEqual((await client.takeHints(10)).sort(), ["h1", "h2"]);
    assert.deepEqual(await client.takeHints(), []);
  });
});
