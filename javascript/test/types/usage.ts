// Compiled (never run) by test/types.test.js: the declarations must accept
// the README's usage and refuse obvious misuse (the @ts-expect-error lines).

import {
  Client,
  Consumer,
  type Call,
  type DeadPage,
  type Event,
  type Group,
  GroupFailedError,
  type GroupStatus,
  UnknownGroupError,
  type HandlerContext,
  EventDeadError,
  HomingError,
  Reject,
  Snooze,
  type SnoozeOutcome,
  NotReplicatedError,
  type NotReplicated,
  ResultTimeoutError,
  StaleLeaseError,
  Worker,
  durability,
  manifest,
  ops,
} from "homing";

interface Order {
  sku: string;
  qty: number;
}

export async function producer(): Promise<void> {
  const client = await Client.connect("redis://127.0.0.1:6379/0", { prefix: "shop" });
  const id: string = await client.enqueue("orders", { sku: "a", qty: 1 }, { key: "order-1" });
  const ids: string[] = await client.enqueueMany("orders", [1, 2, 3]);
  await client.createTimer("orders", "later", { delayMs: 5000 });
  await client.createTimer("orders", "at", { at: new Date() });
  await client.enqueue("orders", { urgent: true }, { priority: 9 });
  await client.enqueueMany("orders", [1, 2], { priority: [5, 0] });
  await client.enqueueMany("orders", [1, 2], { priority: 3 });
  await client.createTimer("orders", "soon", { delayMs: 10, priority: 7 });
  await client.recurringPut("orders", "hourly", "tick", { cron: "@hourly", priority: 4 });
  const level: number = (await client.recurringList("orders")).schedules[0].priority;
  await client.enqueueGroup("orders", [1, 2], { priority: level });
  await client.enqueueGroup("orders", [1, 2], { priority: [9, 0] });
  const cancelled: boolean = await client.cancelTimer("orders", ids[0]);
  try {
    const result = await client.result<{ ok: boolean }>("orders", id, { timeoutMs: 1000 });
    const ok: boolean = result.ok;
    void ok;
  } catch (err) {
    if (err instanceof ResultTimeoutError || err instanceof EventDeadError) {
      const code: string = err.code;
      void code;
    }
  }
  const policy = await client.configure("orders", { leaseMs: 10000, maxAttempts: null });
  const lease: number = policy.leaseMs;
  const [moved, remaining] = await client.deadRequeue("orders", { count: 10 });
  const page = await client.deadList("orders", { offset: 0, count: 10 });
  const reason: string = page.letters[0].reason;
  const step = await client.run(ops.promote("orders", 100));
  const more: boolean = step.more;
  // Any call of the table, by name: one with no method of its own too.
  const page2: DeadPage = await client.call("dead_list", "orders", { count: 5 });
  const built: Call = ops.call("deadList", "orders", { offset: 0 }, client.maxPayload);
  void [page2, built, ops.CALLS.dequeue.script];
  // @ts-expect-error a service name is a string
  await client.enqueue(42, {});
  // @ts-expect-error a priority is a level 0..9, a number
  await client.enqueue("orders", 1, { priority: "high" });
  // @ts-expect-error timers take options
  await client.createTimer("orders", 1, 5000);
  void [cancelled, lease, moved, remaining, reason, more];
  await client.close();
}

class Orders extends Consumer<{ seen: number }, Order> {
  init() {
    return { seen: 0 };
  }

  async handleEvent(event: Event<Order>, state: { seen: number }) {
    if (event.payload.qty < 0) throw new Reject("negative quantity");
    if (event.payload.qty === 0) return new Snooze(5000, { state });
    if (event.payload.sku === "") throw new Snooze(1000);
    const stored: number = await this.progress(event, 50);
    void stored;
    await this.complete(event.service, event.id, { shipped: event.payload.sku });
    return { seen: state.seen + 1 };
  }
}

export async function consumer(client: Client): Promise<void> {
  const [event] = await client.dequeue<Order>("orders", 10, { leaseMs: 5000 });
  const qty: number = event.payload.qty;
  const deadline: number = await client.extendLease("orders", event.id, event.token);
  const errors = await client.completeMany("orders", [[event.id, event.token, { qty }], { id: "x", token: 1 }]);
  for (const e of errors) if (e instanceof StaleLeaseError || e instanceof HomingError) void e.code;
  const out = await client.fail("orders", event.id, event.token, "why", { dead: true });
  const action: "retry" | "dead" = out.action;
  const snoozed: SnoozeOutcome = await client.snooze("orders", event.id, event.token, 5000);
  const when: number = snoozed.action === "snoozed" ? snoozed.atMs : -1;
  const pct: number = await client.progress("orders", event.id, event.token, 75);
  const st = await client.status("orders", event.id);
  const shown: number = st.snoozes + st.progress + st.priority;
  // @ts-expect-error a snooze's delay is a number of ms
  await client.snooze("orders", event.id, event.token, "soon");
  await client.complete("orders", event.id, 7n); // a token is an integer: a number or a bigint
  // @ts-expect-error never text (refused at run time too, as in Python and Erlang)
  await client.complete("orders", event.id, "7");
  void [when, pct, shown];
  const worker = new Worker(client, "orders", Orders, { concurrency: 4, prefetch: 50, graceMs: 5000 });
  const stats = await worker.run({ signals: ["SIGTERM"] });
  const completed: number = stats.completed;
  const other = new Worker(client, "orders", () => new Orders());
  await other.start();
  await other.releaseHeld({ timeoutMs: 1000 });
  await other.shutdown();
  void [deadline, action, completed];
}

