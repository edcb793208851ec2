// Private Sentinel setups for the failover tests: a primary, its replicas and
// three sentinels (`redis-server <conf> --sentinel`), all on free loopback
// ports in temporary directories, stopped like every RedisServer (servers.js:
// stop(), an exit hook, PR_SET_PDEATHSIG). Never a shared Redis.

import { writeFileSync } from "node:fs";
import path from "node:path";

import { createClient } from "redis";

import { HOST, RedisServer } from "./servers.js";

/**
 * A replica's full sync starts at once (Redis 7 waits 5 s for more replicas to
 * share a diskless sync): on every data node, since any may become the primary.
 */
export const FAST_SYNC = ["--repl-diskless-sync-delay", "0"];

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Run fn on a short-lived plain connection to host:port.
 * @template T
 * @param {number} port
 * @param {(c: any) => Promise<T>} fn
 */
export async function onNode(port, fn) {
  const c = createClient({ socket: { host: HOST, port, reconnectStrategy: false, connectTimeout: 2000 } });
  c.on("error", () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

/**
 * One raw command to host:port, reply as node-redis gives it.
 * @param {number} port
 * @param {string[]} args
 */
export function command(port, args) {
  return onNode(port, (c) => c.sendCommand(args));
}

/**
 * Whether a write on primaryPort is acknowledged by a replica within 100 ms
 * (WAIT 1 100). For some hundreds of ms after a full sync a replica listed
 * online acknowledges nothing yet.
 * @param {number} primaryPort
 */
async function acks(primaryPort) {
  return onNode(primaryPort, async (c) => {
    const [, n] = await Promise.all([
      c.sendCommand(["SET", "homing-test:sync-probe", String(Date.now())]),
      c.sendCommand(["WAIT", "1", "100"]),
    ]);
    return Number(n) >= 1;
  }).catch(() => false);
}

/** A replica of the server on primaryPort. */
export class ReplicaServer extends RedisServer {
  /**
   * @param {number} primaryPort
   * @param {{appendonly?: boolean, extra?: string[]}} [options]
   */
  constructor(primaryPort, options = {}) {
    super({ ...options, extra: ["--replicaof", HOST, String(primaryPort), ...FAST_SYNC, ...(options.extra ?? [])] });
    this.primaryPort = primaryPort;
  }

  /**
   * Wait until its link to the primary (primaryPort, the one it was started
   * with unless given) is up on both sides: the replica says
   * master_link_status:up and the primary lists it online (only then does
   * WAIT count it).
   * @param {number} [ms]
   * @param {number} [primaryPort]
   */
  async synced(ms = 10000, primaryPort = this.primaryPort) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const info = String(await command(this.port, ["INFO", "replication"]).catch(() => ""));
      const seen = String(await command(primaryPort, ["INFO", "replication"]).catch(() => ""));
      if (info.includes("master_link_status:up") && !info.includes("master_sync_in_progress:1") &&
        new RegExp(`port=${this.port},state=online`).test(seen) && (await acks(primaryPort))) return;
      await sleep(50);
    }
    throw new Error(`replica on port ${this.port} did not sync`);
  }
}

/**
 * Wait until the replica on replicaPort has every write the primary on
 * primaryPort made so far (its offset reached the primary's).
 * @param {number} primaryPort
 * @param {number} replicaPort
 * @param {number} [ms]
 */
export async function caughtUp(primaryPort, replicaPort, ms = 5000) {
  const end = Date.now() + ms;
  const offset = (/** @type {string} */ info, /** @type {string} */ name) =>
    Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? -1);
  const want = offset(String(await command(primaryPort, ["INFO", "replication"])), "master_repl_offset");
  while (Date.now() < end) {
    const info = String(await command(replicaPort, ["INFO", "replication"]));
    if (offset(info, "slave_repl_offset") >= want) return;
    await sleep(10);
  }
  throw new Error(`replica on port ${replicaPort} did not catch up`);
}

/** One sentinel (`redis-server sentinel.conf --sentinel`), monitoring one master name. */
export class SentinelServer extends RedisServer {
  /**
   * @param {{name: string, primaryPort: number, quorum?: number, downAfterMs?: number,
   *   failoverTimeoutMs?: number}} options
   */
  constructor(options) {
    super({});
    this.name = options.name;
    this.primaryPort = options.primaryPort;
    this.quorum = options.quorum ?? 2;
    this.downAfterMs = options.downAfterMs ?? 1000;
    this.failoverTimeoutMs = options.failoverTimeoutMs ?? 3000;
    this.conf = path.join(this.dir, "sentinel.conf");
    this.wroteConf = false;
  }

  argv() {
    // Written once: Sentinel rewrites its file with what it learned (a restart keeps it).
    if (!this.wroteConf) {
      const n = this.name;
      writeFileSync(this.conf, [
        `port ${this.port}`,
        `bind ${HOST}`,
        `dir ${this.dir}`,
        `logfile ${this.logfile}`,
        "daemonize no",
        `sentinel monitor ${n} ${HOST} ${this.primaryPort} ${this.quorum}`,
        `sentinel down-after-milliseconds ${n} ${this.downAfterMs}`,
        `sentinel failover-timeout ${n} ${this.failoverTimeoutMs}`,
        `sentinel parallel-syncs ${n} 1`,
        "",
      ].join("\n"));
      this.wroteConf = true;
    }
    return ["redis-server", this.conf, "--sentinel"];
  }

