// Type declarations of homing's public API (hand-written; test/types checks
// them against the JavaScript with the TypeScript compiler).
//
// They need nothing but TypeScript's own libs (ES2022 or later): no
// @types/node, so that a project that has not installed it (a browser-only
// type setup, or a fresh `tsc --strict` project) compiles against them. Where
// Node has a richer type (Buffer, AbortSignal) the declarations use it when the
// project has it, and a plain stand-in otherwise (NodeBuffer, HandlerSignal
// below). test/pack.test.js compiles a consumer of every export that way.

// Client's [Symbol.asyncDispose] (for `await using`): a TypeScript lib, so that
// a project whose `lib` stops at ES2022 knows the symbol too.
/// <reference lib="esnext.disposable" />

import type { HomingError, NotReplicatedError, ReadOnlyError } from "./errors.js";

export * from "./errors.js";

/**
 * Node's Buffer where the project has Node's types (@types/node), else the
 * Uint8Array it extends: what the client hands out for bytes read from or
 * written to Redis.
 */
export type NodeBuffer = typeof globalThis extends { Buffer: { prototype: infer B } } ? B : Uint8Array;

/** What aborting a handler needs of its signal, for a project with neither Node's nor the DOM's types. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: any;
  throwIfAborted(): void;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/**
 * The AbortSignal of the project's types (Node's or the DOM's, so that it can be
 * passed to fetch and timers), else AbortSignalLike.
 */
export type HandlerSignal = typeof globalThis extends { AbortSignal: { prototype: infer S } } ? S : AbortSignalLike;

/** The signal names Node knows (NodeJS.Signals), for Worker.run's `signals`. */
export type SignalName =
  | "SIGABRT" | "SIGALRM" | "SIGBUS" | "SIGCHLD" | "SIGCONT" | "SIGFPE" | "SIGHUP" | "SIGILL"
  | "SIGINT" | "SIGIO" | "SIGIOT" | "SIGKILL" | "SIGPIPE" | "SIGPOLL" | "SIGPROF" | "SIGPWR"
  | "SIGQUIT" | "SIGSEGV" | "SIGSTKFLT" | "SIGSTOP" | "SIGSYS" | "SIGTERM" | "SIGTRAP" | "SIGTSTP"
  | "SIGTTIN" | "SIGTTOU" | "SIGUNUSED" | "SIGURG" | "SIGUSR1" | "SIGUSR2" | "SIGVTALRM"
  | "SIGWINCH" | "SIGXCPU" | "SIGXFSZ" | "SIGBREAK" | "SIGLOST" | "SIGINFO";

/** The key layout schema version this client speaks. */
export const SCHEMA: number;
export const VERSION: string;
/** redis://127.0.0.1:6379/0 */
export const DEFAULT_URL: string;

/** What a payload may be: what round-trips through the msgpack envelope. */
export type Payload =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Payload[]
  | { [key: string]: Payload };

/** A leased event, as handed to a consumer. */
export class Event<P = any> {
  constructor(
    service: string,
    id: string,
    token: number,
    attempt: number,
    deadlineMs: number,
    raw: Uint8Array,
    mustStart?: boolean,
  );
  readonly service: string;
  readonly id: string;
  /** The lease's fencing token: complete, extendLease, fail and release present it. */
  readonly token: number;
  /** Deliveries so far, starting at 1 (a reserved event: the attempt it becomes once started). */
  readonly attempt: number;
  /**
   * A reserved event (dequeue with reserve) that came back unstarted before:
   * call start before running it.
   */
  readonly mustStart: boolean;
  /** When the lease ends (ms, Redis clock) unless extended. */
  readonly deadlineMs: number;
  /** The envelope's bytes. */
  readonly raw: Uint8Array;
  /** The decoded payload; throws CorruptEnvelopeError if the stored bytes are not one. */
  get payload(): P;
}

/**
 * What one dequeueBatch handed out; waitMs is 0, or how long to wait before
 * asking again because the service's limits or its pause held ready events back.
 */
export class Batch<P = any> {
  constructor(events: Event<P>[], waitMs: number);
  readonly events: Event<P>[];
  readonly waitMs: number;
}

/** A service's limits across all its workers (0: none), its pause and its leases out now. */
export class Limits {
  constructor(rateLimit: number, rateWindowMs: number, concurrency: number, paused: boolean,
    inFlight: number, ready: number);
  readonly rateLimit: number;
  readonly rateWindowMs: number;
  readonly concurrency: number;
  readonly paused: boolean;
  readonly inFlight: number;
  readonly ready: number;
}

/** Where a failed event went. */
export class FailOutcome {
  constructor(action: "retry" | "dead", atMs: number);
  readonly action: "retry" | "dead";
  readonly atMs: number;
}

/**
 * Where a snoozed event went: "snoozed", due again at atMs, or "dead" since
 * atMs (it had used up the service's max_snoozes). At run time a FailOutcome
 * (the call table's record of both replies).
 */
export interface SnoozeOutcome {
  readonly action: "snoozed" | "dead";
  readonly atMs: number;
}

