// The shipped TypeScript declarations: they compile under strict settings,
// accept the documented usage (test/types/usage.ts, imported as "homing"
// through the package's exports map), and declare every runtime export.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import * as runtime from "../src/index.js";

let ts;
try {
  ts = (await import("typescript")).default;
} catch {
  ts = null;
}

test("the declarations type-check and cover every export", { skip: ts ? false : "typescript is not installed" }, () => {
  const usage = fileURLToPath(new URL("./types/usage.ts", import.meta.url));
  const program = ts.createProgram([usage], {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ["node"],
    skipLibCheck: false,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file?.fileName.includes("/node_modules/"));
  const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("\n");
  assert.equal(diagnostics.length, 0, text);

  const checker = program.getTypeChecker();
  const index = program.getSourceFiles().find((f) => f.fileName.endsWith("/src/index.d.ts"));
  assert.ok(index, "usage.ts resolves homing to src/index.d.ts");
  const declared = checker.getExportsOfModule(checker.getSymbolAtLocation(index)).map((s) => s.getName());
  const missing = Object.keys(runtime).filter((name) => !declared.includes(name));
  assert.deepEqual(missing, []);
});

test("the JavaScript sources type-check against their JSDoc (no unused code)", { skip: ts ? false : "typescript is not installed" }, async () => {
  const { readdirSync } = await import("node:fs");
  const src = fileURLToPath(new URL("../src/", import.meta.url));
  const files = readdirSync(src).filter((f) => f.endsWith(".js")).map((f) => src + f);
  const program = ts.createProgram(files, {
    allowJs: true,
    checkJs: true,
    noEmit: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.esnext.d.ts"],
    types: ["node"],
    skipLibCheck: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const text = diagnostics.map((d) => `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`).join("\n");
  assert.equal(diagnostics.length, 0, text);
});
