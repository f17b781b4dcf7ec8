// Connection strings: the grammar of docs/CONNECTION_STRING.md, valid and
// invalid, each refusal with its message; every option reachable as a
// parameter and refused in the object form's words; overrides merged over
// the string; connection strings refused inside `hosts`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  DEFAULT_HEALTH_CONFIG,
  DEFAULT_POOL_CONFIG,
  DEFAULT_RETRY_CONFIG,
} from "../src/config/defaults.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig, ResolvedConfig } from "../src/config/shapes.ts";
import { configFromArguments, mergeConfig } from "../src/config/sources.ts";
import { parseConnectionString } from "../src/config/url.ts";
import { ALIASES, PARAMETERS } from "../src/config/url_parameters.ts";
import { ConfigError } from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { root } from "./support/repo.ts";

/** The string, read and validated as `Client.connect(url, overrides)` does. */
function resolveUrl(url: string, overrides?: unknown): ResolvedConfig {
  return resolveConfig(configFromArguments(url, overrides));
}

/** `url` is refused with a ConfigError naming `field`, in exactly `message`. */
function refused(url: string, field: string, message: string): void {
  assert.throws(
    () => resolveUrl(url),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.code, "CONFIG_INVALID");
      assert.equal(e.field, field, `field of ${url}`);
      assert.equal(e.message, message, `message of ${url}`);
      return true;
    },
    url,
  );
}

/** The error `fn` throws, which must be a ConfigError. */
function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError: ${error}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

test("the issue's example: several hosts, IPv6 in brackets, default port, credentials and parameters", () => {
  const c = resolveUrl(
    "nodewire://user:pa%24%24%3Aw%40rd@h1:7000,h2:7001,[::1]:7002,h3/" +
      "?tls=require&timeoutMs=5000&poolMax=20",
  );
  assert.deepEqual(c.hosts.map((h) => h.address), [
    "h1:7000",
    "h2:7001",
    "[::1]:7002",
    "h3:7000",
  ]);
  assert.equal(c.hosts[2].hostname, "::1");
  assert.equal(c.username, "user");
  assert.ok(c.password instanceof Secret);
  assert.equal(c.password.reveal(), "pa$$:w@rd");
  assert.equal(c.tlsPolicy, "require");
  assert.equal(c.timeoutMs, 5000);
  assert.equal(c.poolConfig.maxConnections, 20);
});

