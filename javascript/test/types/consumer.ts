// A new user's TypeScript, compiled (never run) by test/pack.test.js in a
// fresh project that has the packed tarball and TypeScript, and nothing else:
// no @types/node, `strict`, once with lib ES2022 alone (no DOM) and once with
// TypeScript's default libs. It uses every export of "homing" and every member
// of its namespaces (the test checks that it names them all), and no Node
// global, since such a project has none.

import {
  type AbortSignalLike,
  BY_CODE,
  Batch,
  type Call,
  Client,
  type ClientOptions,
  type CompleteItem,
  ConnectionLostError,
  type ConnectOptions,
  Consumer,
  CorruptEnvelopeError,
  CorruptStateError,
  DEFAULT_URL,
  DeadLetter,
  DeadPage,
  DistributeResult,
  DuplicateIdError,
  type DurabilityFinding,
  type ErrorCode,
  Event,
  EventDeadError,
  FailOutcome,
  Group,
  GroupFailedError,
  GroupStatus,
  GroupWait,
  type HandlerContext,
  type HandlerSignal,
  HomingError,
  InvalidArgumentError,
  InvalidNameError,
  type LeaseItem,
  Limits,
  type Logger,
  type NodeBuffer,
  type NodeDurability,
  NotDurableError,
  type NotReplicated,
  NotReplicatedError,
  type Payload,
  PayloadNotEncodableError,
  PayloadTooLargeError,
  PermissionDeniedError,
  type Policy,
  PromoteResult,
  ReadOnlyError,
  Recurring,
  RecurringPage,
  RedisFullError,
  Reject,
  ResultTimeoutError,
  ResultWait,
  SCHEMA,
  SchemaMismatchError,
  ScriptError,
  ServiceNotEmptyError,
  Snooze,
  type SnoozeOutcome,
  type SignalName,
  StaleLeaseError,
  Status,
  type Token,
  UnknownEventError,
  UnknownGroupError,
  VERSION,
  Worker,
  type WorkerBeatOptions,
  type WorkerOptions,
  WorkerStats,
  WrongTypeError,
  durability,
  envelope,
  errorFor,
  manifest,
  metrics,
  ops,
  tracing,
} from "homing";

interface Order {
  sku: string;
  qty: number;
}

const lines: string[] = [];
const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (...args: unknown[]) => void lines.push(args.join(" ")),
  error: (...args: unknown[]) => void lines.push(args.join(" ")),
};

