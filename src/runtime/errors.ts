/**
 * Turns the errors each runtime throws for socket trouble into the SDK's
 * own classes, so nothing above the adapters knows which runtime it runs on.
 *
 * Matching is by `.code` and `.name`, never `instanceof Deno.errors.*`:
 * those classes do not exist on Bun or Node, and Node-compat errors on
 * Deno carry Node codes rather than Deno classes. What was seen on
 * deno 2.9.6, bun 1.4.5 and node 20:
 *
 * | failure      | Deno.connect                           | Bun.connect        | node:net (all three) |
 * | ------------ | -------------------------------------- | ------------------ | -------------------- |
 * | refused      | name `ConnectionRefused`, `ECONNREFUSED` | `ECONNREFUSED`   | `ECONNREFUSED`       |
 * | unresolvable | plain `Error` "failed to lookup address information" | `ENOTFOUND` | `ENOTFOUND` (Bun: name `DNSException`) |
 * | reset        | name `ConnectionReset`, `ECONNRESET`   | `ECONNRESET` in `close` | `ECONNRESET`    |
 * | write after reset | name `BrokenPipe`, `EPIPE`        | `write` returns -1 | `EPIPE`/`ECONNRESET` |
 *
 * Deno's adapter is on node:net (the Deno.connect column stays for
 * adapters written on it). Bun's adapter connects through node:net
 * (`Bun.connect` cannot be abandoned) and then drives Bun's native socket
 * (see bun/adapter.ts): connect failures come as in the node:net column,
 * later ones as in the `Bun.connect` column.
 *
 * @module
 */

import {
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  type Endpoint,
  formatAddress,
  HostNotFoundError,
  NodewireError,
} from "../errors.ts";
import { fieldOf, foreignText, messageOf, textOf } from "../errors/base.ts";

/** When the error happened; decides between "could not connect" and "lost". */
export type SocketPhase = "connect" | "transfer";

/** Context for {@linkcode toConnectionError}. */
export interface SocketErrorContext {
  /** Connecting or transferring; `"transfer"` by default. */
  phase?: SocketPhase;
  /**
   * Milliseconds spent connecting, reported by `ConnectTimeoutError` when
   * the operating system gave up (ETIMEDOUT) rather than our own deadline.
   */
  elapsedMs?: number;
}

const REFUSED = new Set(["ECONNREFUSED", "ConnectionRefused"]);
const NOT_FOUND = new Set([
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_NODATA",
  "EAI_FAIL",
  "DNS_ENOTFOUND",
  "NotFound",
  "DNSException",
]);
const LOST: ReadonlyMap<string, string> = new Map([
  ["ECONNRESET", "reset by peer"],
  ["ConnectionReset", "reset by peer"],
  ["EPIPE", "broken pipe"],
  ["BrokenPipe", "broken pipe"],
  ["ECONNABORTED", "aborted"],
  ["ConnectionAborted", "aborted"],
]);
const TIMED_OUT = new Set(["ETIMEDOUT", "TimedOut"]);

/**
 * Maps a runtime's socket error to the SDK's error class for it, keeping
 * the original as `cause`. SDK errors pass through unchanged.
 *
 * - refused → `ConnectionRefusedError`
 * - name not resolvable → `HostNotFoundError`
 * - reset or broken pipe → `ConnectionLostError`
 * - ETIMEDOUT while connecting → `ConnectTimeoutError`; later (the kernel
 *   gave up retransmitting) → `ConnectionLostError`
 * - anything else → `ConnectionError` with code `CONNECTION_FAILED`
 */
export function toConnectionError(
  error: unknown,
  endpoint: Endpoint,
  context: SocketErrorContext = {},
): NodewireError {
  if (error instanceof NodewireError) return error;
  const options = { cause: error };
  const keys = errorKeys(error);
  const has = (set: { has(key: string): boolean }) =>
    keys.some((k) => set.has(k));
  const phase = context.phase ?? "transfer";

  if (has(REFUSED)) return new ConnectionRefusedError(endpoint, options);
  if (has(NOT_FOUND) || isDenoLookupFailure(error)) {
    return new HostNotFoundError(endpoint, options);
  }
  for (const key of keys) {
    const reason = LOST.get(key);
    if (reason !== undefined) {
      return new ConnectionLostError(endpoint, reason, options);
    }
  }
  if (has(TIMED_OUT)) {
    return phase === "connect"
      ? new ConnectTimeoutError(
        endpoint,
        Math.round(context.elapsedMs ?? 0),
        options,
      )
      : new ConnectionLostError(endpoint, "timed out", options);
  }
  const verb = phase === "connect" ? "connecting to" : "connection to";
  return new ConnectionError(
    "CONNECTION_FAILED",
    `${verb} ${formatAddress(endpoint)} failed: ${describe(error)}`,
    endpoint,
    options,
  );
}

/**
 * The error of a channel asked to write or upgrade once its socket is
 * gone (closed, destroyed, or taken by a TLS upgrade): a lost connection,
 * as a broken pipe would be reported.
 */
export function socketClosed(endpoint: Endpoint): NodewireError {
  return toConnectionError(
    Object.assign(new Error("socket closed"), { code: "EPIPE" }),
    endpoint,
  );
}

/**
 * Maps a failure to bind a server socket. Not retryable: a port in use or
 * an address the host does not have stays that way.
 */
export function toListenError(
  error: unknown,
  endpoint: Endpoint,
): ConnectionError {
  if (error instanceof ConnectionError) return error;
  return new ConnectionError(
    "LISTEN_FAILED",
    `cannot listen on ${formatAddress(endpoint)}: ${describe(error)}`,
    endpoint,
    { cause: error, retryable: false },
  );
}

/** `.code` and `.name` of an error-like value, the code first. */
function errorKeys(error: unknown): string[] {
  if (typeof error !== "object" || error === null) return [];
  const { code, name } = error as { code?: unknown; name?: unknown };
  const keys: string[] = [];
  if (typeof code === "string") keys.push(code);
  if (typeof name === "string") keys.push(name);
  return keys;
}

/**
 * Deno.connect reports an unresolvable name as a plain `Error` with no code,
 * so the message is the only signal.
 */
function isDenoLookupFailure(error: unknown): boolean {
  return error instanceof Error &&
    /failed to lookup address|name or service not known|nodename nor servname/i
      .test(error.message);
}

/** What `error` says, as it says it: its message, else its name. */
export function errorText(error: unknown): string {
  const text = messageOf(error);
  if (text === "" && error instanceof Error) {
    return textOf(fieldOf(error, "name"));
  }
  return text;
}

/**
 * What `error` says, for a message: foreign text (a runtime's, a TLS
 * stack's, a custom adapter's), so quoted and cut (see foreignText); the
 * error's cause keeps it whole.
 */
export function describe(error: unknown): string {
  return foreignText(errorText(error));
}
