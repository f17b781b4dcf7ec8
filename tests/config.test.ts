import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  DEFAULT_POOL_CONFIG,
  DEFAULT_RETRY_CONFIG,
} from "../src/config/defaults.ts";
import { parseHost } from "../src/config/hosts.ts";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { mergeConfig } from "../src/config/sources.ts";
import type { ConnectionConfig, ResolvedConfig } from "../src/config/shapes.ts";
import { ConfigError } from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

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

/** The longest delay a runtime timer can hold; one more overflows. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Every duration field of the configuration: whether 0 is allowed (it
 * means "off", "never" or "at once" there), and the other settings a
 * value needs to be valid on its own.
 */
const DURATION_FIELDS: {
  field: string;
  zero: boolean;
  base?: (value: unknown) => object;
}[] = [
  { field: "timeoutMs", zero: false },
  { field: "requestTimeoutMs", zero: false },
  { field: "poolConfig.connectionTimeoutMs", zero: false },
  { field: "poolConfig.idleTimeoutMs", zero: true },
  { field: "poolConfig.maxLifetimeMs", zero: true },
  { field: "poolConfig.heartbeatIntervalMs", zero: true },
  { field: "retryBudget.windowMs", zero: false },
  {
    field: "retryConfig.initialBackoffMs",
    zero: true,
    // maxBackoffMs must not be below it.
    base: () => ({ retryConfig: { maxBackoffMs: MAX_TIMER_DELAY_MS } }),
  },
  {
    field: "retryConfig.maxBackoffMs",
    zero: true,
    base: () => ({ retryConfig: { initialBackoffMs: 0 } }),
  },
  { field: "healthConfig.intervalMs", zero: true },
  { field: "outlierEjection.intervalMs", zero: false },
  {
    field: "outlierEjection.baseEjectionTimeMs",
    zero: false,
    // maxEjectionTimeMs must not be below it.
    base: () => ({
      outlierEjection: { maxEjectionTimeMs: MAX_TIMER_DELAY_MS },
    }),
  },
  {
    field: "outlierEjection.maxEjectionTimeMs",
    zero: false,
    base: () => ({ outlierEjection: { baseEjectionTimeMs: 0.5 } }),
  },
  { field: "healthConfig.timeoutMs", zero: false },
  {
    field: "tls.handshakeTimeoutMs",
    zero: false,
    base: () => ({ enableTls: true }),
  },
];

/** `{ hosts, ...base }` with `value` set at the dotted `field`. */
function withField(
  field: string,
  value: unknown,
  base: object = {},
): ConnectionConfig {
  const config: Record<string, unknown> = {
    hosts: ["127.0.0.1"],
    ...structuredClone(base),
  };
  const [head, tail] = field.split(".");
  if (tail === undefined) config[head] = value;
  else {
    config[head] = {
      ...(config[head] as object | undefined),
      [tail]: value,
    };
  }
  return config as unknown as ConnectionConfig;
}

function readField(config: ResolvedConfig, field: string): unknown {
  return field.split(".").reduce<unknown>(
    (at, key) => (at as Record<string, unknown>)[key],
    config,
  );
}

test("every duration field refuses NaN, text, negatives, ±Infinity and anything above 2^31-1 ms", () => {
  for (const { field, base } of DURATION_FIELDS) {
    for (const bad of [NaN, "abc", -1, 2 ** 31, Infinity, -Infinity]) {
      configError(
        withField(field, bad, base?.(bad)),
        field,
        bad === 2 ** 31 ? /at most 2147483647 ms/ : /milliseconds/,
      );
    }
  }
});

test("every duration field accepts 2^31-1 ms, the longest a timer can hold", () => {
  for (const { field, base } of DURATION_FIELDS) {
    const value = MAX_TIMER_DELAY_MS;
    const resolved = resolveConfig(withField(field, value, base?.(value)));
    assert.equal(readField(resolved, field), value, field);
    // A fraction of a millisecond is a duration too.
    const half = resolveConfig(withField(field, 0.5, base?.(0.5)));
    assert.equal(readField(half, field), 0.5, field);
  }
});

test("0 is accepted exactly where it means off, never or at once", () => {
  for (const { field, zero, base } of DURATION_FIELDS) {
    if (zero) {
      const resolved = resolveConfig(withField(field, 0, base?.(0)));
      assert.equal(readField(resolved, field), 0, field);
    } else {
      configError(withField(field, 0, base?.(0)), field, /> 0, got 0/);
    }
  }
});

