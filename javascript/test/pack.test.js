// npm pack -> install the tarball into an empty folder: what a user gets from
// the registry, the packed files only, dependencies from npm. There
//
// - every JavaScript block of the repository's README.md and of
//   javascript/README.md runs as written against a private Redis and exits
//   by itself with status 0 (a worker once sent SIGTERM: the documented
//   pattern releases what it holds and exits);
// - the type declarations compile under `strict` in a fresh TypeScript
//   project that has nothing but the package and TypeScript (no @types/node),
//   for a consumer (test/types/consumer.ts) that names every export.
//
// A README block is preceded by `<!-- example: NAME [options] -->`; the
// options say what the test does around it: `feed=SERVICE` enqueues FED
// events into SERVICE (default prefix) first, `sigterm=SERVICE` feeds it too
// and sends SIGTERM once the program holds all of them, `replica` gives the
// server a replica (for an example with waitReplicas), `needs=PACKAGE` is
// an npm package the example imports besides homing (installed into the
// folder at the version javascript/package-lock.json has).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client } from "../src/index.js";
import { until } from "./helpers.js";
import { RedisServer } from "./servers.js";
import { ReplicaServer } from "./sentinel-servers.js";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const repo = path.join(pkg, "..");
const tmp = mkdtempSync(path.join(tmpdir(), "homing-js-pack-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const app = path.join(tmp, "app");
/** How many events a feed= or sigterm= example is given. */
const FED = 50;
/** How long an example may take to exit (after its SIGTERM, for a worker). */
const EXIT_WITHIN_MS = 60000;

/**
 * Every ```js block of a README with the options of the `<!-- example: -->`
 * comment before it (null where there is none: the test fails for it).
 * @param {string} file
 */
function readmeBlocks(file) {
  const text = readFileSync(file, "utf8");
  const blocks = [];
  for (const m of text.matchAll(/(?:<!-- example: ([^>]*?) -->\s*)?```js\n([\s\S]*?)```/g)) {
    const line = text.slice(0, m.index).split("\n").length;
    const [name, ...opts] = (m[1] ?? "").split(/\s+/);
    const options = Object.fromEntries(opts.map((o) => [o.split("=")[0], o.split("=")[1] ?? true]));
    blocks.push({ where: `${path.relative(repo, file)}:${line}`, name: m[1] ? name : null, options, code: m[2] });
  }
  return blocks;
}

const BLOCKS = [
  ...(existsSync(path.join(repo, "README.md")) ? readmeBlocks(path.join(repo, "README.md")) : []),
  ...readmeBlocks(path.join(pkg, "README.md")),
];

/** @param {string[]} args @param {string} cwd */
function npm(args, cwd) {
  const res = spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 240000 });
  assert.equal(res.status, 0, `npm ${args.join(" ")} failed:\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

before(() => {
  // --ignore-scripts: prepack would rewrite the working tree (package.test.js
  // checks prepack itself); the tarball must carry the committed, fresh copies.
  const [info] = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", tmp], pkg));
  const files = info.files.map((/** @type {{path: string}} */ f) => f.path).sort();
  assert.ok(files.includes("manifest.json") && files.includes("src/index.d.ts"), files.join(" "));
  assert.deepEqual(files.filter((f) => !/^(src\/[\w-]+\.(js|d\.ts)|manifest\.json|README\.md|package\.json)$/.test(f)), []);
  mkdirSync(app);
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  npm(["install", "--no-audit", "--no-fund", path.join(tmp, info.filename)], app);
  // What an example imports besides homing (prom-client), as a user would add it.
  const lock = JSON.parse(readFileSync(path.join(pkg, "package-lock.json"), "utf8"));
  const needs = [...new Set(BLOCKS.map((b) => b.options.needs).filter((n) => typeof n === "string"))];
  const pinned = needs.map((n) => `${n}@${lock.packages[`node_modules/${n}`]?.version ?? "latest"}`);
  if (pinned.length) npm(["install", "--no-audit", "--no-fund", ...pinned], app);
});

test("the packed manifest is the one lua/ builds", () => {
  const installed = path.join(app, "node_modules", "homing", "manifest.json");
  const build = path.join(repo, "lua", "build.py");
  if (!existsSync(build)) return;
  const check = spawnSync("python3", [build, "--check", installed], { encoding: "utf8" });
  assert.equal(check.status, 0, `the packed manifest differs from lua/: ${check.stderr}`);
});

describe("every JavaScript block of the READMEs runs as written and exits", () => {
  test("each block is marked as an example", () => {
    assert.ok(BLOCKS.length >= 7, `found ${BLOCKS.length} blocks`);
    assert.deepEqual(BLOCKS.filter((b) => b.name === null).map((b) => b.where), [],
      "a ```js block with no <!-- example: NAME --> before it");
  });

  for (const block of BLOCKS.filter((b) => b.name !== null)) {
    test(`${block.name} (${block.where})`, { timeout: 120000 }, async () => {
      const server = await new RedisServer().start();
      /** @type {ReplicaServer | null} */
      let replica = null;
      const client = await Client.connect(server.url, { logger: { warn() {} } });
      try {
        if (block.options.replica) {
          replica = await new ReplicaServer(server.port).start();
          await replica.synced();
        }
        const service = block.options.sigterm ?? block.options.feed;
        if (service) await client.enqueueMany(service, Array.from({ length: FED }, (_, i) => ({ sku: `A-${i}`, qty: 1 })));
        const file = path.join(app, `${block.name}.mjs`);
        writeFileSync(file, block.code);
        const child = spawn(process.execPath, [file], {
          cwd: app,
          env: { ...process.env, REDIS_URL: server.url },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        let errors = "";
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (errors += d));
        /** @type {number | string | null} */
        let status = null;
        once(child, "exit").then(([code, signal]) => (status = code ?? signal));
        try {
          if (block.options.sigterm) {
            // Once the worker holds every event (or has finished with them).
            await until(async () => {
              const st = await client.stats(service);
              return status !== null || st.ready === 0;
            }, 20000, `${block.name} to lease the ${FED} events`);
            child.kill("SIGTERM");
          }
          await until(() => status !== null, EXIT_WITHIN_MS, `${block.name} to exit`);
        } finally {
          child.kill("SIGKILL");
        }
        assert.equal(status, 0, `${block.where} exited with ${status}:\n${output}${errors}`);
        if (block.name === "quickstart") assert.equal(output, "sum: 42\n");
        if (block.name === "overview") assert.match(output, /^posted Oslo\n/);
        if (block.name === "prometheus") assert.match(output, /^homing_events_ready\{service="weather"\} \d+$/m);
        if (service) {
          // Nothing left leased: what the worker did not complete is back in ready.
          const st = await client.stats(service);
          assert.equal(st.in_flight, 0, `${block.where}: events left leased after the exit`);
          assert.equal(st.ready + (st["total.completed"] ?? 0) + st.retrying + st.dead, FED,
            JSON.stringify(st));
          if (block.name === "consumer") assert.ok(st.ready > 0 && st["total.released"] > 0, JSON.stringify(st));
        }
      } finally {
        await client.close();
        await replica?.close();
        await server.close();
      }
    });
  }
});