/** A group of events enqueued together (enqueueGroup): its id and its members' ids. */
export class Group {
  constructor(id: string, eventIds: string[]);
  readonly id: string;
  readonly eventIds: string[];
}

/**
 * Where a group stands: done of total members completed; failed the first
 * member dead-lettered or cancelled ("" if none); finishedMs when every member
 * completed or the first failed (0 while it runs).
 */
export class GroupStatus {
  constructor(total: number, done: number, failed: string, finishedMs: number);
  readonly total: number;
  readonly done: number;
  readonly failed: string;
  readonly finishedMs: number;
  get finished(): boolean;
}

/** A dead-lettered event with why it died. `raw` is empty if the payload was lost. */
export class DeadLetter {
  constructor(id: string, diedMs: number, attempt: number, reason: string, raw: Uint8Array);
  readonly id: string;
  readonly diedMs: number;
  readonly attempt: number;
  readonly reason: string;
  readonly raw: Uint8Array;
  get payload(): any;
}

/** One page of a service's dead letters and how many there are in all. */
export class DeadPage {
  constructor(total: number, letters: DeadLetter[]);
  readonly total: number;
  readonly letters: DeadLetter[];
}

/** Where an event stands. */
export class Status {
  constructor(
    state: "done" | "dead" | "pending" | "unknown",
    detail?: string,
    attempt?: number,
    rawResult?: Uint8Array,
    snoozes?: number,
    progress?: number,
    priority?: number,
  );
  readonly state: "done" | "dead" | "pending" | "unknown";
  /** pending: ready, reserved, leased, timer, waiting or expired; dead: the reason. */
  readonly detail: string;
  /** Charged attempts (a reserved event's is not charged yet). */
  readonly attempt: number;
  readonly rawResult: Uint8Array;
  /** pending: the snoozes it took (bounded by the service's max_snoozes). */
  readonly snoozes: number;
  /** pending: the last percentage its handler reported (0..100; 0 if none). */
  readonly progress: number;
  /** pending: its priority level (0..9; 0 the default). */
  readonly priority: number;
  /** The consumer's result of a done event (null if it gave none). */
  get result(): any;
}

/** What one scheduler step did for a service. */
export class PromoteResult {
  constructor(timers: number, retries: number, expired: number, more: boolean, nextDueMs: number, returned?: number);
  readonly timers: number;
  readonly retries: number;
  /** Leases reclaimed, reserved ones included. */
  readonly expired: number;
  readonly more: boolean;
  readonly nextDueMs: number;
  /** Reserved leases put back in the ready queue uncharged. */
  readonly returned: number;
}

/** What one distributor step did for a service. */
export class DistributeResult {
  constructor(retried: number, dead: number, more: boolean);
  readonly retried: number;
  readonly dead: number;
  readonly more: boolean;
}

/** A recurring timer (Client.recurringList). Each tick fires the event `<name>.<tickMs>`. */
export class Recurring {
  constructor(name: string, spec: string, nextMs: number, fired: number, skipped: number, priority?: number);
  readonly name: string;
  /** "every <ms> <catchUp 1|0>" or "cron <catchUp> <expression>". */
  readonly spec: string;
  readonly nextMs: number;
  readonly fired: number;
  readonly skipped: number;
  /** The level each occurrence fires into (0..9; 0 the default). */
  readonly priority: number;
}

/** One page of a service's recurring timers, by name. */
export class RecurringPage {
  constructor(total: number, schedules: Recurring[]);
  readonly total: number;
  readonly schedules: Recurring[];
}

/** A lease token: an integer, a safe-integer number (as dequeue returns it) or a bigint; text ("5") is refused. */
export type Token = number | bigint;
export type CompleteItem =
  | readonly [id: string, token: Token, result?: unknown]
  | { readonly id: string; readonly token: Token; readonly result?: unknown };
export type LeaseItem =
  | readonly [id: string, token: Token]
  | { readonly id: string; readonly token: Token };

/** The policy fields a service may override (lua/keys.json policy_defaults). */
export interface Policy {
  leaseMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  backoffJitter: number;
  resultTtlMs: number;
  /** How long a completion without a result is still answered as done (0, the default: not kept). */
  doneTtlMs: number;
  idemTtlMs: number;
  /** A worker fails an event whose handler runs longer (0: no limit). */
  handlerTimeoutMs: number;
  /** Snoozes an event may take before a further one dead-letters it (default 100). */
  maxSnoozes: number;
  /** 1 while the service is paused (pause / resume). */
  paused: number;
  /** Most events handed out per rateWindowMs across every worker (0: no limit). */
  rateLimit: number;
  /** The rate limit's sliding window in ms (default 1000). */
  rateWindowMs: number;
  /** Most leases out at once across every worker, reserved prefetch included (0: no limit). */
  concurrency: number;
}

