// ACL users and TLS, as docs/security.md prescribes them, on a private TLS-only
// redis-server (test/tls.js): a CA this file makes with openssl, client
// certificates required, the default user off, and the users made with the
// very ACL SETUSER lines of docs/security.md. The JavaScript producer and
// Worker (and the daemons: Python's `homing daemon` when the repository's venv
// exists, else the JavaScript client's own promote/distribute) each run as
// their role's user, and no command is refused on the way. A user missing one
// listed command fails. (python/tests/test_security.py checks the lists
// against the scripts.)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";

import { createClient } from "redis";

import { Client, ConnectionLostError, Consumer, HomingError, Worker } from "../src/index.js";
import { NO_PYTHON, PYTHON } from "./fixtures/interop.js";
import { recordingLogger, runScheduler, started } from "./helpers.js";
import { TlsRedisServer, makeCerts, noTls } from "./tls.js";

const DOC = new URL("../../docs/security.md", import.meta.url);
const PASSWORD = "test-password-1";

/** The ACL SETUSER lines of docs/security.md: user -> rules, the password in place. */
function docUsers() {
  /** @type {Map<string, string[]>} */
  const users = new Map();
  for (const line of readFileSync(DOC, "utf8").split("\n")) {
    if (!line.startsWith("ACL SETUSER ")) continue;
    const [, , user, ...rules] = line.trim().split(/\s+/);
    users.set(user, rules.map((r) => (r === ">CHANGE-ME" ? `>${PASSWORD}` : r)));
  }
  return users;
}

const skip = noTls();
const dir = mkdtempSync(path.join(tmpdir(), "homing-js-tls-"));
/** @type {TlsRedisServer | null} */
let server = null;
/** @type {any} */
let admin = null;
after(async () => {
  await admin?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});
if (!skip) {
  server = await new TlsRedisServer(makeCerts(dir)).start();
  admin = createClient({ url: server.url, socket: { ...server.redisOptions().socket, reconnectStrategy: false } });
  admin.on("error", () => {});
  await admin.connect();
  for (const [user, rules] of docUsers()) await admin.sendCommand(["ACL", "SETUSER", user, ...rules]);
  await admin.sendCommand(["ACL", "LOG", "RESET"]);
}
const srv = () => /** @type {TlsRedisServer} */ (server);

/**
 * A homing client as user, over TLS.
 * @param {string} user
 * @param {Record<string, any>} [redisOptions]
 */
function connectAs(user, redisOptions = srv().redisOptions()) {
  return Client.connect(srv().urlFor(user, PASSWORD), { redisOptions });
}

/**
 * ACL LOG as objects, without the refusals clients expect and cope with: CLIENT
 * SETINFO (Redis 7.2+, ignored by the client libraries) and CONFIG GET (the
 * durability settings: optional, INFO is used instead).
 */
async function refusals() {
  /** @type {any[][]} */
  const log = await admin.sendCommand(["ACL", "LOG"]);
  return log
    .map((entry) => Object.fromEntries(Array.from({ length: entry.length / 2 }, (_, i) => [String(entry[2 * i]), entry[2 * i + 1]])))
    .filter((e) => !["client|setinfo", "client", "config|get"].includes(String(e.object)))
    .map((e) => ({ user: String(e.username), object: String(e.object), context: String(e.context) }));
}

/** Redis's reason for a refused command (7.0 does not name one refused inside a script). */
const refused = (/** @type {string} */ cmd) =>
  new RegExp(`no permissions to run the '${cmd}'|can't run this command or subcommand`);

class Echo extends Consumer {
  /** @param {any} event @param {unknown} state */
  async handleEvent(event, state) {
    await this.complete(event.service, event.id, { echo: event.payload, attempt: event.attempt });
    return state;
  }
}

