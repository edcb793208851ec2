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