  /** The master's [host, port] as this sentinel sees it. */
  async master() {
    const [host, port] = /** @type {string[]} */ (
      await command(this.port, ["SENTINEL", "get-master-addr-by-name", this.name]));
    return { host, port: Number(port) };
  }
}

/**
 * A primary, `replicas` replicas and `sentinels` sentinels (quorum 2) under
 * the master name `name`, started and ready: every replica synced, every
 * sentinel knowing every replica and the other sentinels.
 */
export class SentinelGroup {
  /** @type {RedisServer | null} */
  primary = null;
  /** @type {ReplicaServer[]} */
  replicas = [];
  /** @type {SentinelServer[]} */
  sentinels = [];

  /**
   * @param {{name?: string, replicas?: number, sentinels?: number, downAfterMs?: number,
   *   failoverTimeoutMs?: number, appendonly?: boolean}} [options]
   */
  constructor(options = {}) {
    this.name = options.name ?? "homing-test";
    this.options = options;
  }

  /** Every data node (the primary first at start; roles change with a failover). */
  get nodes() {
    return [/** @type {RedisServer} */ (this.primary), ...this.replicas];
  }

  /** The redis+sentinel:// URL of the group (every sentinel), with an optional /db. */
  url(db = "") {
    const hosts = this.sentinels.map((s) => `${HOST}:${s.port}`).join(",");
    return `redis+sentinel://${hosts}/${this.name}${db === "" ? "" : `/${db}`}`;
  }

  async start() {
    const { replicas = 1, sentinels = 3, appendonly = false } = this.options;
    try {
      this.primary = await new RedisServer({ appendonly, extra: FAST_SYNC }).start();
      for (let i = 0; i < replicas; i++) {
        this.replicas.push(await new ReplicaServer(this.primary.port, { appendonly }).start());
      }
      await Promise.all(this.replicas.map((r) => r.synced()));
      for (let i = 0; i < sentinels; i++) {
        const s = new SentinelServer({
          name: this.name,
          primaryPort: this.primary.port,
          downAfterMs: this.options.downAfterMs,
          failoverTimeoutMs: this.options.failoverTimeoutMs,
        });
        this.sentinels.push(await s.start());
      }
      await this.settled();
    } catch (exc) {
      await this.close();
      throw exc;
    }
    return this;
  }

  /**
   * Wait until every sentinel agrees on the master and knows its replicas
   * (up). They find each other later (hello messages every 2 s): a SENTINEL
   * FAILOVER does not need them to.
   * @param {number} [ms]
   */
  async settled(ms = 20000) {
    const end = Date.now() + ms;
    const want = this.replicas.length;
    for (;;) {
      const oks = await Promise.all(this.sentinels.map(async (s) => {
        try {
          const reps = /** @type {string[][]} */ (await command(s.port, ["SENTINEL", "replicas", this.name]));
          const up = reps.filter((r) => {
            const flags = r[r.indexOf("flags") + 1];
            return !/s_down|o_down|disconnected/.test(flags) && r[r.indexOf("master-link-status") + 1] === "ok";
          });
          return up.length >= want ? (await s.master()).port : null;
        } catch {
          return null;
        }
      }));
      if (oks.every((p) => p !== null && p === oks[0])) return oks[0];
      if (Date.now() > end) throw new Error(`the sentinels did not settle: ${JSON.stringify(oks)}`);
      await sleep(100);
    }
  }

  /** The port of the master as the first sentinel that answers sees it. */
  async masterPort() {
    for (const s of this.sentinels) {
      try {
        return (await s.master()).port;
      } catch {
        // that sentinel is down: ask the next
      }
    }
    throw new Error("no sentinel answers");
  }

  /** The data node on port. */
  /** @param {number} port */
  node(port) {
    const found = this.nodes.find((n) => n.port === port);
    if (!found) throw new Error(`no node on port ${port}`);
    return found;
  }

  /**
   * SENTINEL FAILOVER on the first sentinel; resolves with the new master's
   * port once every sentinel names it.
   * @param {number} [ms]
   */
  async failover(ms = 20000) {
    const before = await this.masterPort();
    await command(this.sentinels[0].port, ["SENTINEL", "FAILOVER", this.name]);
    const end = Date.now() + ms;
    for (;;) {
      const ports = await Promise.all(this.sentinels.map((s) => s.master().then((m) => m.port, () => 0)));
      if (ports.every((p) => p !== before && p === ports[0])) return ports[0];
      if (Date.now() > end) throw new Error(`failover did not happen: ${JSON.stringify(ports)}`);
      await sleep(50);
    }
  }

  async close() {
    await Promise.all([...this.sentinels, ...this.replicas].map((s) => s.close()));
    await this.primary?.close();
  }
}
