// What a Node user gets: the package `deno pack` builds is installed into a
// fresh folder, a plain Node ESM program imports it and talks to a reference
// node, and tsc type-checks a typed consumer with skipLibCheck off and no
// Deno or Bun typings anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env =
  (globalThis as { process: { env: Record<string, string | undefined> } })
    .process.env;

function sh(command: string, args: string[], cwd: string) {
  const r = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** The tarball: the one the test command built, or a fresh one. */
function tarball(work: string): string {
  if (env.NODEWIRE_TGZ && existsSync(env.NODEWIRE_TGZ)) return env.NODEWIRE_TGZ;
  const tgz = join(work, "nodewire.tgz");
  const r = sh(join(root, "node_modules/.bin/deno"), [
    "pack",
    "--allow-dirty",
    "-o",
    tgz,
  ], root);
  assert.equal(r.code, 0, r.out);
  return tgz;
}

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

test("the packed package installs and works from a plain Node ESM program, and type-checks with tsc", () => {
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const work = mkdtempSync(join(root, ".tmp", "consumer-"));
  try {
    const tgz = tarball(work);
    writeFileSync(
      join(work, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
    const install = sh("npm", [
      "install",
      "--offline",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      tgz,
    ], work);
    assert.equal(install.code, 0, install.out);

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
});
