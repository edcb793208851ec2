// Group results through the JavaScript client against a private Redis, with
// real Workers: waitGroup resolves to every member's result in order, throws
// GroupFailedError at the first failure without waiting for the rest, and
// groupForget removes the group with its results. The script rules are the
// conformance vectors' (enqueue_group, group_status, group_result, group_forget).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  Consumer, DuplicateIdError, GroupFailedError, InvalidArgumentError, Reject, ResultTimeoutError, UnknownEventError,
  UnknownGroupError, Worker,
} from "../src/index.js";
import { connect, privateServer, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @type {(() => void) | null} */
let release = null;
const held = new Promise((resolve) => {
  release = () => resolve(undefined);
});

class Doubler extends Consumer {
  /** @param {any} event @param {any} state */
  async handleEvent(event, state) {
    if (event.payload === "boom") throw new Reject("boom");
    if (event.payload === "slow") {
      await held;
      await this.complete(event.service, event.id, "slow done");
      return state;
    }
    await this.complete(event.service, event.id, event.payload * 2);
    return state;
  }
}

test("waitGroup resolves to every result in order; groupForget removes them together", async () => {
  const payloads = Array.from({ length: 50 }, (_, i) => i);
  const group = await client.enqueueGroup("grp", payloads);
  assert.equal(group.id, "g1");
  assert.equal(group.eventIds.length, 50);
  assert.equal(await client.groupResult("grp", group.id), null, "running: no results yet");
  const worker = await started(new Worker(client, "grp", Doubler, { concurrency: 4 }));
  try {
    const results = await client.waitGroup("grp", group.id, { timeoutMs: 20000 });
    assert.deepEqual(results, payloads.map((n) => 2 * n));
  } finally {
    await worker.shutdown();
  }
  const st = await client.groupStatus("grp", group.id);
  assert.deepEqual([st.total, st.done, st.failed, st.finished], [50, 50, "", true]);
  assert.equal(await client.result("grp", group.eventIds[7], { timeoutMs: 0 }), 14);
  assert.equal(await client.groupForget("grp", group.id), 50);
  await assert.rejects(client.waitGroup("grp", group.id), UnknownGroupError);
  await assert.rejects(client.result("grp", group.eventIds[7], { timeoutMs: 0 }), UnknownEventError);
});

test("the first failing member is thrown at once; the others' results stay with the group", async () => {
  const group = await client.enqueueGroup("grp-fail", [1, "boom", "slow"], { ids: ["one", "two", "three"] });
  const worker = await started(new Worker(client, "grp-fail", Doubler, { concurrency: 3 }));
  try {
    await assert.rejects(client.waitGroup("grp-fail", group.id, { timeoutMs: 15000 }),
      (/** @type {any} */ err) => err instanceof GroupFailedError && /member two dead-lettered: Reject: boom/.test(err.message));
    assert.ok((await client.groupStatus("grp-fail", group.id)).done < 3, "three was still running");
    release?.();
    await until(async () => (await client.groupStatus("grp-fail", group.id)).done === 2, 10000, "three completed");
  } finally {
    release?.();
    await worker.shutdown();
  }
  const st = await client.groupStatus("grp-fail", group.id);
  assert.equal(st.failed, "two");
  assert.equal(await client.result("grp-fail", "three", { timeoutMs: 0 }), "slow done");
  const [requeued] = await client.deadRequeue("grp-fail", { ids: ["two"] });
  assert.equal(requeued, 1);
  assert.equal((await client.groupStatus("grp-fail", group.id)).finishedMs, 0, "running again");
  await assert.rejects(client.waitGroup("grp-fail", group.id, { timeoutMs: 30 }), ResultTimeoutError);
});

test("refusals write nothing", async () => {
  await client.enqueue("grp-bad", "x", { id: "taken" });
  await assert.rejects(client.enqueueGroup("grp-bad", [1, 2], { ids: ["new", "taken"] }), DuplicateIdError);
  await assert.rejects(client.enqueueGroup("grp-bad", []), InvalidArgumentError);
  await assert.rejects(client.groupStatus("grp-bad", "nope"), InvalidArgumentError);
  await assert.rejects(client.groupResult("grp-bad", "g4"), UnknownGroupError);
  await assert.rejects(client.waitGroup("grp-bad", "g4", { timeoutMs: -1 }), InvalidArgumentError);
  assert.equal((await client.stats("grp-bad")).ready, 1);
});
