// A new script needs no JavaScript: a copy of lua/ and conformance/ gains a
// script (echo) with its typed header and its calls.json entry, lua/build.py
// builds the manifest, and a copy of this package with that manifest calls
// it through client.call against a private Redis, its arguments checked and
// its reply parsed by the table alone. (python/tests/test_calltable.py does
// the same for Python with the same script.)

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";

import { privateServer, uniquePrefix } from "./helpers.js";

const PKG = fileURLToPath(new URL("..", import.meta.url));
const ROOT = join(PKG, "..");

const ECHO = `--[[
@script echo
@version 1
@memory grows
@summary A test script: count calls and hand back what it was given.
@key counters
@arg times whole(1..5) how many times to repeat the word
@arg word name(20) the word
@arg loud bool 1: upper case
@return tuple(said:str,calls:int) the words, and how many echo calls there were
@error INVALID_ARGUMENT
]]
--@include base
argc(3)
local n = int_arg(1, 'times', 1, 5)
local w = ARGV[2]
if ARGV[3] == '1' then w = string.upper(w) end
local words = {}
for i = 1, n do words[i] = w end
return {table.concat(words, ' '), redis.call('HINCRBY', K.counters, 'echoes', 1)}
`;

// What the child runs in the package copy: only the public API.
const CHILD = `
import { Client } from "./src/index.js";
const client = await Client.connect(process.env.URL, { prefix: process.env.PREFIX });
const out = {};
out.once = await client.call("echo", "svc", { word: "hi" });
out.loud = await client.call("echo", "svc", { word: "hi", times: 3, loud: true });
for (const [name, args] of [["tooMany", { word: "hi", times: 6 }], ["empty", { word: "" }], ["colour", { word: "hi", colour: "red" }]]) {
  try {
    await client.call("echo", "svc", args);
  } catch (exc) {
    out[name] = exc.name + ": " + exc.message;
  }
}
out.echoes = String(await client.redis.hGet(process.env.PREFIX + ":{svc}:counters", "echoes"));
out.services = await client.services();
await client.close();
console.log(JSON.stringify(out));
`;

const server = await privateServer();
const tmp = mkdtempSync(join(tmpdir(), "homing-echo-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("a script with its header and calls.json entry is a JavaScript call with no code", () => {
  cpSync(join(ROOT, "lua"), join(tmp, "lua"), { recursive: true });
  cpSync(join(ROOT, "conformance"), join(tmp, "conformance"), { recursive: true });
  writeFileSync(join(tmp, "lua", "scripts", "echo.lua"), ECHO);
  const callsPath = join(tmp, "conformance", "calls.json");
  const calls = JSON.parse(readFileSync(callsPath, "utf8"));
  calls.calls.echo = {
    script: "echo", args: { times: "optional", word: "required", loud: "optional" },
    returns: "the words and the call count", defaults: { times: 1, loud: false },
  };
  writeFileSync(callsPath, JSON.stringify(calls));
  const manifest = execFileSync("python3", [join(tmp, "lua", "build.py")], { encoding: "utf8" });
  assert.deepEqual(JSON.parse(manifest).calls.echo.args.map((/** @type {any} */ a) => a.name), ["times", "word", "loud"]);

  const pkg = join(tmp, "pkg");
  cpSync(join(PKG, "src"), join(pkg, "src"), { recursive: true });
  cpSync(join(PKG, "package.json"), join(pkg, "package.json"));
  symlinkSync(join(PKG, "node_modules"), join(pkg, "node_modules"));
  writeFileSync(join(pkg, "manifest.json"), manifest);
  writeFileSync(join(pkg, "child.mjs"), CHILD);
  const prefix = uniquePrefix();
  const out = JSON.parse(execFileSync(process.execPath, ["child.mjs"], {
    cwd: pkg, encoding: "utf8", env: { ...process.env, URL: server.url, PREFIX: prefix },
  }));
  // A tuple with no record type is an array of its fields.
  assert.deepEqual(out.once, ["hi", 1]);
  assert.deepEqual(out.loud, ["HI HI HI", 2]);
  // The checks come from the header's types, before anything is sent.
  assert.match(out.tooMany, /^InvalidArgumentError: times must be a whole number in \[1, 5\], got 6$/);
  assert.match(out.empty, /^InvalidArgumentError: word must be 1\.\.20 bytes of text/);
  assert.match(out.colour, /^InvalidArgumentError: echo takes no argument colour$/);
  assert.equal(out.echoes, "2");
  assert.deepEqual(out.services, []); // its calls.json entry does not say it creates a service
});