describe("the type declarations in a fresh TypeScript project", () => {
  const consumer = path.join(pkg, "test", "types", "consumer.ts");
  const tsc = path.join(pkg, "node_modules", "typescript", "bin", "tsc");
  const skip = existsSync(tsc) ? false : "typescript (a devDependency) is not installed";

  test("the consumer names every export of homing and every member of its namespaces", { skip }, async () => {
    const homing = await import(path.join(app, "node_modules", "homing", "src", "index.js"));
    const source = readFileSync(consumer, "utf8");
    const named = (/** @type {string} */ name) => new RegExp(`\\b${name.replace(".", "\\.")}\\b`).test(source);
    const runtime = Object.entries(homing).flatMap(([name, value]) =>
      /^[a-z]/.test(name) && typeof value === "object" ? Object.keys(value).map((m) => `${name}.${m}`) : [name]);
    // The declared types, read off the shipped index.d.ts.
    const dts = readFileSync(path.join(app, "node_modules", "homing", "src", "index.d.ts"), "utf8");
    const types = [...dts.matchAll(/^export (?:type|interface) (\w+)/gm)].map((m) => m[1]);
    assert.deepEqual([...runtime, ...types].filter((n) => !named(n)), []);
  });

  for (const [label, flags] of [
    ["lib ES2022 alone (no DOM)", ["--target", "es2022", "--lib", "es2022"]],
    ["TypeScript's default libs", []],
  ]) {
    test(`consumer.ts compiles under --strict with ${label}, no @types/node`, { skip }, () => {
      const project = path.join(tmp, `ts-${flags.length}`);
      mkdirSync(project, { recursive: true });
      cpSync(consumer, path.join(project, "consumer.ts"));
      // The fresh project resolves "homing" from the app's node_modules (the
      // installed tarball), which holds no @types at all.
      assert.ok(!existsSync(path.join(app, "node_modules", "@types", "node")), "no @types/node in the project");
      writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "ts", private: true, type: "module" }));
      cpSync(path.join(app, "node_modules"), path.join(project, "node_modules"), { recursive: true, verbatimSymlinks: true });
      const res = spawnSync(process.execPath, [tsc, "--strict", "--noEmit", "--module", "nodenext", ...flags,
        "consumer.ts"], { cwd: project, encoding: "utf8" });
      assert.equal(res.status, 0, `tsc ${flags.join(" ")}:\n${res.stdout}${res.stderr}`);
    });
  }
});
