// Worker beats, as in Python's homing.presence: what a running Worker tells
// Redis about itself (service, host, pid, concurrency, held count and a sample
// of held ids) so that the dashboard shows which workers are alive and who
// holds an event. The worker_beat script keeps the global hash bounded by
// itself (each beat prunes silent fields from a sample of 8), so no reader is
// needed to prune it.

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

import { call } from "./calls.js";
import { HomingError } from "./errors.js";

/** Held ids sent per beat: enough to name holders, small enough for a page that polls. */
export const HELD_SAMPLE = 50;
/** A worker silent this long (and for 3 of its beats) is pruned by another's beat. */
export const FORGET_MS = 3_600_000;

/**
 * The worker_beat call of the call table; its only key is the global
 * `<prefix>:workers` (service, the one the worker consumes, is data, checked
 * as a service name). No ids is none sent (the table's rest: given, 1..1000).
 * @param {import("./index.js").WorkerBeatOptions} o
 * @returns {import("./calls.js").Call} parses to how many silent workers' fields it pruned
 */
export function workerBeatCall(o) {
  const ids = Array.isArray(o?.ids) && o.ids.length === 0 ? undefined : o?.ids;
  return call("worker_beat", o?.service, { ...o, ids });
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
