/**
 * Errors about one request or call: it timed out, was aborted, was
 * answered with an error, found no node, found the client closed, or
 * used up its retries.
 *
 * @module
 */

import {
  clipped,
  flagOf,
  itemsOf,
  listed,
  messageOf,
  NodewireError,
  type NodewireErrorOptions,
  optionsOf,
  textOf,
  withRetryable,
} from "./base.ts";

/**
 * No response arrived within the request's timeout. Unless `sent` is
 * false, the request may have reached the node, so `retryable` is true
 * only for an idempotent request (or a ping): the same rule as
 * `isRetryable`.
 *
 * @example
 * ```ts
 * import { type Client, RequestTimeoutError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { timeoutMs: 250 }); // not idempotent: not retried
 * } catch (error) {
 *   if (error instanceof RequestTimeoutError) {
 *     console.log(`${error.address} gave no answer within ${error.timeoutMs} ms`);
 *   } else throw error;
 * }
 * ```
 */
export class RequestTimeoutError extends NodewireError {
  /** Always `"REQUEST_TIMEOUT"`. */
  declare readonly code: "REQUEST_TIMEOUT";
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  /** `host:port` of the node the request went to. */
  readonly address: string;
  /**
   * Whether the request had been written when time ran out, so whether it
   * may have reached the node. False when the time went by in the wait for
   * a connection or behind a congested socket.
   */
  readonly sent: boolean;

  /**
   * Creates the error for a node address and the limit that passed.
   * `options.retryable` defaults to true for a request never sent, false
   * otherwise (the caller knows whether it was idempotent).
   */
  constructor(
    address: string,
    timeoutMs: number,
    options: NodewireErrorOptions & { sent?: boolean } = {},
  ) {
    const read = optionsOf(options);
    const sent = flagOf(read.sent) ?? true;
    super(
      "REQUEST_TIMEOUT",
      `request to ${textOf(address)} timed out after ${textOf(timeoutMs)} ms${
        sent ? "" : " before it was sent"
      }`,
      withRetryable(read, !sent),
    );
    this.timeoutMs = timeoutMs;
    this.address = address;
    this.sent = sent;
  }
}

/**
 * The caller's `AbortSignal` fired. Never retried.
 *
 * @example
 * ```ts
 * import { AbortedError, type Client } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * const controller = new AbortController();
 * setTimeout(() => controller.abort("the user went away"), 1000);
 * try {
 *   await client.request(payload, { signal: controller.signal, idempotent: true });
 * } catch (error) {
 *   if (error instanceof AbortedError) console.log("stopped:", error.cause); // "the user went away"
 *   else throw error;
 * }
 * ```
 */
export class AbortedError extends NodewireError {
  /** Always `"ABORTED"`. */
  declare readonly code: "ABORTED";
  /** Creates the error; `reason` is the signal's reason. */
  constructor(message: string, reason?: unknown) {
    super("ABORTED", message, { cause: reason, retryable: false });
  }
}

/**
 * The node answered the request with an error frame. The node decides
 * whether it is retryable. The message quotes the node's text, cut at
 * 1,024 characters.
 *
 * @example
 * ```ts
 * import { type Client, RemoteError, RemoteErrorCode } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload);
 * } catch (error) {
 *   if (!(error instanceof RemoteError)) throw error;
 *   if (error.remoteCode === RemoteErrorCode.NotFound) console.log("no such key");
 *   else console.log(`node ${error.nodeId} said ${error.remoteCode}: ${error.message}`);
 * }
 * ```
 */
export class RemoteError extends NodewireError {
  /** Always `"REMOTE_ERROR"`. */
  declare readonly code: "REMOTE_ERROR";
  /** The node's numeric error code (see docs/PROTOCOL.md). */
  readonly remoteCode: number;
  /** The id of the node that answered, when known. */
  readonly nodeId: string | undefined;
  /** `host:port` of the node, when known. */
  readonly address: string | undefined;

  /**
   * Creates the error from an error frame's fields; the message names the
   * node by its id, else (before HELLO_OK told it) by its address. What
   * the node sent (its id, its text) is shown with control and format
   * characters escaped: a node must not write to a terminal or split a
   * log line through an error's message. The fields keep it as sent.
   */
  constructor(
    remoteCode: number,
    message: string,
    retryable: boolean,
    nodeId?: string,
    address?: string,
  ) {
    super(
      "REMOTE_ERROR",
      // textOf(): a caller's number, object or even revoked proxy is
      // shown, never a throw; the base class escapes the whole message.
      `node ${textOf(nodeId || address || "?")} answered error ${
        textOf(remoteCode)
      }: ${
        // The node's text, as much as a log line can take.
        clipped(textOf(message), 1024)}`,
      { retryable: flagOf(retryable) ?? false },
    );
    this.remoteCode = remoteCode;
    this.nodeId = nodeId;
    this.address = address;
  }
}

/**
 * No node is healthy, and the client was not configured to try unhealthy
 * nodes anyway. Thrown at once instead of waiting.
 *
 * @example
 * ```ts
 * import { type Client, NoHealthyNodesError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload);
 * } catch (error) {
 *   if (error instanceof NoHealthyNodesError) {
 *     console.log(`all ${error.addresses.length} nodes are down: ${error.addresses.join(", ")}`);
 *   } else throw error;
 * }
 * ```
 */
