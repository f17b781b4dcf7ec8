/**
 * A pool on a virtual clock over a fake node, and the helpers its tests
 * share: following a promise, recording events.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Clock, TimerHandle } from "../../src/clock.ts";
import type { PoolConfig } from "../../src/config/shapes.ts";
import { ConnectionPool } from "../../src/pool/pool.ts";
import type { ConnectionFactory } from "../../src/pool/types.ts";
import {
  POOL_EVENT_NAMES,
  PoolEvent,
  type PoolEventDetailMap,
  type PoolEventName,
} from "../../src/pool/events.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import { FakeConnection } from "./fake_connection.ts";

export const ADDRESS = "10.0.0.1:7000";

/** A fake connection whose close takes its node's close delay. */
export class NodeConnection extends FakeConnection {
  constructor(id: number, private readonly node: FakeNode) {
    super(id);
  }

  override close(): Promise<void> {
    const delay = this.node.closeDelayMs;
    if (delay === 0) return super.close();
    this.closeCalls++;
    this.isOpen = false;
    return new Promise((resolve) => {
      this.node.clock.setTimeout(() => {
        this.markClosed(undefined);
        resolve();
      }, delay);
    });
  }
}

/** A database node as the factory sees it: it can be slow, refuse or hang. */
export class FakeNode {
  readonly connections: NodeConnection[] = [];
  readonly callTimes: number[] = [];
  opening = 0;
  maxOpening = 0;
  aborted = 0;
  /** Virtual ms a connect takes; Infinity hangs until aborted. */
  connectDelayMs = 0;
  closeDelayMs = 0;
  /** When set, connects fail with this. */
  refuse: Error | undefined;
  /** Deliver the connection even after the signal aborted (a sloppy factory). */
  ignoreAbort = false;
  #nextId = 1;

  constructor(readonly clock: VirtualClock) {}

  get calls(): number {
    return this.callTimes.length;
  }

  factory: ConnectionFactory<NodeConnection> = (signal) => {
    this.callTimes.push(this.clock.now());
    this.opening++;
    this.maxOpening = Math.max(this.maxOpening, this.opening);
    return new Promise((resolve, reject) => {
      let timer: unknown;
      const finish = () => {
        if (!this.ignoreAbort) signal.removeEventListener("abort", onAbort);
        this.opening--;
        if (this.refuse !== undefined) {
          reject(this.refuse);
          return;
        }
        const conn = new NodeConnection(this.#nextId++, this);
        this.connections.push(conn);
        resolve(conn);
      };
      const onAbort = () => {
        this.clock.clearTimeout(timer);
        this.opening--;
        this.aborted++;
        reject(signal.reason);
      };
      if (!this.ignoreAbort) {
        signal.addEventListener("abort", onAbort, { once: true });
      }
      if (this.connectDelayMs === 0) queueMicrotask(finish);
      else if (this.connectDelayMs !== Infinity) {
        timer = this.clock.setTimeout(finish, this.connectDelayMs);
      }
    });
  };

  conn(id: number): NodeConnection {
    const conn = this.connections.find((c) => c.id === id);
    assert.ok(conn, `connection ${id} exists`);
    return conn;
  }
}

export function setup(
  config: Partial<PoolConfig> = {},
  options: {
    random?: () => number;
    poolClock?: (clock: VirtualClock) => Clock;
  } = {},
) {
  const clock = new VirtualClock();
  const node = new FakeNode(clock);
  const pool = new ConnectionPool<NodeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 4, ...config },
    factory: node.factory,
    clock: options.poolClock?.(clock) ?? clock,
    random: options.random ?? (() => 0.5), // no jitter
  });
  return { clock, node, pool };
}

/**
 * A clock running `lag` ms ahead of a virtual clock whose timers it uses:
 * time that passed while the pool's timer did not fire (an event loop
 * busy with other work).
 */
export class LateClock implements Clock {
  /** How far ahead of the virtual clock it reads. */
  lag = 0;

  constructor(readonly inner: VirtualClock) {}

  now(): number {
    return this.inner.now() + this.lag;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.inner.setTimeout(fn, ms);
  }

  clearTimeout(handle: TimerHandle): void {
    this.inner.clearTimeout(handle);
  }
}

/** Follows a promise without letting a rejection go unhandled. */
export function watch<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: unknown } = { done: false };
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

export type Recorded = {
  type: PoolEventName;
  detail: PoolEventDetailMap[PoolEventName];
};

export const ALL_EVENTS: PoolEventName[] = [...POOL_EVENT_NAMES];

export function record(
  pool: ConnectionPool<NodeConnection>,
  types: PoolEventName[] = ALL_EVENTS,
): Recorded[] {
  const events: Recorded[] = [];
  for (const type of types) {
    pool.addEventListener(type, (event) => {
      assert.ok(event instanceof PoolEvent);
      events.push({ type, detail: event.detail });
    });
  }
  return events;
}

export function closedReasons(events: Recorded[]): string[] {
  return events
    .filter((e) => e.type === "connectionClosed")
    .map((e) => {
      const d = e.detail as PoolEventDetailMap["connectionClosed"];
      return `${d.connectionId}:${d.reason}`;
    });
}
