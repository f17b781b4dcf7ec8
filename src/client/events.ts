/**
 * The events a {@linkcode Client} dispatches: its own `retry`, the
 * manager's health and protocol events, and every pool's events, which it
 * re-dispatches from all its nodes.
 *
 * A client is an `EventTarget`, and a listener that throws is treated as
 * any `EventTarget` listener's throw: the other listeners still run, the
 * client carries on as if the listener had returned (a request being
 * retried is still retried, one the budget refused still fails with its
 * own error), and the error is reported as an uncaught exception (Node
 * and Bun: `process`'s `uncaughtException`; Deno: an `error` event on
 * `globalThis`), which ends the process unless the application handles
 * it. The client neither hides a listener's bug nor lets it change a
 * request: catch inside a listener what it may throw.
 *
 * @module
 */

import type { ManagerEventMap } from "../cluster/events.ts";
import type { PoolEventMap } from "../pool/events.ts";

/**
 * Detail of a `retry` event.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * client.addEventListener("retry", (e) => {
 *   const { attempt, delayMs, address, error } = e.detail;
 *   console.log(`retry ${attempt} in ${delayMs} ms after ${address}: ${error}`);
 * });
 * ```
 */
export interface RetryEventDetail {
  /** The attempt about to be made (1 = first retry). */
  attempt: number;
  /** How long the client waits before it. */
  delayMs: number;
  /** The error that caused the retry. */
  error: unknown;
  /** The node the failed attempt went to. */
  address: string | undefined;
}

/**
 * Event dispatched by {@linkcode Client} before each retry. A listener
 * that throws does not stop the retry; its error is reported as any
 * `EventTarget` listener's (an uncaught exception: see the module doc).
 *
 * @example
 * ```ts
 * import type { RetryEvent } from "@nodewire/client";
 * const log = (e: RetryEvent) => console.log(`retry ${e.detail.attempt} in ${e.detail.delayMs} ms`);
 * ```
 */
export class RetryEvent extends Event {
  /** What is retried and why. */
  readonly detail: RetryEventDetail;
  /**
   * When the retry was decided: ms on the client's clock (the config's
   * `clock`, `performance.now()` by default). The next attempt starts at
   * `at + detail.delayMs`. Compare it with other readings of that clock,
   * not with `Date.now()`.
   */
  readonly at: number;

  /** Creates the event. */
  constructor(detail: RetryEventDetail, at: number) {
    super("retry");
    this.detail = detail;
    this.at = at;
  }
}

/**
 * Detail of a `retryBudgetExhausted` event.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * client.addEventListener("retryBudgetExhausted", (e) => {
 *   const { attempt, address, error } = e.detail;
 *   console.warn(`retry ${attempt} refused by the budget (${address}): ${error}`);
 * });
 * ```
 */
export interface RetryBudgetEventDetail {
  /** The attempt that would have been made (1 = first retry). */
  attempt: number;
  /** The error the request fails with instead of being retried. */
  error: unknown;
  /** The node the failed attempt went to. */
  address: string | undefined;
}

/**
 * Event dispatched by {@linkcode Client} when a request that could have
 * been retried is not, because retries already used the retry budget
 * (`retryBudget` in the config): the request fails with its own error. A
 * listener that throws changes nothing for the request; its error is
 * reported as any `EventTarget` listener's (see the module doc).
 *
 * @example
 * ```ts
 * import type { RetryBudgetEvent } from "@nodewire/client/core";
 * const warn = (e: RetryBudgetEvent) => console.warn(`not retried: ${e.detail.address}`);
 * ```
 */
export class RetryBudgetEvent extends Event {
  /** Which request was not retried, and its error. */
  readonly detail: RetryBudgetEventDetail;
  /** When: ms on the client's clock. */
  readonly at: number;

  /** Creates the event. */
  constructor(detail: RetryBudgetEventDetail, at: number) {
    super("retryBudgetExhausted");
    this.detail = detail;
    this.at = at;
  }
}

/**
 * The events of a {@linkcode Client}, by name: what its `addEventListener`
 * accepts and what each listener receives. Pool events come from every
 * node's pool; `detail.address` names the node. A listener's throw is
 * reported as an uncaught exception, as for any `EventTarget`, and changes
 * nothing for the client's work.
 *
 * @example
 * ```ts
 * import type { ClientEventMap } from "@nodewire/client";
 * const onRetry = (e: ClientEventMap["retry"]) => console.log(e.detail.delayMs);
 * ```
 */
export interface ClientEventMap extends PoolEventMap, ManagerEventMap {
  /** A failed attempt is about to be retried. */
  retry: RetryEvent;
  /** A failed attempt is not retried: the retry budget is spent. */
  retryBudgetExhausted: RetryBudgetEvent;
}
