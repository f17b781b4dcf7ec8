#!/usr/bin/env node
// The project's one test command: static checks, then the whole suite on
// Deno, Bun and Node. It prints a summary per runtime and a last line
// "N passed, N failed" totalled over the three runtimes. It fails when any
// step fails or any runtime runs zero tests: a skipped runtime is a failure.
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const STEP_TIMEOUT_MS = 20 * 60 * 1000;
const env = { ...process.env, NO_COLOR: "1" };
// Deno reads any FORCE_COLOR, even "0", as "use colour".
delete env.FORCE_COLOR;
// deno-lint-ignore no-control-regex
const stripAnsi = (text) => text.replace(/\x1b\[[0-9;]*m/g, "");

function run(label, command, args, options = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`\n=== ${label}: ${[command, ...args].join(" ")}`);
    const child = spawn(command, args, {
      cwd: root,
      env: { ...env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const take = (stream, sink) =>
      stream.on("data", (chunk) => {
        output += chunk;
        sink.write(chunk);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    const timer = setTimeout(() => {
      console.log(`\n${label}: timed out after ${STEP_TIMEOUT_MS / 1000} s`);
      child.kill("SIGKILL");
    }, STEP_TIMEOUT_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      resolve({ label, code: code ?? 1, signal, output, seconds });
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ label, code: 1, output: String(error), seconds: "0" });
    });
  });
}

function testFiles() {
  return readdirSync(join(root, "tests"))
    .filter((f) => f.endsWith(".test.ts"))
    .sort()
    .map((f) => `tests/${f}`);
}

const lastNumber = (output, pattern) => {
  const all = [...output.matchAll(pattern)];
  return all.length ? Number(all[all.length - 1][1]) : undefined;
};