test("valid strings: what each form of the grammar reads as", () => {
  const cases: [string, Partial<ConnectionConfig>][] = [
    ["nodewire://h1", { hosts: ["h1"] }],
    ["nodewire://h1/", { hosts: ["h1"] }],
    ["nodewire://h1?timeoutMs=10", { hosts: ["h1"], timeoutMs: 10 }],
    ["nodewire://h1/?timeoutMs=10", { hosts: ["h1"], timeoutMs: 10 }],
    ["NODEWIRE://h1", { hosts: ["h1"] }],
    ["nodewire://10.0.0.1:7100,db.example", {
      hosts: ["10.0.0.1:7100", "db.example"],
    }],
    ["nodewire://[::1],[fe80::1%25eth0]:7001", {
      hosts: ["[::1]", "[fe80::1%eth0]:7001"],
    }],
    ["nodewire://alice@h1", { hosts: ["h1"], username: "alice" }],
    ["nodewire://al%20ice@h1", { hosts: ["h1"], username: "al ice" }],
    ["nodewire://h1/?", { hosts: ["h1"] }],
    ["nodewire://h1/?timeoutMs=10&", { hosts: ["h1"], timeoutMs: 10 }],
    ["nodewire://h1/?&&timeoutMs=10", { hosts: ["h1"], timeoutMs: 10 }],
    ["nodewire://h1/?clientName=a+b%20c%40d", {
      hosts: ["h1"],
      clientName: "a+b c@d",
    }],
    ["nodewire://h1/?protocols=tcp,udp", {
      hosts: ["h1"],
      protocols: ["tcp", "udp"],
    }],
    [
      "nodewire://h1/?retryConfig.backoffMultiplier=1.5&retryConfig.jitter=true",
      {
        hosts: ["h1"],
        retryConfig: { backoffMultiplier: 1.5, jitter: true },
      },
    ],
    ["nodewire://h1/?poolMin=0&poolMax=3&retries=0", {
      hosts: ["h1"],
      poolConfig: { minConnections: 0, maxConnections: 3 },
      retryConfig: { maxRetries: 0 },
    }],
    ["nodewire://h1/?tls=prefer&tls.serverName=db.internal&tls.direct=false", {
      hosts: ["h1"],
      tlsPolicy: "prefer",
      tls: { serverName: "db.internal", direct: false },
    }],
    ["nodewire://h1/?enableTls=true", { hosts: ["h1"], enableTls: true }],
    ["nodewire://h1/?runtime=memory", { hosts: ["h1"], runtime: "memory" }],
  ];
  for (const [url, expected] of cases) {
    assert.deepEqual(parseConnectionString(url), expected, url);
    const config = parseConnectionString(url);
    if (config.username !== undefined && config.password === undefined) {
      // A user alone leaves the password to the overrides; without them,
      // credentials are half given, which resolving refuses (issue 12).
      assert.throws(
        () => resolveConfig(config),
        (error) => error instanceof ConfigError && error.field === "password",
        url,
      );
      resolveConfig({ ...config, password: "from the overrides" });
    } else resolveConfig(config); // and valid as a whole
  }
});

test("a password, empty or not, is read into a Secret and never left as text", () => {
  const config = parseConnectionString("nodewire://u:s3cr%C3%A9t@h1");
  assert.ok(config.password instanceof Secret);
  assert.equal(config.password.reveal(), "s3crét");
  assert.equal(
    JSON.stringify(config),
    '{"username":"u","password":"[redacted]","hosts":["h1"]}',
  );
  const empty = parseConnectionString("nodewire://u:@h1").password;
  assert.ok(empty instanceof Secret);
  assert.equal(empty.reveal(), "");
  // Only the first colon separates: RFC 3986 lets a password hold ":".
  const colons = parseConnectionString("nodewire://u:a:b@h1").password;
  assert.equal((colons as Secret).reveal(), "a:b");
});

