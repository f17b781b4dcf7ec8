// The README's main job, run end to end in its fast mode on this runtime:
// three nodes, one stopped and started again, every request answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process: {
    execPath: string;
    execArgv: string[];
    env: Record<string, string | undefined>;
  };
};

test("the demo shows a node failing and recovering, and exits 0", async () => {
  const demo = fileURLToPath(new URL("../scripts/demo.ts", import.meta.url));
  const args = g.Deno
    ? ["run", "-A", demo]
    : g.Bun
    ? [demo]
    : [...g.process.execArgv.filter((a) => !a.startsWith("--test")), demo];
  const child = spawn(g.process.execPath, args, {
    env: { ...g.process.env, NODEWIRE_DEMO_FAST: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("timed out after 30 s");
    }, 30_000);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c ?? "killed");
    });
  });
  assert.equal(code, 0, out);
  assert.match(out, /n2 marked UNHEALTHY/);
  assert.match(out, /n2 marked HEALTHY/);
  assert.match(out, /requests per node/);
  assert.match(out, /latency p99/);
  assert.match(out, /^ok: /m);
  // Not a terminal: plain lines, no cursor control.
  assert.ok(!out.includes("\x1b[2K"), "no cursor control in plain output");
});