test("the duration table covers every ...Ms field of the resolved config", () => {
  const found: string[] = [];
  const walk = (value: unknown, path: string) => {
    if (typeof value !== "object" || value === null) return;
    for (const [key, v] of Object.entries(value)) {
      const at = path === "" ? key : `${path}.${key}`;
      if (key.endsWith("Ms")) found.push(at);
      else if (!Array.isArray(v) && key !== "clock") walk(v, at);
    }
  };
  walk(resolveConfig({ hosts: ["127.0.0.1"], enableTls: true }), "");
  assert.deepEqual(
    found.sort(),
    DURATION_FIELDS.map((d) => d.field).sort(),
  );
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

/** A section object holding `fields` each way a caller might build one. */
function sectionShapes(
  fields: Record<string, unknown>,
): [string, object][] {
  const hidden = {};
  for (const [key, value] of Object.entries(fields)) {
    Object.defineProperty(hidden, key, { get: () => value, enumerable: false });
  }
  class Getters {}
  for (const [key, value] of Object.entries(fields)) {
    Object.defineProperty(Getters.prototype, key, { get: () => value });
  }
  class Fields {
    constructor() {
      Object.assign(this, fields);
    }
    /** A method a settings class may have: not an option. */
    describe(): string {
      return "pool settings";
    }
  }
  return [
    ["a non-enumerable getter", hidden],
    ["Object.create", Object.create(fields)],
    ["a class's getters", new Getters()],
    ["a class with a method", new Fields()],
  ];
}

test("a config section's fields are used however the object holds them (non-enumerable, inherited, a class's getters), never dropped for the defaults", () => {
  for (
    const [shape, poolConfig] of sectionShapes({
      maxConnections: 5,
      minConnections: 2,
    })
  ) {
    const resolved = resolveConfig({ hosts: ["a"], poolConfig });
    assert.equal(resolved.poolConfig.maxConnections, 5, shape);
    assert.equal(resolved.poolConfig.minConnections, 2, shape);
  }
  for (const [shape, retryConfig] of sectionShapes({ maxRetries: 0 })) {
    const resolved = resolveConfig({ hosts: ["a"], retryConfig });
    assert.equal(resolved.retryConfig.maxRetries, 0, shape);
  }
  for (const [shape, healthConfig] of sectionShapes({ intervalMs: 0 })) {
    const resolved = resolveConfig({ hosts: ["a"], healthConfig });
    assert.equal(resolved.healthConfig.intervalMs, 0, shape);
  }
  // Checked as any value is.
  for (const [shape, poolConfig] of sectionShapes({ maxConnections: 0 })) {
    assert.throws(
      () => resolveConfig({ hosts: ["a"], poolConfig }),
      (e: unknown) =>
        e instanceof ConfigError && e.field === "poolConfig.maxConnections",
      shape,
    );
  }
});

test("a misspelt option a read would find (non-enumerable, inherited) is an unknown option, not silently ignored", () => {
  for (
    const [shape, poolConfig] of sectionShapes({ maxConection: 5 })
  ) {
    // A class's method is no option (a settings class may have its own),
    // but a getter is read as a field is: a misspelt one is refused too.
    try {
      resolveConfig({ hosts: ["a"], poolConfig });
      assert.fail(`${shape}: accepted`);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `${shape}: ${error}`);
      assert.equal(error.field, "poolConfig.maxConection", shape);
      assert.match(error.message, /unknown option.*maxConnections/, shape);
    }
  }
  configError(
    Object.create({ hosts: ["a"], timeout: 5 }),
    "timeout",
    /unknown option/,
  );
  // At the top level too, and through Client.connect.
  class Settings {
    hosts = ["a"];
    get timeoutMS(): number {
      return 5;
    }
    describe(): string {
      return "settings";
    }
  }
  configError(new Settings(), "timeoutMS", /did you mean "timeoutMs"\?/);
  class Misspelt {
    get hots(): string[] {
      return ["127.0.0.1:1"];
    }
  }
  configError(new Misspelt(), "hots", /did you mean "hosts"\?/);
  // An array's own "length" is no misspelt option: it is no config.
  configError([], "config", /expected an object, got an array of 0/);
  // An inherited hosts is read, as every top-level option is.
  assert.deepEqual(
    resolveConfig(Object.create({ hosts: ["a:1"] })).hosts.map((h) => h.port),
    [1],
  );
});

test("Client.connect refuses a config whose misspelt option is a class's getter, before connecting, and a URL's overrides likewise", async () => {
  class Misspelt {
    get hots(): string[] {
      return ["127.0.0.1:1"];
    }
  }
  await assert.rejects(
    Client.connect(new Misspelt() as never),
    (e: unknown) =>
      e instanceof ConfigError && e.field === "hots" &&
      /did you mean "hosts"\?/.test(e.message),
  );
  class Overrides {
    get poolConfig(): object {
      const pool = new (class {
        get maxConection(): number {
          return 5;
        }
      })();
      return pool;
    }
  }
  configError(
    mergeConfig({ hosts: ["a"] }, new Overrides()),
    "poolConfig.maxConection",
    /did you mean "maxConnections"\?/,
  );
});

test("overrides merged over a URL's config keep a section's fields however the object holds them", () => {
  for (const [shape, poolConfig] of sectionShapes({ maxConnections: 5 })) {
    const merged = mergeConfig(
      { hosts: ["a"], poolConfig: { minConnections: 1 } },
      { poolConfig },
    );
    const resolved = resolveConfig(merged);
    assert.equal(resolved.poolConfig.maxConnections, 5, shape);
    assert.equal(resolved.poolConfig.minConnections, 1, shape);
  }
});

test("overrides given non-enumerable, inherited or as a class's getters are merged over a URL's config, not dropped", () => {
  for (
    const [shape, overrides] of sectionShapes({
      poolConfig: { maxConnections: 5 },
    })
  ) {
    const merged = mergeConfig({ hosts: ["a"] }, overrides);
    assert.equal(resolveConfig(merged).poolConfig.maxConnections, 5, shape);
  }
  // Unknown ones still reach resolveConfig, to be refused by name.
  const misspelt = mergeConfig(
    { hosts: ["a"] },
    Object.create({ timeout: 5 }),
  );
  configError(misspelt, "timeout", /unknown option/);
});

test("a clock or runtime adapter whose method is a revoked proxy of a function is refused at the door", () => {
  // typeof says "function" of a revoked proxy of one: the clock passed,
  // and its first setTimeout, in a pool's housekeeping, was the process's
  // uncaught TypeError ("Cannot perform 'apply' on a proxy that has been
  // revoked").
  const { proxy, revoke } = Proxy.revocable(() => {}, {});
  revoke();
  const clock = {
    now: () => 0,
    setTimeout: proxy,
    clearTimeout: () => {},
  };
  const runtime = { connect: proxy, listen: () => Promise.resolve() };
  const cases: [Partial<ConnectionConfig>, string][] = [
    [{ clock: clock as never }, "clock"],
    [
      { clock: { ...clock, setTimeout: () => 0, now: proxy } as never },
      "clock",
    ],
    [{ runtime: runtime as never }, "runtime"],
  ];
  for (const [extra, field] of cases) {
    assert.throws(
      () => resolveConfig({ hosts: ["a"], ...extra }),
      (e: unknown) => e instanceof ConfigError && e.field === field,
      field,
    );
  }
});

test("clientName is bounded and shows as it is: a huge name or a control character is refused at the door, naming clientName", () => {
  for (
    const [name, pattern] of [
      ["x".repeat(17 * 1024 * 1024), /more than 255 UTF-8 bytes/],
      ["é".repeat(200), /has 400 UTF-8 bytes, more than 255/],
      ["app\nFAKE LOG LINE", /control or format character/],
      ["app\u202e", /control or format character/],
      ["", /expected a non-empty string/],
    ] as const
  ) {
    configError({ hosts: ["db1"], clientName: name }, "clientName", pattern);
    const error = (() => {
      try {
        resolveConfig({ hosts: ["db1"], clientName: name });
      } catch (e) {
        return e as Error;
      }
    })();
    assert.ok(error !== undefined && error.message.length < 1000);
  }
  assert.equal(
    resolveConfig({ hosts: ["db1"], clientName: "é".repeat(127) }).clientName,
    "é".repeat(127),
  );
  assert.equal(
    resolveConfig({ hosts: ["db1"], clientName: "billing-api 2.1" }).clientName,
    "billing-api 2.1",
  );
});

test("resolveConfig takes back a config it resolved, as is, so Client.connect(client.config) works; a copy of one is refused saying it is a resolved config's", async () => {
  const network = createMemoryNetwork();
  const resolved = resolveConfig({
    hosts: ["127.0.0.1:7000"],
    runtime: network,
    clock: new VirtualClock(),
  });
  // It was refused, naming hosts[0]: "expected a string host".
  assert.equal(resolveConfig(resolved), resolved);
  const client = await Client.connect(resolved as never, { lazy: true });
  try {
    assert.equal(client.config, resolved);
  } finally {
    await client.disconnect();
  }
  // A copy with a field changed is no ConnectionConfig: its hosts are
  // parsed. The error says so, not only "expected a string host".
  configError(
    { ...resolved, timeoutMs: 10 },
    "hosts[0]",
    /parsed one as a resolved config holds/,
  );
  // Any other entry that is no string is told only what was expected.
  configError(
    { hosts: [{ host: "a" }] },
    "hosts[0]",
    /expected a string host, got/,
  );
});
