/**
 * What the parts of a {@linkcode ConnectionPool} (roster, waiters, opener,
 * housekeeper) share: its settings and clocks, its events, and the few
 * calls back into the pool.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { PoolConfig } from "../config/shapes.ts";
import type { TickClock } from "../tick_clock.ts";
import type { TypedEventTarget } from "../events.ts";
import {
  PoolEvent,
  type PoolEventDetailMap,
  type PoolEventMap,
  type PoolEventName,
} from "./events.ts";

/**
 * Dispatches a pool's events on the pool, `poolCreated` always first.
 * Callers ask the pool's `hasListeners()` before building a payload, so
 * that unheard events cost nothing.
 */
export class PoolEmitter {
  readonly #target: TypedEventTarget<PoolEventMap>;
  readonly #address: string;
  readonly #config: Readonly<PoolConfig>;
  /** Stamps each event with when it happened. */
  readonly #clock: Clock;
  #createdSent = false;

  /** Creates an emitter dispatching on `target`, the pool. */
  constructor(
    target: TypedEventTarget<PoolEventMap>,
    address: string,
    config: Readonly<PoolConfig>,
    clock: Clock,
  ) {
    this.#target = target;
    this.#address = address;
    this.#config = config;
    this.#clock = clock;
  }

  /** Dispatches an event (after `poolCreated`, if that is still due). */
  emit<K extends PoolEventName>(type: K, detail: PoolEventDetailMap[K]): void {
    this.flushCreated();
    this.#target.dispatchEvent(
      new PoolEvent(type, detail, this.#clock.now()) as PoolEventMap[K],
    );
  }

  /** Dispatches `poolCreated` first, once, whichever comes first. */
  flushCreated(): void {
    if (this.#createdSent) return;
    this.#createdSent = true;
    if (this.#target.hasListeners("poolCreated")) {
      this.#target.dispatchEvent(
        new PoolEvent("poolCreated", {
          address: this.#address,
          config: this.#config,
        }, this.#clock.now()),
      );
    }
  }
}

/**
 * What a pool's parts share, built once by the pool. Each part owns its
 * own state; these belong to the pool as a whole. The calls back into the
 * pool also keep the parts from importing each other in a circle.
 */
export interface PoolContext {
  /** The node, `host:port`, named in events and errors. */
  readonly address: string;
  /** The pool's resolved settings. */
  readonly config: Readonly<PoolConfig>;
  /** Time source. */
  readonly clock: Clock;
  /** The clock read once per tick, for the per-request paths. */
  readonly tick: TickClock;
  /**
   * How long a factory call may take, and how long a close started by the
   * pool may go unsettled with nothing in flight before its connection is
   * destroyed.
   */
  readonly createTimeoutMs: number;
  /** The pool, asked whether anyone listens before an event is built. */
  readonly target: TypedEventTarget<PoolEventMap>;
  /** Dispatches the pool's events. */
  readonly events: PoolEmitter;
  /** Serves waiters, then opens what is missing; safe to call from anywhere. */
  pump(): void;
  /** The same, after the current operation, once however often it is asked. */
  pumpSoon(): void;
  /** Dispatches `poolReady` once `minConnections` are open for the first time. */
  checkReady(): void;
  /**
   * Fails every waiter with what `thrown` blames: for the pool's timers and
   * promise handlers, where a throw (a custom clock whose `now()` throws)
   * would escape and leave the waiters waiting.
   */
  failWaiters(thrown: unknown): void;
  /** Arms the maintenance timer for `at`, unless it fires sooner already. */
  wakeAt(at: number): void;
  /** Fails waiters past their deadline; returns the next deadline. */
  expireWaiters(now: number): number;
  /** Gives up on opens past the create timeout; returns the next deadline. */
  expireOpens(now: number): number;
  /**
   * Whether a caller awaits the pool: a waiter is queued. An open is
   * awaited only through the waiters it is for; one with none left (or a
   * refill to `minConnections`) is the pool's own business.
   */
  awaited(): boolean;
  /**
   * Whether waiting could bring a fresh connection: one is being opened,
   * or the pool may grow and is not backing off.
   */
  wouldOpen(): boolean;
}
