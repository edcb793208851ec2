// npm pack -> install the tarball into an empty folder -> the README's
// quick-start example runs there against a private Redis. This is what a
// user gets from the registry: the packed files only, dependencies from npm.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

import { privateServer } from "./helpers.js";

const pkg = fileURLToPath(new URL("..", import.meta.url));
const tmp = mkdtempSync(path.join(tmpdir(), "homing-js-pack-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const server = await privateServer();

/** The code block that follows `<!-- example: NAME -->` in the README. */
function readmeExample(/** @type {string} */ name) {
  const readme = readFileSync(path.join(pkg, "README.md"), "utf8");
  const m = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README has an example named ${name}`);
  return m[1];
}

/** @param {string[]} args @param {string} cwd */
function npm(args, cwd) {
  const res = spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 240000 });
  assert.equal(res.status, 0, `npm ${args.join(" ")} failed:\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

test("the packed tarball installs into an empty folder and runs the README example", { timeout: 300000 }, () => {
  // --ignore-scripts: prepack would rewrite the working tree (package.test.js
  // checks prepack itself); the tarball must carry the committed, fresh copies.
  const [info] = JSON.parse(npm(["pack", "--json", "--ignore-scripts", "--pack-destination", tmp], pkg));
  const files = info.files.map((/** @type {{path: string}} */ f) => f.path).sort();
  assert.ok(files.includes("manifest.json") && files.includes("src/index.d.ts"), files.join(" "));
  assert.deepEqual(files.filter((f) => !/^(src\/[\w-]+\.(js|d\.ts)|manifest\.json|README\.md|package\.json)$/.test(f)), []);

  const app = path.join(tmp, "app");
  mkdirSync(app);
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  npm(["install", "--no-audit", "--no-fund", path.join(tmp, info.filename)], app);

  const installed = path.join(app, "node_modules", "homing", "manifest.json");
  const build = path.join(pkg, "..", "lua", "build.py");
  if (existsSync(build)) {
    const check = spawnSync("python3", [build, "--check", installed], { encoding: "utf8" });
    assert.equal(check.status, 0, `the packed manifest differs from lua/: ${check.stderr}`);
  }

  writeFileSync(path.join(app, "quickstart.js"), readmeExample("quickstart"));
  const run = spawnSync(process.execPath, ["quickstart.js"], {
    cwd: app,
    env: { ...process.env, REDIS_URL: server.url },
    encoding: "utf8",
    timeout: 30000,
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, "sum: 42\n");
});
