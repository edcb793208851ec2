// Worker edges found in review (python/tests/test_worker_edges.py): a
// redelivery to the same worker, odd handlers, async init, releaseHeld().

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Consumer, Worker } from "../src/index.js";
import { connect, privateServer, recordingLogger, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A promise the test resolves when it likes. */
function gate() {
  /** @type {() => void} */
  let open = () => {};
  const opened = new Promise((r) => {
    open = () => r(undefined);
  });
  return { opened, open };
}

test("a redelivery to the same worker is a lease of its own", async () => {
  // The first handler stalls past its lease; the event comes back to the same
  // worker under a new token while the first still runs. The new lease must be
  // extended and its completion kept; only the stale one is refused. The first
  // delivery was never marked started (the fast path), so it comes back
  // uncharged, and the second is marked started first.
  const service = "redelivered";
  const id = await client.enqueue(service, "job");
  const first = gate();
  let firstRunning = false;
  /** @type {[number, boolean][]} */
  const seen = [];
  class Stalls extends Consumer {
    /** @param {import("../src/index.js").Event} event @param {unknown} state */
    async handleEvent(event, state) {
      seen.push([event.attempt, event.mustStart]);
      if (seen.length === 1) {
        firstRunning = true;
        await first.opened;
      } else {
        await sleep(1000); // longer than the lease: only the heartbeat keeps it
        await this.complete(event.service, event.id, "second");
      }
      return state;
    }
  }
  const logger = recordingLogger();
  const worker = await started(new Worker(client, service, Stalls, { concurrency: 2, leaseMs: 600, logger }));
  await until(() => firstRunning, 5000, "the first delivery");
  // A stall: the scheduler reclaims the lease; the heartbeat's next extension is refused.
  await client.connection.zAdd(`${client.prefix}:{${service}}:leases`, { score: 0, value: id });
  const reclaimed = await client.promote(service);
  assert.deepEqual([reclaimed.expired, reclaimed.returned], [1, 1], "back to ready, uncharged");
  await until(() => worker.stats.lost === 1, 5000, "the heartbeat to find the first lease lost");
  // A scheduler on the real clock from here on: it would reclaim the second
  // lease if the heartbeat did not extend it.
  let expired = 0;
  let done = false;
  const scheduler = (async () => {
    while (!done) {
      expired += (await client.promote(service)).expired;
      await sleep(50);
    }
  })();
  try {
    assert.equal(await client.result(service, id, { timeoutMs: 10000 }), "second");
  } finally {
    done = true;
    await scheduler;
  }
  first.open();
  await worker.shutdown();
  assert.deepEqual(seen, [[1, false], [1, true]], "the second delivery is the first charged attempt");
  assert.equal(expired, 0, "the second lease was extended, never reclaimed");
  assert.equal(worker.stats.completed, 1);
  assert.equal(worker.stats.lost, 1, "the stale first lease, found by the heartbeat");
  assert.deepEqual(worker.stats.errors, {}, "the first handler's completion is not sent");
  const st = await client.stats(service);
  assert.deepEqual([st["total.expired"] ?? 0, st["total.returned"]], [0, 1]);
});

test("complete() outside the handler's own event uses the newest lease held", async () => {
  const service = "complete-other";
  await client.configure(service, { doneTtlMs: 600_000 }); // result() sees a's null result
  const [a, b] = await client.enqueueMany(service, ["a", "b"]);
  class CompletesBoth extends Consumer {
    /** @param {import("../src/index.js").Event} event @param {unknown} state */
    async handleEvent(event, state) {
      if (event.payload === "a") {
        await until(() => worker.stats.received === 2, 5000, "both deliveries");
        await this.complete(service, b, "done by a"); // b is held, and not a's own event
      }
      return state;
    }
  }
  const worker = await started(new Worker(client, service, CompletesBoth, { concurrency: 1, prefetch: 2 }));
  assert.equal(await client.result(service, b, { timeoutMs: 5000 }), "done by a");
  assert.equal(await client.result(service, a, { timeoutMs: 5000 }), null);
  await until(() => worker.stats.completed === 2, 5000, "both completions");
  await worker.shutdown();
  assert.equal(worker.stats.lost, 0);
});

test("an async init() is awaited", async () => {
  /** @type {unknown[]} */
  const seen = [];
  class AsyncBoth extends Consumer {
    async init() {
      await sleep(1);
      return { ready: true };
    }

    /** @param {unknown} event @param {unknown} state */
    async handleEvent(event, state) {
      seen.push(state);
      return state;
    }
  }
  await client.enqueue("async-init", 1);
  const worker = await started(new Worker(client, "async-init", AsyncBoth));
  await until(() => worker.stats.completed === 1, 5000, "the completion");
  await worker.shutdown();
  assert.deepEqual(seen, [{ ready: true }]);
});

test("a handler throwing what is not an Error fails the event, not the slot", async () => {
  const hostile = new Proxy({}, {
    get() {
      throw new Error("no property here");
    },
    getPrototypeOf() {
      throw new Error("no prototype here");
    },
  });
  /** @type {Record<string, unknown>} */
  const throws = {
    number: 3,
    string: "boom",
    undefined,
    null: null,
    bare: Object.create(null),
    hostile,
    rejected: Promise.reject(new Error("a rejected promise, thrown")),
  };
  /** @type {Promise<unknown>} */ (throws.rejected).catch(() => {});
  class Throws extends Consumer {
    /** @param {import("../src/index.js").Event} event @param {unknown} state */
    handleEvent(event, state) {
      if (event.payload === "fine") return state;
      throw throws[/** @type {string} */ (event.payload)];
    }
  }
  const logger = recordingLogger();
  const service = "throws-anything";
  await client.enqueueMany(service, Object.keys(throws));
  const worker = await started(new Worker(client, service, Throws, { concurrency: 1, logger }));
  await until(() => worker.stats.failed === Object.keys(throws).length, 5000, "every failure");
  await client.enqueue(service, "fine");
  await until(() => worker.stats.completed === 1, 5000, "the one slot to go on");
  await worker.shutdown();
  const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.text).join("\n");
  for (const reason of ["number: 3", "string: boom", "undefined: undefined", "object: null",
    "object: (a value that cannot be shown as text)", "object: [object Promise]"]) {
    assert.ok(warnings.includes(`failed: ${reason}`), reason);
  }
  const st = await client.stats(service);
  assert.deepEqual([st.retrying, st.in_flight, st["total.failed"]], [7, 0, 7]);
});

