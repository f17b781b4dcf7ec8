/**
 * The options of one request, `Client.request`'s and `Client.requestMany`'s.
 *
 * @module
 */

/**
 * Options of {@linkcode Client.request}.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * const controller = new AbortController();
 * const reply = await client.request(new Uint8Array([1, 104, 105]), {
 *   timeoutMs: 500, // each attempt
 *   signal: controller.signal, // the whole call, retries included
 *   idempotent: true, // safe to retry after it may have reached a node
 * });
 * console.log(reply.byteLength);
 * ```
 */
export interface ClientRequestOptions {
  /**
   * Bounds each attempt end to end, in ms: the wait for a pool connection,
   * the send and the reply. Default `requestTimeoutMs`. Waits between
   * retries are not part of an attempt; `signal` bounds the whole call.
   */
  timeoutMs?: number;
  /**
   * Bounds the whole call, retries and the waits between them included:
   * when it aborts, the request fails at once with a non-retryable
   * `AbortedError` carrying the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * The request is safe to execute twice, so it may be retried even after
   * it may have reached a node. Default false.
   */
  idempotent?: boolean;
  /**
   * Set false to make exactly one attempt: no retry, and no hedge either
   * (even with `hedge: true`). Default true.
   */
  retry?: boolean;
  /**
   * For an idempotent request: after the hedge delay without a reply, send
   * a second attempt to another node and take whichever reply comes first
   * (see `hedging` in the config). Default: on when the client's `hedging`
   * is on. Never for a request that is not idempotent, nor for one with
   * `retry: false` (exactly one attempt).
   */
  hedge?: boolean;
}