// Each runner's closing counts. Skipped tests are counted too, so a test
// that could not run (a Node version not installed) shows in the summary.
const parsers = {
  deno(output) {
    const m = [
      ...output.matchAll(
        /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/g,
      ),
    ].pop();
    return m
      ? {
        passed: Number(m[1]),
        failed: Number(m[2]),
        skipped: Number(m[3] ?? 0),
      }
      : undefined;
  },
  bun(output) {
    const passed = lastNumber(output, /^\s*(\d+) pass$/gm);
    const failed = lastNumber(output, /^\s*(\d+) fail$/gm);
    const skipped = lastNumber(output, /^\s*(\d+) skip$/gm) ?? 0;
    return passed === undefined
      ? undefined
      : { passed, failed: failed ?? 0, skipped };
  },
  node(output) {
    const passed = lastNumber(output, /^# pass (\d+)$/gm);
    const failed = lastNumber(output, /^# fail (\d+)$/gm);
    const cancelled = lastNumber(output, /^# cancelled (\d+)$/gm) ?? 0;
    const skipped = lastNumber(output, /^# skipped (\d+)$/gm) ?? 0;
    return passed === undefined
      ? undefined
      : { passed, failed: (failed ?? 0) + cancelled, skipped };
  },
};

const only = process.argv.slice(2);
const wants = (name) => only.length === 0 || only.includes(name);
const results = [];
const files = testFiles();

// Every entry point the package exports (deno.json), so a new sub-path is
// checked and linted without anyone remembering to add it here.
const entries = Object.values(
  JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports,
);

// Every example a user reads type-checks: the JSDoc blocks of the library
// and the kit, and the TypeScript blocks of the Markdown docs.
const sourceFiles = (dir) =>
  readdirSync(join(root, dir), { recursive: true })
    .map((f) => `${dir}/${f}`)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .sort();
const documentedFiles = [
  ...new Set([
    ...sourceFiles("src"),
    ...sourceFiles("testing"),
    ...entries.map((e) => e.replace(/^\.\//, "")),
  ]),
];
const markdownFiles = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

if (wants("static")) {
  const deno = bin("deno");
  for (
    const [label, args] of [
      ["deno fmt", ["fmt", "--check"]],
      ["deno lint", ["lint"]],
      ["deno check", [
        "check",
        ...entries,
        "tests/",
        "bench/",
        "scripts/",
      ]],
      ["deno check --doc", ["check", "--doc", ...documentedFiles]],
      ["deno check --doc-only", ["check", "--doc-only", ...markdownFiles]],
      ["deno doc --lint", ["doc", "--lint", ...entries]],
      // deno doc --lint asks for JSDoc; the house style asks for an @example.
      ["deno doc examples", [
        "run",
        "--allow-read",
        "--allow-run",
        "scripts/check-examples.ts",
      ]],
      ["deno publish --dry-run", ["publish", "--dry-run", "--allow-dirty"]],
    ]
  ) {
    results.push({ kind: "check", ...(await run(label, deno, args)) });
  }
}

// Node runs the suite against the JavaScript a Node user gets: the tarball
// scripts/pack.mjs builds (`deno pack` plus bin, engines and sideEffects),
// extracted, with the library's imports mapped to it.
const dist = join(root, ".tmp", "dist");
async function packForNode() {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  const tgz = join(dist, "nodewire.tgz");
  const pack = await run("pack", process.execPath, [
    "scripts/pack.mjs",
    "--allow-dirty",
    "-o",
    tgz,
  ]);
  if (pack.code !== 0) return pack;
  return await run("extract", "tar", ["xzf", tgz, "-C", dist]);
}

const runtimes = [
  // The soak test's heap check collects garbage first when it can (Bun always
  // can; Deno and Node need the flag): without gc() Deno counted 66 MiB of
  // garbage as growth after 300 s, -0.4 MiB with it.
  ["deno", bin("deno"), [
    "test",
    "-A",
    "--unstable-net",
    "--v8-flags=--expose-gc",
    ...files,
  ]],
  ["bun", bin("bun"), [
    "test",
    "--timeout",
    "60000",
    ...files.map((f) => `./${f}`),
  ]],
  ["node", process.execPath, [
    "--expose-gc",
    "--import",
    "tsx",
    "--import",
    "./scripts/dist-hooks.mjs",
    "--test",
    "--test-concurrency=1",
    ...files,
  ], { NODEWIRE_DIST: join(dist, "package") }],
];
const packed = runtimes.some(([name]) => wants(name))
  ? await packForNode()
  : { code: 0 };
if (packed.code !== 0) {
  results.push({ kind: "check", ...packed, label: "pack" });
}
for (const [name, command, args, extraEnv] of runtimes) {
  if (!wants(name) || packed.code !== 0) continue;
  if (!existsSync(command)) {
    results.push({
      kind: "runtime",
      label: name,
      code: 1,
      output: "",
      missing: true,
      seconds: "0",
    });
    continue;
  }
  const result = await run(`${name} tests`, command, args, {
    env: { NODEWIRE_TGZ: join(dist, "nodewire.tgz"), ...extraEnv },
  });
  results.push({
    kind: "runtime",
    name,
    counts: parsers[name](stripAnsi(result.output)),
    ...result,
    label: name,
  });
}

console.log("\n=== summary");
let passed = 0;
let failed = 0;
let skipped = 0;
let ok = true;
const skips = (n) => (n > 0 ? `, ${n} skipped` : "");
for (const r of results) {
  if (r.kind === "check") {
    console.log(
      `${r.code === 0 ? "ok  " : "FAIL"} ${r.label} (${r.seconds} s)`,
    );
    if (r.code !== 0) ok = false;
    continue;
  }
  const c = r.counts;
  if (r.missing) {
    console.log(`FAIL ${r.label}: runtime not installed (run npm ci)`);
    ok = false;
  } else if (!c) {
    console.log(`FAIL ${r.label}: no test summary found (exit ${r.code})`);
    ok = false;
  } else {
    const good = r.code === 0 && c.failed === 0 && c.passed > 0;
    console.log(
      `${
        good ? "ok  " : "FAIL"
      } ${r.label}: ${c.passed} passed, ${c.failed} failed${
        skips(c.skipped)
      } (exit ${r.code}, ${r.seconds} s)` +
        (c.passed === 0 ? " — ran zero tests" : ""),
    );
    passed += c.passed;
    failed += c.failed;
    skipped += c.skipped;
    if (!good) ok = false;
  }
}
if (!ok && failed === 0) failed = 1; // a failed check or a silent runtime still fails
console.log(`${passed} passed, ${failed} failed${skips(skipped)}`);
process.exit(ok ? 0 : 1);