export async function producer(): Promise<string[]> {
  const options: ConnectOptions = { prefix: "shop", cluster: null, rootNodes: [], onError: (err: Error) => void err };
  const plain: ClientOptions = { maxPayload: 1 << 20, requireDurable: false, logger, waitReplicas: 0 };
  const client = await Client.connect(DEFAULT_URL, { ...plain, ...options, commandTimeoutMs: 10_000 });
  const payload: Payload = { sku: "A-1", qty: 2, tags: ["x"], raw: new Uint8Array([1]), big: 1n };
  const id: string = await client.enqueue("orders", payload, { key: "order-1" });
  const ids: string[] = await client.enqueueMany("orders", [1, 2], { keys: ["a", null] });
  const timer = await client.createTimer("orders", "later", { delayMs: 5000 });
  const cancelled: boolean = await client.cancelTimer("orders", timer);
  const status: Status = await client.status("orders", id);
  const state: "done" | "dead" | "pending" | "unknown" = status.state;
  try {
    const result = await client.result<{ ok: boolean }>("orders", id, { timeoutMs: 1000 });
    const ok: boolean = result.ok;
    void ok;
  } catch (err) {
    if (err instanceof EventDeadError || err instanceof ResultTimeoutError || err instanceof UnknownEventError) {
      const code: string = err.code;
      void code;
    }
    if (err instanceof NotReplicatedError) {
      const { result, acked } = err as NotReplicated;
      void [result, acked];
    }
  }
  const wait = new ResultWait("orders", id, 1000);
  const [done, waitOrResult] = wait.check(status);
  const policy: Policy = await client.configure("orders", { leaseMs: 10_000, maxAttempts: null });
  const page: DeadPage = await client.deadList("orders", { offset: 0, count: 10 });
  const letter: DeadLetter | undefined = page.letters[0];
  const [requeued, left] = await client.deadRequeue("orders", { count: 10 });
  const [purged] = await client.deadPurge("orders", { ids: [id] });
  const services: string[] = await client.services();
  const counts: Record<string, number> = await client.stats("orders");
  const promoted: PromoteResult = await client.promote("orders", 100);
  const distributed: DistributeResult = await client.distribute("orders", 100);
  await client.register("orders");
  const beatAt: number = await client.beat("scheduler:host:1");
  const beat: WorkerBeatOptions = {
    name: "orders:h:1:ab", service: "orders", host: "h", pid: 1, concurrency: 1, held: 0, everyMs: 1000,
    stopped: false, ids: [], forgetMs: 3_600_000,
  };
  const pruned: number = await client.workerBeat(beat);
  await client.hintExpired("orders");
  const hinted: string[] = await client.takeHints(10);
  const reports: NodeDurability[] = await client.checkDurability({ require: false });
  const findings: readonly DurabilityFinding[] = reports[0]?.findings ?? [];
  const kind: "standalone" | "cluster" | "sentinel" = client.kind;
  const replicas = client.wait?.replicas ?? 0;
  const readOnly: number = client.readOnlyForMs();
  void [cancelled, state, done, waitOrResult, policy.handlerTimeoutMs, letter?.reason, requeued, left, purged];
  void [services, counts, promoted.returned, distributed.dead, beatAt, pruned, hinted, findings, kind, replicas, readOnly];
  void [SCHEMA, VERSION, client.prefix, client.maxPayload, client.registerEveryMs, client.commandTimeoutMs];
  // @ts-expect-error a service name is a string
  await client.enqueue(42, {});
  // @ts-expect-error timers take options, not a number
  await client.createTimer("orders", 1, 5000);
  await client[Symbol.asyncDispose]();
  await client.close();
  return ids;
}

export async function lowLevel(client: Client): Promise<void> {
  const events: Event<Order>[] = await client.dequeue<Order>("orders", 10, { leaseMs: 30_000, reserve: true });
  for (const ev of events) {
    const token: Token = ev.token;
    const lease: LeaseItem = [ev.id, token];
    if (ev.mustStart) {
      const [attempt] = await client.start("orders", [lease]);
      if (attempt instanceof HomingError) continue;
    }
    const deadline: number = await client.extendLease("orders", ev.id, token, 30_000);
    const extended: Array<number | HomingError> = await client.extendMany("orders", [{ id: ev.id, token }]);
    const item: CompleteItem = [ev.id, token, { qty: ev.payload.qty }];
    const errors: Array<HomingError | null> = await client.completeMany("orders", [item]);
    await client.complete("orders", ev.id, token, null);
    const out: FailOutcome = await client.fail("orders", ev.id, token, "why", { dead: false, delayMs: 10 });
    const later: SnoozeOutcome = await client.snooze("orders", ev.id, token, 10);
    const pct: number = await client.progress("orders", ev.id, token, 40);
    const released = await client.release("orders", [lease]);
    const raw: Uint8Array = ev.raw;
    void [deadline, extended, errors, out.action, out.atMs, later.action, pct, released, raw, ev.attempt, ev.deadlineMs, ev.service];
  }
  const batch: Batch<Order> = await client.dequeueBatch<Order>("orders", 10, { reserve: true });
  const waitMs: number = batch.waitMs;
  const lim: Limits = await client.setLimits("orders", { rateLimit: 10, rateWindowMs: 1000, concurrency: 2 });
  const now: Limits = await client.limits("orders");
  void [batch.events, waitMs, lim.rateLimit, lim.rateWindowMs, lim.concurrency, lim.paused, now.inFlight, now.ready,
    new Batch<Order>([], 0), new Limits(0, 1000, 0, false, 0, 0)];
  const made = new Event<Order>("orders", "id", 1, 1, 0, new Uint8Array(), false);
  const parts = [new FailOutcome("retry", 0), new DeadLetter("id", 0, 1, "r", new Uint8Array()),
    new DeadPage(0, []), new Status("unknown"), new PromoteResult(0, 0, 0, false, 0), new DistributeResult(0, 0, false)];
  void [made, parts];
}

class Shipper extends Consumer<{ shipped: number }, Order> {
  init() {
    return { shipped: 0 };
  }