export async function reserved(): Promise<void> {
  const client = await Client.connect("redis://127.0.0.1:6379/0", { requireDurable: true, logger: console });
  const reports = await client.checkDurability({ require: false });
  const durable: boolean = reports.every((r) => r.durable);
  const [event] = await client.dequeue<Order>("orders", 10, { reserve: true });
  if (event.mustStart) {
    const [attempt] = await client.start("orders", [[event.id, event.token]]);
    if (attempt instanceof HomingError) throw attempt;
    const n: number = attempt;
    void n;
  }
  const step = await client.promote("orders");
  const returned: number = step.returned;
  const at: number = await client.beat("scheduler:host:1");
  const policy = await client.configure("orders", { handlerTimeoutMs: 0 });
  const timeout: number = policy.handlerTimeoutMs;
  const nesting: number = manifest.MAX_NESTING;
  const line: string = durability.summary(reports);
  // @ts-expect-error start takes [id, token] items
  await client.start("orders", [event.id]);
  void [durable, returned, at, timeout, nesting, line];
}

class Careful extends Consumer<null, string> {
  async handleEvent(event: Event<string>, state: null, { signal }: HandlerContext) {
    await fetch(event.payload, { signal });
    return state;
  }
}

export async function timeouts(client: Client): Promise<void> {
  const worker = new Worker(client, "pages", Careful, { handlerTimeoutMs: 10_000 });
  const stats = await worker.run();
  const counts: number[] = [stats.timedOut, stats.expiredUnstarted];
  const limit: number | null = worker.handlerTimeoutMs;
  if (worker.hung) process.exit(3);
  // @ts-expect-error the timeout is a number of ms
  void new Worker(client, "pages", Careful, { handlerTimeoutMs: "10s" });
  void [counts, limit];
}

export async function failover(): Promise<void> {
  const client = await Client.connect("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0", {
    waitReplicas: 1,
    waitTimeoutMs: 500,
    commandTimeoutMs: 10_000,
  });
  const kind: "standalone" | "cluster" | "sentinel" = client.kind;
  const wait = client.wait;
  const readOnly: number = client.readOnlyForMs();
  try {
    await client.enqueue("orders", { sku: "A-1" }, { id: "order-1" });
  } catch (err) {
    if (err instanceof NotReplicatedError) {
      const { result, acked } = err as NotReplicated;
      void [result, acked];
    }
  }
  const seeded = await Client.connect("redis://10.0.0.1:7000,10.0.0.2:7000", { rootNodes: ["redis://10.0.0.3:7000"] });
  const worker = new Worker(seeded, "orders", Careful, { readonlyGiveUpMs: 30_000 });
  try {
    await worker.run();
  } catch (err) {
    if (worker.readOnly && worker.gaveUp === err) process.exit(2);
    throw err;
  }
  const unconfirmed: number = worker.stats.unreplicated;
  void [kind, wait, readOnly, unconfirmed];
}

// Group results: enqueueGroup, waitGroup, groupStatus, groupResult, groupForget.
export async function groups(client: Client): Promise<number> {
  const group: Group = await client.enqueueGroup("orders", [{ n: 1 }, { n: 2 }]);
  const ids: string[] = group.eventIds;
  const results: number[] = await client.waitGroup<number>("orders", group.id, { timeoutMs: 5000 });
  const st: GroupStatus = await client.groupStatus("orders", group.id);
  const done: boolean = st.finished && st.failed === "";
  const again: unknown[] | null = await client.groupResult("orders", group.id);
  // @ts-expect-error a group's payloads are an array
  await client.enqueueGroup("orders", { n: 1 });
  try {
    await client.waitGroup("orders", group.id);
  } catch (err) {
    if (err instanceof GroupFailedError || err instanceof UnknownGroupError) return -1;
  }
  return ids.length + results.length + (done ? 1 : 0) + (again?.length ?? 0) + (await client.groupForget("orders", group.id));
}
