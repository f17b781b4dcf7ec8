/**
 * The mapping from runtime errors to SDK errors. The raw errors below are
 * shaped like what each runtime was seen to throw (see
 * src/runtime/errors.ts); tests/runtime_adapter.test.ts checks the real ones.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  HostNotFoundError,
  ProtocolError,
} from "../src/errors.ts";
import { toConnectionError, toListenError } from "../src/runtime/errors.ts";

const endpoint = { hostname: "db.example", port: 7000 };

function raw(message: string, fields: { code?: string; name?: string }) {
  const error = new Error(message) as Error & { code?: string };
  if (fields.name !== undefined) error.name = fields.name;
  if (fields.code !== undefined) error.code = fields.code;
  return error;
}

const cases: [string, Error, new (...args: never[]) => ConnectionError][] = [
  [
    "node ECONNREFUSED",
    raw("connect ECONNREFUSED", { code: "ECONNREFUSED" }),
    ConnectionRefusedError,
  ],
  [
    "deno ConnectionRefused",
    raw("Connection refused (os error 111)", {
      name: "ConnectionRefused",
      code: "ECONNREFUSED",
    }),
    ConnectionRefusedError,
  ],
  [
    "deno ConnectionRefused without code",
    raw("refused", { name: "ConnectionRefused" }),
    ConnectionRefusedError,
  ],
  [
    "node ENOTFOUND",
    raw("getaddrinfo ENOTFOUND x", { code: "ENOTFOUND" }),
    HostNotFoundError,
  ],
  [
    "node EAI_AGAIN",
    raw("getaddrinfo EAI_AGAIN x", { code: "EAI_AGAIN" }),
    HostNotFoundError,
  ],
  ["EAI_NONAME", raw("no name", { code: "EAI_NONAME" }), HostNotFoundError],
  [
    "bun DNSException",
    raw("getaddrinfo ENOTFOUND x", { name: "DNSException", code: "ENOTFOUND" }),
    HostNotFoundError,
  ],
  ["deno NotFound", raw("not found", { name: "NotFound" }), HostNotFoundError],
  [
    "deno lookup failure",
    raw("failed to lookup address information: Name or service not known", {}),
    HostNotFoundError,
  ],
  [
    "node ECONNRESET",
    raw("read ECONNRESET", { code: "ECONNRESET" }),
    ConnectionLostError,
  ],
  [
    "deno ConnectionReset",
    raw("Connection reset by peer (os error 104)", { name: "ConnectionReset" }),
    ConnectionLostError,
  ],
  ["node EPIPE", raw("write EPIPE", { code: "EPIPE" }), ConnectionLostError],
  [
    "deno BrokenPipe",
    raw("Broken pipe (os error 32)", { name: "BrokenPipe" }),
    ConnectionLostError,
  ],
];

for (const [label, error, expected] of cases) {
  test(`${label} maps to ${expected.name}, keeping the cause`, () => {
    const mapped = toConnectionError(error, endpoint, { phase: "connect" });
    assert.ok(mapped instanceof expected, `got ${mapped.constructor.name}`);
    assert.equal(mapped.cause, error);
    assert.equal((mapped as ConnectionError).address, "db.example:7000");
    assert.equal(mapped.retryable, true);
  });
}

test("ETIMEDOUT while connecting is a connect timeout with the time spent", () => {
  const error = raw("connect ETIMEDOUT", { code: "ETIMEDOUT" });
  const mapped = toConnectionError(error, endpoint, {
    phase: "connect",
    elapsedMs: 1234.4,
  });
  assert.ok(mapped instanceof ConnectTimeoutError);
  assert.equal(mapped.timeoutMs, 1234);
  assert.equal(mapped.cause, error);
});

test("ETIMEDOUT on an open connection means it was lost", () => {
  const mapped = toConnectionError(
    raw("read ETIMEDOUT", { code: "ETIMEDOUT" }),
    endpoint,
  );
  assert.ok(mapped instanceof ConnectionLostError);
  assert.match(mapped.message, /timed out/);
});

test("anything else is a CONNECTION_FAILED ConnectionError saying what happened", () => {
  const error = raw("connect EHOSTUNREACH", { code: "EHOSTUNREACH" });
  const mapped = toConnectionError(error, endpoint, { phase: "connect" });
  assert.equal(mapped.constructor, ConnectionError);
  assert.equal(mapped.code, "CONNECTION_FAILED");
  assert.match(
    mapped.message,
    /connecting to db\.example:7000 failed: "connect EHOSTUNREACH"/,
  );
  assert.equal(mapped.cause, error);
});

test("non-Error values are described, not lost", () => {
  const mapped = toConnectionError("weird", endpoint);
  assert.equal(mapped.code, "CONNECTION_FAILED");
  assert.match(mapped.message, /weird/);
});

test("SDK errors pass through unchanged", () => {
  const error = new ProtocolError("bad frame");
  assert.equal(toConnectionError(error, endpoint), error);
});

test("listen failures are LISTEN_FAILED and not retryable", () => {
  const error = raw("listen EADDRINUSE", { code: "EADDRINUSE" });
  const mapped = toListenError(error, endpoint);
  assert.equal(mapped.code, "LISTEN_FAILED");
  assert.equal(mapped.retryable, false);
  assert.equal(mapped.cause, error);
});

test("an error about a peer whose address could not be read is still built", () => {
  const error = new ConnectionLostError(
    { hostname: undefined as unknown as string, port: 0 },
    "socket closed",
  );
  assert.match(error.message, /undefined:0 lost: socket closed/);
  assert.equal(error.address, "undefined:0");
});
