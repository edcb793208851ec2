// Private redis-server processes for the JavaScript tests (the counterpart of
// python/tests/servers.py). Tests never touch a shared Redis: each test file
// starts its own server on a free port in a temporary directory, and tests
// isolate themselves by key prefix instead of flushing.
//
// A server must never outlive the tests: stop() in the normal case, an exit
// hook if a test file ends without it, and on Linux PR_SET_PDEATHSIG (set by
// a tiny python3 exec shim, as servers.py does with ctypes) so the kernel
// kills the server even when the test process is SIGKILLed.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export const HOST = "127.0.0.1";
const START_TIMEOUT = 10000;
const CLUSTER_TIMEOUT = 20000;
const DEATHSIG_SHIM =
  "import ctypes, os, signal, sys\n" +
  "try:\n    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)\n" +
  "except OSError:\n    pass\n" +
  "os.execvp(sys.argv[1], sys.argv[1:])";
const USE_SHIM =
  process.platform === "linux" && spawnSync("python3", ["-c", "pass"]).status === 0;

/** @type {Set<import("node:child_process").ChildProcess>} */
const live = new Set();
process.on("exit", () => {
  for (const proc of live) proc.kill("SIGKILL");
});

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP port that is free right now (there is a race until redis binds it).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Send one command in RESP and return the raw reply text (for readiness probes).
 * @param {number} port
 * @param {string[]} args
 * @returns {Promise<string>}
 */
export function rawCommand(port, args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, HOST);
    let data = "";
    sock.setTimeout(1000, () => sock.destroy(new Error("timeout")));
    sock.on("connect", () => {
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(""));
    });
    sock.on("data", (chunk) => {
      data += chunk.toString();
      // A simple, error or integer reply is one line; a bulk reply ends with its payload.
      const bulk = /^\$(\d+)\r\n/.exec(data);
      if ((!bulk && data.endsWith("\r\n")) || (bulk && data.length >= bulk[0].length + Number(bulk[1]) + 2)) {
        sock.end();
        resolve(data);
      }
    });
    sock.on("error", reject);
  });
}

/** One redis-server bound to 127.0.0.1; the port is kept across restarts. */
export class RedisServer {
  /** @type {import("node:child_process").ChildProcess | null} */
  proc = null;

  /**
   * @param {{dir?: string, port?: number, appendonly?: boolean, extra?: string[]}} [options]
   */
  constructor(options = {}) {
    this.dir = options.dir ?? mkdtempSync(path.join(tmpdir(), "homing-js-redis-"));
    this.ownsDir = options.dir === undefined;
    this.port = options.port ?? 0;
    this.appendonly = options.appendonly ?? false;
    this.extra = options.extra ?? [];
    this.logfile = path.join(this.dir, "redis.log");
  }

  get url() {
    return `redis://${HOST}:${this.port}/0`;
  }

  alive() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Launch and wait until the server answers PING. */
  async start() {
    if (this.alive()) return this;
    if (!this.port) this.port = await freePort();
    const argv = this.argv();
    const [cmd, args] = USE_SHIM ? ["python3", ["-c", DEATHSIG_SHIM, ...argv]] : [argv[0], argv.slice(1)];
    const proc = spawn(cmd, args, { stdio: "ignore" });
    this.proc = proc;
    live.add(proc);
    proc.on("exit", () => live.delete(proc));
    /** @type {Error | null} */
    let spawnError = null;
    proc.on("error", (err) => {
      spawnError = err; // ENOENT: redis-server is not installed
    });
    const deadline = Date.now() + START_TIMEOUT;
    while (Date.now() < deadline) {
      if (!this.alive() || spawnError) break;
      try {
        if (await this.answers()) return this;
      } catch {
        // not listening yet
      }
      await sleep(30);
    }
    await this.kill();
    const hint = spawnError ? ` (${spawnError}; install Redis 7 or run 'make redis-check')` : "";
    throw new Error(`redis-server on port ${this.port} did not answer PING${hint}:\n${this.logTail()}`);
  }

  /** The command line (a subclass may run another mode, e.g. Sentinel). */
  argv() {
    return [
      "redis-server",
      "--port", String(this.port),
      "--bind", HOST,
      "--dir", this.dir,
      "--save", "",
      "--appendonly", this.appendonly ? "yes" : "no",
      "--appendfsync", "always",
      "--daemonize", "no",
      "--logfile", this.logfile,
      ...this.extra,
    ];
  }

  /** Whether the server answers PING now (a subclass may probe another way, e.g. TLS). */
  async answers() {
    return (await rawCommand(this.port, ["PING"])).startsWith("+PONG");
  }

  logTail() {
    try {
      return readFileSync(this.logfile, "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "(no log file)";
    }
  }

  /** @param {NodeJS.Signals} signal */
  async #end(signal) {
    const proc = this.proc;
    if (proc === null) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill(signal);
      await exited;
    }
  }

  /** Graceful shutdown (SIGTERM flushes the AOF when there is one). */
  stop() {
    return this.#end("SIGTERM");
  }

  /** Simulate a crash: SIGKILL. */
  kill() {
    return this.#end("SIGKILL");
  }

  /** Stop, then start again on the same port and directory. */
  async restart() {
    await this.stop();
    return this.start();
  }

  /** Stop and remove the directory the server made. */
  async close() {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A 3-master, 0-replica Redis Cluster; node ports P have P + 10000 free for the bus. */
export class RedisCluster {
  /** @type {RedisServer[]} */
  nodes = [];

  get url() {
    return this.nodes[0].url;
  }

  /** @param {{extra?: string[]}} [options] more redis-server arguments for every node */
  constructor(options = {}) {
    this.extra = options.extra ?? [];
  }

  async start(masters = 3) {
    try {
      for (let i = 0; i < masters; i++) {
        let port = 0;
        for (let tries = 0; tries < 100 && !port; tries++) {
          const p = await freePort();
          if (p + 10000 <= 65535 && (await portFree(p + 10000))) port = p;
        }
        const node = new RedisServer({
          port,
          extra: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000", ...this.extra],
        });
        this.nodes.push(node);
        await node.start();
      }
      const create = spawnSync("redis-cli", ["--cluster", "create",
        ...this.nodes.map((n) => `${HOST}:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"],
      { encoding: "utf8", timeout: 60000 });
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
      await this.#converge();
    } catch (exc) {
      await this.close();
      throw exc;
    }
    return this;
  }

  async #converge() {
    const deadline = Date.now() + CLUSTER_TIMEOUT;
    while (Date.now() < deadline) {
      const infos = await Promise.all(
        this.nodes.map((n) => rawCommand(n.port, ["CLUSTER", "INFO"]).catch(() => "")),
      );
      const ok = infos.every((info) =>
        info.includes("cluster_state:ok") &&
        info.includes("cluster_slots_assigned:16384") &&
        info.includes(`cluster_known_nodes:${this.nodes.length}`));
      if (ok) return;
      await sleep(100);
    }
    throw new Error("the test cluster did not converge");
  }

  async close() {
    await Promise.all(this.nodes.map((n) => n.close()));
  }
}

/** @param {number} port */
function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}
