// What a Node (or Bun) user gets: the package `deno pack` builds is installed
// into a fresh folder, a plain Node ESM program imports it and talks to a
// reference node, and tsc type-checks a typed consumer, strict and with
// skipLibCheck off, under the tsconfigs such projects start from: one like
// @tsconfig/node20 and the one `bun init` writes. Neither has the DOM lib, so
// the published types may name no DOM-only type; and a misspelled event name
// must be a type error there too.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
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

// Typed events, a sub-path import and `instanceof` on errors, as an
// application would write them.
const typed = `
import {
  Client,
  type ClientEventMap,
  ConfigError,
  type ConnectionConfig,
  NodewireError,
  RetriesExhaustedError,
  type RetryEvent,
} from "@nodewire/client";
import { ops, replyText, startTestNode, type TestNode, VirtualClock } from "@nodewire/client/testing";

const config: ConnectionConfig = { hosts: ["127.0.0.1:7000"], poolConfig: { maxConnections: 4 } };

export async function main(node: TestNode): Promise<string> {
  const client: Client = await Client.connect({ ...config, hosts: [node.address], clock: new VirtualClock() });
  const delays: number[] = [];
  client.addEventListener("retry", (e) => delays.push(e.detail.delayMs));
  client.addEventListener("nodeHealthChanged", (e) => console.log(e.detail.address, e.detail.healthy, e.at));
  const stop = new AbortController();
  client.addEventListener("checkedOut", {
    handleEvent: (e: ClientEventMap["checkedOut"]) => console.log(e.detail.mode, e.at),
  }, { once: true, signal: stop.signal });
  const onRetry = (e: RetryEvent): void => console.log(e.detail.attempt, e.detail.error);
  client.addEventListener("retry", onRetry);
  client.removeEventListener("retry", onRetry);
  const listening: boolean = client.hasListeners("retry");
  client.manager.nodes[0]?.pool.addEventListener("connectionClosed", (e) => console.log(e.detail.reason));
  const reply: Uint8Array = await client.request(ops.echo("x"), { idempotent: true, timeoutMs: 100 });
  stop.abort();
  await client.disconnect();
  return replyText(reply) + client.stats().nodes.length + delays.length + String(listening);
}

export function describe(e: unknown): string {
  if (e instanceof ConfigError) return "config: " + e.field;
  if (e instanceof RetriesExhaustedError) return "gave up after " + e.attempts;
  if (e instanceof NodewireError) return e.code;
  return String(e);
}

export const start: typeof startTestNode = startTestNode;
`;

// Each line must fail to type-check: the misspelled event name, the detail
// property that does not exist.
const misuse = `
import { Client } from "@nodewire/client";
export function misspelled(client: Client): void {
  client.addEventListener("retyr", () => {});
}
export function wrongDetail(client: Client): void {
  client.addEventListener("retry", (e) => console.log(e.detail.delay));
}
`;

const typeRoots = [join(root, "node_modules/@types")];

/** Like @tsconfig/node20 (lib ES2023, no DOM), with NodeNext modules. */
const node20 = {
  lib: ["ES2023"],
  module: "NodeNext",
  moduleResolution: "NodeNext",
  target: "ES2022",
  strict: true,
  esModuleInterop: true,
  skipLibCheck: false,
  noEmit: true,
  types: ["node"],
  typeRoots,
};

/** What `bun init` writes (bun 1.4.5), with skipLibCheck turned off. */
const bunInit = {
  lib: ["ESNext"],
  target: "ESNext",
  module: "Preserve",
  moduleDetection: "force",
  jsx: "react-jsx",
  allowJs: true,
  types: ["bun"],
  typeRoots,
  moduleResolution: "bundler",
  allowImportingTsExtensions: true,
  verbatimModuleSyntax: true,
  noEmit: true,
  strict: true,
  skipLibCheck: false,
  noFallthroughCasesInSwitch: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noUnusedLocals: false,
  noUnusedParameters: false,
  noPropertyAccessFromIndexSignature: false,
};

