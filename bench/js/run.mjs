// homing's JavaScript client and BullMQ's Node client, end to end, on the same
// Redis as bench/run.py (which runs this file; see bench/README.md):
//
//   node bench/js/run.mjs --events N --reps R [--quick] [--only NAME]
//
// HOMING_REDIS_URL names the Redis (a standalone server); HOMING_BENCH_PREFIX
// the key prefix to work under (default hbench-js-<random>). Every case works
// on a queue of its own, checks from Redis that all N events went through, and
// deletes its keys. Output (the hook's contract, bench/external.py): one JSON
// object per line and per case, {"name", "label", "events", "rates", ...};
// progress goes to stderr.
//
// Each case: N events pre-enqueued (untimed), then one consumer process with a
// no-op handler, timed from starting the worker until the Nth completion is
// acknowledged by Redis. Cases run interleaved in rounds after a warm-up round,
// as in run.py, so load from elsewhere on the machine hits all of them alike.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { BUFFER_REPLIES } from "../../javascript/src/connection.js";
import { Client, Consumer, Worker, envelope, manifest } from "../../javascript/src/index.js";

/** BullMQ, imported only when a BullMQ case is selected: `--only js_e2e` runs without it installed. */
/** @type {any} */
let Queue;
/** @type {any} */
let BullWorker;

const BATCH = 100;
const PREFETCH = 100;
const DEFAULT_EVENTS = 20_000;
const DEFAULT_REPS = 5;
const QUICK = { events: 400, reps: 2 };
const SCRIPT_COMMANDS = ["evalsha", "eval"];

const { values: opts } = parseArgs({
  options: {
    events: { type: "string" },
    reps: { type: "string" },
    quick: { type: "boolean", default: false },
    only: { type: "string", multiple: true, default: [] },
  },
});
const EVENTS = Number(opts.events ?? (opts.quick ? QUICK.events : DEFAULT_EVENTS));
const REPS = Number(opts.reps ?? (opts.quick ? QUICK.reps : DEFAULT_REPS));
const URL_ = process.env.HOMING_REDIS_URL;
if (!URL_) {
  console.error("bench/js: set HOMING_REDIS_URL to a Redis of your own (bench/run.py does)");
  process.exit(2);
}
const PREFIX = process.env.HOMING_BENCH_PREFIX ?? `hbench-js-${randomBytes(4).toString("hex")}`;
const BULL_PREFIX = `${PREFIX}-bull`;

/** A small message, like a typical notification (the payload run.py uses). */
const payload = (/** @type {number} */ i) => ({ n: i, kind: "bench" });

const client = await Client.connect(URL_, { prefix: PREFIX, cluster: false });
/** The node-redis connection, for INFO and cleanup. */
const redis = client.connection;
const { hostname, port, password, username, pathname } = new URL(URL_);
const bullConnection = {
  host: hostname,
  port: Number(port || 6379),
  db: Number(pathname.slice(1) || 0),
  ...(password ? { password: decodeURIComponent(password) } : {}),
  ...(username ? { username: decodeURIComponent(username) } : {}),
  maxRetriesPerRequest: null, // BullMQ workers require it
};
let counter = 0;
const fresh = (/** @type {string} */ name) => `${name}-${++counter}`;

// -- measurement -----------------------------------------------------------------

/** @param {string} section */
async function info(section) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const line of String(await redis.info(section)).split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function redisCpu() {
  const cpu = await info("cpu");
  return Number(cpu.used_cpu_user) + Number(cpu.used_cpu_sys);
}

/** Calls and µs of the top-level script commands so far. */
async function scriptStats() {
  const stats = await info("commandstats");
  let calls = 0;
  let usec = 0;
  for (const name of SCRIPT_COMMANDS) {
    const m = /calls=(\d+),usec=(\d+)/.exec(stats[`cmdstat_${name}`] ?? "");
    if (m) {
      calls += Number(m[1]);
      usec += Number(m[2]);
    }
  }
  return { calls, usec };
}

/**
 * Time fn() as one sample of n events, with Redis's CPU and script time and this
 * process's CPU over the same window (deltas only: nothing is reset on the server).
 * @param {number} n
 * @param {() => Promise<void>} fn
 */
async function measured(n, fn) {
  const [cmd0, rcpu0] = [await scriptStats(), await redisCpu()];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const [cmd1, rcpu1] = [await scriptStats(), await redisCpu()];
  const calls = cmd1.calls - cmd0.calls;
  const usec = cmd1.usec - cmd0.usec;
  return {
    rate: n / seconds,
    redisUsPerEvent: usec / n,
    redisUsPerCall: calls ? usec / calls : null,
    redisCpuPct: (100 * (rcpu1 - rcpu0)) / seconds,
    clientCpuPct: (100 * (cpu.user + cpu.system)) / 1e6 / seconds,
  };
}