/** The daemons as the homing-daemon user: Python's `homing daemon`, or the JS client's steps. */
async function daemons(/** @type {string} */ service) {
  if (NO_PYTHON) {
    const client = await connectAs("homing-daemon");
    const loop = runScheduler(client, service);
    return { how: "js", stop: async () => { await loop.stop(); await client.close(); return ""; } };
  }
  const { caFile, certFile, keyFile } = srv().certs;
  const proc = spawn(PYTHON, [
    "-m", "homing", "--redis-url", srv().urlFor("homing-daemon", PASSWORD),
    "--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile, "daemon", "--interval", "0.02",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  proc.stderr.on("data", (d) => { err += d; });
  proc.stdout.resume();
  after(() => proc.kill("SIGKILL"));
  return {
    how: "python",
    stop: async () => {
      const exited = once(proc, "exit");
      proc.kill("SIGTERM");
      const [code] = await exited;
      assert.equal(code, 0, err);
      return err;
    },
  };
}

test("JS producer and Worker, and the daemons, each as its docs/security.md user over TLS", { skip }, async () => {
  const service = "sec-js";
  const producer = await connectAs("homing-producer");
  after(() => producer.close());
  const workerClient = await connectAs("homing-worker");
  after(() => workerClient.close());
  const logger = recordingLogger();
  const worker = await started(new Worker(workerClient, service, Echo, { graceMs: 2000, logger }));
  const daemon = await daemons(service);
  try {
    const id = await producer.enqueue(service, { city: "Oslo" });
    const timer = await producer.createTimer(service, "later", { delayMs: 100 });
    assert.deepEqual(await producer.result(service, id, { timeoutMs: 10000 }), { echo: { city: "Oslo" }, attempt: 1 });
    assert.deepEqual(await producer.result(service, timer, { timeoutMs: 10000 }), { echo: "later", attempt: 1 });
    const never = await producer.createTimer(service, "never", { delayMs: 60000 });
    assert.equal(await producer.cancelTimer(service, never), true);
  } finally {
    await worker.shutdown();
    const err = await daemon.stop();
    assert.doesNotMatch(err, /Traceback|retrying/, err); // no daemon call was refused
  }
  assert.deepEqual(logger.lines.filter((l) => /retrying|permission|can't run/.test(l.text)), []);
  assert.deepEqual(await refusals(), []);
});

test("a user lacking one listed command is refused, and ACL LOG names the command", { skip }, async () => {
  for (const [user, dropped, call] of [
    ["homing-producer", "time", (/** @type {Client} */ c) => c.enqueue("sec-js-neg", 1)],
    ["homing-worker", "evalsha", (/** @type {Client} */ c) => c.dequeue("sec-js-neg")],
  ]) {
    const name = `${user}-no-${dropped}`;
    await admin.sendCommand(["ACL", "SETUSER", name, ...(docUsers().get(String(user)) ?? []), `-${dropped}`]);
    const client = await connectAs(name);
    try {
      await assert.rejects(/** @type {any} */ (call)(client), (/** @type {any} */ exc) => {
        assert.ok(exc instanceof HomingError, String(exc));
        assert.match(exc.message, refused(String(dropped)));
        return true;
      });
      assert.deepEqual((await refusals()).map((e) => [e.user, e.object]), [[name, dropped]]);
    } finally {
      await client.close();
      await admin.sendCommand(["ACL", "DELUSER", name]);
      await admin.sendCommand(["ACL", "LOG", "RESET"]);
    }
  }
});

test("TLS needs the CA and a client certificate", { skip }, async () => {
  const { ca, cert, key } = srv().certs;
  await assert.rejects(connectAs("homing-producer", { socket: { ca } }), ConnectionLostError);
  await assert.rejects(connectAs("homing-producer", { socket: { cert, key } }), (/** @type {any} */ exc) => {
    assert.ok(exc instanceof ConnectionLostError, String(exc));
    assert.match(exc.message, /self[- ]signed|unable to (get|verify)/i);
    return true;
  });
  await assert.rejects(
    Client.connect(srv().urlFor("homing-producer", "wrong"), { redisOptions: srv().redisOptions() }),
    /WRONGPASS|invalid username-password/,
  );
});
