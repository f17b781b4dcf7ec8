/**
 * A pool's options read, its settings resolved, and its parts built and
 * wired to each other: the roster, the housekeeper, the waiters and the
 * opener, over one shared context whose calls back into the pool (the
 * pump, `poolReady`) the pool hands in. Runs once, in the pool's
 * constructor.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { PoolConfig } from "../config/shapes.ts";
import { resolvePoolConfig } from "../config/resolve.ts";
import { readable } from "../config/validate.ts";
import { clockFailed } from "../config/clock_failure.ts";
import { TickClock } from "../tick_clock.ts";
import { readPoolOptions } from "./arguments.ts";
import { type PoolContext, PoolEmitter } from "./context.ts";
import { Housekeeper } from "./housekeeping.ts";
import { Opener } from "./opening.ts";
import { Roster } from "./roster.ts";
import type { ConnectionPoolOptions, PoolableConnection } from "./types.ts";
import { Waiters } from "./waiters.ts";

/** The parts of one pool, and what they share. */
export interface PoolParts<C extends PoolableConnection> {
  /** What the parts share: settings, clocks, events, calls into the pool. */
  readonly ctx: PoolContext;
  /** Time source. */
  readonly clock: Clock;
  /** The clock read once per tick, for the per-request paths. */
  readonly tick: TickClock;
  /** Dispatches the pool's events. */
  readonly events: PoolEmitter;
  /** The connections held, and the choice among them. */
  readonly roster: Roster<C>;
  /** The one maintenance timer. */
  readonly keeper: Housekeeper<C>;
  /** The callers waiting for a connection. */
  readonly waiters: Waiters<C>;
  /** Opens connections through the factory. */
  readonly opener: Opener<C>;
}

/** What the parts call back into the pool for (see {@linkcode PoolContext}). */
export type PoolCalls = Pick<PoolContext, "pump" | "pumpSoon" | "checkReady">;

/**
 * Builds a pool's parts from its options, read and checked here, and its
 * settings, resolved and frozen here (`ctx.address` and `ctx.config` are
 * the pool's `address` and `config`).
 *
 * @throws {InvalidArgumentError} for a bad option; `ConfigError` for a bad `config`.
 */
export function assemblePool<C extends PoolableConnection>(
  target: PoolContext["target"],
  options: ConnectionPoolOptions<C>,
  calls: PoolCalls,
): PoolParts<C> {
  const o = readPoolOptions<C>(options);
  const address = o.address;
  // One that cannot be read is a ConfigError too, as a client's is.
  const config: Readonly<PoolConfig> = Object.freeze(
    readable("poolConfig", o.config, () => resolvePoolConfig(o.config)),
  );
  const factory = o.factory;
  const clock = o.clock ?? systemClock;
  const random = o.random ?? Math.random;
  const heartbeat = o.heartbeat;
  const createTimeoutMs = o.createTimeoutMs ??
    config.connectionTimeoutMs;
  const tick = new TickClock(clock, (thrown) => clockFailed(clock, thrown));
  const events = new PoolEmitter(target, address, config, clock);
  const ctx: PoolContext = {
    address,
    config,
    clock,
    tick,
    createTimeoutMs,
    target,
    events,
    pump: calls.pump,
    pumpSoon: calls.pumpSoon,
    checkReady: calls.checkReady,
    failWaiters: (thrown) => waiters.failThrown(thrown),
    wakeAt: (at) => keeper.wakeAt(at),
    expireWaiters: (now) => waiters.expire(now),
    expireOpens: (now) => opener.expire(now),
    awaited: () => waiters.queue.size > 0,
    wouldOpen: () => opener.wouldOpen(),
  };
  const roster = new Roster<C>(ctx);
  const keeper = new Housekeeper<C>(ctx, roster, heartbeat);
  const waiters = new Waiters<C>(ctx, roster, keeper);
  const opener = new Opener<C>(
    ctx,
    roster,
    waiters,
    keeper,
    factory,
    random,
    createTimeoutMs,
  );
  return { ctx, clock, tick, events, roster, keeper, waiters, opener };
}
