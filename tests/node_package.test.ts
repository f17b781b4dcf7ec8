// What a Node user gets: the package scripts/pack.mjs builds (`deno pack`
// plus bin, engines, sideEffects) is installed into a fresh folder, a plain
// Node ESM program imports it and talks to a reference node, and tsc
// type-checks a typed consumer with skipLibCheck off and no Deno or Bun
// typings anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { installPackage, root, sh } from "./package_install.ts";

const program = `
import { Client } from "@nodewire/client";
import { ops, replyText, startTestNode } from "@nodewire/client/testing";
const node = await startTestNode({ nodeId: "pkg" });
const client = await Client.connect({ hosts: [node.address], healthConfig: { intervalMs: 0 } });
const replies = await Promise.all(["a", "b", "c"].map((s) => client.request(ops.echo(s))));
console.log(JSON.stringify({ replies: replies.map(replyText), node: client.stats().nodes[0].nodeId }));
await client.disconnect();
await node.close();
`;

const typed = `
import { Client, type ClientStats, ConfigError, type ConnectionConfig, RetriesExhaustedError } from "@nodewire/client";
import { ops, replyText, startTestNode, type TestNode, VirtualClock } from "@nodewire/client/testing";
const config: ConnectionConfig = { hosts: ["127.0.0.1:7000"], poolConfig: { maxConnections: 4 } };
export async function main(node: TestNode): Promise<string> {
  const client: Client = await Client.connect({ ...config, hosts: [node.address], clock: new VirtualClock() });
  const stats: ClientStats = client.stats();
  const reply: Uint8Array = await client.request(ops.echo("x"), { idempotent: true, timeoutMs: 100 });
  await client.disconnect();
  return replyText(reply) + stats.nodes.length;
}
export function isConfig(e: unknown): boolean { return e instanceof ConfigError || e instanceof RetriesExhaustedError; }
export const start: typeof startTestNode = startTestNode;
`;

// Two tsc runs and an npm install: 30-50 s on a busy two-core machine, past
// the 60 s per test the test command gives bun once other jobs share the cores.
test(
  "the packed package installs and works from a plain Node ESM program, and type-checks with tsc",
  {
    timeout: 180_000,
  },
  () => {
    const { work } = installPackage("consumer-");
    try {
      writeFileSync(join(work, "index.mjs"), program);
      const run = sh("node", ["index.mjs"], work);
      assert.equal(run.code, 0, run.out);
      assert.deepEqual(JSON.parse(run.out.trim().split("\n").pop()!), {
        replies: ["a", "b", "c"],
        node: "pkg",
      });

      writeFileSync(join(work, "index.ts"), typed);
      writeFileSync(
        join(work, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            target: "es2022",
            module: "nodenext",
            moduleResolution: "nodenext",
            types: ["node"],
            typeRoots: [join(root, "node_modules/@types")],
          },
          files: ["index.ts"],
        }),
      );
      const tsc = sh("node", [
        join(root, "node_modules/typescript/bin/tsc"),
        "-p",
        work,
      ], work);
      assert.equal(tsc.code, 0, tsc.out);
      // A type error must be caught, or the check above proves nothing.
      writeFileSync(
        join(work, "index.ts"),
        typed +
          `\nexport const wrong: number = new Client({} as never, {} as never).config.timeoutMs + "";\n`,
      );
      const bad = sh("node", [
        join(root, "node_modules/typescript/bin/tsc"),
        "-p",
        work,
      ], work);
      assert.notEqual(bad.code, 0, "tsc reports a deliberate type error");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? filesUnder(dir, join(prefix, e.name))
      : [join(prefix, e.name)]
  );
}

test("the npm tarball is lean and declares its bin, engines and sideEffects", () => {
  const { work, tgz } = installPackage("lean-");
  try {
    // Inline source maps tripled it (566 KB); the target is 200 KB.
    const size = statSync(tgz).size;
    assert.ok(size <= 200_000, `the tarball is ${size} bytes, over 200,000`);
    const dir = join(work, "node_modules/@nodewire/client");
    const manifest = JSON.parse(
      readFileSync(join(dir, "package.json"), "utf8"),
    );
    assert.deepEqual(manifest.bin, { nodewire: "./cli.js" });
    assert.deepEqual(manifest.engines, { node: ">=20" });
    assert.equal(manifest.sideEffects, false);
    assert.match(
      readFileSync(join(dir, "cli.js"), "utf8"),
      /^#!\/usr\/bin\/env node\n/,
      "the bin starts with a node shebang",
    );
    const mapped = filesUnder(dir).filter((f) =>
      f.endsWith(".js") &&
      readFileSync(join(dir, f), "utf8").includes("sourceMappingURL=")
    );
    assert.deepEqual(mapped, [], "no .js file carries a source map");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

// A client that talked to a node and closed, then one that could not
// connect, then the node closed: the node's sockets were reset after they
// had ended, and Node kept the process spinning at 100% CPU, never exiting.
const exits = `
import { Client } from "@nodewire/client";
import { startTestNode } from "@nodewire/client/testing";
const node = await startTestNode();
const dead = await startTestNode();
const deadAddress = dead.address;
await dead.close();
const config = { healthConfig: { intervalMs: 0 }, poolConfig: { minConnections: 0 } };
const client = await Client.connect({ ...config, hosts: [node.address] });
await client.healthCheckAllNodes();
await client.disconnect();
await Client.connect({ ...config, hosts: [deadAddress] }).catch(() => {});
await node.close();
console.log("closed");
`;

test("a Node program using the package exits on its own once it closed everything", () => {
  const { work } = installPackage("exits-");
  try {
    writeFileSync(join(work, "exits.mjs"), exits);
    const run = sh("node", ["exits.mjs"], work, 20_000);
    assert.equal(
      run.code,
      0,
      `exit code (null: still running after 20 s)\n${run.out}`,
    );
    assert.match(run.out, /closed/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
