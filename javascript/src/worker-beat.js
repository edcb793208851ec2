// Worker beats, as in Python's homing.presence: what a running Worker tells
// Redis about itself (service, host, pid, concurrency, held count and a sample
// of held ids) so that the dashboard shows which workers are alive and who
// holds an event. The worker_beat script keeps the global hash bounded by
// itself (each beat prunes silent fields from a sample of 8), so no reader is
// needed to prune it.

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

import { call, describe, whole } from "./call.js";
import { HomingError, InvalidArgumentError } from "./errors.js";
import { MAX_BATCH, checkId, checkService } from "./manifest.js";

/** Held ids sent per beat: enough to name holders, small enough for a page that polls. */
export const HELD_SAMPLE = 50;
/** A worker silent this long (and for 3 of its beats) is pruned by another's beat. */
export const FORGET_MS = 3_600_000;

/**
 * The worker_beat call; its only key is the global `<prefix>:workers`.
 * @param {import("./index.js").WorkerBeatOptions} o
 * @returns {import("./call.js").Call} parses to how many silent workers' fields it pruned
 */
export function workerBeatCall(o) {
  const { name, service, host, pid, concurrency, held, everyMs, stopped = false, ids = [], forgetMs = FORGET_MS } = o;
  if (typeof name !== "string" || name === "" || Buffer.byteLength(name) > 256) {
    throw new InvalidArgumentError(`worker name must be 1..256 bytes of text, got ${describe(name)}`);
  }
  checkService(service);
  if (typeof host !== "string" || Buffer.byteLength(host) > 255) {
    throw new InvalidArgumentError(`host must be text of at most 255 bytes, got ${describe(host)}`);
  }
  if (!Array.isArray(ids) || ids.length > MAX_BATCH) {
    throw new InvalidArgumentError(`ids takes an array of at most ${MAX_BATCH} event ids`);
  }
  const args = [
    name, service, host, String(whole(pid, "pid", 0)), String(whole(concurrency, "concurrency", 1)),
    String(whole(held, "held", 0)), String(whole(everyMs, "everyMs", 0)), stopped ? "1" : "0",
    String(whole(forgetMs, "forgetMs", 0)), ...ids.map((i) => checkId(i)),
  ];
  // The reply is [the beat's time, pruned]: the client call picks pruned (calls.json), as in Python.
  return call("worker_beat", "", args, (r) => Number(r[1]));
}

/**
 * A Worker's beat: its name, and one call per heartbeat that never gets in the
 * worker's way (a failed beat is logged at debug and skipped: leases matter,
 * the dashboard's view of a worker does not).
 */
export class WorkerBeat {
  /**
   * @param {any} client a homing Client
   * @param {string} service
   * @param {number} concurrency
   * @param {{debug?: (msg: string) => void}} [log]
   */
  constructor(client, service, concurrency, log = {}) {
    this.client = client;
    this.service = service;
    this.concurrency = concurrency;
    this.log = log;
    this.host = hostname().slice(0, 255);
    this.name = `${service}:${this.host}:${process.pid}:${randomBytes(4).toString("hex")}`.slice(0, 256);
  }

  /**
   * @param {ReadonlyArray<readonly [string, unknown]>} held the (id, token) leases held
   * @param {number} everyMs how often the worker beats
   * @param {boolean} [stopped] its last beat, after a graceful stop
   */
  async beat(held, everyMs, stopped = false) {
    const ids = [...new Set(held.map(([id]) => id))].slice(0, HELD_SAMPLE);
    try {
      await this.client.workerBeat({
        name: this.name, service: this.service, host: this.host, pid: process.pid,
        concurrency: this.concurrency, held: held.length, everyMs: Math.round(everyMs), stopped, ids,
      });
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc;
      this.log.debug?.(`worker beat of ${this.name} skipped: ${exc.message}`);
    }
  }
}