export interface ClientOptions {
  /** Namespaces every key (default "homing"). */
  prefix?: string;
  /** Largest encoded envelope accepted, in bytes (default 1 MiB). */
  maxPayload?: number;
  /**
   * Refuse (NotDurableError) a server that may lose acknowledged events: an
   * eviction policy, no AOF, or settings it will not show (default false).
   */
  requireDurable?: boolean;
  /** Hears the durability warnings and dropped connections (default: console.warn). */
  logger?: Pick<Logger, "warn"> & Partial<Pick<Logger, "info">>;
  /**
   * After each write a producer or an acknowledgement makes (enqueue, schedule,
   * complete, fail, configure, deadRequeue, deadPurge, cancel), `WAIT waitReplicas
   * waitTimeoutMs` on the same connection (the node of the key on a Cluster), and
   * NotReplicatedError when fewer replicas confirmed it (default 0: off).
   */
  waitReplicas?: number;
  /** 1..86400000, below commandTimeoutMs (default 1000). */
  waitTimeoutMs?: number;
  /**
   * How long a call (and each step of connecting) waits for Redis before the
   * connection is taken for dead: ConnectionLostError, the connection is dropped
   * and made again before the next call; the call is never sent again by itself
   * (it may have run). Default 10000.
   */
  commandTimeoutMs?: number;
}

/**
 * A NotReplicatedError as the Client throws it: the write happened on the
 * primary (what the call returns is in `result`), but only `acked` replicas
 * confirmed it within waitTimeoutMs.
 */
export interface NotReplicated extends NotReplicatedError {
  readonly result: unknown;
  readonly acked: number;
}

/** One durability setting that may lose acknowledged events. */
export interface DurabilityFinding {
  readonly setting: string;
  /** null: it could not be read. */
  readonly value: string | null;
  readonly consequence: string;
  /** requireDurable refuses it. */
  readonly fatal: boolean;
  text(): string;
}

/** What one server (standalone, or a Cluster master) keeps of its writes. */
export interface NodeDurability {
  /** host:port */
  readonly node: string;
  /** maxmemory-policy, appendonly, appendfsync, save; null where it could not be read. */
  readonly settings: Readonly<Record<string, string | null>>;
  /** Redis's reply when CONFIG GET was refused. */
  readonly configRefused: string | null;
  readonly findings: readonly DurabilityFinding[];
  /** No eviction policy and the AOF on. */
  readonly durable: boolean;
}

export interface ConnectOptions extends ClientOptions {
  /** true / false to skip the INFO cluster probe. */
  cluster?: boolean | null;
  /**
   * More options for node-redis createClient / createCluster (the nodes' options) /
   * createSentinel (the data nodes' options; `sentinelOptions` for the sentinels'
   * own connections). homing's defaults (socket.connectTimeout 5000,
   * socket.keepAlive true, socket.keepAliveInitialDelay 5000, pingInterval 5000)
   * apply where these say nothing.
   */
  redisOptions?: Record<string, any>;
  /** Hears the connection errors node-redis reports while it reconnects. */
  onError?: (err: Error) => void;
  /** More Cluster seed URLs, tried after the URL's own hosts (redis://h1:p1,h2:p2/0). */
  rootNodes?: string[];
}

/** One script invocation (see ops). */
export interface Call<T = any> {
  script: string;
  service: string;
  args: Array<string | Uint8Array>;
  parse: (reply: any) => T;
}

