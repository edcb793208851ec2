// The JS worker's monitoring numbers (src/metrics.js): worker.metrics() is the
// stats in Redis, and registerPrometheus() shows them through prom-client (a
// devDependency only) under the Python port's names.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import * as promClient from "prom-client";

import { Consumer, Reject, StaleLeaseError, Worker, metrics } from "../src/index.js";
import { connect, privateServer, setClock, started, until } from "./helpers.js";

const server = await privateServer();
const client = await connect(server.url);
after(() => client.close());

class Flaky extends Consumer {
  /** @param {import("../src/index.js").Event} ev @param {unknown} state */
  async handleEvent(ev, state) {
    if (ev.payload === "bad") throw new Reject("bad");
    return state;
  }
}

test("worker.metrics(): queue gauges and totals are the service's stats", async () => {
  const service = "jsm-stats";
  await client.configure(service, { backoff_base_ms: 60000, backoff_jitter: 0 });
  await setClock(client, service, 1_000_000);
  await client.enqueueMany(service, [1, 2, 3]);
  await client.createTimer(service, "t", { delayMs: 60000 });
  const [a, b] = await client.dequeue(service, 2, { leaseMs: 1000 });
  await client.complete(service, a.id, a.token);
  await setClock(client, service, 1_001_000);
  await client.promote(service); // b's lease is reclaimed: its late ack is refused
  await assert.rejects(client.complete(service, b.id, b.token), StaleLeaseError);
  await setClock(client, service, null);
  const worker = new Worker(client, service, Flaky); // not started: metrics() reads Redis
  const snap = await worker.metrics();
  const st = await client.stats(service);
  assert.equal(snap.service, service);
  assert.equal(snap.gauges.events_ready, st.ready);
  assert.equal(snap.gauges.events_ready, 1);
  assert.equal(snap.gauges.events_timers, 1);
  assert.equal(snap.gauges.events_expired_pending, 1);
  assert.equal(snap.totals.events_enqueued, 3);
  assert.equal(snap.totals.events_completed, 1);
  assert.equal(snap.totals.leases_expired, 1);
  assert.equal(snap.totals.stale_acks_refused, 1);
  // Created at the frozen 1,000,000 ms: decades before Redis's own clock now.
  assert.ok(snap.gauges.oldest_ready_age_seconds > 1e9);
});

test("registerPrometheus(): prom-client shows the gauges, totals and handler histogram", async () => {
  const service = "jsm-prom";
  const registry = new promClient.Registry();
  const worker = new Worker(client, service, Flaky);
  metrics.registerPrometheus(promClient, worker, { registry });
  await client.enqueueMany(service, ["ok", "ok", "bad"]);
  await started(worker);
  await until(() => worker.stats.completed === 2 && worker.stats.failed === 1, 10000, "handled");
  const text = await registry.metrics();
  assert.match(text, new RegExp(`homing_events_ready\\{service="${service}"\\} 0`));
  assert.match(text, new RegExp(`homing_events_enqueued_total\\{service="${service}"\\} 3`));
  assert.match(text, new RegExp(`homing_events_dead_lettered_total\\{service="${service}"\\} 1`));
  assert.match(text, new RegExp(`homing_handler_duration_seconds_count\\{service="${service}",outcome="ok"\\} 2`));
  assert.match(text, new RegExp(`homing_handler_duration_seconds_count\\{service="${service}",outcome="error"\\} 1`));
  assert.match(text, /# TYPE homing_events_enqueued_total counter/);
  assert.match(text, /# TYPE homing_handler_duration_seconds histogram/);
  // The snapshot keeps the same histogram, cumulative buckets included.
  const snap = await worker.metrics();
  assert.equal(snap.handler.byOutcome.ok.count, 2);
  assert.equal(snap.handler.byOutcome.ok.counts.at(-1), 2);
  assert.equal(snap.worker.completed, 2);
  // A second scrape reads Redis again: totals follow, not accumulate.
  await client.enqueue(service, "ok");
  await until(() => worker.stats.completed === 3, 10000, "the fourth");
  const again = await registry.metrics();
  assert.match(again, new RegExp(`homing_events_enqueued_total\\{service="${service}"\\} 4`));
});
