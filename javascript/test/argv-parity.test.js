// Both ports read one call table, so for the same arguments they must send the
// same ARGV, byte for byte, or refuse with the same error code before
// anything is sent. Checked for every call step of the conformance vectors
// (good and bad input alike): fixtures/argv.py builds them with Python's
// layer (homing/ops.py), this file with ours (src/calls.js), no Redis needed.
// Skipped without the repository's venv, as the interop tests are.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { DEFAULT_MAX_PAYLOAD } from "../src/manifest.js";
import { HomingError, ops } from "../src/index.js";
import { REPO_VECTORS, loadSuite, toValue } from "../src/conformance/loader.js";
import { NO_PYTHON, PYTHON } from "./fixtures/interop.js";

const SCRIPT = fileURLToPath(new URL("./fixtures/argv.py", import.meta.url));
const hex = (/** @type {string | Buffer} */ a) => (Buffer.isBuffer(a) ? a : Buffer.from(a)).toString("hex");

test("every vector's call step: the same ARGV as Python's, or the same refusal", { skip: NO_PYTHON }, () => {
  const python = JSON.parse(execFileSync(PYTHON, [SCRIPT, REPO_VECTORS], { encoding: "utf8", maxBuffer: 1 << 28 }));
  /** @type {{where: string, js: unknown}[]} */
  const ours = [];
  for (const vector of loadSuite().vectors) {
    const maxPayload = vector.client?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    vector.steps.forEach((/** @type {any} */ step, /** @type {number} */ i) => {
      if (!("call" in step)) return;
      const where = `${vector.source} "${vector.name}" step ${i + 1} (${step.call})`;
      try {
        const c = ops.call(step.call, step.service ?? "svc", toValue(step.args ?? {}), maxPayload);
        ours.push({ where, js: { argv: c.args.map(hex) } });
      } catch (exc) {
        if (!(exc instanceof HomingError)) throw exc;
        ours.push({ where, js: { error: exc.code } });
      }
    });
  }
  assert.equal(ours.length, python.length, "both ports saw the same steps");
  const differ = ours.filter((s, i) => JSON.stringify(s.js) !== JSON.stringify(python[i]))
    .map((s) => `${s.where}: JavaScript ${JSON.stringify(s.js)}, Python ${JSON.stringify(python[ours.indexOf(s)])}`);
  assert.deepEqual(differ, []);
  assert.ok(ours.filter((s) => "error" in /** @type {object} */ (s.js)).length > 20, "refusals are compared too");
});

// The refusal texts are the table's (manifest `refusals`), so the two ports word
// a refusal alike: for arguments whose name and value both ports spell the
// same (one word; a number or a text-free value), the message is the same text.
test("a refusal reads the same in both ports: the table's text", { skip: NO_PYTHON }, () => {
  const cases = [
    ["dequeue", { count: 0 }], ["dequeue", { count: 2.5 }], ["dead_list", { offset: -1 }],
    ["progress", { id: "a", token: 1, value: 101 }], ["extend_lease", { id: "a", token: -1 }],
    ["fail", { id: "a", token: 1, reason: 5 }], ["promote", { limit: 0 }], ["recurring_list", { count: 1001 }],
  ];
  const code = `import json, sys
from homing import ops
from homing.errors import HomingError
out = []
for name, args in json.loads(sys.argv[1]):
    try:
        ops.call(name, "svc", 1000, **args)
        out.append(None)
    except HomingError as exc:
        out.append(str(exc))
print(json.dumps(out))`;
  const python = JSON.parse(execFileSync(PYTHON, ["-c", code, JSON.stringify(cases)], { encoding: "utf8" }));
  const ours = cases.map(([name, args]) => {
    try {
      ops.call(/** @type {string} */ (name), "svc", /** @type {any} */ (args), 1000);
      return null;
    } catch (exc) {
      return /** @type {Error} */ (exc).message;
    }
  });
  assert.deepEqual(ours, python);
  assert.ok(ours.every((m) => typeof m === "string" && m.includes(", got ")), "each case is refused");
});

