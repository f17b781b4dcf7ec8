/**
 * Errors about one request or call: it timed out, was aborted, was
 * answered with an error, found no node, found the client closed, or
 * used up its retries.
 *
 * @module
 */

import { NodewireError, type NodewireErrorOptions } from "./base.ts";

/**
 * No response arrived within the request's timeout. The request may have
 * reached the node, so it is retried only when marked idempotent.
 *
 * @example
 * ```ts
 * import { RequestTimeoutError } from "@nodewire/client";
 * const e = new RequestTimeoutError("127.0.0.1:7000", 250);
 * console.log(e.timeoutMs); // 250
 * ```
 */
export class RequestTimeoutError extends NodewireError {
  /** Always `"REQUEST_TIMEOUT"`. */
  declare readonly code: "REQUEST_TIMEOUT";
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  /** `host:port` of the node the request went to. */
  readonly address: string;

  /** Creates the error for a node address and the limit that passed. */
  constructor(address: string, timeoutMs: number) {
    super(
      "REQUEST_TIMEOUT",
      `request to ${address} timed out after ${timeoutMs} ms`,
      { retryable: true },
    );
    this.timeoutMs = timeoutMs;
    this.address = address;
  }
}

/**
 * The caller's `AbortSignal` fired. Never retried.
 *
 * @example
 * ```ts
 * import { AbortedError } from "@nodewire/client";
 * const e = new AbortedError("request aborted", "user gave up");
 * console.log(e.code); // "ABORTED"
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
 * whether it is retryable.
 *
 * @example
 * ```ts
 * import { RemoteError } from "@nodewire/client";
 * const e = new RemoteError(3, "key not found", false, "node-1");
 * console.log(e.remoteCode, e.retryable); // 3 false
 * ```
 */
export class RemoteError extends NodewireError {
  /** Always `"REMOTE_ERROR"`. */
  declare readonly code: "REMOTE_ERROR";
  /** The node's numeric error code (see docs/PROTOCOL.md). */
  readonly remoteCode: number;
  /** The id of the node that answered, when known. */
  readonly nodeId: string | undefined;

  /** Creates the error from an error frame's fields. */
  constructor(
    remoteCode: number,
    message: string,
    retryable: boolean,
    nodeId?: string,
  ) {
    super(
      "REMOTE_ERROR",
      `node ${nodeId ?? "?"} answered error ${remoteCode}: ${message}`,
      { retryable },
    );
    this.remoteCode = remoteCode;
    this.nodeId = nodeId;
  }
}

/**
 * No node is healthy, and the client was not configured to try unhealthy
 * nodes anyway. Thrown at once instead of waiting.
 *
 * @example
 * ```ts
 * import { NoHealthyNodesError } from "@nodewire/client";
 * const e = new NoHealthyNodesError(["127.0.0.1:7000", "127.0.0.1:7001"]);
 * console.log(e.code); // "NO_HEALTHY_NODES"
 * ```
 */
export class NoHealthyNodesError extends NodewireError {
  /** Always `"NO_HEALTHY_NODES"`. */
  declare readonly code: "NO_HEALTHY_NODES";
  /** The addresses of every known node, all unhealthy. */
  readonly addresses: readonly string[];

  /** Creates the error listing the nodes that are down. */
  constructor(
    addresses: readonly string[],
    options: NodewireErrorOptions = {},
  ) {
    super(
      "NO_HEALTHY_NODES",
      `no healthy node among ${addresses.length}: ${addresses.join(", ")}`,
      { retryable: true, ...options },
    );
    this.addresses = addresses;
  }
}

/**
 * The client is disconnecting or disconnected and takes no new work.
 *
 * @example
 * ```ts
 * import { ClientClosedError } from "@nodewire/client";
 * console.log(new ClientClosedError().code); // "CLIENT_CLOSED"
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
    super("CLIENT_CLOSED", message, { ...options, retryable: false });
  }
}

/**
 * Every attempt allowed by the retry policy failed. Keeps the last error as
 * `cause` and says how many attempts were made.
 *
 * @example
 * ```ts
 * import { RetriesExhaustedError } from "@nodewire/client";
 * const e = new RetriesExhaustedError(4, new Error("refused"));
 * console.log(e.attempts); // 4
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
      `gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${
        lastError instanceof Error ? lastError.message : String(lastError)
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
 * import { DatagramTooLargeError } from "@nodewire/client";
 * const e = new DatagramTooLargeError("127.0.0.1:7001", 2000, 1200);
 * console.log(e.code, e.maxPayload); // "DATAGRAM_TOO_LARGE" 1168
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
    super(
      "DATAGRAM_TOO_LARGE",
      `request payload of ${size} bytes does not fit in one UDP datagram ` +
        `to ${address}: at most ${maxPayload} bytes fit in maxDatagramSize ` +
        `${maxDatagramSize} (${maxDatagramSize - maxPayload} go to the ` +
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
