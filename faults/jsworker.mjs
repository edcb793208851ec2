// The fault suite's JavaScript worker: faults/consumer.py's Recorder on the JS package.
//
//   node faults/jsworker.mjs <service> <concurrency> <prefetch>
//
// Environment as for `homing worker`: HOMING_REDIS_URL, HOMING_PREFIX,
// FAULTS_LOG_DIR (where deliveries-<pid>.jsonl goes), FAULTS_ACK (sync: the
// handler completes its event itself with [pid, token] and records whether the
// completion was accepted). One JSON line per handler start and end, in the
// Python consumer's format, so the checker reads both ports alike. The payload
// says what to do: w ms of work, f = fail while the attempt is at most f.
// SIGTERM/SIGINT stop it gracefully (a second one releases everything held
// and exits 130); a worker whose every slot hung exits 3.
// FAULTS_JS_PACKAGE (a path to another checkout's javascript/src/index.js) judges
// that checkout's JS client instead, as --homing-path does for Python.

import { appendFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const pkg = process.env.FAULTS_JS_PACKAGE
  ? pathToFileURL(resolve(process.env.FAULTS_JS_PACKAGE)).href
  : new URL("../javascript/src/index.js", import.meta.url).href;
const { Client, Consumer, HomingError, StaleLeaseError, Worker } = await import(pkg);

const [service, concurrency = "2", prefetch = "100"] = process.argv.slice(2);
const url = process.env.HOMING_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const prefix = process.env.HOMING_PREFIX ?? "homing";
const sync = (process.env.FAULTS_ACK ?? "batch") === "sync";
const out = join(process.env.FAULTS_LOG_DIR ?? ".", `deliveries-${process.pid}.jsonl`);
const pid = process.pid;

function record(fields) {
  appendFileSync(out, JSON.stringify(fields) + "\n"); // one write per line: whole lines
}

const now = () => Date.now() / 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Recorder extends Consumer {
  async handleEvent(event, state) {
    const base = { id: event.id, tok: Number(event.token), pid };
    record({ e: "start", ...base, att: event.attempt, t: now(), dl: Number(event.deadlineMs) });
    const spec = event.payload && typeof event.payload === "object" ? event.payload : {};
    if (event.attempt <= Number(spec.f ?? 0)) {
      record({ e: "end", ...base, t: now(), ok: false });
      throw new Error(`asked to fail attempt ${event.attempt}`);
    }
    await sleep(Number(spec.w ?? 0));
    let ack = null;
    const sent = now();
    if (sync) ack = await this.#complete(event);
    record({ e: "end", ...base, t: now(), ok: true, ack, ts: sent });
    return state;
  }

  async #complete(event) {
    try {
      await this.complete(event.service, event.id, [pid, Number(event.token)]);
      return "ok";
    } catch (err) {
      if (err instanceof StaleLeaseError) return "stale";
      if (err instanceof HomingError) return err.code;
      return `untyped ${err?.name ?? "error"}`;
    }
  }
}

const stamp = (level) => (...args) => console.log(new Date().toISOString(), level, ...args);
const logger = { debug() {}, info: stamp("info"), warn: stamp("warn"), error: stamp("error") };

const client = await Client.connect(url, { prefix, logger });
const worker = new Worker(client, service, Recorder, {
  concurrency: Number(concurrency),
  prefetch: Number(prefetch),
  graceMs: 2000,
  logger,
});
const stats = await worker.run();
logger.info("stopped", JSON.stringify(stats));
await client.close().catch(() => {});
// As javascript/README.md's pattern: 130 after a second signal (run() has
// released everything held then), 3 when every slot hung.
process.exit(worker.interrupted ? 130 : worker.hung ? 3 : 0);
