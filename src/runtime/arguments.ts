/**
 * Argument checks at the adapters' entries: an `InvalidArgumentError`
 * before any socket exists, not a runtime's TypeError, a port nobody
 * asked for, or a listener that throws on its first connection.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";

type Rule = readonly [ok: (value: unknown) => boolean, expected: string];

// "[::1]" is an address's spelling, not a host: Deno took it, Bun and
// Node could not resolve it.
const host: Rule = [
  (v) =>
    typeof v === "string" && v !== "" && v.length < 256 &&
    !v.includes("\0") && v[0] !== "[",
  "expected a host name or IP (no brackets), 1-255 chars",
];
// 0 included: connecting to it fails as a ConnectionError on every runtime.
const port: Rule = [
  (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 65536,
  "expected an integer port in 0-65535",
];
const pem: Rule = [
  (v) => typeof v === "string" && v.includes("-----BEGIN "),
  "expected a PEM string",
];
const signal: Rule = [
  (v) => v instanceof AbortSignal,
  "expected an AbortSignal",
];
const bool: Rule = [(v) => typeof v === "boolean", "expected a boolean"];
// Checked on its own, as an object of its own options.
const nested: Rule = [() => true, ""];

/** Throws unless `fn` is a function: a receiver called later must be one. */
export function checkReceiver(method: string, fn: unknown): void {
  if (typeof fn !== "function") {
    throw new InvalidArgumentError("fn", fn, "expected a function", { method });
  }
}

/** Throws unless every key of `options` is in `rules` and passes it. */
function check(
  method: string,
  options: unknown,
  rules: Record<string, Rule>,
  required: readonly string[],
  name = "options",
): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(name, options, "expected an object", {
      method,
    });
  }
  const values = options as Record<string, unknown>;
  for (const key of [...required, ...Object.keys(values)]) {
    const value = values[key];
    const [ok, expected] = Object.hasOwn(rules, key)
      ? rules[key]
      : [() => false, `a known option (${Object.keys(rules).join(", ")})`];
    if (value === undefined ? required.includes(key) : !ok(value)) {
      throw new InvalidArgumentError(`${name}.${key}`, value, expected, {
        method,
      });
    }
  }
}

const CLIENT_TLS: Record<string, Rule> = {
  serverName: host,
  ca: [
    (v) => Array.isArray(v) && v.every(pem[0]),
    "expected an array of PEM strings",
  ],
  dangerouslySkipVerify: bool,
  signal,
};
const SERVER_TLS: Record<string, Rule> = { cert: pem, key: pem, signal };

/**
 * Checks TLS options: a client's (`connect`'s `tls`, `startTls`) or, with
 * `server`, a server's (`listen`'s `tls`, `acceptTls`).
 */
export function checkTls(
  method: string,
  options: unknown,
  server: boolean,
  name?: string,
): void {
  check(
    method,
    options,
    server ? SERVER_TLS : CLIENT_TLS,
    server ? ["cert", "key"] : ["serverName"],
    name,
  );
}

/** Checks `adapter.connect()`'s options, its `tls` included. */
export function checkConnect(options: unknown): void {
  const method = "connect()";
  check(
    method,
    options,
    { hostname: host, port, signal, tls: nested, startsTls: bool },
    [
      "hostname",
      "port",
    ],
  );
  const client = (options as { tls?: unknown }).tls;
  if (client !== undefined) checkTls(method, client, false, "options.tls");
}

/** Checks `adapter.listen()`'s options, `tls` included, and receiver. */
export function checkListen(options: unknown, onConnection: unknown): void {
  const method = "listen()";
  check(method, options, { hostname: host, port, tls: nested }, [
    "port",
  ]);
  const server = (options as { tls?: unknown }).tls;
  if (server !== undefined) checkTls(method, server, true, "options.tls");
  checkReceiver(method, onConnection);
}

/** Checks `adapter.datagram()`'s options. */
export function checkDatagram(options: unknown): void {
  check("datagram()", options, { hostname: host, port: port }, []);
}