/** A valid text for every parameter, by its full name. */
const EXAMPLES: Record<string, [text: string, value: unknown]> = {
  enableTls: ["true", true],
  tlsPolicy: ["require", "require"],
  protocols: ["tls,tcp", ["tls", "tcp"]],
  timeoutMs: ["1234", 1234],
  requestTimeoutMs: ["999", 999],
  maxFrameSize: ["65536", 65536],
  maxDatagramSize: ["1400", 1400],
  loadBalancing: ["least-in-flight", "least-in-flight"],
  whenNoHealthyNodes: ["tryAll", "tryAll"],
  panicThreshold: ["0.5", 0.5],
  runtime: ["memory", "memory"],
  clientName: ["batch-7", "batch-7"],
  "tls.serverName": ["db.internal", "db.internal"],
  "tls.dangerouslySkipVerify": ["true", true],
  "tls.handshakeTimeoutMs": ["2500", 2500],
  "tls.direct": ["true", true],
  "poolConfig.minConnections": ["1", 1],
  "poolConfig.maxConnections": ["7", 7],
  "poolConfig.connectionTimeoutMs": ["800", 800],
  "poolConfig.idleTimeoutMs": ["0", 0],
  "poolConfig.maxLifetimeMs": ["60000", 60000],
  "poolConfig.maxConnecting": ["3", 3],
  "poolConfig.heartbeatIntervalMs": ["0", 0],
  "poolConfig.multiplexThreshold": ["16", 16],
  "retryConfig.maxRetries": ["5", 5],
  "retryConfig.initialBackoffMs": ["10", 10],
  "retryConfig.maxBackoffMs": ["20000", 20000],
  "retryConfig.backoffMultiplier": ["1.5", 1.5],
  "retryConfig.jitter": ["true", true],
  "healthConfig.intervalMs": ["0", 0],
  "healthConfig.timeoutMs": ["300", 300],
  "healthConfig.unhealthyThreshold": ["4", 4],
  "healthConfig.healthyThreshold": ["1", 1],
  "healthConfig.maxConcurrentChecks": ["8", 8],
  retryBudget: ["false", undefined],
  "retryBudget.ratio": ["0.1", 0.1],
  "retryBudget.minPerSecond": ["5", 5],
  "retryBudget.windowMs": ["5000", 5000],
  hedging: ["true", { delayMs: undefined, percentile: 95, maxHedges: 1 }],
  "hedging.delayMs": ["20", 20],
  "hedging.percentile": ["99", 99],
  "hedging.maxHedges": ["2", 2],
  outlierEjection: ["false", undefined],
  "outlierEjection.consecutiveFailures": ["3", 3],
  "outlierEjection.intervalMs": ["5000", 5000],
  "outlierEjection.baseEjectionTimeMs": ["1000", 1000],
  "outlierEjection.maxEjectionTimeMs": ["60000", 60000],
  "outlierEjection.maxEjectedShare": ["0.34", 0.34],
  "outlierEjection.successRateMinNodes": ["0", 0],
  "outlierEjection.successRateMinRequests": ["50", 50],
  "outlierEjection.successRateStdevFactor": ["1", 1],
  "outlierEjection.successRateMinGap": ["0.2", 0.2],
};

