import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { countChannels, CountingClock } from "./support/counting.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { runtimeGlobals as g } from "./helpers.ts";

/** Connects, does some of everything, disconnects; returns what it counted. */
async function exercise() {
  const clock = new CountingClock(systemClock);
  const adapter = countChannels(await getAdapter());
  const nodes = await Promise.all([
    startTestNode({ runtime: adapter }),
    startTestNode({ runtime: adapter }),
  ]);
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: adapter,
    clock,
    healthConfig: { intervalMs: 20, timeoutMs: 500 },
    poolConfig: { minConnections: 2, maxConnections: 4 },
  });
  const opened = adapter.openChannels;
  await Promise.all(
    Array.from(
      { length: 300 },
      (_, i) => client.request(i % 10 === 0 ? ops.sleep(5) : ops.echo("x")),
    ),
  );
  await client.withConnection((c) => c.ping());
  await client.healthCheckAllNodes();
  // Requests still in flight when disconnect starts must settle too.
  const late = client.request(ops.sleep(20)).catch(() => {});
  await client.disconnect({ timeoutMs: 1000 });
  await late;
  await Promise.all(nodes.map((n) => n.close()));
  // Let the runtime deliver the last close callbacks.
  for (let i = 0; i < 20 && adapter.openChannels > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return { opened, open: adapter.openChannels, timers: clock.liveTimers };
}

function tally(resources: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

test("after disconnect no socket is open and no timer is pending", async () => {
  // Where the runtime lists its active handles (Node, Deno), they must be
  // back where they started too. Bun's list is always empty, so on Bun the
  // runtime-level check is the natural-exit probe below.
  const info = g.Bun ? undefined : g.process?.getActiveResourcesInfo;
  if (!g.Bun) assert.ok(info, "getActiveResourcesInfo exists on Node and Deno");
  const before = info ? tally(info()) : {};
  const { opened, open, timers } = await exercise();
  assert.ok(opened >= 4, `connections were opened (${opened})`);
  assert.equal(open, 0, "every channel reported closed by the runtime");
  assert.equal(timers, 0, "every timer fired or was cleared");
  if (info) {
    // A socket's handle goes some time after its close was reported (Node
    // frees it on a later turn of its loop; a busy machine stretches that),
    // so wait for the counts to come back, within a bound.
    const kinds = ["TCPSocketWrap", "TCPServerWrap", "Timeout"];
    const leftover = () => {
      const after = tally(info());
      return kinds.filter((k) => (after[k] ?? 0) > (before[k] ?? 0)).map((k) =>
        `${k}: ${before[k] ?? 0} before, ${after[k] ?? 0} after`
      );
    };
    for (let i = 0; i < 100 && leftover().length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(leftover(), [], "handles still held after 2 s");
  }
});

/** The parent's --import flags, so the probe loads what the suite loads. */
function nodeImports(): string[] {
  const argv = (globalThis as { process?: { execArgv: string[] } }).process
    ?.execArgv ?? [];
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--import" && argv[i + 1]) out.push("--import", argv[++i]);
    else if (argv[i].startsWith("--import=")) out.push(argv[i]);
  }
  return out.length > 0 ? out : ["--import", "tsx"];
}

test("a process that used the client exits on its own", async () => {
  const probe = fileURLToPath(
    new URL("./fixtures/exit_probe.ts", import.meta.url),
  );
  const exec = g.process!.execPath;
  const args = g.Deno
    ? ["run", "-A", probe]
    : g.Bun
    ? [probe]
    : [...nodeImports(), probe];
  const child = spawn(exec, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("still running after 20 s: something kept it alive");
    }, 20_000);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c ?? "killed");
    });
  });
  assert.equal(code, 0, output);
  assert.match(output, /probe done/);
});

if (g.Deno) {
  // Deno's op and resource sanitizers are opt-in and do not cover node:test
  // tests, so the Deno leak check is a Deno.test with both switched on.
  g.Deno.test({
    name: "Deno sanitizers: disconnect leaves no op or resource behind",
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const { open, timers } = await exercise();
      assert.equal(open, 0);
      assert.equal(timers, 0);
    },
  });
}
