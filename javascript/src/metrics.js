// Monitoring numbers of a JS worker, in the shape of the Python port's
// Prometheus metrics (docs/operations.md#metrics), with no dependency:
//
//   const snap = await worker.metrics();   // queue gauges, service totals,
//                                          // handler durations, worker counts
//   registerPrometheus(promClient, worker); // the same as prom-client metrics
//
// The queue numbers and the service totals are read from Redis when asked
// (one bounded `stats` call and one TIME), never cached. Handler durations
// are kept by an instrument the worker runs around each handler, in the
// Python port's buckets.

/** Handler duration buckets, seconds: the Python port's HANDLER_BUCKETS. */
export const HANDLER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

/** [stats field, metric name, help]: the gauges (homing_<name>{service}). */
export const GAUGES = [
  ["ready", "events_ready", "Events ready for delivery, at every priority level."],
  ["in_flight", "events_in_flight", "Events leased by a consumer (reserved or started)."],
  ["timers", "events_timers", "Timers not yet due."],
  ["retrying", "events_retrying", "Events waiting out a retry backoff."],
  ["expired", "events_expired_pending", "Reclaimed leases waiting for the distributor (retry or dead letter)."],
  ["dead", "events_dead", "Dead letters kept (never dropped without a purge)."],
  ["results", "results_kept", "Results of completed events kept for result_ttl_ms."],
];

/** [counter field, metric name, help]: the service totals (homing_<name>_total{service}). */
export const COUNTERS = [
  ["enqueued", "events_enqueued", "Events added (enqueue, enqueue_many)."],
  ["timers", "timers_created", "Timers created."],
  ["delivered", "events_delivered", "Deliveries (leases handed out)."],
  ["completed", "events_completed", "Events completed (acknowledged)."],
  ["failed", "events_failed", "Handler failures reported (fail)."],
  ["retried", "events_retried", "Events sent to a retry backoff (after a failure or an expiry)."],
  ["dead", "events_dead_lettered", "Events moved to the dead letters."],
  ["expired", "leases_expired", "Started leases that expired and were reclaimed."],
  ["stale_acks", "stale_acks_refused", "Completions refused because the lease was no longer the consumer's (fencing)."],
  ["requeued", "events_requeued", "Dead letters requeued."],
  ["released", "events_released", "Events released unstarted by a worker shutting down."],
  ["returned", "leases_returned", "Reserved leases that ran out unstarted (no attempt charged)."],
  ["snoozed", "events_snoozed", "Snoozes granted: events a handler asked for again later, uncharged."],
];

/**
 * A histogram in fixed buckets, per outcome ("ok": returned, "error": threw).
 */
export class DurationHistogram {
  constructor(buckets = HANDLER_BUCKETS) {
    this.buckets = buckets;
    /** @type {Record<string, {counts: number[], sum: number, count: number}>} */
    this.byOutcome = {};
    /** @type {((outcome: string, seconds: number) => void)[]} observers (registerPrometheus adds one) */
    this.listeners = [];
  }

  /** @param {string} outcome @param {number} seconds */
  observe(outcome, seconds) {
    const h = (this.byOutcome[outcome] ??= { counts: this.buckets.map(() => 0), sum: 0, count: 0 });
    this.buckets.forEach((le, i) => {
      if (seconds <= le) h.counts[i] += 1; // cumulative, as Prometheus buckets are
    });
    h.sum += seconds;
    h.count += 1;
    for (const f of this.listeners) f(outcome, seconds);
  }

  /** The instrument for worker.instruments: times every handler run. */
  instrument() {
    return async (/** @type {any} */ _ev, /** @type {() => Promise<unknown>} */ next) => {
      const start = process.hrtime.bigint();
      let outcome = "error";
      try {
        const value = await next();
        outcome = "ok";
        return value;
      } finally {
        this.observe(outcome, Number(process.hrtime.bigint() - start) / 1e9);
      }
    };
  }
}