test("releaseHeld() hands back running and unstarted events at once; late outcomes are not sent", async () => {
  const service = "release-held";
  const ids = await client.enqueueMany(service, [1, 2, 3]);
  const { opened, open } = gate();
  let returned = 0;
  class Gated extends Consumer {
    async handleEvent() {
      await opened;
      returned += 1;
      return null;
    }
  }
  const worker = await started(new Worker(client, service, Gated, { concurrency: 2, prefetch: 1, leaseMs: 5000 }));
  await until(() => worker.stats.received === 3, 5000, "three deliveries");
  await worker.releaseHeld({ timeoutMs: 2000 });
  assert.equal(worker.stats.released, 3);
  const statuses = await Promise.all(ids.map((id) => client.status(service, id)));
  assert.ok(statuses.every((s) => s.detail === "ready" && s.attempt === 0), "no attempt counted");
  open();
  await until(() => returned === 2, 5000, "the two handlers to return");
  await worker.shutdown();
  assert.equal(worker.stats.completed, 0);
  assert.equal(worker.stats.lost, 0);
  assert.deepEqual(worker.stats.errors, {});
  const st = await client.stats(service);
  assert.deepEqual([st.ready, st.in_flight, st["total.completed"] ?? 0], [3, 0, 0]);
});

test("a dequeue and a completeMany of the same turn go out dequeue first, and the hint with them", async () => {
  // docs/worker.md "Handling": Redis runs the dequeue every slot waits on
  // before the acknowledgements of the last window. Each call is stamped with
  // the event-loop turn (setImmediate) it was issued in.
  const own = await connect(server.url);
  after(() => own.close());
  await own.enqueueMany("ordered", Array.from({ length: 60 }, (_, i) => i));
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn += 1;
    if (ticking) setImmediate(tick);
  };
  tick();
  /** @type {[string, number][]} */
  const issued = [];
  const run = own.run.bind(own);
  own.run = /** @type {any} */ ((/** @type {any} */ call, /** @type {any} */ hints) => {
    issued.push([call.script, turn]);
    return run(call, hints);
  });
  const hintDue = own.hintDue.bind(own);
  own.hintDue = async (/** @type {string} */ service, /** @type {number} */ at) => {
    issued.push(["hint", turn]);
    return hintDue(service, at);
  };
  class Quick extends Consumer {
    /** @param {unknown} _e @param {unknown} state */
    handleEvent(_e, state) {
      return state;
    }
  }
  const worker = await started(new Worker(own, "ordered", Quick, { concurrency: 1, prefetch: 9 }));
  try {
    await until(() => worker.stats.completed === 60, 10000, "every event acknowledged");
  } finally {
    ticking = false;
    await worker.shutdown();
  }
  const together = [...new Set(issued.map(([, t]) => t))].map((t) => issued.filter(([, u]) => u === t).map(([s]) => s))
    .filter((calls) => calls.includes("dequeue") && calls.includes("complete"));
  assert.ok(together.length >= 3, `dequeue and completeMany in the same turn: ${JSON.stringify(issued)}`);
  for (const calls of together) {
    assert.ok(calls.indexOf("dequeue") < calls.indexOf("complete"), JSON.stringify(calls));
  }
  // The last batch's hint is queued just before the dequeue, in the same write.
  assert.ok(together.some((calls) => calls.indexOf("hint") === calls.indexOf("dequeue") - 1), JSON.stringify(together));
  assert.equal((await own.stats("ordered")).in_flight, 0);
});