/** The option at a dotted path of a resolved config. */
function optionOf(config: ResolvedConfig, path: string): unknown {
  let value: unknown = config;
  for (const part of path.split(".")) {
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

test("every option that text can express is a parameter, by its full dotted name", () => {
  const sections = [
    ["poolConfig", DEFAULT_POOL_CONFIG],
    ["retryConfig", DEFAULT_RETRY_CONFIG],
    ["healthConfig", DEFAULT_HEALTH_CONFIG],
  ] as const;
  for (const [section, defaults] of sections) {
    for (const field of Object.keys(defaults)) {
      assert.ok(PARAMETERS.has(`${section}.${field}`), `${section}.${field}`);
    }
  }
  assert.deepEqual([...PARAMETERS.keys()].sort(), Object.keys(EXAMPLES).sort());
  for (const [name, [text, value]] of Object.entries(EXAMPLES)) {
    // TLS options need TLS on; a direct connection needs it required.
    const tls = name.startsWith("tls.") || name === "enableTls"
      ? "&tlsPolicy=require"
      : name === "protocols"
      ? "&tls=prefer"
      : "";
    const url = `nodewire://h1/?${name}=${encodeURIComponent(text)}${
      name === "tlsPolicy" ? "" : tls
    }`;
    assert.deepEqual(optionOf(resolveUrl(url), name), value, url);
  }
});

test("retryBudget and hedging: on or off as a whole, or field by field", () => {
  const hedged = resolveUrl(
    "nodewire://h1/?hedging=true&hedging.percentile=99",
  );
  assert.deepEqual(hedged.hedging, {
    delayMs: undefined,
    percentile: 99,
    maxHedges: 1,
  });
  const fieldsFirst = resolveUrl(
    "nodewire://h1/?hedging.maxHedges=2&hedging=true",
  );
  assert.equal(fieldsFirst.hedging?.maxHedges, 2);
  assert.deepEqual(
    resolveUrl("nodewire://h1/?retryBudget=true").retryBudget,
    { ratio: 0.2, minPerSecond: 10, windowMs: 10_000 },
  );
  for (
    const url of [
      "nodewire://h1/?hedging=false&hedging.percentile=99",
      "nodewire://h1/?hedging.percentile=99&hedging=false",
      "nodewire://h1/?retryBudget=false&retryBudget.ratio=0.1",
    ]
  ) {
    assert.throws(
      () => parseConnectionString(url),
      (e: unknown) =>
        e instanceof ConfigError && /turns it off/.test(e.message),
      url,
    );
  }
});

test("the aliases set the same options as their full names", () => {
  assert.deepEqual(Object.fromEntries(ALIASES), {
    tls: "tlsPolicy",
    poolMin: "poolConfig.minConnections",
    poolMax: "poolConfig.maxConnections",
    retries: "retryConfig.maxRetries",
  });
  const short = resolveUrl(
    "nodewire://h/?tls=prefer&poolMin=2&poolMax=9&retries=1",
  );
  const long = resolveUrl(
    "nodewire://h/?tlsPolicy=prefer&poolConfig.minConnections=2" +
      "&poolConfig.maxConnections=9&retryConfig.maxRetries=1",
  );
  assert.deepEqual(
    { ...short, clock: undefined },
    { ...long, clock: undefined },
  );
});

test("a parameter's value is refused in the same words as the same option in an object", () => {
  const pairs: [string, ConnectionConfig][] = [
    ["poolMax=0", { hosts: ["h"], poolConfig: { maxConnections: 0 } }],
    ["poolConfig.minConnections=9&poolMax=3", {
      hosts: ["h"],
      poolConfig: { minConnections: 9, maxConnections: 3 },
    }],
    ["timeoutMs=0", { hosts: ["h"], timeoutMs: 0 }],
    ["timeoutMs=3000000000", { hosts: ["h"], timeoutMs: 3e9 }],
    ["timeoutMs=-5", { hosts: ["h"], timeoutMs: -5 }],
    ["maxDatagramSize=10", { hosts: ["h"], maxDatagramSize: 10 }],
    ["retries=2.5", { hosts: ["h"], retryConfig: { maxRetries: 2.5 } }],
    ["retryConfig.backoffMultiplier=0.5", {
      hosts: ["h"],
      retryConfig: { backoffMultiplier: 0.5 },
    }],
    ["loadBalancing=random", {
      hosts: ["h"],
      loadBalancing: "random" as never,
    }],
    ["tls=maybe", { hosts: ["h"], tlsPolicy: "maybe" as never }],
    ["protocols=tcp,smtp", {
      hosts: ["h"],
      protocols: ["tcp", "smtp" as never],
    }],
    ["protocols=", { hosts: ["h"], protocols: ["" as never] }],
    ["tls.serverName=db", { hosts: ["h"], tls: { serverName: "db" } }],
    ["tls=prefer&tls.direct=true", {
      hosts: ["h"],
      tlsPolicy: "prefer",
      tls: { direct: true },
    }],
    ["clientName=", { hosts: ["h"], clientName: "" }],
    ["runtime=deno2", { hosts: ["h"], runtime: "deno2" as never }],
    ["enableTls=true&tls=disable", {
      hosts: ["h"],
      enableTls: true,
      tlsPolicy: "disable",
    }],
  ];
  for (const [query, object] of pairs) {
    const fromUrl = configErrorOf(() => resolveUrl(`nodewire://h/?${query}`));
    const fromObject = configErrorOf(() => resolveConfig(object));
    assert.equal(fromUrl.message, fromObject.message, query);
    assert.equal(fromUrl.field, fromObject.field, query);
  }
});

test("invalid strings: each refusal names the field and says what was expected", () => {
  const cases: [url: string, field: string, message: string][] = [
    [
      "postgres://u@h1",
      "url",
      'invalid url: expected a connection string starting with "nodewire://", got "postgres://…"',
    ],
    [
      "nodewire:/h1",
      "url",
      'invalid url: expected a connection string starting with "nodewire://", got "[redacted]"',
    ],
    [
      "h1:7000",
      "url",
      'invalid url: expected a connection string starting with "nodewire://", got "[redacted]"',
    ],
    [
      "nodewire://",
      "hosts",
      'invalid hosts: the connection string names no host: expected nodewire://host[:port][,host[:port]...], got ""',
    ],
    [
      "nodewire://u:p@/?timeoutMs=1",
      "hosts",
      'invalid hosts: the connection string names no host: expected nodewire://host[:port][,host[:port]...], got ""',
    ],
    [
      "nodewire://h1,,h2",
      "hosts[1]",
      'invalid hosts[1]: expected a host between the commas, got ""',
    ],
    [
      "nodewire://h1,",
      "hosts[1]",
      'invalid hosts[1]: expected a host between the commas, got ""',
    ],
    [
      "nodewire://u:p@h1:99999",
      "hosts[0]",
      'invalid hosts[0]: the port must be within 1–65535, got "h1:99999"',
    ],
    [
      "nodewire://h1,h2:99999",
      "hosts[1]",
      'invalid hosts[1]: the port must be within 1–65535, got "h2:…"',
    ],
    [
      "nodewire://u:p@h1:x",
      "hosts[0]",
      'invalid hosts[0]: the port must be a number, got "h1:x"',
    ],
    [
      "nodewire://::1",
      "hosts[0]",
      'invalid hosts[0]: an IPv6 address goes in brackets in a connection string, as [::1]:7000, got ":…"',
    ],
    [
      "nodewire://u:p@fe80::1:7000",
      "hosts[0]",
      'invalid hosts[0]: an IPv6 address goes in brackets in a connection string, as [::1]:7000, got "fe80::1:7000"',
    ],
    [
      "nodewire://u:p@[::1:7000",
      "hosts[0]",
      'invalid hosts[0]: an IPv6 address needs a closing ], got "[::1:7000"',
    ],
    [
      "nodewire://h1,h1:7000",
      "hosts[1]",
      'invalid hosts[1]: duplicate host, got "h1:7000"',
    ],
    [
      "nodewire://h1/db",
      "url",
      'invalid url: expected "/" or "?" after the hosts: a connection string has no path (a "/" in a password is written %2F), got "[redacted]"',
    ],
    [
      "nodewire://h1/?timeoutMs=1#top",
      "url",
      'invalid url: a "#" must be percent-encoded as %23 (a connection string has no fragment), got "[redacted]"',
    ],
    [
      "nodewire://u:a/b@h1",
      "url",
      'invalid url: the user name and password (before the last "@") hold a "/", "?", "#", "[", "]" or "@" as is: percent-encode them (%2F, %3F, %23, %5B, %5D, %40), and an "@" in a parameter as %40, got "[redacted]"',
    ],
    [
      "nodewire://u:a@b@h1",
      "url",
      'invalid url: the user name and password (before the last "@") hold a "/", "?", "#", "[", "]" or "@" as is: percent-encode them (%2F, %3F, %23, %5B, %5D, %40), and an "@" in a parameter as %40, got "[redacted]"',
    ],
    [
      "nodewire://h1/?clientName=a@b",
      "url",
      'invalid url: the user name and password (before the last "@") hold a "/", "?", "#", "[", "]" or "@" as is: percent-encode them (%2F, %3F, %23, %5B, %5D, %40), and an "@" in a parameter as %40, got "[redacted]"',
    ],
    [
      "nodewire://u:100%@h1",
      "password",
      'invalid password: expected percent-encoding as %XX hexadecimal bytes of UTF-8 (a "%" itself is %25), got "[redacted]"',
    ],
    [
      "nodewire://u:%C3%28@h1",
      "password",
      'invalid password: expected percent-encoding as %XX hexadecimal bytes of UTF-8 (a "%" itself is %25), got "[redacted]"',
    ],
    [
      "nodewire://%zz@h1",
      "username",
      'invalid username: expected percent-encoding as %XX hexadecimal bytes of UTF-8 (a "%" itself is %25), got "[redacted]"',
    ],
    [
      "nodewire://:p@h1",
      "username",
      'invalid username: expected a non-empty string, got ""',
    ],
    [
      "nodewire://h1/?timeoutMs=abc",
      "timeoutMs",
      'invalid timeoutMs: expected a number (decimal digits, such as 5000 or 1.5), got "abc"',
    ],
    [
      "nodewire://h1/?poolMax=",
      "poolMax",
      'invalid poolMax: expected a number (decimal digits, such as 5000 or 1.5), got ""',
    ],
    [
      "nodewire://h1/?timeoutMs=1e3",
      "timeoutMs",
      'invalid timeoutMs: expected a number (decimal digits, such as 5000 or 1.5), got "1e3"',
    ],
    [
      "nodewire://h1/?timeoutMs=%205",
      "timeoutMs",
      'invalid timeoutMs: expected a number (decimal digits, such as 5000 or 1.5), got " 5"',
    ],
    [
      "nodewire://h1/?timeoutMs=Infinity",
      "timeoutMs",
      'invalid timeoutMs: expected a number (decimal digits, such as 5000 or 1.5), got "Infinity"',
    ],
    [
      "nodewire://h1/?retryConfig.jitter=1",
      "retryConfig.jitter",
      'invalid retryConfig.jitter: expected true or false, got "1"',
    ],
    [
      "nodewire://h1/?enableTls=TRUE",
      "enableTls",
      'invalid enableTls: expected true or false, got "TRUE"',
    ],
    [
      "nodewire://h1/?timeoutMs=1&timeoutMs=2",
      "timeoutMs",
      'invalid timeoutMs: given twice: each parameter may appear once, got "2"',
    ],
    [
      "nodewire://h1/?poolMax=1&poolConfig.maxConnections=2",
      "poolConfig.maxConnections",
      'invalid poolConfig.maxConnections: given twice, as poolMax and as poolConfig.maxConnections (poolMax stands for poolConfig.maxConnections), got "2"',
    ],
    [
      "nodewire://h1/?tlsPolicy=require&tls=require",
      "tls",
      'invalid tls: given twice, as tlsPolicy and as tls (tls stands for tlsPolicy), got "require"',
    ],
    [
      "nodewire://h1/?poolMx=3",
      "poolMx",
      'invalid poolMx: unknown parameter (did you mean "poolMax"?); the parameters are the options\' names, dotted within a section (poolConfig.maxConnections), and the aliases tls, poolMin, poolMax, retries, got "poolMx"',
    ],
    [
      "nodewire://h1/?timeoutMS=3",
      "timeoutMS",
      'invalid timeoutMS: unknown parameter (did you mean "timeoutMs"?); the parameters are the options\' names, dotted within a section (poolConfig.maxConnections), and the aliases tls, poolMin, poolMax, retries, got "timeoutMS"',
    ],
    [
      "nodewire://h1/?sslmode=require",
      "sslmode",
      'invalid sslmode: unknown parameter; the parameters are the options\' names, dotted within a section (poolConfig.maxConnections), and the aliases tls, poolMin, poolMax, retries, got "sslmode"',
    ],
    [
      "nodewire://h1/?a%20b=1",
      "url",
      'invalid url: unknown parameter; the parameters are the options\' names, dotted within a section (poolConfig.maxConnections), and the aliases tls, poolMin, poolMax, retries, got "[redacted]"',
    ],
    [
      "nodewire://h1/?tls",
      "tls",
      'invalid tls: expected name=value (a parameter with no value), got "tls"',
    ],
    [
      "nodewire://h1/?password=hunter2",
      "password",
      'invalid password: not a parameter: the password goes before the hosts (nodewire://user:password@host), or pass it in Client.connect\'s overrides, { password }, got "password=…"',
    ],
    [
      "nodewire://h1/?username=bob",
      "username",
      'invalid username: not a parameter: the user name goes before the hosts: nodewire://user:password@host, got "username=…"',
    ],
    [
      "nodewire://h1/?hosts=h2",
      "hosts",
      'invalid hosts: not a parameter: the hosts go after the scheme: nodewire://host1:port,host2:port, got "hosts=…"',
    ],
    [
      "nodewire://h1/?tls.ca=%2Fetc%2Fca.pem",
      "tls.ca",
      'invalid tls.ca: not a parameter: a PEM certificate cannot be written in a connection string, and the client reads no files: pass it in Client.connect\'s overrides, { tls: { ca } }, got "tls.ca=…"',
    ],
    [
      "nodewire://h1/?logger=console",
      "logger",
      'invalid logger: not a parameter: a function cannot be written in a connection string: pass it in Client.connect\'s overrides, got "logger=…"',
    ],
    [
      "nodewire://h1/?clock=virtual",
      "clock",
      'invalid clock: not a parameter: an object cannot be written in a connection string: pass it in Client.connect\'s overrides, got "clock=…"',
    ],
    [
      "nodewire://h1/?poolConfig=5",
      "poolConfig",
      'invalid poolConfig: not a parameter: a section is given field by field, as poolConfig.<field>=<value>, got "poolConfig=…"',
    ],
    [
      "nodewire://h1/?clientName=%E0%A4",
      "clientName",
      'invalid clientName: expected percent-encoding as %XX hexadecimal bytes of UTF-8 (a "%" itself is %25), got "%E0%A4"',
    ],
  ];
  for (const [url, field, message] of cases) refused(url, field, message);
});

test("a connection string (or credentials) inside hosts is refused without being quoted", () => {
  const cases: [unknown[], string, RegExp][] = [
    [
      ["nodewire://u:hunter2@h1:7000"],
      "hosts[0]",
      /^invalid hosts\[0\]: looks like a connection string: pass it as Client\.connect's first argument, Client\.connect\("nodewire:\/\/…"\), not inside hosts, got "\[redacted\]"$/,
    ],
    [
      ["h0", " NODEWIRE://h1"],
      "hosts[1]",
      /looks like a connection string/,
    ],
    [
      ["mongodb://u:hunter2@h1"],
      "hosts[0]",
      /^invalid hosts\[0\]: expected host, host:port or \[ipv6\]:port: a host has no scheme and no user@ \(credentials go in username and password\), got "\[redacted\]"$/,
    ],
    [["u:hunter2@h1"], "hosts[0]", /a host has no scheme and no user@/],
  ];
  for (const [hosts, field, pattern] of cases) {
    const e = configErrorOf(() => resolveConfig({ hosts: hosts as string[] }));
    assert.equal(e.field, field);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("hunter2"));
  }
});

test("a connection string given as hosts itself, not in an array, is refused without being quoted", () => {
  // { hosts: process.env.DB_URL } failed with `invalid hosts: expected an
  // array of host strings, got "nodewire://u:<password>@h1:7000"`.
  const cases: [string, RegExp][] = [
    ["nodewire://u:hunter2@h1:7000", /looks like a connection string/],
    ["u:hunter2@h1", /a host has no scheme and no user@/],
  ];
  for (const [hosts, pattern] of cases) {
    const e = configErrorOf(() =>
      resolveConfig({ hosts } as unknown as ConnectionConfig)
    );
    assert.equal(e.field, "hosts");
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("hunter2"), e.message);
  }
  // A plain host in place of the array is still shown, to say what was meant.
  assert.equal(
    configErrorOf(() =>
      resolveConfig({ hosts: "db1:7000" } as unknown as ConnectionConfig)
    ).message,
    'invalid hosts: expected an array of host strings, got "db1:7000"',
  );
});