export class NoHealthyNodesError extends NodewireError {
  /** Always `"NO_HEALTHY_NODES"`. */
  declare readonly code: "NO_HEALTHY_NODES";
  /**
   * The addresses of every known node, all unhealthy (the message names
   * the first ten).
   */
  readonly addresses: readonly string[];

  /** Creates the error listing the nodes that are down. */
  constructor(
    addresses: readonly string[],
    options: NodewireErrorOptions = {},
  ) {
    const items = itemsOf(addresses);
    super(
      "NO_HEALTHY_NODES",
      items === undefined
        ? `no healthy node among ${textOf(addresses)}`
        : `no healthy node among ${items.length}: ${listed(items.map(textOf))}`,
      withRetryable(options, true),
    );
    this.addresses = addresses;
  }
}

/**
 * The client is disconnecting or disconnected and takes no new work.
 *
 * @example
 * ```ts
 * import { type Client, ClientClosedError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * const pending = client.request(payload);
 * await client.disconnect({ timeoutMs: 100 });
 * try {
 *   await pending;
 * } catch (error) {
 *   // Cancelled by the shutdown; the failure that ended it, if any, is its cause.
 *   if (error instanceof ClientClosedError) console.log(error.message, error.cause);
 *   else throw error;
 * }
 * ```
 */
export class ClientClosedError extends NodewireError {
  /** Always `"CLIENT_CLOSED"`. */
  declare readonly code: "CLIENT_CLOSED";
  /** Creates the error. */
  constructor(
    message = "the client is closed",
    options: NodewireErrorOptions = {},
  ) {
    super("CLIENT_CLOSED", message, {
      ...optionsOf(options),
      retryable: false,
    });
  }
}

/**
 * Every attempt allowed by the retry policy failed. Keeps the last error as
 * `cause` and says how many attempts were made.
 *
 * @example
 * ```ts
 * import { type Client, RetriesExhaustedError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload, { idempotent: true });
 * } catch (error) {
 *   if (error instanceof RetriesExhaustedError) {
 *     console.log(`gave up after ${error.attempts} attempts; last:`, error.cause);
 *   } else throw error;
 * }
 * ```
 */
export class RetriesExhaustedError extends NodewireError {
  /** Always `"RETRIES_EXHAUSTED"`. */
  declare readonly code: "RETRIES_EXHAUSTED";
  /** How many attempts were made, the first included. */
  readonly attempts: number;

  /** Creates the error from the attempt count and the last failure. */
  constructor(attempts: number, lastError: unknown) {
    super(
      "RETRIES_EXHAUSTED",
      `gave up after ${textOf(attempts)} attempt${attempts === 1 ? "" : "s"}: ${
        messageOf(lastError)
      }`,
      { cause: lastError, retryable: false },
    );
    this.attempts = attempts;
  }
}

/**
 * A request too large for one datagram. Raised before anything is sent,
 * and never retried: it would not fit the next time either.
 *
 * @example
 * ```ts
 * import { type Client, DatagramTooLargeError } from "@nodewire/client";
 * declare const client: Client; // connected with protocols: ["udp"]
 * try {
 *   await client.request(new Uint8Array(2000));
 * } catch (error) {
 *   if (error instanceof DatagramTooLargeError) {
 *     console.log(`${error.size} bytes; at most ${error.maxPayload} fit (maxDatagramSize ${error.maxDatagramSize})`);
 *   } else throw error;
 * }
 * ```
 */
export class DatagramTooLargeError extends NodewireError {
  /** Always `"DATAGRAM_TOO_LARGE"`. */
  declare readonly code: "DATAGRAM_TOO_LARGE";
  /** `host:port` the datagram would have gone to. */
  readonly address: string;
  /** The request payload's size, in bytes. */
  readonly size: number;
  /** The datagram limit in force (`maxDatagramSize`), in bytes. */
  readonly maxDatagramSize: number;
  /** The largest payload that fits: `maxDatagramSize` minus 32. */
  readonly maxPayload: number;

  /**
   * Creates the error for a payload of `size` bytes against a limit;
   * `maxPayload` is what fits once the session token and frame header are
   * counted.
   */
  constructor(
    address: string,
    size: number,
    maxDatagramSize: number,
    maxPayload: number,
  ) {
    // Only numbers are subtracted: anything else a caller hands could
    // throw there (a symbol, a proxy), or mean nothing.
    const overhead =
      typeof maxDatagramSize === "number" && typeof maxPayload === "number"
        ? maxDatagramSize - maxPayload
        : "?";
    super(
      "DATAGRAM_TOO_LARGE",
      `request payload of ${textOf(size)} bytes does not fit in one UDP ` +
        `datagram to ${textOf(address)}: at most ${textOf(maxPayload)} ` +
        `bytes fit in maxDatagramSize ${textOf(maxDatagramSize)} ` +
        `(${overhead} go to the ` +
        "session token and frame header); raise maxDatagramSize (up to " +
        "65507, the largest UDP payload over IPv4) or use TCP",
      { retryable: false },
    );
    this.address = address;
    this.size = size;
    this.maxDatagramSize = maxDatagramSize;
    this.maxPayload = maxPayload;
  }
}
