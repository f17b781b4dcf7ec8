import { test } from "node:test";
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";

/** Runs the CLI in-process and captures what it printed. */
async function cli(...args: string[]) {
  const out: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, text: out.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

async function withNode(fn: (node: TestNode) => Promise<void>) {
  const node = await startTestNode({ nodeId: "cli-n1" });
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

test("--help prints usage and exits 0", async () => {
  const r = await cli("--help");
  assert.equal(r.code, 0);
  assert.match(r.text, /usage:/);
  assert.match(r.text, /nodewire ping/);
});

test("bad usage and malformed addresses exit 2 with a clear message", async () => {
  assert.deepEqual(
    [
      (await cli()).code,
      (await cli("frobnicate")).code,
      (await cli("ping")).code,
    ],
    [2, 2, 2],
  );
  const bad = await cli("ping", "127.0.0.1:99999");
  assert.equal(bad.code, 2);
  assert.match(bad.text, /port must be within 1–65535, got "127.0.0.1:99999"/);
  const flag = await cli("bench", "127.0.0.1:7000", "--concurrency", "zero");
  assert.equal(flag.code, 2);
  assert.match(flag.text, /--concurrency must be a number/);
});

test("ping shows each node's round trip and id", async () => {
  await withNode(async (node) => {
    const r = await cli("ping", node.address);
    assert.equal(r.code, 0, r.text);
    assert.match(
      r.text,
      new RegExp(`${node.address}\\s+cli-n1\\s+\\S+ (µs|ms)\\s+tcp\\s+ok`),
    );
  });
});

test("ping exits 1 when a node is unreachable and names why", async () => {
  await withNode(async (node) => {
    const dead = await startTestNode();
    const deadAddress = dead.address;
    await dead.close();
    const r = await cli("ping", node.address, deadAddress);
    assert.equal(r.code, 1);
    assert.match(r.text, new RegExp(`${deadAddress}.*FAILED: .*refused`));
    const none = await cli("ping", deadAddress);
    assert.equal(none.code, 1);
    assert.match(none.text, /CONNECT_FAILED/);
  });
});

test("health prints the health table", async () => {
  await withNode(async (node) => {
    const r = await cli("health", node.address);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /healthy/);
    assert.match(r.text, new RegExp(`${node.address}\\s+cli-n1\\s+yes`));
  });
});

test("bench runs a bounded load and summarises it", async () => {
  await withNode(async (node) => {
    const r = await cli(
      "bench",
      node.address,
      "--duration",
      "0.3",
      "--concurrency",
      "8",
    );
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /throughput\s+[\d,]+ req\/s/);
    assert.match(r.text, /errors\s+0/);
    assert.ok(node.stats.requests > 0);
  });
});