// What no vector can hold (their lint refuses an unknown argument name and a
// missing required one), as erlang/test/argv.py's CASES hold it for Erlang: an
// unknown name, a fraction of an ms, text missing or null, a token as text. Each must build
// Python's ARGV, or be refused with Python's code and words (the message
// without the value refused: None and null, undefined and absent are each
// port's own). Argument names are single words, or ARGV only, so that the
// words need no renaming; null stands for Python's None.
test("the call-layer cases: an unknown name, an ms fraction, missing text, a text token, as Python", { skip: NO_PYTHON }, () => {
  const beat = { name: "w", service: "s", pid: 1, concurrency: 1, held: 0, every_ms: 1000 };
  /** @type {[string, Record<string, unknown>][]} */
  const cases = [
    ["dequeue", { bogus: 1 }], ["dequeue", { count: 1, colour: "red", bogus: 1 }], ["enqueue", { payload: 1, prority: 3 }],
    ["create_timer", { payload: 1, id: "t1", delay_ms: 1.5 }], ["create_timer", { payload: 1, id: "t1", delay_ms: 0.999 }],
    ["create_timer", { payload: 1, id: "t1", at_ms: 1500.7 }],
    ["worker_beat", { ...beat, host: "h", every_ms: 1000.7, forget_ms: 2.5 }],
    ["due_settle", { claim: 2 ** 50, items: [{ service: "s", next_due: 1500.5 }] }],
    ["worker_beat", beat], ["worker_beat", { ...beat, host: null }], ["fail", { id: "e1", token: 1, reason: null }],
    ["fail", { id: "e1", token: 1 }], ["recurring_put", { name: "r", payload: 1, cron: null }], ["beat", {}],
    ["cancel", {}],
    // a lease token is an integer (text refused, as Python and Erlang refuse it; a
    // whole float cannot be told from an integer here, nor sent as one in JSON)
    ["complete", { id: "e1", token: "5" }], ["complete", { id: "e1", token: true }],
    ["complete", { id: "e1", token: 2 ** 53 - 1 }], ["complete", { id: "e1", token: 2 ** 53 }],
    ["start", { items: [{ id: "e1", token: "7" }] }], ["snooze", { id: "e1", token: "5", delay_ms: 1000 }],
  ];
  const code = `import json, sys
sys.path.insert(0, sys.argv[2])
import argv
for name, args in json.loads(sys.argv[1]):
    print(argv.outcome(name, "svc", args, argv.DEFAULT_MAX_PAYLOAD))`;
  const dir = fileURLToPath(new URL("../../erlang/test", import.meta.url));
  const python = execFileSync(PYTHON, ["-c", code, JSON.stringify(cases), dir], { encoding: "utf8" }).trim().split("\n");
  /** As argv.py's words: the message without the value refused, or "-". @param {string} c @param {string} m */
  const words = (c, m) => (c === "INVALID_NAME" ? m.replace(/^(invalid \w+ \w+) .*?(: use .*)$/s, "$1$2")
    : c === "INVALID_ARGUMENT" || c === "PAYLOAD_TOO_LARGE" ? m.replace(/, got (?:(?!, got )[\s\S])*$/, "") : "-");
  const ours = cases.map(([name, args]) => {
    try {
      return ["argv", ...ops.call(name, "svc", args, DEFAULT_MAX_PAYLOAD).args.map((a) => hex(a) || "-")].join(" ");
    } catch (exc) {
      if (!(exc instanceof HomingError)) throw exc;
      return `error ${exc.code} ${hex(words(exc.code, exc.message)) || "-"}`;
    }
  });
  assert.deepEqual(ours.map((o, i) => [cases[i][0], o]), python.map((p, i) => [cases[i][0], p]));
});
