// Shared test helpers: a private server per test file, a unique key prefix per
// test (isolate by prefix, never flush), the frozen test clock, a logger that
// records instead of printing.

import { randomBytes } from "node:crypto";
import { after } from "node:test";

import { Client } from "../src/index.js";
import { RedisServer } from "./servers.js";

/**
 * Start one private redis-server for the calling test file (await it at the
 * top of the module); it is stopped after the file's tests.
 * @param {{appendonly?: boolean}} [options]
 * @returns {Promise<RedisServer>}
 */
export async function privateServer(options = {}) {
  const server = await new RedisServer(options).start();
  after(() => server.close());
  return server;
}

/** A key prefix no other test uses. */
export function uniquePrefix() {
  return `t${randomBytes(5).toString("hex")}`;
}

/**
 * A client on url with a fresh prefix.
 * @param {string} url
 * @param {Record<string, any>} [options]
 */
export function connect(url, options = {}) {
  return Client.connect(url, { prefix: uniquePrefix(), ...options });
}

/** The test clock: this field of the service's config hash (lua/include/clock.lua). */
export const TEST_CLOCK = "test_clock";

/**
 * Freeze (or, with null, release) the service's test clock: the field
 * test_clock of its config hash (setting it makes the config key exist).
 * @param {Client} client
 * @param {string} service
 * @param {number | string | null} ms
 */
export async function setClock(client, service, ms) {
  const key = `${client.prefix}:{${service}}:config`;
  if (ms === null) await client.connection.hDel(key, TEST_CLOCK);
  else await client.connection.hSet(key, TEST_CLOCK, String(ms));
}

/** A logger that keeps its lines, for asserting on them. */
export function recordingLogger() {
  /** @type {{level: string, text: string}[]} */
  const lines = [];
  const at = (/** @type {string} */ level) => (/** @type {any[]} */ ...a) =>
    lines.push({ level, text: a.map(String).join(" ") });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * Poll until fn() is truthy (or fail after ms).
 * @param {() => Promise<unknown> | unknown} fn
 * @param {number} [ms]
 * @param {string} [what]
 */
export async function until(fn, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A scheduler and distributor for one service on the real clock (what the
 * Python daemons do for every service), until stop().
 * @param {Client} client
 * @param {string} service
 */
export function runScheduler(client, service) {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await client.promote(service);
        await client.distribute(service);
      } catch {
        // Redis may be restarting: try again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/**
 * Start a worker and make sure it is shut down after the file's tests even
 * when a test fails before its own shutdown (a running worker would keep the
 * test process alive).
 * @param {import("../src/index.js").Worker} worker
 */
export async function started(worker) {
  after(() => worker.shutdown());
  await worker.start();
  return worker;
}