  async handleEvent(event: Event<Order>, state: { shipped: number }, { signal }: HandlerContext) {
    if (event.payload.qty <= 0) throw new Reject("nothing to ship", { cause: event.id });
    if (event.payload.qty > 100) return new Snooze(1000, { state });
    const done: number = await this.progress(event, 50);
    const aborted: boolean = signal.aborted;
    signal.addEventListener("abort", () => void signal.reason, { once: true });
    signal.throwIfAborted();
    await this.complete(event.service, event.id, { shipped: event.payload.sku, aborted });
    return { shipped: state.shipped + 1 };
  }
}

export async function worker(client: Client): Promise<number> {
  const options: WorkerOptions = {
    concurrency: 8, prefetch: 100, leaseMs: null, graceMs: 30_000, pollMaxMs: 50, logger,
    handlerTimeoutMs: 60_000, requireDurable: false, readonlyGiveUpMs: 60_000,
  };
  const w = new Worker(client, "orders", Shipper, options);
  const signals: SignalName[] = ["SIGTERM", "SIGINT"];
  let stats: WorkerStats;
  try {
    stats = await w.run({ signals });
  } catch (err) {
    if (w.readOnly && w.gaveUp === err) return 2;
    throw err;
  }
  const counts: number[] = [stats.received, stats.completed, stats.failed, stats.released, stats.lost,
    stats.timedOut, stats.expiredUnstarted, stats.unreplicated, ...Object.values(stats.errors)];
  const other = new Worker(client, "orders", () => new Shipper());
  await other.start();
  other.stop();
  await other.stopped;
  await other.releaseHeld({ timeoutMs: 1000 });
  await other.shutdown();
  const settings = [w.service, w.concurrency, w.prefetch, w.leaseMs, w.graceMs, w.handlerTimeoutMs, w.readonlyGiveUpMs];
  // @ts-expect-error the handler timeout is a number of ms
  void new Worker(client, "orders", Shipper, { handlerTimeoutMs: "10s" });
  void [counts, settings, new WorkerStats()];
  const interrupted: SignalName | null = w.interrupted;
  return interrupted ? 130 : w.hung ? 3 : 0;
}

/** Whatever the project's AbortSignal is (the DOM's here, or the stand-in), a handler gets one. */
export function signals(signal: HandlerSignal, like: AbortSignalLike): boolean {
  return signal.aborted || like.aborted;
}

export function errors(code: ErrorCode): HomingError[] {
  const classes = [InvalidNameError, InvalidArgumentError, PayloadTooLargeError, PayloadNotEncodableError,
    CorruptEnvelopeError, CorruptStateError, WrongTypeError, SchemaMismatchError, DuplicateIdError,
    UnknownEventError, StaleLeaseError, EventDeadError, ResultTimeoutError, RedisFullError, NotDurableError,
    PermissionDeniedError, ReadOnlyError, NotReplicatedError, ConnectionLostError, ScriptError,
    ServiceNotEmptyError, UnknownGroupError, GroupFailedError];
  const made = classes.map((C) => new C("message", { cause: C.code }));
  const byCode: typeof HomingError = BY_CODE[code];
  return [...made, errorFor(code, "message"), new byCode("message")];
}

