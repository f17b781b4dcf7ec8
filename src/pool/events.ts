/**
 * The events a {@linkcode ConnectionPool} dispatches, their payloads, and an
 * `EventTarget` that knows whether anyone listens, so that the pool builds no
 * event object at all on its hot path when nobody does.
 *
 * @module
 */

import type { PoolConfig } from "../config/shapes.ts";

/** Why the pool let go of a connection. */
export type ConnectionClosedReason =
  /** Idle longer than `idleTimeoutMs` while the pool had more than `minConnections`. */
  | "idle"
  /** Older than `maxLifetimeMs` (± jitter); closed once it had nothing in flight. */
  | "lifetime"
  /** It broke or closed without the pool asking (its `closed` settled, or `isOpen` turned false). */
  | "error"
  /** It belonged to the pool before `clear()`. */
  | "stale"
  /** The pool was closed. */
  | "poolClosed";

/** Why a checkout (`getConnection` or `acquireShared`) failed. */
export type CheckoutFailedReason =
  /** No connection within the acquire timeout. */
  | "timeout"
  /** The pool was closed before or while the caller waited. */
  | "poolClosed"
  /**
   * Opening a connection failed while the pool had nothing else to offer,
   * or the pool was cleared (its node turned unhealthy) while the caller waited.
   */
  | "connectionError"
  /** The caller's `AbortSignal` fired. */
  | "aborted";

/** How a connection was asked for: lent exclusively, or shared (multiplexed). */
export type CheckoutMode = "exclusive" | "shared";

/**
 * The payload of every pool event, by event name. Every payload names the
 * pool's node in `address`.
 *
 * @example
 * ```ts
 * import type { PoolEventMap } from "@nodewire/client";
 * const onClosed = (detail: PoolEventMap["connectionClosed"]) =>
 *   console.log(`${detail.address} #${detail.connectionId} closed: ${detail.reason}`);
 * ```
 */
export interface PoolEventMap {
  /** The pool exists (dispatched one microtask after construction, so listeners added right after `new` see it). */
  poolCreated: { address: string; config: Readonly<PoolConfig> };
  /** The pool reached `minConnections` open connections for the first time. */
  poolReady: { address: string; open: number };
  /** `clear()` ran: idle connections closed, the rest marked stale, waiters failed. */
  poolCleared: { address: string; reason: unknown };
  /** `close()` finished: every connection is closed. */
  poolClosed: { address: string };
  /** The factory delivered a connection (it may still be discarded, see `connectionClosed`). */
  connectionCreated: { address: string; connectionId: number };
  /** A new connection joined the pool and can serve requests. `durationMs` is how long opening took. */
  connectionReady: {
    address: string;
    connectionId: number;
    durationMs: number;
  };
  /**
   * The factory failed. `backoffMs` is how long background refilling waits
   * before the next attempt; `consecutiveFailures` counts since the last success.
   */
  connectionFailed: {
    address: string;
    error: Error;
    consecutiveFailures: number;
    backoffMs: number;
  };
  /** The pool let go of a connection; `error` is set when it broke. */
  connectionClosed: {
    address: string;
    connectionId: number;
    reason: ConnectionClosedReason;
    error: Error | undefined;
  };
  /** A caller asked for a connection. */
  checkoutStarted: { address: string; mode: CheckoutMode };
  /** A caller's request for a connection failed. */
  checkoutFailed: {
    address: string;
    mode: CheckoutMode;
    reason: CheckoutFailedReason;
    error: Error;
  };
  /** A caller got a connection; `durationMs` is how long it waited. */
  checkedOut: {
    address: string;
    mode: CheckoutMode;
    connectionId: number;
    durationMs: number;
  };
  /** An exclusively lent connection came back through `returnConnection`. */
  checkedIn: { address: string; connectionId: number };
}

/** The name of a pool event. */
export type PoolEventName = keyof PoolEventMap;

/**
 * Every pool event name, in lifecycle order.
 *
 * @example
 * ```ts
 * import { POOL_EVENT_NAMES } from "@nodewire/client";
 * console.log(POOL_EVENT_NAMES.includes("checkedOut")); // true
 * ```
 */
