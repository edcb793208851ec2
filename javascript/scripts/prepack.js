// npm prepack: put the manifest (and the error classes generated from the
// same lua/ sources) into the package. In the repository this runs the Lua
// build, so a packed tarball can never carry a stale manifest; outside it
// (no lua/ beside us) the committed copies are packed as they are.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("..", import.meta.url));
// Where to write; the tests point it at a temporary folder so that checking
// this script never rewrites the working tree.
const out = process.env.HOMING_PREPACK_OUT ?? pkg;
const build = fileURLToPath(new URL("../../lua/build.py", import.meta.url));

if (existsSync(build)) {
  mkdirSync(path.join(out, "src"), { recursive: true });
  const res = spawnSync("python3", [build, "--out", "manifest.json", "--js-errors", "src"], {
    cwd: out,
    stdio: "inherit",
  });
  if (res.status !== 0) {
    console.error("prepack: lua/build.py failed; not packing a stale manifest");
    process.exit(1);
  }
} else if (!existsSync(new URL("../manifest.json", import.meta.url))) {
  console.error("prepack: manifest.json is missing and lua/build.py is not here to make it");
  process.exit(1);
}
