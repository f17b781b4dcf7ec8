// The public surface is a promise: every name the root module exports is
// listed here, so adding one is a deliberate change to this file (and to
// the README's API section), never a side effect of `export *`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageExports, root, walk } from "./support/repo.ts";

/** The names an entry file exports: its `export { … }` lists and declarations. */
function exportedNames(entry: string): { values: string[]; types: string[] } {
  const text = readFileSync(join(root, entry), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  assert.doesNotMatch(text, /export\s*\*/, `${entry} uses export *`);
  const values: string[] = [];
  const types: string[] = [];
  for (const m of text.matchAll(/export\s*(type\s*)?\{([^}]*)\}/g)) {
    for (const raw of m[2].split(",").map((s) => s.trim()).filter(Boolean)) {
      if (m[1] || raw.startsWith("type ")) {
        types.push(raw.replace(/^type\s+/, ""));
      } else values.push(raw);
    }
  }
  for (
    const m of text.matchAll(
      /^export\s+(?:declare\s+)?(?:async\s+)?(function|class|const|let|interface|type)\s+(\w+)/gm,
    )
  ) {
    (m[1] === "interface" || m[1] === "type" ? types : values).push(m[2]);
  }
  return { values, types };
}

const ROOT_VALUES = [
  "AbortedError",
  "AuthenticationError",
  "Client",
  "ClientClosedError",
  "ConfigError",
  "ConnectFailedError",
  "ConnectTimeoutError",
  "ConnectionClosedError",
  "ConnectionError",
  "ConnectionLostError",
  "ConnectionRefusedError",
  "DEFAULT_HEALTH_CONFIG",
  "DEFAULT_POOL_CONFIG",
  "DEFAULT_PORT",
  "DEFAULT_RETRY_CONFIG",
  "DEFAULT_TIMEOUT_MS",
  "DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS",
  "DatagramTooLargeError",
  "HostNotFoundError",
  "InvalidArgumentError",
  "NegotiationError",
  "NoHealthyNodesError",
  "NodeHealthEvent",
  "NodeUnhealthyError",
  "NodewireError",
  "PoolClosedError",
  "PoolEvent",
  "PoolMisuseError",
  "PoolTimeoutError",
  "ProtocolError",
  "ProtocolSelectedEvent",
  "ProtocolType",
  "RemoteError",
  "RemoteErrorCode",
  "RequestTimeoutError",
  "RetriesExhaustedError",
  "RetryEvent",
  "SaslprepError",
  "Secret",
  "TlsError",
  "executeWithRetry",
  "isRetryable",
];

const ROOT_TYPES = [
  "AuthFailureReason",
  "ClientRequestOptions",
  "ClientEventMap",
  "ClientStats",
  "ConnectionConfig",
  "ConnectionErrorCode",
  "DisconnectOptions",
  "ErrorCode",
  "ExecuteWithRetryOptions",
  "HealthCheckResult",
  "HealthConfig",
  "IsRetryableOptions",
  "LoadBalancing",
  "LogEntry",
  "Logger",
  "NodeHealthChange",
  "NodeStats",
  "PoolConfig",
  "PoolEventMap",
  "ProtocolSelection",
  "RetryConfig",
  "RetryEventDetail",
  "RetryInfo",
  "TlsConfig",
  "TlsFailureReason",
  "TlsPolicy",
];

test("the root module exports exactly the listed names, at most 70", () => {
  const { values, types } = exportedNames("mod.ts");
  assert.deepEqual([...values].sort(), [...ROOT_VALUES].sort());
  assert.deepEqual([...types].sort(), [...ROOT_TYPES].sort());
  assert.ok(values.length + types.length <= 70);
});

test("every listed root value is really exported at run time", async () => {
  const mod: Record<string, unknown> = await import("../mod.ts");
  for (const name of ROOT_VALUES) {
    assert.notEqual(mod[name], undefined, `${name} is missing`);
  }
  assert.deepEqual(Object.keys(mod).sort(), [...ROOT_VALUES].sort());
});

test("each sub-path entry in deno.json exists and names its exports", () => {
  const exports = packageExports();
  assert.deepEqual(Object.keys(exports).sort(), [
    ".",
    "./auth",
    "./cli",
    "./core",
    "./otel",
    "./protocol",
    "./runtime",
    "./testing",
  ]);
  for (const entry of Object.values(exports)) {
    const { values, types } = exportedNames(entry);
    assert.ok(values.length + types.length > 0, `${entry} exports nothing`);
  }
});

test("no name is exported by two entry points", () => {
  const exports = packageExports();
  const seen = new Map<string, string>();
  const twice: string[] = [];
  for (const entry of Object.values(exports)) {
    const { values, types } = exportedNames(entry);
    for (const name of [...values, ...types]) {
      const before = seen.get(name);
      if (before) twice.push(`${name}: ${before} and ${entry}`);
      seen.set(name, entry);
    }
  }
  assert.deepEqual(twice, []);
});

const OTEL_VALUES = ["instrumentClient"];
const OTEL_TYPES = [
  "Attributes",
  "BatchObservableResult",
  "ClientInstrumentation",
  "Context",
  "Meter",
  "MeterProvider",
  "OtelOptions",
  "Span",
  "Tracer",
  "TracerProvider",
];

test("the ./otel entry exports exactly the listed names", () => {
  const { values, types } = exportedNames("otel.ts");
  assert.deepEqual([...values].sort(), [...OTEL_VALUES].sort());
  assert.deepEqual([...types].sort(), [...OTEL_TYPES].sort());
});

test("nothing the package ships imports @opentelemetry: the providers come from the application", () => {
  const shipped = [
    ...Object.values(packageExports()).map((f) => f.replace(/^\.\//, "")),
    ...walk("src"),
  ];
  const importing = shipped.filter((file) =>
    /(?:from|import)\s*\(?\s*["']@opentelemetry\//.test(
      readFileSync(join(root, file), "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/^\s*\/\/.*$/gm, ""),
    )
  );
  assert.deepEqual(importing, []);
});