test("overrides merge over the string: options replaced, sections field by field", () => {
  const logger = () => {};
  const c = resolveUrl(
    "nodewire://u:p@h1,h2/?timeoutMs=100&poolMax=9&poolMin=1&tls=require&tls.serverName=db",
    {
      timeoutMs: 200,
      poolConfig: { minConnections: 2, idleTimeoutMs: undefined },
      tls: { handshakeTimeoutMs: 700 },
      logger,
      clientName: undefined,
    },
  );
  assert.equal(c.timeoutMs, 200);
  assert.equal(c.poolConfig.maxConnections, 9);
  assert.equal(c.poolConfig.minConnections, 2);
  assert.equal(c.poolConfig.idleTimeoutMs, DEFAULT_POOL_CONFIG.idleTimeoutMs);
  assert.equal(c.tls.serverName, "db");
  assert.equal(c.tls.handshakeTimeoutMs, 700);
  assert.equal(c.logger, logger);
  assert.equal(c.clientName, "nodewire");
  assert.deepEqual(c.hosts.map((h) => h.address), ["h1:7000", "h2:7000"]);

  const replaced = resolveUrl("nodewire://u:p@h1", {
    hosts: ["h9:1"],
    password: "from-the-vault",
  });
  assert.deepEqual(replaced.hosts.map((h) => h.address), ["h9:1"]);
  assert.equal(replaced.username, "u");
  assert.equal(replaced.password?.reveal(), "from-the-vault");

  const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  assert.deepEqual(
    resolveUrl("nodewire://h1/?tls=require", { tls: { ca } }).tls.ca,
    [ca],
  );
  // The string is not changed by a merge.
  const base = parseConnectionString("nodewire://h1/?poolMax=3");
  mergeConfig(base, { poolConfig: { maxConnections: 4 } });
  assert.deepEqual(base.poolConfig, { maxConnections: 3 });
});