/**
 * bun-types 1.4.5 is written against a newer @types/node than the 22.x this
 * repository pins, and with skipLibCheck off reports a few errors in its
 * own files (names it expects node:tls and node:util to declare). They are
 * not about this package, which a Bun user with a current @types/node
 * would not see; every other error counts.
 */
const notOurs = (line: string) => /node_modules\/bun-types\//.test(line);

/** The names the DOM lib declares and neither @types/node nor bun-types does. */
const DOM_ONLY =
  /\b(EventListenerOrEventListenerObject|AddEventListenerOptions|EventListenerOptions|EventListenerObject|EventListener)\b/;

let work: string | undefined;
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A consumer folder with the packed package installed, made once. */
function consumer(): string {
  if (work) return work;
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const dir = mkdtempSync(join(root, ".tmp", "consumer-"));
  work = dir;
  const tgz = tarball(dir);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  const install = sh("npm", [
    "install",
    "--offline",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    tgz,
  ], dir);
  assert.equal(install.code, 0, install.out);
  writeFileSync(join(dir, "index.ts"), typed);
  writeFileSync(join(dir, "misuse.ts"), misuse);
  return dir;
}

/**
 * Type-checks the typed program and the misuse together in the consumer
 * with `options` (one tsc run: a check costs 10-20 s here); the error lines
 * that count.
 */
function typecheck(
  dir: string,
  options: Record<string, unknown>,
): { code: number | null; errors: string[]; out: string } {
  assert.ok(
    existsSync(join(root, "node_modules/@types/bun")),
    "@types/bun is a dev dependency: run npm ci",
  );
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: options,
      files: ["index.ts", "misuse.ts"],
    }),
  );
  const tsc = sh("node", [
    join(root, "node_modules/typescript/bin/tsc"),
    "-p",
    dir,
  ], dir);
  const errors = tsc.out.split("\n").filter((line) =>
    /error TS\d+/.test(line) && !notOurs(line)
  );
  return { code: tsc.code, errors, out: tsc.out };
}

function dtsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return dtsFiles(path);
    return entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

test("the packed package installs and works from a plain Node ESM program", () => {
  const dir = consumer();
  writeFileSync(join(dir, "index.mjs"), program);
  const run = sh("node", ["index.mjs"], dir);
  assert.equal(run.code, 0, run.out);
  assert.deepEqual(JSON.parse(run.out.trim().split("\n").pop()!), {
    replies: ["a", "b", "c"],
    node: "pkg",
  });
});

test("the packed .d.ts files name no DOM-only type", () => {
  const pkg = join(consumer(), "node_modules/@nodewire/client");
  const files = dtsFiles(pkg);
  assert.ok(
    files.some((f) => f.endsWith(join("src", "events.d.ts"))),
    "the typed event target ships its types",
  );
  const offenders = files.flatMap((file) =>
    readFileSync(file, "utf8").split("\n")
      .filter((line) => DOM_ONLY.test(line))
      .map((line) => `${file.slice(pkg.length + 1)}: ${line.trim()}`)
  );
  assert.deepEqual(offenders, []);
});

for (
  const [name, options] of [
    [
      "a @tsconfig/node20-style tsconfig (ES2023, types node, NodeNext)",
      node20,
    ],
    ["bun init's tsconfig (ESNext, types bun, bundler)", bunInit],
  ] as const
) {
  test(`a typed consumer type-checks under ${name}, strict, skipLibCheck off, and a misspelled event name does not`, () => {
    const { code, errors, out } = typecheck(consumer(), options);
    assert.notEqual(code, 0, "tsc rejects the misuse");
    // Every error is one of the two deliberate ones: index.ts (typed
    // events, the sub-path import, instanceof) and the package's own
    // .d.ts files have none.
    assert.equal(errors.length, 2, out);
    assert.match(errors[0], /^misuse\.ts\(4,.*"retyr"/, out);
    assert.match(
      errors[1],
      /^misuse\.ts\(7,.*Property 'delay' does not exist/,
      out,
    );
  });
}
