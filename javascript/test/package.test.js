// The package's generated and copied parts are fresh: the manifest is the one
// lua/build.py makes from lua/ (the same bytes the Python package ships), the
// error classes are generated from lua/errors.json, and prepack makes both.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MANIFEST, SCRIPTS } from "../src/manifest.js";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const build = path.join(pkg, "..", "lua", "build.py");
const inRepo = existsSync(build) ? false : "not in the homing repository (no lua/build.py)";
const tmp = mkdtempSync(path.join(tmpdir(), "homing-js-package-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** @param {string} rel */
const read = (rel) => readFileSync(path.join(pkg, rel), "utf8");

test("manifest.json is what lua/build.py makes from lua/", { skip: inRepo }, () => {
  const res = spawnSync("python3", [build, "--check", path.join(pkg, "manifest.json")], { encoding: "utf8" });
  assert.equal(res.status, 0, `stale manifest: ${res.stderr} (run: python3 lua/build.py --out javascript/manifest.json)`);
});

test("it is the same file the Python package loads", { skip: inRepo }, () => {
  assert.equal(read("manifest.json"), read("../python/homing/manifest.json"));
});

test("src/errors.js and src/errors.d.ts are freshly generated from lua/errors.json", { skip: inRepo }, () => {
  const out = path.join(tmp, "errors");
  mkdirSync(out, { recursive: true });
  const gen = spawnSync("python3", [build, "--js-errors", out], { encoding: "utf8" });
  assert.equal(gen.status, 0, gen.stderr);
  for (const f of ["errors.js", "errors.d.ts"]) {
    assert.equal(read(`src/${f}`), readFileSync(path.join(out, f), "utf8"),
      `src/${f} is stale: run python3 lua/build.py --js-errors javascript/src`);
  }
});

test("prepack builds the manifest and the error classes", { skip: inRepo }, () => {
  const out = path.join(tmp, "prepack");
  const res = spawnSync(process.execPath, [path.join(pkg, "scripts", "prepack.js")], {
    env: { ...process.env, HOMING_PREPACK_OUT: out },
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(readFileSync(path.join(out, "manifest.json"), "utf8"), read("manifest.json"));
  assert.equal(readFileSync(path.join(out, "src", "errors.js"), "utf8"), read("src/errors.js"));
});

test("the loaded manifest is complete: every script has a sha1 of its source and its keys", async () => {
  const { createHash } = await import("node:crypto");
  assert.equal(MANIFEST.format, 2);
  assert.ok(Object.keys(SCRIPTS).length >= 16);
  for (const s of Object.values(SCRIPTS)) {
    assert.equal(createHash("sha1").update(s.source).digest("hex"), s.sha1, s.name);
    const { service_keys: service, global_keys: global } = MANIFEST.layout;
    assert.ok(s.keys.every((k) => Object.hasOwn(service, k) || Object.hasOwn(global, k)), s.name);
    assert.ok(["grows", "level", "none", "checked"].includes(s.memory), s.name);
  }
});

test("package.json ships ESM with types for Node 20+", () => {
  const meta = JSON.parse(read("package.json"));
  assert.equal(meta.name, "homing");
  assert.equal(meta.type, "module");
  assert.equal(meta.engines.node, ">=20");
  assert.equal(meta.exports["."].types, "./src/index.d.ts");
  assert.equal(meta.exports["."].default, "./src/index.js");
  // test/ also holds helpers and fixtures, which `node --test test/` would run as tests.
  assert.equal(meta.scripts.test, "node --test test/*.test.js");
  for (const f of ["src/index.js", "src/index.d.ts", "src/errors.d.ts", "manifest.json", "README.md"]) {
    assert.ok(existsSync(path.join(pkg, f)), f);
  }
  const lock = JSON.parse(read("package-lock.json"));
  assert.deepEqual(lock.packages[""].dependencies, meta.dependencies, "package-lock.json is in step");
});