test("overrides are validated like a config object", () => {
  const notObject = configErrorOf(() => resolveUrl("nodewire://h1", 5));
  assert.equal(notObject.field, "overrides");
  assert.equal(
    notObject.message,
    "invalid overrides: expected an object, got 5",
  );
  const unknown = configErrorOf(() =>
    resolveUrl("nodewire://h1", { timeOutMs: 5 })
  );
  const unknownInObject = configErrorOf(() =>
    resolveConfig({ hosts: ["h1"], timeOutMs: 5 } as ConnectionConfig)
  );
  assert.equal(unknown.field, "timeOutMs");
  assert.equal(unknown.message, unknownInObject.message);
  const section = configErrorOf(() =>
    resolveUrl("nodewire://h1/?poolMax=3", { poolConfig: 7 })
  );
  assert.equal(
    section.message,
    "invalid poolConfig: expected an object, got 7",
  );
  const nested = configErrorOf(() =>
    resolveUrl("nodewire://h1/?poolMax=3", { poolConfig: { maxConections: 1 } })
  );
  assert.equal(nested.field, "poolConfig.maxConections");
});

test("the first argument: a config object, a string, or nothing; anything else is refused", () => {
  assert.throws(
    () => configFromArguments(42, undefined),
    /^ConfigError: invalid config: expected a connection string or a config object, got 42$/,
  );
  assert.throws(
    () => configFromArguments(null, undefined),
    /^ConfigError: invalid config: expected a connection string or a config object, got null$/,
  );
  const missingHosts = configErrorOf(() =>
    configFromArguments({ timeoutMs: 5 }, undefined)
  );
  assert.equal(missingHosts.field, "hosts");
  assert.match(
    missingHosts.message,
    /expected an array of host strings \(a config object is complete on its own; to take the rest from NODEWIRE_URL, pass the object as overrides: Client\.connect\(undefined, overrides\)\)/,
  );
  const config = { hosts: ["h1"] };
  assert.equal(configFromArguments(config, undefined), config);
});

test("docs/CONNECTION_STRING.md documents every parameter and alias", () => {
  const doc = readFileSync(join(root, "docs/CONNECTION_STRING.md"), "utf8");
  for (const name of [...PARAMETERS.keys(), ...ALIASES.keys()]) {
    assert.ok(doc.includes(`| \`${name}\``), `${name} has a row in the table`);
  }
});
