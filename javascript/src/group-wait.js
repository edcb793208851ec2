// Group results (Python's homing/groups.py): the producer's wait for every
// result of a group enqueued with enqueueGroup, as a sans-IO state machine
// like ResultWait, and the results of a group_result reply decoded.
//
// The wait polls group_result as result() polls status: from 2 ms, doubling
// to 100 ms. While the group runs the reply carries no results, so a poll
// costs little however large the group. A failed member makes the call
// itself throw GroupFailedError (an unknown group UnknownGroupError).

import { perItem } from "./checks.js";
import * as envelope from "./envelope.js";
import { InvalidArgumentError, ResultTimeoutError } from "./errors.js";
import { Group } from "./types.js";

/**
 * A group_enqueue reply (the group's id, then one record per member) as a Group.
 * @param {{group: string, items: {id: string}[]}} reply
 * @returns {Group}
 */
export function groupOf(reply) {
  return new Group(reply.group, reply.items.map((x) => x.id));
}

/**
 * enqueue_group's arguments from enqueueGroup's, and the member count (for
 * the producer span): `priority` is one level for every member or an array
 * of one per payload, spread by perItem as for enqueueMany.
 * @param {unknown} payloads
 * @param {{ids?: string[] | null, priority?: number | ReadonlyArray<number> | null}} options
 * @returns {[number, Record<string, unknown>]}
 */
export function groupArgs(payloads, options) {
  const [rows, priorities] = perItem(options.priority, /** @type {Iterable<unknown>} */ (payloads));
  return [Array.isArray(rows) ? rows.length : 0, { payloads: rows, ids: options.ids, priorities }];
}

/**
 * The members' decoded results of a group_result reply, in order (null for a
 * completion without one), or null while the group runs.
 * @param {{finished: boolean, items: {id: string, rawResult: Buffer}[]}} reply the reply, camelCased by calls.js
 * @returns {unknown[] | null}
 */
export function resultsOf(reply) {
  if (!reply.finished) return null;
  return reply.items.map((x) => (x.rawResult.length ? envelope.decode(x.rawResult) : null));
}

/** The producer's wait for a group, without I/O. */
export class GroupWait {
  /**
   * @param {string} service
   * @param {string} group
   * @param {number | null} timeoutMs null: no limit
   */
  constructor(service, group, timeoutMs) {
    if (timeoutMs != null && (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a finite number of ms >= 0, got ${String(timeoutMs)}`);
    }
    this.service = service;
    this.group = group;
    this.timeoutMs = timeoutMs;
    this.end = timeoutMs == null ? null : performance.now() + timeoutMs;
    this.pause = 2;
  }

  /**
   * [true, results] once the group finished; [false, ms to sleep] while it runs.
   * Throws ResultTimeoutError once timeoutMs passed.
   * @param {any} reply a group_result reply
   * @returns {[boolean, unknown]}
   */
  check(reply) {
    const results = resultsOf(reply);
    if (results !== null) return [true, results];
    const left = this.end === null ? null : this.end - performance.now();
    if (left !== null && left <= 0) {
      throw new ResultTimeoutError(`group ${this.service}/${this.group} did not finish within ${this.timeoutMs} ms`);
    }
    const pause = left === null ? this.pause : Math.min(this.pause, left);
    this.pause = Math.min(this.pause * 2, 100);
    return [false, pause];
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Client.waitGroup: poll group_result until the group finished.
 * @param {{call: (name: string, service: string, args: Record<string, unknown>) => Promise<any>}} client
 * @param {string} service
 * @param {string} group
 * @param {number | null} timeoutMs
 * @returns {Promise<unknown[]>}
 */
export async function waitGroup(client, service, group, timeoutMs) {
  const wait = new GroupWait(service, group, timeoutMs);
  for (;;) {
    const [done, value] = wait.check(await client.call("group_result", service, { group }));
    if (done) return /** @type {unknown[]} */ (value);
    await sleep(/** @type {number} */ (value));
  }
}