export function lowerLevel(): unknown[] {
  const bytes: NodeBuffer = envelope.encode({ a: 1 });
  const view: Uint8Array = bytes;
  const back: unknown = envelope.decode(view);
  const script: manifest.Script | undefined = manifest.SCRIPTS["enqueue"];
  const call: Call<string> = ops.createTimer("orders", 1, manifest.DEFAULT_MAX_PAYLOAD, { delayMs: 10 });
  const args: Array<string | Uint8Array> = call.args;
  const report: NodeDurability = {
    node: "h:1", settings: {}, configRefused: null, durable: true,
    findings: durability.assess({ appendonly: "yes" }),
  };
  const made = new durability.NodeDurability("h:2", {}, null, [new durability.Finding("save", "", "why", false)]);
  const durable: boolean = made.durable;
  durability.warnOnce([report, made], logger);
  durability.forget();
  durability.requireDurable([report]);
  return [
    envelope.VERSION, back, script?.sha1, args, call.parse,
    manifest.MANIFEST, manifest.LAYOUT, manifest.SCHEMA, manifest.DEFAULT_PREFIX, manifest.POLICY_DEFAULTS,
    manifest.POLICY, manifest.GLOBAL_KEYS, manifest.STATUS_NAMES, manifest.LIMITS, manifest.MAX_BATCH,
    manifest.MAX_NESTING, manifest.STATUSES, manifest.MAX_REASON, manifest.ERROR_REPLY_RE.exec("HOMING X y"),
    manifest.checkService("orders"), manifest.checkId("id"), manifest.checkPrefix("p"),
    manifest.serviceKey("p", "orders", "ready"), manifest.globalKey("p", "services"),
    ops.MAX_BATCH, ops.POLICY_FIELDS, ops.newId(), ops.enqueueMany("orders", [1], 1024, null, null),
    ops.cancelTimer("orders", "t"), ops.dequeue("orders", 1, null, true), ops.startMany("orders", [["i", 1]]),
    ops.completeMany("orders", [["i", 1, null]], 1024), ops.extendMany("orders", [["i", 1]], null),
    ops.fail("orders", "i", 1, "why", false, null), ops.releaseMany("orders", [["i", 1]]),
    ops.snooze("orders", "i", 1, 10), ops.progress("orders", "i", 1, 5),
    ops.status("orders", "i"), ops.stats("orders"), ops.configure("orders", { lease_ms: 1000 }),
    ops.deadList("orders", 0, 10), ops.deadRequeue("orders", null, 10), ops.deadPurge("orders", ["i"], 0),
    ops.promote("orders", 10), ops.distribute("orders", 10), ops.beat("d:h:1"),
    durability.SETTINGS, durability.read(null), durability.summary([report]), durable,
  ];
}

export async function observability(client: Client, w: Worker, ev: Event): Promise<unknown[]> {
  const page: RecurringPage = await client.recurringList("orders", { offset: 0, count: 10 });
  const first: Recurring | undefined = page.schedules[0];
  const made = new RecurringPage(1, [new Recurring("daily", "every 1000 1", 0, 0, 0)]);
  const carrier: envelope.TraceCarrier | null = envelope.traceOf(envelope.encode(1, { traceparent: "00-x-y-01" }));
  envelope.outgoingTrace.current = carrier;
  const histogram = metrics.handlerHistogram(w);
  const own = new metrics.DurationHistogram(metrics.HANDLER_BUCKETS);
  own.observe("ok", 0.01);
  const instrument: tracing.Instrument = own.instrument();
  w.instruments.push(instrument, ...tracing.defaultInstruments());
  const snapshot: metrics.WorkerSnapshot = await w.metrics();
  const again: metrics.WorkerSnapshot = await metrics.workerSnapshot(w);
  const data: metrics.HistogramData | undefined = histogram.byOutcome["ok"];
  const ran: number = await tracing.observe(w.instruments, ev, async () => 1);
  const sent: string = await tracing.producing("orders", "enqueue", 1, true, async () => "id");
  const handled: number = await tracing.handling(ev, async () => 2);
  const call: Call = ops.call("enqueue", "orders", { payload: 1 });
  return [first?.spec, made.total, snapshot.gauges, again.totals, data?.count, ran, sent, handled, call,
    metrics.GAUGES, metrics.COUNTERS, metrics.registerPrometheus({}, w), tracing.ENABLED, ops.CALLS, ops.RECORDS];
}

/** Group results: enqueue many, wait for every result or the first failure. */
export async function groups(client: Client): Promise<unknown[]> {
  const group: Group = await client.enqueueGroup("orders", [1, 2], { ids: ["a", "b"] });
  const st: GroupStatus = await client.groupStatus("orders", group.id);
  const made = [new Group("g1", ["a"]), new GroupStatus(1, 1, "", 5)];
  const [done, pause] = new GroupWait("orders", group.id, 1000).check({ finished: false, items: [] });
  const now: unknown[] | null = await client.groupResult("orders", group.id);
  try {
    return await client.waitGroup("orders", group.id, { timeoutMs: 1000 });
  } catch (err) {
    if (err instanceof GroupFailedError || err instanceof UnknownGroupError) {
      return [err.code, st.finished, made, done, pause, now, await client.groupForget("orders", group.id)];
    }
    throw err;
  }
}