/** A connection to homing on one Redis (standalone, Cluster or through Sentinel). */
export class Client {
  constructor(redisClient: any, options?: ClientOptions);
  /**
   * Connect; a Redis Cluster is detected unless `cluster` says. `url` is
   * redis:// or rediss://, several Cluster seeds (redis://h1:p1,h2:p2/0), or
   * redis+sentinel://[user:password@]h:p[,h:p...]/<master>[/db][?sentinel_password=...]
   * (rediss+sentinel:// for TLS). The server's durability settings are read and
   * warned about once per process and server; with requireDurable,
   * NotDurableError for one that may lose acknowledged events.
   */
  static connect(url?: string, options?: ConnectOptions): Promise<Client>;
  /**
   * The node-redis client in use (as given to the constructor, or made by
   * connect); replaced when connect's client drops a dead or demoted connection.
   */
  readonly connection: any;
  /** "standalone", "cluster" or "sentinel". */
  readonly kind: "standalone" | "cluster" | "sentinel";
  /** How long (ms) a call waits for its reply before the connection is taken for dead. */
  readonly commandTimeoutMs: number;
  /** The WAIT after each write; null: none. */
  readonly wait: { readonly replicas: number; readonly timeoutMs: number } | null;
  /** Milliseconds during which every write was answered READONLY (0: none). */
  readOnlyForMs(): number;
  /** The same connection, replying with Buffers. */
  readonly redis: any;
  readonly prefix: string;
  readonly maxPayload: number;
  /** How often (ms) a producer checks that a service is in the registry (default 10000). */
  registerEveryMs: number;
  readonly requireDurable: boolean;
  readonly logger: Pick<Logger, "warn">;
  /**
   * The server's durability settings (each master on a Cluster), read once per
   * client; with require (default: requireDurable) NotDurableError unless
   * every server keeps what it acknowledges.
   */
  checkDurability(options?: { require?: boolean | null }): Promise<NodeDurability[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Execute one operation: EVALSHA, once more with EVAL on NOSCRIPT. */
  run<T>(call: Call<T>): Promise<T>;
  /**
   * Any call of the manifest's call table by name ("dead_list" or "deadList"),
   * its arguments by the table's names or their camelCase; what the table's
   * reply gives (Event, Status... where it names a value type). A new script
   * with its header is callable so with no code of its own.
   */
  call(name: string, service: string, args?: Record<string, unknown>): Promise<any>;

  /** priority: 0..9, higher levels delivered first, FIFO within a level (0, the default, the lowest). */
  enqueue(
    service: string,
    payload: unknown,
    options?: { key?: string | null; id?: string; priority?: number },
  ): Promise<string>;
  enqueueMany(
    service: string,
    payloads: Iterable<unknown>,
    options?: {
      keys?: ReadonlyArray<string | null | undefined> | null;
      ids?: ReadonlyArray<string> | null;
      /** One level (0..9) for all, or one per payload. */
      priority?: number | ReadonlyArray<number> | null;
    },
  ): Promise<string[]>;
  createTimer(
    service: string,
    payload: unknown,
    options: { delayMs?: number; at?: Date | number; key?: string | null; id?: string; priority?: number },
  ): Promise<string>;
  cancelTimer(service: string, timerId: string): Promise<boolean>;
  status(service: string, eventId: string): Promise<Status>;
  /** Wait for the consumer's result; EventDeadError, ResultTimeoutError, UnknownEventError. */
  result<R = any>(service: string, eventId: string, options?: { timeoutMs?: number | null }): Promise<R>;

  /**
   * Add up to 1000 events as one group in one atomic call (every id new):
   * its results are waited for, and removed, together.
   */
  enqueueGroup(
    service: string,
    payloads: ReadonlyArray<unknown>,
    /** priority: one level (0..9) for every member, or one per payload. */
    options?: { ids?: string[] | null; priority?: number | ReadonlyArray<number> | null },
  ): Promise<Group>;
  /** Where a group stands now; UnknownGroupError once it is gone. */
  groupStatus(service: string, group: string): Promise<GroupStatus>;
  /** The members' results in order, or null while it runs; GroupFailedError once a member failed. */
  groupResult<R = any>(service: string, group: string): Promise<R[] | null>;
  /**
   * Wait for every member's result, in order; GroupFailedError at the first
   * member dead-lettered or cancelled, ResultTimeoutError, UnknownGroupError.
   */
  waitGroup<R = any>(service: string, group: string, options?: { timeoutMs?: number | null }): Promise<R[]>;
  /** Remove a group and its members' results now; how many results went. */
  groupForget(service: string, group: string): Promise<number>;

  /**
   * Lease up to count ready events. With reserve the attempt is charged only
   * once started (start, or fail); honour Event.mustStart.
   */
  dequeue<P = any>(
    service: string,
    count?: number,
    options?: { leaseMs?: number | null; reserve?: boolean },
  ): Promise<Event<P>[]>;
  /**
   * As dequeue, with waitMs: above 0 when the service's rateLimit, concurrency
   * or pause held ready events back; sleep that long before asking again.
   */
  dequeueBatch<P = any>(
    service: string,
    count?: number,
    options?: { leaseMs?: number | null; reserve?: boolean },
  ): Promise<Batch<P>>;
  /** Mark reserved events started; per item the attempt now charged, or its error. */
  start(service: string, items: ReadonlyArray<LeaseItem>): Promise<Array<number | HomingError>>;
  complete(service: string, eventId: string, token: Token, result?: unknown): Promise<void>;
  completeMany(service: string, items: ReadonlyArray<CompleteItem>): Promise<Array<HomingError | null>>;
  extendLease(service: string, eventId: string, token: Token, leaseMs?: number | null): Promise<number>;
  extendMany(
    service: string,
    items: ReadonlyArray<LeaseItem>,
    leaseMs?: number | null,
  ): Promise<Array<number | HomingError>>;
  fail(
    service: string,
    eventId: string,
    token: Token,
    reason?: string,
    options?: { dead?: boolean; delayMs?: number | null },
  ): Promise<FailOutcome>;
  /**
   * Ask for a leased event again in delayMs ms, not charged as an attempt:
   * "snoozed" (at its due time) or, past the service's max_snoozes,
   * "dead". StaleLeaseError if the lease was lost.
   */
  snooze(service: string, eventId: string, token: Token, delayMs: number): Promise<SnoozeOutcome>;
  /** Record a leased event's progress, a whole percentage 0..100 (fenced by the token). */
  progress(service: string, eventId: string, token: Token, value: number): Promise<number>;
  release(service: string, items: ReadonlyArray<LeaseItem>): Promise<Array<HomingError | null>>;

  services(): Promise<string[]>;
  stats(service: string): Promise<Record<string, number>>;
  configure(service: string, policy: Partial<Record<keyof Policy, number | null>>): Promise<Policy>;
  deadList(service: string, options?: { offset?: number; count?: number }): Promise<DeadPage>;
  deadRequeue(service: string, options?: { ids?: ReadonlyArray<string> | null; count?: number }): Promise<[number, number]>;
  deadPurge(service: string, options?: { ids?: ReadonlyArray<string> | null; count?: number }): Promise<[number, number]>;
  /** Cancel a queued event (ready, waiting, timer): [true, state it left] or [false, why not]. */
  cancel(service: string, eventId: string): Promise<[boolean, string]>;
  /** The service's limits across every worker (0: none), its pause and its leases out now. */
  limits(service: string): Promise<Limits>;
  /** Set the limits given (0 lifts one, one left out stays); returns them. */
  setLimits(service: string, limits: { rateLimit?: number; rateWindowMs?: number; concurrency?: number }): Promise<Limits>;
  /** Pause a service: dequeue hands out nothing until resume; producers, timers and leases go on. */
  pause(service: string): Promise<void>;
  resume(service: string): Promise<void>;
  /**
   * A recurring timer by name: every everyMs or by a cron expression (UTC); returns the next tick.
   * Each occurrence fires into the priority level (0..9, as for enqueue).
   */
  recurringPut(service: string, name: string, payload: unknown,
    options?: { everyMs?: number | null; cron?: string | null; catchUp?: boolean; priority?: number }): Promise<number>;
  recurringRemove(service: string, name: string): Promise<boolean>;
  recurringList(service: string, options?: { offset?: number; count?: number }): Promise<RecurringPage>;
  promote(service: string, limit?: number): Promise<PromoteResult>;
  distribute(service: string, limit?: number): Promise<DistributeResult>;
  /**
   * Add service to the registry the daemons sweep (idempotent; workers call it with
   * each heartbeat). On a full Redis, fine if it already is a member, else RedisFullError.
   */
  register(service: string): Promise<void>;
  /**
   * Lower service's entry in the due-time index to `at` (ms, Redis clock; 0: look now)
   * and wake the schedulers if that lowered it. The client does it by itself after a
   * timer, a retry or a dequeue; a hint only: never rejects.
   */
  hintDue(service: string, at: number): Promise<void>;
  /** Record that daemon name (1..256 bytes) is alive, by the Redis clock; the beat's time (ms). */
  beat(name: string): Promise<number>;
  /** Record a worker's beat for the dashboard; how many silent workers' fields it pruned. */
  workerBeat(options: WorkerBeatOptions): Promise<number>;
  hintExpired(service: string): Promise<void>;
  takeHints(count?: number): Promise<string[]>;
}

/** The producer's wait for feedback, without I/O (Client.result runs it). */
export class ResultWait {
  constructor(service: string, eventId: string, timeoutMs: number | null);
  readonly service: string;
  readonly eventId: string;
  readonly timeoutMs: number | null;
  /**
   * [true, result] once done; [false, ms to sleep] while pending. Throws
   * EventDeadError, UnknownEventError or ResultTimeoutError.
   */
  check(status: Status): [boolean, unknown];
}

/** The wait for a group's results, without I/O (waitGroup's). */
export class GroupWait {
  constructor(service: string, group: string, timeoutMs: number | null);
  readonly service: string;
  readonly group: string;
  readonly timeoutMs: number | null;
  /** [true, results] once finished; [false, ms to sleep] while it runs; ResultTimeoutError. */
  check(reply: unknown): [boolean, unknown];
}

/** Throw from handleEvent to dead-letter the event at once (no retry). */
export class Reject extends Error {
  constructor(message?: string, options?: ErrorOptions);
}

/**
 * Return or throw from handleEvent to have the event delivered again after
 * delayMs (whole ms, at most 12 h) without the delivery counting as an
 * attempt. A returned Snooze may carry the slot's next state; without one
 * the state is kept. Past the service's max_snoozes the event is
 * dead-lettered instead.
 */
export class Snooze<S = any> extends Error {
  constructor(delayMs: number, options?: { state?: S });
  readonly delayMs: number;
  readonly hasState: boolean;
  readonly state: S | undefined;
}

/** What the worker passes with each event, as handleEvent's third argument. */
export interface HandlerContext {
  /**
   * Aborted when the handler runs past the handler timeout; its reason is an
   * Error named "HandlerTimeoutError" whose message is the fail reason
   * ("handler timed out after N ms").
   */
  readonly signal: HandlerSignal;
}

/** Base class of consumers; override init and handleEvent. */
export class Consumer<S = any, P = any> {
  /** The initial state (called once per concurrent slot). */
  init(): S | Promise<S>;
  /**
   * Handle one event and return the new state. `context.signal` is aborted
   * when the handler runs past the handler timeout (the event is failed by
   * then): pass it on so the handler stops and frees its slot.
   */
  handleEvent(event: Event<P>, state: S, context: HandlerContext): S | Snooze<S> | Promise<S | Snooze<S>>;
  /** Acknowledge an event this consumer holds, optionally with a result. */
  complete(service: string, eventId: string, result?: unknown): Promise<void>;
  /** Record how far the handler got with an event it holds: a whole percentage 0..100. */
  progress(event: Event<P>, value: number): Promise<number>;
}

export interface Logger {
  debug(...args: any[]): void;
  info(...args: any[]): void;
  warn(...args: any[]): void;
  error(...args: any[]): void;
}

export interface WorkerOptions {
  /** Concurrent slots, each with its own consumer and state (default 1). */
  concurrency?: number;
  /** Events leased ahead of free slots, 1..1000 (default 100). */
  prefetch?: number;
  /** Lease length; null: the service's lease_ms. */
  leaseMs?: number | null;
  /** How long shutdown lets running handlers finish (default 30000). */
  graceMs?: number;
  /** Longest pause between polls of an empty queue (default 50). */
  pollMaxMs?: number;
  /** Default: warnings and errors to the console. */
  logger?: Logger;
  /** How long a handler may run, 0..86400000 (0: no limit); null: the service's handler_timeout_ms. */
  handlerTimeoutMs?: number | null;
  /** start() refuses (NotDurableError) a Redis that may lose acknowledged events (default: the client's). */
  requireDurable?: boolean;
  /**
   * Stop once every write was answered READONLY for this long (default 60000):
   * then `readOnly` is true and run() rejects with `gaveUp`, a ReadOnlyError.
   */
  readonlyGiveUpMs?: number;
}

/** Counts since the worker started. */
export class WorkerStats {
  received: number;
  completed: number;
  failed: number;
  released: number;
  lost: number;
  /** Handlers failed by the handler timeout. */
  /** Events whose handlers snoozed them (returned or threw a Snooze). */
  snoozed: number;
  timedOut: number;
  /** Events not started because their lease had run out while they waited (by the worker's clock). */
  expiredUnstarted: number;
  /** Outcomes (acknowledgements, fails) taken as done though fewer replicas than waitReplicas confirmed them. */
  unreplicated: number;
  /** Empty dequeues after which the worker slept the wait the service's limits or pause asked for. */
  limited: number;
  /** Refusals by error code. */
  errors: Record<string, number>;
}

/** Runs consumer instances against one service until stop(). */
export class Worker {
  constructor(
    client: Client,
    service: string,
    consumerFactory: (new () => Consumer) | (() => Consumer),
    options?: WorkerOptions,
  );
  readonly client: Client;
  readonly service: string;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly leaseMs: number | null;
  readonly graceMs: number;
  /** The worker's own handler timeout; null: the service's handler_timeout_ms. */
  readonly handlerTimeoutMs: number | null;
  readonly stats: WorkerStats;
  /** Wrappers around each handler run (traces, metrics); the first is outermost. */
  instruments: tracing.Instrument[];
  /** Numbers for monitoring: queue gauges and totals (read now), handler durations, counts. */
  metrics(): Promise<metrics.WorkerSnapshot>;
  /** Set when every slot hung in a handler past its timeout and the worker stopped itself. */
  readonly hung: boolean;
  /**
   * Set when every write was answered READONLY for readonlyGiveUpMs and the
   * worker stopped itself (the URL points at a replica): run() rejects with
   * `gaveUp` after its shutdown; exit non-zero.
   */
  readonly readOnly: boolean;
  readonly gaveUp: ReadOnlyError | null;
  /**
   * The second signal that cut run()'s graceful stop short (everything held was
   * released then); null otherwise. Exit with status 130, as `homing worker` does.
   */
  readonly interrupted: SignalName | null;
  readonly readonlyGiveUpMs: number;
  /** Resolves once stop() has been called. */
  readonly stopped: Promise<void>;
  /** Create and init the consumers, then start the loops. */
  start(): Promise<void>;
  /** Ask the worker to shut down gracefully (safe from a signal handler). */
  stop(): void;
  /**
   * Start, wait for stop() or a signal (default SIGTERM, SIGINT), shut down; the counts.
   * A second signal cuts the shutdown short: everything still held is released
   * (releaseHeld()), `interrupted` is set and run() returns at once; a third gets
   * Node's default. Also returns by itself when every slot is hung (then `hung`
   * is true). Handlers still running keep Node alive, so end the program with
   * `process.exit(worker.interrupted ? 130 : worker.hung ? 3 : 0)` after closing
   * the client. Rejects when start() does (a ReadOnlyError for a replica, among
   * others), and, after the shutdown, with `gaveUp` when every write met READONLY
   * for readonlyGiveUpMs (then `readOnly` is true).
   */
  run(options?: { signals?: readonly SignalName[] }): Promise<WorkerStats>;
  /**
   * Release unstarted events and let handlers finish for graceMs. Events whose
   * handlers still run after that are not released: their leases expire and they
   * are redelivered then.
   */
  shutdown(): Promise<void>;
  /**
   * The impatient stop, just before the process exits: release at once the events
   * not started and those whose handler still runs, and send the queued
   * acknowledgements (waiting at most timeoutMs, default 5000, per step).
   */
  releaseHeld(options?: { timeoutMs?: number }): Promise<void>;
  /** Consumer.complete: acknowledge now, with the token this worker holds. */
  completeFor(
    service: string,
    eventId: string,
    result: unknown,
    current?: { id: string; token: number } | null,
  ): Promise<void>;
}

/** The msgpack envelope {"v": 1, "p": payload}, byte-compatible with the Python client. */
export namespace envelope {
  const VERSION: number;
  /** A W3C Trace Context carrier: the envelope's field t (revision 1.1). */
  interface TraceCarrier {
    traceparent: string;
    tracestate?: string;
  }
  /** The carrier the producer span in progress puts into the envelopes it encodes. */
  const outgoingTrace: { current: TraceCarrier | null };
  /** trace: field t; by default the producer span's (outgoingTrace), null for none. */
  function encode(payload: unknown, trace?: TraceCarrier | null): NodeBuffer;
  function decode(data: Uint8Array): any;
  /** The trace context an envelope carries, or null (none, or malformed and ignored). */
  function traceOf(data: Uint8Array): TraceCarrier | null;
}

/** The flattened Lua manifest and the key layout. */
export namespace manifest {
  interface Script {
    readonly name: string;
    readonly version: number;
    readonly sha1: string;
    readonly source: string;
    readonly keys: readonly string[];
    /** grows (refused by a full Redis), level, none or checked. */
    readonly memory: string;
  }
  const MANIFEST: any;
  const LAYOUT: any;
  const SCHEMA: number;
  const DEFAULT_PREFIX: string;
  const DEFAULT_MAX_PAYLOAD: number;
  const POLICY_DEFAULTS: Readonly<Record<string, number>>;
  const POLICY: Readonly<
    Record<string, { default: number; min: number; max: number; whole: boolean; doc: string }>
  >;
  /** The names of the global keys (`<prefix>:<name>`). */
  const GLOBAL_KEYS: ReadonlySet<string>;
  /** Status name -> letter of a meta record (ready -> r, reserved -> v, ...). */
  const STATUSES: Readonly<Record<string, string>>;
  /** Status letter -> name (r -> ready, v -> reserved, ...). */
  const STATUS_NAMES: Readonly<Record<string, string>>;
  const LIMITS: Readonly<{ batch: number; reason_bytes: number; nesting: number }>;
  const MAX_BATCH: number;
  /** Most levels of arrays and maps a payload nests. */
  const MAX_NESTING: number;
  /** Most bytes of a fail reason that are kept. */
  const MAX_REASON: number;
  /** A script's error reply: group 1 the code, group 2 the message. */
  const ERROR_REPLY_RE: RegExp;
  const SCRIPTS: Readonly<Record<string, Script>>;
  function checkService(service: unknown): string;
  function checkId(eventId: unknown): string;
  function checkPrefix(prefix: unknown): string;
  function serviceKey(prefix: string, service: string, name: string): string;
  function globalKey(prefix: string, name: string): string;
}

/** Each operation as data (sans-IO): run one with Client.run. */
export namespace ops {
  /**
   * The Call of any call of the manifest's call table, its arguments checked
   * and encoded (by the table's names or their camelCase; maxPayload defaults
   * to 1 MiB).
   */
  function call(name: string, service: string, args?: Record<string, unknown>, maxPayload?: number): Call;
  /** The manifest's call table: per call its script, ARGV specs, reply shape. */
  const CALLS: Readonly<Record<string, any>>;
  /** The value type this port makes of each record name of the table. */
  const RECORDS: Readonly<Record<string, (service: string, fields: Record<string, any>) => unknown>>;
  const MAX_BATCH: number;
  const POLICY_FIELDS: Readonly<Record<keyof Policy, string>>;
  function newId(): string;
  function enqueueMany(
    service: string,
    payloads: Iterable<unknown>,
    maxPayload: number,
    keys?: ReadonlyArray<string | null | undefined> | null,
    ids?: ReadonlyArray<string> | null,
    priorities?: ReadonlyArray<number> | null,
  ): Call<string[]>;
  function createTimer(
    service: string,
    payload: unknown,
    maxPayload: number,
    options?: { delayMs?: number; at?: Date | number; key?: string | null; id?: string; priority?: number },
  ): Call<string>;
  function cancelTimer(service: string, timerId: string): Call<boolean>;
  function dequeue(service: string, count: number, leaseMs?: number | null, reserve?: boolean): Call<Event[]>;
  function startMany(service: string, items: ReadonlyArray<LeaseItem>): Call<Array<number | HomingError>>;
  function completeMany(
    service: string,
    items: ReadonlyArray<CompleteItem>,
    maxPayload: number,
  ): Call<Array<HomingError | null>>;
  function extendMany(
    service: string,
    items: ReadonlyArray<LeaseItem>,
    leaseMs?: number | null,
  ): Call<Array<number | HomingError>>;
  function fail(
    service: string,
    eventId: string,
    token: Token,
    reason: string,
    dead: boolean,
    delayMs?: number | null,
  ): Call<FailOutcome>;
  function snooze(service: string, eventId: string, token: Token, delayMs: number): Call<SnoozeOutcome>;
  function progress(service: string, eventId: string, token: Token, value: number): Call<number>;
  function releaseMany(service: string, items: ReadonlyArray<LeaseItem>): Call<Array<HomingError | null>>;
  function status(service: string, eventId: string): Call<Status>;
  function stats(service: string): Call<Record<string, number>>;
  function configure(service: string, policy: Record<string, number | null | undefined>): Call<Policy>;
  function deadList(service: string, offset: number, count: number): Call<DeadPage>;
  function deadRequeue(service: string, ids: ReadonlyArray<string> | null | undefined, count: number): Call<[number, number]>;
  function deadPurge(service: string, ids: ReadonlyArray<string> | null | undefined, count: number): Call<[number, number]>;
  function promote(service: string, limit: number): Call<PromoteResult>;
  function distribute(service: string, limit: number): Call<DistributeResult>;
  function beat(name: string): Call<number>;
}

/** The top-level NodeDurability, for namespace durability (whose class of that name shadows it). */
type NodeDurabilityReport = NodeDurability;

/** The durability settings homing reads on connect (CONFIG GET, else INFO). */
export namespace durability {
  const SETTINGS: readonly string[];
  /** One setting that may lose acknowledged events (a DurabilityFinding). */
  class Finding implements DurabilityFinding {
    constructor(setting: string, value: string | null, consequence: string, fatal: boolean);
    readonly setting: string;
    readonly value: string | null;
    readonly consequence: string;
    readonly fatal: boolean;
    text(): string;
  }
  /** What one server keeps of its writes, as read() makes it. */
  class NodeDurability implements NodeDurabilityReport {
    constructor(
      node: string,
      settings: Record<string, string | null>,
      configRefused: string | null,
      findings: DurabilityFinding[],
    );
    readonly node: string;
    readonly settings: Readonly<Record<string, string | null>>;
    readonly configRefused: string | null;
    readonly findings: readonly DurabilityFinding[];
    get durable(): boolean;
  }