/** @type {WeakMap<object, DurationHistogram>} */
const histograms = new WeakMap();

/**
 * The handler duration histogram of a worker, made (and its instrument added) on first use.
 * @param {import("./worker.js").Worker} worker
 */
export function handlerHistogram(worker) {
  let h = histograms.get(worker);
  if (!h) {
    h = new DurationHistogram();
    histograms.set(worker, h);
    worker.instruments.push(h.instrument());
  }
  return h;
}

/**
 * Redis TIME in ms: ages are measured on the clock the scripts stamp with.
 * @param {any} client
 */
async function redisNowMs(client) {
  // TIME() on a client or a Cluster (any node will do); Buffers, as the view replies.
  const [secs, micros] = await client.redis.TIME();
  return Number(secs) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * A snapshot of a worker's numbers: its service's queue gauges and totals (read
 * from Redis now), its handler durations and its own counts since it started.
 * @param {import("./worker.js").Worker} worker
 */
export async function workerSnapshot(worker) {
  const h = handlerHistogram(worker);
  const [st, now] = await Promise.all([worker.client.stats(worker.service), redisNowMs(worker.client)]);
  /** @type {Record<string, number>} */
  const gauges = {};
  for (const [field, name] of GAUGES) gauges[name] = Number(st[field] ?? 0);
  const created = Number(st.oldest_ready_created_ms ?? -1);
  gauges.oldest_ready_age_seconds = created >= 0 ? Math.max(0, (now - created) / 1000) : 0;
  /** @type {Record<string, number>} */
  const totals = {};
  for (const [field, name] of COUNTERS) {
    const v = st[`total.${field}`];
    totals[name] = typeof v === "number" ? v : 0;
  }
  return {
    service: worker.service,
    gauges,
    totals,
    handler: { buckets: h.buckets, byOutcome: structuredClone(h.byOutcome) },
    worker: { ...worker.stats },
  };
}

/**
 * Register a worker's numbers with prom-client, under the Python port's names:
 * the gauges and totals are read at scrape time (collect), the handler duration
 * is a prom-client Histogram fed live. prom-client is passed in, not imported:
 * homing does not depend on it.
 * @param {any} promClient the prom-client module (`import * as promClient from "prom-client"`)
 * @param {import("./worker.js").Worker} worker
 * @param {{registry?: any}} [options] default: prom-client's global register
 */
export function registerPrometheus(promClient, worker, options = {}) {
  const registers = [options.registry ?? promClient.register];
  const service = worker.service;
  /** @type {Promise<any> | null} */
  let pending = null;
  // One stats read per scrape, shared by every metric's collect().
  const snap = () => (pending ??= workerSnapshot(worker).finally(() => setTimeout(() => { pending = null; }, 0)));
  const made = [];
  for (const [, name, help] of [...GAUGES, [null, "oldest_ready_age_seconds", "Age of the event next in line (from its creation, Redis clock); 0 when none is ready."]]) {
    made.push(new promClient.Gauge({
      name: `homing_${name}`, help, labelNames: ["service"], registers,
      async collect() {
        this.set({ service }, (await snap()).gauges[/** @type {string} */ (name)]);
      },
    }));
  }
  for (const [, name, help] of COUNTERS) {
    made.push(new promClient.Counter({
      name: `homing_${name}_total`, help, labelNames: ["service"], registers,
      async collect() {
        // A running total kept in Redis: shown as it is, not accumulated here.
        this.reset();
        this.inc({ service }, (await snap()).totals[name]);
      },
    }));
  }
  const hist = new promClient.Histogram({
    name: "homing_handler_duration_seconds",
    help: "Time a handler ran, by outcome (ok: returned; error: raised).",
    labelNames: ["service", "outcome"], buckets: HANDLER_BUCKETS, registers,
  });
  handlerHistogram(worker).listeners.push((outcome, seconds) => hist.observe({ service, outcome }, seconds));
  made.push(hist);
  return made;
}