/** Resolve once check() is true, polling every millisecond (as run.py's worker case). */
async function until(/** @type {() => boolean} */ check, /** @type {number} */ n, /** @type {string} */ what) {
  const deadline = performance.now() + 60_000 + n * 2;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not done before the deadline`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** @param {unknown} got @param {unknown} want @param {string} what */
function expect(got, want, what) {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

// -- homing ----------------------------------------------------------------------

class NoOp extends Consumer {
  /** @param {unknown} _event @param {unknown} state */
  handleEvent(_event, state) {
    return state;
  }
}

/** @param {string} service @param {number} n */
async function prefill(service, n) {
  for (let start = 0; start < n; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) batch.push(payload(i));
    await client.enqueueMany(service, batch);
  }
}

/** Redis's own counters must agree with what the case believes it did; then clean up. */
async function checkHoming(/** @type {string} */ service, /** @type {number} */ n) {
  const st = await client.stats(service);
  expect(st["total.enqueued"], n, `${service} enqueued`);
  expect(st["total.completed"], n, `${service} completed`);
  expect(st.ready + st.in_flight, 0, `${service} events left over`);
  await dropService(service);
}

/** Delete a case's service: its keys and its registry entry. */
async function dropService(/** @type {string} */ service) {
  const keys = Object.keys(manifest.LAYOUT.service_keys).map((k) => manifest.serviceKey(PREFIX, service, k));
  await redis.del(keys);
  await redis.sRem(manifest.globalKey(PREFIX, "services"), service);
}

/** @param {number} concurrency */
const homingWorker = (concurrency) => async (/** @type {number} */ n) => {
  const service = fresh(`w${concurrency}`);
  await prefill(service, n);
  const worker = new Worker(client, service, NoOp, { concurrency, prefetch: PREFETCH });
  const sample = await measured(n, async () => {
    await worker.start();
    // stats.completed counts events whose completeMany Redis acknowledged.
    await until(() => worker.stats.completed >= n, n, `homing worker c=${concurrency}`);
  });
  await worker.shutdown();
  await checkHoming(service, n);
  return sample;
};

/** The bare client: dequeue 100, completeMany 100; the floor under the Worker. */
async function homingLoop(/** @type {number} */ n) {
  const service = fresh("loop");
  await prefill(service, n);
  const sample = await measured(n, async () => {
    for (let done = 0; done < n;) {
      const events = await client.dequeue(service, BATCH);
      if (events.length === 0) throw new Error(`client loop: queue empty after ${done} of ${n}`);
      const errors = await client.completeMany(service, events.map((ev) => [ev.id, ev.token, null]));
      if (errors.some((e) => e !== null)) throw new Error(`client loop: refused: ${errors.find((e) => e)}`);
      done += events.length;
    }
  });
  await checkHoming(service, n);
  return sample;
}

/** Client.enqueue, one event per call (what a web request does): a tenth of n, as BullMQ's add. */
async function homingEnqueueOne(/** @type {number} */ n) {
  const service = fresh("enq1");
  const sample = await measured(n, async () => {
    for (let i = 0; i < n; i++) await client.enqueue(service, payload(i));
  });
  const st = await client.stats(service);
  expect(st["total.enqueued"], n, `${service} enqueued`);
  expect(st.ready, n, `${service} ready`);
  await dropService(service);
  return sample;
}

/**
 * node-redis's evalSha of a trivial script with an enqueue's keys and arguments, one
 * call per event: the floor of any one-round-trip producer from this library
 * (run.py's evalsha_floor, from node-redis), beside which BullMQ's add and
 * homing's enqueue are read.
 */
async function evalshaFloor(/** @type {number} */ n) {
  const sha = await redis.scriptLoad("return {ARGV[3], 1}");
  const keys = Array.from({ length: 7 }, (_, k) => `${PREFIX}:{floor}:${k}`);
  let got = 0;
  const sample = await measured(n, async () => {
    for (let i = 0; i < n; i++) {
      const body = Buffer.from(envelope.encode(payload(i)));
      const reply = await buffers.evalSha(sha, {
        keys, arguments: ["1048576", "1", randomBytes(16).toString("hex"), body, ""],
      });
      got += Number(/** @type {any[]} */ (reply)[1]);
    }
  });
  expect(got, n, "evalsha floor replies");
  return sample;
}

// The minimal leased design (bench/leased/*.lua, the scripts bench/floors.py sends), sent
// from node-redis with Buffer replies as homing's own calls are: the drain
// the JS Worker is held against (issue 10: >= 0.7 of it) from the same
// client library, so the difference is homing's scripts and worker, not
// redis-py against node-redis.
const [LEASED_ENQUEUE, LEASED_DEQUEUE, LEASED_COMPLETE] = ["enqueue", "dequeue", "complete"]
  .map((op) => readFileSync(new URL(`../leased/${op}.lua`, import.meta.url), "utf8"));
const buffers = redis.withTypeMapping(BUFFER_REPLIES);

async function leasedDrain(/** @type {number} */ n) {
  const name = fresh("ld");
  const [bodies, queue, leases] = ["bodies", "queue", "leases"].map((k) => `${PREFIX}:{${name}}:${k}`);
  const [enq, deq, ack] = await Promise.all(
    [LEASED_ENQUEUE, LEASED_DEQUEUE, LEASED_COMPLETE].map((src) => redis.scriptLoad(src)));
  for (let start = 0; start < n; start += 1000) {
    const args = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      args.push(randomBytes(16).toString("hex"), Buffer.from(envelope.encode(payload(i))));
    }
    await redis.evalSha(enq, { keys: [bodies, queue], arguments: args });
  }
  const sample = await measured(n, async () => {
    for (let done = 0; done < n;) {
      const got = /** @type {Buffer[]} */ (await buffers.evalSha(deq, { keys: [bodies, queue, leases], arguments: [String(BATCH), "30000"] }));
      if (got.length === 0) throw new Error(`leased drain: queue empty after ${done} of ${n}`);
      const ids = [];
      for (let i = 0; i < got.length; i += 2) ids.push(got[i]);
      await buffers.evalSha(ack, { keys: [leases, bodies], arguments: ids });
      done += ids.length;
    }
  });
  expect(await redis.exists([bodies, queue, leases]), 0, "leased drain: keys left over");
  return sample;
}

// -- BullMQ ----------------------------------------------------------------------

/** @param {number} concurrency */
const bullmqWorker = (concurrency) => async (/** @type {number} */ n) => {
  const name = fresh(`bull${concurrency}`);
  const queue = new Queue(name, { connection: bullConnection, prefix: BULL_PREFIX });
  for (let start = 0; start < n; start += BATCH) {
    const jobs = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) jobs.push({ name: "bench", data: payload(i) });
    await queue.addBulk(jobs);
  }
  let completed = 0;
  const worker = new BullWorker(name, async () => {}, {
    connection: bullConnection, prefix: BULL_PREFIX, concurrency, autorun: false,
  });
  // 'completed' fires once Redis has moved the job to completed.
  worker.on("completed", () => {
    completed += 1;
  });
  worker.on("error", (err) => console.error(`bullmq worker: ${err}`));
  await worker.waitUntilReady();
  const sample = await measured(n, async () => {
    const running = worker.run();
    running.catch((err) => console.error(`bullmq run: ${err}`));
    await until(() => completed >= n, n, `bullmq worker c=${concurrency}`);
  });
  await worker.close();
  const counts = await queue.getJobCounts("completed", "wait", "active", "failed");
  expect(counts.completed, n, `${name} completed`);
  expect(counts.wait + counts.active + counts.failed, 0, `${name} jobs left over`);
  await queue.obliterate({ force: true });
  await queue.close();
  return sample;
};

/** BullMQ's Queue.add, one job per call (what a web request does): a tenth of n, as run.py's enqueue. */
async function bullmqAdd(/** @type {number} */ n) {
  const name = fresh("bulladd");
  const queue = new Queue(name, { connection: bullConnection, prefix: BULL_PREFIX });
  await queue.waitUntilReady();
  const sample = await measured(n, async () => {
    for (let i = 0; i < n; i++) await queue.add("bench", payload(i));
  });
  expect(await queue.getWaitingCount(), n, `${name} waiting`);
  await queue.obliterate({ force: true });
  await queue.close();
  return sample;
}

/** BullMQ's Queue.addBulk in batches of `batch`. */
const bullmqAddBulk = (/** @type {number} */ batch) => async (/** @type {number} */ n) => {
  const name = fresh(`bullbulk${batch}`);
  const queue = new Queue(name, { connection: bullConnection, prefix: BULL_PREFIX });
  await queue.waitUntilReady();
  const sample = await measured(n, async () => {
    for (let start = 0; start < n; start += batch) {
      const jobs = [];
      for (let i = start; i < Math.min(n, start + batch); i++) jobs.push({ name: "bench", data: payload(i) });
      await queue.addBulk(jobs);
    }
  });
  expect(await queue.getWaitingCount(), n, `${name} waiting`);
  await queue.obliterate({ force: true });
  await queue.close();
  return sample;
};

/** Delete whatever BullMQ left under our own prefix (obliterate leaves a key or two). */
async function cleanupBull() {
  const keys = [];
  for await (const batch of redis.scanIterator({ MATCH: `${BULL_PREFIX}:*`, COUNT: 1000 })) keys.push(...batch);
  for (let i = 0; i < keys.length; i += 1000) await redis.del(keys.slice(i, i + 1000));
}

// -- rounds ----------------------------------------------------------------------

/** name, label, case, share of --events it runs (one-per-call adds get a tenth, as in run.py). */
/** @type {[string, string, (n: number) => Promise<Awaited<ReturnType<typeof measured>>>, number][]} */
const CASES = [
  ["js_e2e_worker_c1", "JS Worker c=1 prefetch=100", homingWorker(1), 1],
  ["js_e2e_worker_c10", "JS Worker c=10 prefetch=100", homingWorker(10), 1],
  ["js_e2e_client_loop", "JS loop: dequeue 100 + completeMany", homingLoop, 1],
  ["js_e2e_leased_drain", "JS minimal leased design drain (floor)", leasedDrain, 1],
  ["js_enqueue_one", "JS Client.enqueue, one per call", homingEnqueueOne, 0.1],
  ["js_evalsha_floor", "JS floor: node-redis EVALSHA, trivial", evalshaFloor, 0.1],
  ["bullmq_add", "BullMQ Node Queue.add, one per call", bullmqAdd, 0.1],
  ["bullmq_addbulk_100", "BullMQ Node Queue.addBulk x100", bullmqAddBulk(100), 1],
  ["bullmq_addbulk_1000", "BullMQ Node Queue.addBulk x1000", bullmqAddBulk(1000), 1],
  ["bullmq_e2e_c1", "BullMQ Node Worker c=1 (no-op)", bullmqWorker(1), 1],
  ["bullmq_e2e_c10", "BullMQ Node Worker c=10 (no-op)", bullmqWorker(10), 1],
  ["bullmq_e2e_c50", "BullMQ Node Worker c=50 (no-op)", bullmqWorker(50), 1],
];

const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const selected = CASES.filter(([name]) => opts.only.length === 0 || opts.only.some((o) => name.includes(o)));
  if (selected.some(([name]) => name.startsWith("bullmq"))) ({ Queue, Worker: BullWorker } = await import("bullmq"));
  console.error(`bench/js: ${EVENTS} events x ${REPS} rounds, node ${process.version}, prefix ${PREFIX}`);
  const warm = Math.max(Math.floor(EVENTS / 10), 50);
  const size = (/** @type {number} */ share, /** @type {number} */ n) => Math.max(Math.floor(n * share), 10);
  for (const [, , fn, share] of selected) await fn(size(share, warm));
  /** @type {Record<string, Awaited<ReturnType<typeof measured>>[]>} */
  const samples = Object.fromEntries(selected.map(([name]) => [name, []]));
  for (let round = 1; round <= REPS; round++) {
    for (const [name, , fn, share] of selected) {
      const s = await fn(size(share, EVENTS));
      samples[name].push(s);
      console.error(`round ${round}/${REPS}  ${name.padEnd(20)} ${Math.round(s.rate).toLocaleString("en").padStart(9)} events/s`);
    }
  }
  for (const [name, label, , share] of selected) {
    const ss = samples[name];
    const perCall = ss.map((s) => s.redisUsPerCall).filter((x) => x !== null);
    console.log(JSON.stringify({
      name,
      label,
      events: size(share, EVENTS),
      rates: ss.map((s) => s.rate),
      redis_us_per_event: median(ss.map((s) => s.redisUsPerEvent)),
      redis_us_per_call: perCall.length ? median(/** @type {number[]} */ (perCall)) : null,
      redis_cpu_pct: median(ss.map((s) => s.redisCpuPct)),
      client_cpu_pct: median(ss.map((s) => s.clientCpuPct)),
    }));
  }
}

try {
  await main();
} finally {
  if (Queue !== undefined) await cleanupBull();
  await redis.del([manifest.globalKey(PREFIX, "services"), manifest.globalKey(PREFIX, "hints")]);
  await client.close();
}
