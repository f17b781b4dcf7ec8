import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  DEFAULT_POOL_CONFIG,
  DEFAULT_RETRY_CONFIG,
} from "../src/config/defaults.ts";
import { parseHost } from "../src/config/hosts.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ConfigError } from "../src/errors.ts";
import { Secret } from "../src/secret.ts";

function configError(config: unknown, field: string, pattern: RegExp) {
  assert.throws(
    () => resolveConfig(config as ConnectionConfig),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.code, "CONFIG_INVALID");
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test("defaults follow the specification", () => {
  const c = resolveConfig({ hosts: ["127.0.0.1"] });
  assert.deepEqual(c.hosts, [
    { hostname: "127.0.0.1", port: 7000, address: "127.0.0.1:7000" },
  ]);
  assert.equal(c.timeoutMs, 5000);
  assert.equal(c.enableTls, false);
  assert.equal(c.poolConfig.minConnections, 5);
  assert.equal(c.poolConfig.maxConnections, 20);
  assert.equal(c.poolConfig.connectionTimeoutMs, 5000);
  assert.equal(c.poolConfig.idleTimeoutMs, 60000);
  assert.equal(c.poolConfig.maxLifetimeMs, 1800000);
  assert.equal(c.retryConfig.maxRetries, 3);
  assert.equal(c.retryConfig.initialBackoffMs, 100);
  assert.equal(c.retryConfig.maxBackoffMs, 5000);
  assert.equal(c.retryConfig.backoffMultiplier, 2);
  assert.equal(c.retryConfig.jitter, false);
  assert.deepEqual(c.poolConfig, { ...DEFAULT_POOL_CONFIG });
  assert.deepEqual(c.retryConfig, { ...DEFAULT_RETRY_CONFIG });
});

test("hosts may be host, host:port, [v6]:port, [v6] or a bare v6 literal", () => {
  assert.deepEqual(parseHost("db.example"), {
    hostname: "db.example",
    port: 7000,
    address: "db.example:7000",
  });
  assert.equal(parseHost("10.0.0.1:7100").port, 7100);
  assert.deepEqual(parseHost("[::1]:7001"), {
    hostname: "::1",
    port: 7001,
    address: "[::1]:7001",
  });
  assert.equal(parseHost("[::1]").port, 7000);
  assert.equal(parseHost("fe80::1").hostname, "fe80::1");
  assert.equal(parseHost(" localhost:1 ").address, "localhost:1");
});

test("bad hosts are named with their index and value", () => {
  configError({ hosts: [] }, "hosts", /at least one host/);
  configError({}, "hosts", /expected an array/);
  configError({ hosts: "a:1" }, "hosts", /expected an array/);
  configError({ hosts: ["a", "b:0"] }, "hosts[1]", /within 1–65535, got "b:0"/);
  configError({ hosts: ["a:65536"] }, "hosts[0]", /within 1–65535/);
  configError({ hosts: ["a:x"] }, "hosts[0]", /port must be a number/);
  configError({ hosts: ["[::1:7000"] }, "hosts[0]", /closing \]/);
  configError({ hosts: ["[::1]7000"] }, "hosts[0]", /:port after \]/);
  configError({ hosts: ["bad host"] }, "hosts[0]", /expected host/);
  configError({ hosts: [""] }, "hosts[0]", /expected host/);
  configError({ hosts: [42] }, "hosts[0]", /expected a string host/);
  configError({ hosts: ["a:1", "a:1"] }, "hosts[1]", /duplicate host/);
});

test("numbers out of range are rejected with the field and value", () => {
  const hosts = ["127.0.0.1"];
  configError({ hosts, timeoutMs: -1 }, "timeoutMs", /> 0, got -1/);
  configError({ hosts, timeoutMs: NaN }, "timeoutMs", /got NaN/);
  configError({ hosts, timeoutMs: Infinity }, "timeoutMs", /got Infinity/);
  configError({ hosts, timeoutMs: "5" }, "timeoutMs", /got "5"/);
  configError(
    { hosts, poolConfig: { minConnections: 21 } },
    "poolConfig.minConnections",
    /must not exceed poolConfig.maxConnections \(20\)/,
  );
  configError(
    { hosts, poolConfig: { maxConnections: 0 } },
    "poolConfig.maxConnections",
    /integer in 1–10000, got 0/,
  );
  configError(
    { hosts, poolConfig: { idleTimeoutMs: -5 } },
    "poolConfig.idleTimeoutMs",
    /≥ 0, got -5/,
  );
  configError(
    { hosts, retryConfig: { backoffMultiplier: 0.5 } },
    "retryConfig.backoffMultiplier",
    /≥ 1, got 0.5/,
  );
  configError(
    { hosts, retryConfig: { maxRetries: 1.5 } },
    "retryConfig.maxRetries",
    /integer/,
  );
  configError(
    { hosts, retryConfig: { initialBackoffMs: 100, maxBackoffMs: 50 } },
    "retryConfig.maxBackoffMs",
    /at least retryConfig.initialBackoffMs/,
  );
  configError({ hosts, maxFrameSize: 10 }, "maxFrameSize", /1024–/);
});

test("unknown options are errors, not silently ignored", () => {
  configError({ hosts: ["a"], timeout: 5 }, "timeout", /unknown option/);
  configError(
    { hosts: ["a"], poolConfig: { max: 5 } },
    "poolConfig.max",
    /unknown option/,
  );
  configError(
    { hosts: ["a"], loadBalancing: "random" },
    "loadBalancing",
    /expected one of/,
  );
  configError({ hosts: ["a"], runtime: "java" }, "runtime", /expected "deno"/);
});

test("a password needs a username and must be a string", () => {
  configError(
    { hosts: ["a"], password: "pw" },
    "username",
    /username is required/,
  );
  assert.throws(
    () =>
      resolveConfig({
        hosts: ["a"],
        username: "u",
        password: 1234 as unknown as string,
      }),
    (e: unknown) =>
      e instanceof ConfigError && !e.message.includes("1234") &&
      e.field === "password",
  );
});

test("the password never appears in String, JSON or inspect output", () => {
  const password = "correct-horse-battery-staple";
  const resolved = resolveConfig({ hosts: ["a"], username: "u", password });
  const renderings = [
    String(resolved.password),
    `${resolved.password}`,
    JSON.stringify(resolved),
    inspect(resolved, { depth: 10, showHidden: true }),
    inspect(resolved.password),
  ];
  for (const text of renderings) {
    assert.ok(!text.includes(password), `leaked in: ${text}`);
  }
  assert.ok(JSON.stringify(resolved).includes("[redacted]"));
  assert.equal(resolved.password!.reveal(), password);
  const deno = (globalThis as { Deno?: { inspect(v: unknown): string } }).Deno;
  if (deno) assert.ok(!deno.inspect(resolved).includes(password));
});

test("a Secret can be passed in directly", () => {
  const s = new Secret("pw");
  assert.equal(
    resolveConfig({ hosts: ["a"], username: "u", password: s }).password,
    s,
  );
});
