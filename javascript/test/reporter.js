// A terse reporter for `npm run test:terse` (what `make test` runs): a dot per
// passing test, an X per failing one, then each failure in full and one
// summary line. The default spec reporter prints every test and everything
// the tests log (~1,200 lines), which buries a failure; node's own `dot`
// reporter prints no summary, so a green run would not say what it ran.
//
//   node --test --test-reporter=./test/reporter.js test/*.test.js

import { inspect } from "node:util";

/** @param {AsyncIterable<{type: string, data: any}>} source */
export default async function* reporter(source) {
  /** @type {string[]} */
  const failures = [];
  /** @type {Record<string, string>} */
  const summary = {};
  let column = 0;
  for await (const { type, data } of source) {
    if ((type === "test:pass" || type === "test:fail") && data.details?.type !== "suite") {
      const failed = type === "test:fail" && !data.todo;
      if (failed) {
        const where = data.file ? ` (${data.file}${data.line ? `:${data.line}` : ""})` : "";
        const error = inspect(data.details?.error?.cause ?? data.details?.error, { depth: 4 });
        failures.push(`✖ ${data.name}${where}\n${error.replace(/^/gm, "    ")}`);
      }
      yield failed ? "X" : ".";
      if (++column % 80 === 0) yield "\n";
    } else if (type === "test:fail" && data.details?.type === "suite" && !data.todo && data.details?.error) {
      // A describe() block whose hook or body threw: its tests may not have run.
      const error = inspect(data.details.error.cause ?? data.details.error, { depth: 4 });
      failures.push(`✖ ${data.name} (suite)\n${error.replace(/^/gm, "    ")}`);
    } else if (type === "test:diagnostic" && data.nesting === 0) {
      // The runner's closing counts: "tests 12", "pass 11", ...
      const m = /^(\w+) ([\d.]+)$/.exec(data.message);
      if (m) summary[m[1]] = m[2];
    }
  }
  yield "\n";
  if (failures.length) yield `\n${failures.join("\n\n")}\n\n`;
  const seconds = (Number(summary.duration_ms ?? 0) / 1000).toFixed(1);
  yield `${summary.tests ?? "?"} tests: ${summary.pass ?? 0} passed, ${summary.fail ?? 0} failed, ` +
    `${summary.skipped ?? 0} skipped, ${summary.cancelled ?? 0} cancelled (${seconds} s)\n`;
}
