#!/usr/bin/env node
// The conformance suite from a checkout, with the JavaScript client:
//
//   node javascript/src/conformance/cli.js --redis-url redis://127.0.0.1:6380/0
//
// Same options and exit codes as Python's `homing conformance`: --prefix P,
// --filter OP (repeatable; 'envelope' for the wire vectors), --vectors DIR
// (default: the repository's conformance/), --verbose. Exits 0 when every
// vector passed, 1 when one failed, 2 when the suite could not run. It lives
// in the repository only (the npm package does not ship it or the vectors).

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { HomingError } from "../errors.js";
import { checkPrefix } from "../manifest.js";
import { VectorFileError, loadSuite, operations } from "./loader.js";
import { render } from "./report.js";
import { PrefixInUseError, passed, runSuite } from "./runner.js";

/**
 * @param {string[]} argv
 * @returns {Promise<number>} the exit code
 */
export async function main(argv) {
  let opts;
  try {
    ({ values: opts } = parseArgs({
      args: argv,
      options: {
        "redis-url": { type: "string", default: process.env.HOMING_REDIS_URL },
        prefix: { type: "string" },
        filter: { type: "string", multiple: true, default: [] },
        vectors: { type: "string" },
        verbose: { type: "boolean", default: false },
      },
    }));
    if (!opts["redis-url"]) throw new TypeError("--redis-url is required (or HOMING_REDIS_URL)");
  } catch (exc) {
    console.error(`error: ${exc instanceof Error ? exc.message : exc}`);
    return 2;
  }
  let report;
  try {
    if (opts.prefix !== undefined) checkPrefix(opts.prefix);
    const suite = loadSuite(opts.vectors);
    const known = new Set(["envelope", ...operations(suite)]);
    const unknown = opts.filter.filter((f) => !known.has(f));
    if (unknown.length) {
      throw new VectorFileError(`unknown operation ${unknown.join(", ")}; known: ${[...known].sort().join(", ")}`);
    }
    report = await runSuite(opts["redis-url"], suite, { prefix: opts.prefix, operations: opts.filter });
  } catch (exc) {
    // The suite could not run at all (as opposed to vectors failing): exit 2.
    if (!(exc instanceof VectorFileError || exc instanceof PrefixInUseError || exc instanceof HomingError)) throw exc;
    const code = exc instanceof HomingError ? exc.code : exc.name;
    console.error(`error: ${code}: ${exc.message}`);
    return 2;
  }
  console.log(render(report, { verbose: opts.verbose }));
  return passed(report) ? 0 : 1;
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
