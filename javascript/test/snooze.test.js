// Snooze and progress through the JavaScript Worker against a private Redis:
// a handler that returns or throws a Snooze gets its event again after the
// delay without an attempt charged (and the due-time index hinted, so a
// scheduler wakes for it); one that snoozes past max_snoozes dead-letters
// its event; this.progress() records a percentage that status shows.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, Snooze, StaleLeaseError, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, runScheduler, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

test("a returned and a thrown Snooze bring the event back uncharged", async () => {
  const returned = await client.enqueue("snz", "return");
  const thrown = await client.enqueue("snz", "throw");
  /** @type {Record<string, number[]>} */
  const attempts = { return: [], throw: [] };
  /** @type {unknown[]} */
  const states = [];
  class Sleepy extends Consumer {
    init() {
      return 0;
    }

    /** @param {any} event @param {any} state */
    handleEvent(event, state) {
      states.push(state);
      const seen = attempts[event.payload];
      seen.push(event.attempt);
      if (seen.length > 1) return state;
      if (event.payload === "throw") throw new Snooze(0);
      return new Snooze(0, { state: state + 1 });
    }
  }
  const logger = recordingLogger();
  const worker = await started(new Worker(client, "snz", Sleepy, { logger, concurrency: 1 }));
  const daemon = runScheduler(client, "snz");
  try {
    await until(() => worker.stats.completed === 2, 15000, "both completed after their snooze");
  } finally {
    await daemon.stop();
    await worker.shutdown();
  }
  assert.deepEqual(attempts, { return: [1, 1], throw: [1, 1] }, "the snooze charged no attempt");
  assert.equal(worker.stats.snoozed, 2);
  assert.equal(worker.stats.failed, 0);
  assert.ok(states.includes(1), "a returned Snooze hands its state on");
  const st = await client.stats("snz");
  assert.equal(st["total.snoozed"], 2);
  assert.equal(st["total.failed"] ?? 0, 0);
  assert.ok(!logger.lines.some((l) => l.level === "warn"), "a snooze is not a warning");
  void [returned, thrown];
});

test("a snoozed event waits with its count in status, and the due-time index is hinted", async () => {
  const id = await client.enqueue("snz-wait", "later");
  class Later extends Consumer {
    handleEvent() {
      return new Snooze(2000);
    }
  }
  const worker = await started(new Worker(client, "snz-wait", Later, { leaseMs: 30000 }));
  await until(() => worker.stats.snoozed === 1, 10000, "the snooze");
  await worker.shutdown();
  const st = await client.status("snz-wait", id);
  assert.deepEqual([st.state, st.detail, st.attempt, st.snoozes], ["pending", "waiting", 0, 1]);
  const due = await client.connection.zScore(`${client.prefix}:{snz-wait}:retry`, id);
  const hint = await client.connection.zScore(`${client.prefix}:due`, "snz-wait");
  assert.ok(due !== null && hint !== null);
  assert.equal(hint, due, "the index holds the snooze's due time (below the lease's deadline)");
});

test("past max_snoozes a snooze dead-letters the event", async () => {
  await client.configure("snz-max", { maxSnoozes: 2 });
  const id = await client.enqueue("snz-max", "forever");
  class Forever extends Consumer {
    handleEvent() {
      throw new Snooze(0);
    }
  }
  const worker = await started(new Worker(client, "snz-max", Forever));
  const daemon = runScheduler(client, "snz-max");
  try {
    await until(async () => (await client.status("snz-max", id)).state === "dead", 15000, "the dead letter");
  } finally {
    await daemon.stop();
    await worker.shutdown();
  }
  const [letter] = (await client.deadList("snz-max")).letters;
  assert.equal(letter.id, id);
  assert.equal(letter.reason, "snooze refused: max_snoozes (2) reached");
  assert.equal(letter.attempt, 1);
  assert.equal(worker.stats.snoozed, 2);
});

test("a snooze the client refuses fails the event instead", async () => {
  await client.configure("snz-bad", { backoffBaseMs: 60000 });
  const id = await client.enqueue("snz-bad", "bad");
  class Bad extends Consumer {
    handleEvent() {
      return new Snooze(-1);
    }
  }
  const worker = await started(new Worker(client, "snz-bad", Bad, { logger: recordingLogger() }));
  await until(() => worker.stats.failed === 1, 10000, "the fail");
  await worker.shutdown();
  const st = await client.status("snz-bad", id);
  assert.deepEqual([st.state, st.detail, st.attempt, st.snoozes], ["pending", "waiting", 1, 0]);
});

test("a handler's progress is fenced by its lease and shown by status", async () => {
  const id = await client.enqueue("prog", "work");
  /** @type {number[]} */
  const shown = [];
  /** @type {(v?: unknown) => void} */
  let go = () => {};
  const gate = new Promise((r) => { go = r; });
  class Working extends Consumer {
    /** @param {any} event */
    async handleEvent(event) {
      assert.equal(await this.progress(event, 40), 40);
      shown.push((await client.status("prog", event.id)).progress);
      await gate;
      await this.progress(event, 90);
      return null;
    }
  }
  const worker = await started(new Worker(client, "prog", Working));
  await until(() => shown.length === 1, 10000, "the first report");
  const st = await client.status("prog", id);
  assert.deepEqual([st.state, st.detail, st.progress], ["pending", "reserved", 40]);
  go();
  await until(() => worker.stats.completed === 1, 10000, "the completion");
  await worker.shutdown();
  assert.deepEqual(shown, [40]);
  await assert.rejects(client.progress("prog", id, 1, 10), (e) => e instanceof Error);
  await assert.rejects(new Consumer().progress(/** @type {any} */ ({}), 1), /available while the consumer runs/);
  const [ev] = [await client.enqueue("prog", "again")];
  const [lease] = await client.dequeue("prog");
  await assert.rejects(client.progress("prog", lease.id, lease.token + 1, 10), StaleLeaseError);
  await assert.rejects(client.progress("prog", lease.id, lease.token, 101), { code: "INVALID_ARGUMENT" });
  assert.equal((await client.status("prog", ev)).progress, 0, "nothing written by a refusal");
});
