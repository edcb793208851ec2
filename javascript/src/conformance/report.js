// The pass/fail table the conformance command prints
// (python/homing/conformance/report.py, line for line).

/** @typedef {import("./runner.js").Report} Report */

/** @param {number} count @param {string} noun */
const n = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

/**
 * A per-operation table, the failures in detail, and a one-line verdict.
 * @param {Report} report
 * @param {{verbose?: boolean}} [options]
 */
export function render(report, options = {}) {
  /** @type {Map<string, [number, number]>} operation -> [passed, failed] */
  const ops = new Map();
  for (const r of report.results) {
    const counts = ops.get(r.operation) ?? [0, 0];
    counts[r.passed ? 0 : 1] += 1;
    ops.set(r.operation, counts);
  }
  const width = Math.max("operation".length, ...[...ops.keys()].map((op) => op.length));
  const lines = [`homing conformance on ${report.server} (prefix ${report.prefix})`, ""];
  lines.push(`${"operation".padEnd(width)}  ${"vectors".padStart(7)}  ${"passed".padStart(6)}  ${"failed".padStart(6)}  result`);
  lines.push(`${"-".repeat(width)}  -------  ------  ------  ------`);
  for (const [op, [ok, bad]] of ops) {
    const verdict = bad === 0 ? "PASS" : "FAIL";
    lines.push(`${op.padEnd(width)}  ${String(ok + bad).padStart(7)}  ${String(ok).padStart(6)}  ${String(bad).padStart(6)}  ${verdict}`);
  }
  const failures = report.results.filter((r) => !r.passed);
  const shown = options.verbose ? report.results : failures;
  if (shown.length) {
    lines.push("", options.verbose ? "vectors:" : "failures:");
    for (const r of shown) {
      lines.push(`  ${r.passed ? "ok  " : "FAIL"} ${r.operation}: ${r.name}`);
      if (r.detail) lines.push(`       ${r.detail}`);
    }
  }
  const total = report.results.length;
  lines.push("");
  if (!total) {
    lines.push("FAIL: no vectors ran (check --filter)");
  } else if (failures.length) {
    const failedOps = [...ops.values()].filter(([, bad]) => bad).length;
    lines.push(`FAIL: ${failures.length} of ${total} vectors failed in ${failedOps} of ${n(ops.size, "operation")}`);
  } else {
    lines.push(`PASS: all ${total} vectors passed in ${n(ops.size, "operation")}`);
  }
  return lines.join("\n");
}
