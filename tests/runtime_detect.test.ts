import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { ConfigError } from "../src/errors.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeName } from "../src/runtime/types.ts";

const globals = globalThis as { Deno?: unknown; Bun?: unknown };

test("detectRuntime names the runtime running the tests", () => {
  const expected = globals.Deno !== undefined
    ? "deno"
    : globals.Bun !== undefined
    ? "bun"
    : "node";
  assert.equal(detectRuntime(), expected);
});

test("getAdapter() returns the native adapter of this runtime", async () => {
  const adapter = await getAdapter();
  assert.equal(adapter.name, detectRuntime());
});

test("getAdapter(name) returns the named adapter", async () => {
  assert.equal((await getAdapter("node")).name, "node");
  assert.equal((await getAdapter("memory")).name, "memory");
  assert.equal((await getAdapter(detectRuntime())).name, detectRuntime());
});

test("getAdapter(adapter) returns that very adapter", async () => {
  const network = createMemoryNetwork();
  assert.equal(await getAdapter(network), network);
});

test("getAdapter('memory') gives a fresh network each time", async () => {
  const a = await getAdapter("memory");
  const b = await getAdapter("memory");
  assert.notEqual(a, b);
  const listener = await a.listen({ port: 0 }, () => {});
  try {
    await assert.rejects(
      b.connect({ hostname: "127.0.0.1", port: listener.port }),
      { code: "CONNECTION_REFUSED" },
    );
  } finally {
    await listener.close();
  }
});

test("getAdapter rejects an unknown name with a ConfigError", async () => {
  await assert.rejects(
    getAdapter("java" as RuntimeName),
    (error) => error instanceof ConfigError && /"java"/.test(error.message),
  );
});

test('getAdapter("bun") and runtime "bun" are refused off Bun with a ConfigError, not handed out to fail later', async () => {
  const onBun = typeof (globalThis as { Bun?: { listen?: unknown } }).Bun
    ?.listen === "function";
  if (onBun) {
    assert.equal((await getAdapter("bun")).name, "bun");
    return;
  }
  const refused = (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.field, "runtime");
    assert.match(error.message, /"bun" needs Bun/);
    return true;
  };
  await assert.rejects(getAdapter("bun"), refused);
  await assert.rejects(
    Client.connect({ hosts: ["127.0.0.1:1"], runtime: "bun" }, { lazy: true }),
    refused,
  );
});
