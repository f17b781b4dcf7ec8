/**
 * Argument checks at the adapters' entries: an `InvalidArgumentError`
 * before any socket exists, not a runtime's TypeError, a port nobody
 * asked for, or a listener that throws on its first connection.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { isInstance } from "../errors/base.ts";

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
// isInstance: `instanceof` on a proxy whose getPrototypeOf trap throws
// threw that, raw, out of the check.
const signal: Rule = [
  (v) => isInstance(v, AbortSignal),
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

/**
 * `options` read once into a copy, then checked: each known option is
 * read once (inherited and non-enumerable ones too, as a read by the
 * adapter would find them), and the adapter goes on with the copy, so a
 * getter that answers differently later is never asked again. A read
 * that throws (a getter, a revoked proxy) is an InvalidArgumentError.
 */
function read(
  method: string,
  options: unknown,
  rules: Record<string, Rule>,
  required: readonly string[],
  name = "options",
): Record<string, unknown> {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(name, options, "expected an object", {
      method,
    });
  }
  const values = options as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  // Unknown names, refused below unless undefined: not in the copy.
  const unknown: Record<string, unknown> = {};
  let at = name;
  let names: string[];
  try {
    names = Object.keys(values);
    for (const key in rules) {
      at = `${name}.${key}`;
      copy[key] = values[key];
    }
    for (const key of names) {
      if (Object.hasOwn(rules, key)) continue;
      at = `${name}.${key}`;
      unknown[key] = values[key];
    }
  } catch (cause) {
    throw new InvalidArgumentError(at, options, "could not be read", {
      method,
      cause,
    });
  }
  for (const key of [...required, ...names]) {
    const known = Object.hasOwn(rules, key);
    const value = known ? copy[key] : unknown[key];
    const [ok, expected] = known
      ? rules[key]
      : [() => false, `a known option (${Object.keys(rules).join(", ")})`];
    if (value === undefined ? required.includes(key) : !ok(value)) {
      throw new InvalidArgumentError(`${name}.${key}`, value, expected, {
        method,
      });
    }
  }
  return copy;
}

const CLIENT_TLS: Record<string, Rule> = {
  serverName: host,
  // Read item by item into a copy, then checked (see readCa).
  ca: nested,
  dangerouslySkipVerify: bool,
  signal,
};
const SERVER_TLS: Record<string, Rule> = { cert: pem, key: pem, signal };

/**
 * TLS options, read once and checked: a client's (`connect`'s `tls`,
 * `startTls`) or, with `server`, a server's (`listen`'s `tls`,
 * `acceptTls`). Returns the copy to go on with.
 */
export function readTls<T>(
  method: string,
  options: unknown,
  server: boolean,
  name = "options",
): T {
  const copy = read(
    method,
    options,
    server ? SERVER_TLS : CLIENT_TLS,
    server ? ["cert", "key"] : ["serverName"],
    name,
  );
  if (!server && copy.ca !== undefined) {
    copy.ca = readCa(method, copy.ca, `${name}.ca`);
  }
  return copy as T;
}

/**
 * The CA list copied, each item read once, then checked: the adapters go
 * on with the copy, so an item asked again cannot answer what was never
 * checked, and a list that cannot be read (a proxy's trap, a getter) is
 * an InvalidArgumentError, not what it threw.
 */
function readCa(method: string, value: unknown, argument: string): string[] {
  const expected = "expected an array of PEM strings";
  let items: unknown[];
  try {
    if (!Array.isArray(value)) {
      throw new InvalidArgumentError(argument, value, expected, { method });
    }
    items = Array.from(value);
  } catch (cause) {
    if (cause instanceof InvalidArgumentError) throw cause;
    throw new InvalidArgumentError(argument, value, "could not be read", {
      method,
      cause,
    });
  }
  if (!items.every(pem[0])) {
    throw new InvalidArgumentError(argument, value, expected, { method });
  }
  return items as string[];
}

/** `connect()`'s options, read once and checked: the copy to go on with. */
export function readConnect<Options>(options: Options): Options {
  const method = "connect()";
  const copy = read(
    method,
    options,
    { hostname: host, port, signal, tls: nested, startsTls: bool },
    [
      "hostname",
      "port",
    ],
  );
  if (copy.tls !== undefined) {
    copy.tls = readTls(method, copy.tls, false, "options.tls");
  }
  return copy as Options;
}

/** `listen()`'s options, read once and checked: the copy to go on with. */
export function readListen<Options>(
  options: Options,
  onConnection: unknown,
): Options {
  const method = "listen()";
  const copy = read(method, options, { hostname: host, port, tls: nested }, [
    "port",
  ]);
  if (copy.tls !== undefined) {
    copy.tls = readTls(method, copy.tls, true, "options.tls");
  }
  checkReceiver(method, onConnection);
  return copy as Options;
}

/** `datagram()`'s options, read once and checked: the copy to go on with. */
export function readDatagram<Options>(options: Options): Options {
  return read(
    "datagram()",
    options,
    { hostname: host, port: port },
    [],
  ) as Options;
}