export const POOL_EVENT_NAMES: readonly PoolEventName[] = Object.freeze(
  [
    "poolCreated",
    "poolReady",
    "poolCleared",
    "poolClosed",
    "connectionCreated",
    "connectionReady",
    "connectionFailed",
    "connectionClosed",
    "checkoutStarted",
    "checkoutFailed",
    "checkedOut",
    "checkedIn",
  ] satisfies PoolEventName[],
);

/**
 * An event dispatched by a {@linkcode ConnectionPool}. Its payload is in
 * `detail`, typed by the event name.
 *
 * @example
 * ```ts
 * import { PoolEvent } from "@nodewire/client";
 * const event = new PoolEvent("checkedIn", { address: "127.0.0.1:7000", connectionId: 3 });
 * console.log(event.type, event.detail.connectionId); // "checkedIn" 3
 * ```
 */
export class PoolEvent<K extends PoolEventName = PoolEventName> extends Event {
  /** The typed payload of this event. */
  readonly detail: PoolEventMap[K];

  /** Creates an event named `type` carrying `detail`. */
  constructor(type: K, detail: PoolEventMap[K]) {
    super(type);
    this.detail = detail;
  }
}

/** A listener for one pool event, as a function or an object with `handleEvent`. */
export type PoolEventListener<K extends PoolEventName> =
  | ((event: PoolEvent<K>) => void)
  | { handleEvent(event: PoolEvent<K>): void };

/** Bit per registration kind, because `capture` makes two registrations distinct. */
const BUBBLE = 1;
const CAPTURE = 2;

/**
 * An `EventTarget` that tracks which event types have listeners, because
 * `EventTarget` offers no way to ask, and building an event nobody hears
 * would cost an allocation on every checkout.
 *
 * The count errs on the side of "someone listens": a `once` listener that
 * already fired still counts until it is removed explicitly, which only
 * costs a wasted event, never a missed one.
 *
 * @example
 * ```ts
 * import { ListenerAwareEventTarget } from "./events.ts";
 * class Emitter extends ListenerAwareEventTarget {
 *   ping(): void {
 *     if (this.hasListeners("ping")) this.dispatchEvent(new Event("ping"));
 *   }
 * }
 * const emitter = new Emitter();
 * emitter.addEventListener("ping", () => console.log("pong"));
 * emitter.ping();
 * ```
 */
export class ListenerAwareEventTarget extends EventTarget {
  #listeners = new Map<
    string,
    Map<EventListenerOrEventListenerObject, number>
  >();

  /** Registers a listener, like `EventTarget.addEventListener`, and remembers the type is listened to. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    if (listener === null) return;
    const signal = typeof options === "object" ? options.signal : undefined;
    if (signal?.aborted) return; // EventTarget ignores it too
    const bit = captureBit(options);
    let byListener = this.#listeners.get(type);
    if (byListener === undefined) {
      byListener = new Map();
      this.#listeners.set(type, byListener);
    }
    byListener.set(listener, (byListener.get(listener) ?? 0) | bit);
    // EventTarget drops the listener on abort without telling us; follow it.
    signal?.addEventListener(
      "abort",
      () => this.#forget(type, listener, bit),
      { once: true },
    );
  }

  /** Removes a listener, like `EventTarget.removeEventListener`. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    if (listener !== null) this.#forget(type, listener, captureBit(options));
  }

  /**
   * Whether any listener is registered for `type`. Callers check this before
   * building an event, which keeps unheard events free.
   */
  hasListeners(type: string): boolean {
    return this.#listeners.size !== 0 && this.#listeners.has(type);
  }

  #forget(
    type: string,
    listener: EventListenerOrEventListenerObject,
    bit: number,
  ): void {
    const byListener = this.#listeners.get(type);
    const bits = byListener?.get(listener);
    if (byListener === undefined || bits === undefined) return;
    const left = bits & ~bit;
    if (left !== 0) {
      byListener.set(listener, left);
      return;
    }
    byListener.delete(listener);
    if (byListener.size === 0) this.#listeners.delete(type);
  }
}

function captureBit(options?: boolean | EventListenerOptions): number {
  const capture = typeof options === "boolean" ? options : options?.capture;
  return capture === true ? CAPTURE : BUBBLE;
}