  function assess(settings: Record<string, string | null>): DurabilityFinding[];
  function read(redisClient: any): Promise<NodeDurability[]>;
  /** Warn about each finding once per process, server and value. */
  function warnOnce(reports: Iterable<NodeDurability>, logger: Pick<Logger, "warn">): void;
  /** Warn again as if this process had not connected yet (for tests). */
  function forget(): void;
  /** NotDurableError unless every server is shown to be durable. */
  function requireDurable(reports: Iterable<NodeDurability>): void;
  /** One line: durable or not, and why not. */
  function summary(reports: NodeDurability[]): string;
}

/** A worker's beat (Client.workerBeat; the Worker sends it with each heartbeat). */
export interface WorkerBeatOptions {
  /** 1..256 bytes, unique per Worker (service:host:pid:random) */
  name: string;
  /** the service it consumes */
  service: string;
  host: string;
  pid: number;
  concurrency: number;
  /** how many leases it holds */
  held: number;
  /** how often it beats, ms */
  everyMs: number;
  /** its last beat after a graceful stop */
  stopped?: boolean;
  /** a sample of the held event ids (the Worker sends up to 50) */
  ids?: ReadonlyArray<string>;
  /** another worker silent this long (and for 3 of its beats) is pruned; default an hour */
  forgetMs?: number;
}

/** OpenTelemetry traces (optional peer @opentelemetry/api): producer and consumer spans. */
export namespace tracing {
  /** Whether @opentelemetry/api was found (and HOMING_TRACING is not "off"). */
  const ENABLED: boolean;
  /** A wrapper around one handler run: calls next() once and returns its value. */
  type Instrument = (ev: Event, next: () => Promise<unknown>) => Promise<unknown>;
  /** Run start() in a `send <service>` span; its envelopes carry the span's context. */
  function producing<T>(service: string, operation: string, count: number, carry: boolean,
    start: () => Promise<T>): Promise<T>;
  /** The consumer instrument: a `process <service>` span continuing the producer's trace. */
  function handling<T>(ev: Event, next: () => Promise<T>): Promise<T>;
  function defaultInstruments(): Instrument[];
  function observe<T>(instruments: Instrument[], ev: Event, fn: () => Promise<T>): Promise<T>;
}

/** Monitoring numbers in the Python port's Prometheus names, without a dependency. */
export namespace metrics {
  const HANDLER_BUCKETS: number[];
  /** [stats field, metric name, help] */
  const GAUGES: [string, string, string][];
  /** [counter field, metric name, help] */
  const COUNTERS: [string, string, string][];
  interface HistogramData {
    counts: number[];
    sum: number;
    count: number;
  }
  interface WorkerSnapshot {
    service: string;
    /** events_ready, events_in_flight, ..., oldest_ready_age_seconds */
    gauges: Record<string, number>;
    /** events_enqueued, ..., stale_acks_refused (the service's running totals) */
    totals: Record<string, number>;
    /** Cumulative bucket counts per outcome ("ok", "error"), seconds. */
    handler: { buckets: number[]; byOutcome: Record<string, HistogramData> };
    worker: Omit<WorkerStats, never>;
  }
  class DurationHistogram {
    constructor(buckets?: number[]);
    readonly buckets: number[];
    readonly byOutcome: Record<string, HistogramData>;
    listeners: ((outcome: string, seconds: number) => void)[];
    observe(outcome: string, seconds: number): void;
    instrument(): tracing.Instrument;
  }
  function handlerHistogram(worker: Worker): DurationHistogram;
  function workerSnapshot(worker: Worker): Promise<WorkerSnapshot>;
  /** Register the worker's numbers with prom-client (passed in: no dependency). */
  function registerPrometheus(promClient: any, worker: Worker, options?: { registry?: any }): unknown[];
}
