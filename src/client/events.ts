/**
 * The events a {@linkcode Client} dispatches: its own `retry`, the
 * manager's health and protocol events, and every pool's events, which it
 * re-dispatches from all its nodes.
 *
 * @module
 */

import type { ManagerEventMap } from "../cluster/events.ts";
import type { PoolEventMap } from "../pool/events.ts";

/** Detail of a `retry` event. */
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
 * Event dispatched by {@linkcode Client} before each retry.
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

/** Detail of a `retryBudgetExhausted` event. */
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
 * (`retryBudget` in the config): the request fails with its own error.
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
 * node's pool; `detail.address` names the node.
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
