// A custom clock that a test breaks on purpose: the clock_throws_* tests
// check what the client does when a caller's clock starts throwing after
// construction.
import assert from "node:assert/strict";
import { Client } from "../../src/client/client.ts";
import type { Clock } from "../../src/clock.ts";
import type { ConnectionConfig, PoolConfig } from "../../src/config/shapes.ts";
import { ConfigError } from "../../src/errors.ts";
import { ConnectionPool } from "../../src/pool/pool.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";
import { type FaultProxy, startFaultProxy } from "../../testing/proxy.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import { FakeConnection } from "./fake_connection.ts";
import { watchEscapes } from "./fault_harness.ts";
import { ADDRESS } from "./pool_scene.ts";
import { tickEnds } from "./stub_connection.ts";

/**
 * A virtual clock whose now() throws `broke` once `state.reads` more
 * reads have been given (never while `state.reads` is Infinity), for its
 * next `state.breaks` reads (Infinity: until `state.reads` is set again).
 * `state.thrown` counts the throws, so a test can tell whether what it
 * drove met the broken clock. Its clearTimeout() breaks the same way:
 * it throws `brokeClear` once `state.clears` more calls have been let
 * through, for the next `state.clearBreaks`, counted in
 * `state.clearsThrown`; a timer it failed to clear stays armed, as it
 * would on a clock that is really broken. Its setTimeout() too: it throws
 * `brokeSet` once `state.sets` more timers have been armed, for the next
 * `state.setBreaks`, counted in `state.setsThrown`; with `state.setMs`
 * set, only the timers armed for that many ms (or for which it says true)
 * count and break (one site of many isolated: a request's deadline, a
 * pool's housekeeping, an ejection's jittered time).
 */
export function breakableClock() {
  const virtual = new VirtualClock();
  const broke = new Error("clock broke");
  const brokeClear = new Error("clearTimeout broke");
  const brokeSet = new Error("setTimeout broke");
  const state = {
    reads: Infinity,
    breaks: Infinity,
    thrown: 0,
    clears: Infinity,
    clearBreaks: Infinity,
    clearsThrown: 0,
    sets: Infinity,
    setBreaks: Infinity,
    setsThrown: 0,
    setMs: undefined as number | ((ms: number) => boolean) | undefined,
  };
  const clock: Clock = {
    now: () => {
      if (state.reads <= 0 && state.breaks > 0) {
        state.breaks--;
        state.thrown++;
        throw broke;
      }
      if (state.reads > 0) state.reads--;
      return virtual.now();
    },
    setTimeout: (fn, ms) => {
      const only = state.setMs;
      if (
        only !== undefined &&
        (typeof only === "number" ? ms !== only : !only(ms))
      ) return virtual.setTimeout(fn, ms);
      if (state.sets <= 0 && state.setBreaks > 0) {
        state.setBreaks--;
        state.setsThrown++;
        throw brokeSet;
      }
      if (state.sets > 0) state.sets--;
      return virtual.setTimeout(fn, ms);
    },
    clearTimeout: (id) => {
      if (state.clears <= 0 && state.clearBreaks > 0) {
        state.clearBreaks--;
        state.clearsThrown++;
        throw brokeClear;
      }
      if (state.clears > 0) state.clears--;
      virtual.clearTimeout(id);
    },
  };
  return { virtual, clock, broke, brokeClear, brokeSet, state };
}

/**
 * Checks that `error` is the ConfigError naming the clock's `method()`,
 * what it threw (`cause`) as its cause; `what` names the case.
 */
function assertNamed(
  method: "setTimeout" | "clearTimeout",
  error: unknown,
  cause: Error,
  what: string,
): void {
  assert.ok(error instanceof ConfigError, `${what}: ${String(error)}`);
  assert.equal(error.field, "clock", what);
  assert.match(error.message, new RegExp(`${method}\\(\\)`), what);
  assert.equal(error.cause, cause, what);
}

/** Checks that `error` is the ConfigError naming setTimeout() (see assertNamed). */
export const assertSetFailed = (error: unknown, cause: Error, what: string) =>
  assertNamed("setTimeout", error, cause, what);

/** Checks that `error` is the ConfigError naming clearTimeout() (see assertNamed). */
export const assertClearFailed = (
  error: unknown,
  cause: Error,
  what: string,
) => assertNamed("clearTimeout", error, cause, what);

/** Disconnects `client`, moving `virtual` on so its timeout can pass. */
export async function disconnectOn(client: Client, virtual: VirtualClock) {
  const done = client.disconnect({ timeoutMs: 1 });
  for (let i = 0; i < 5; i++) await virtual.advance(1);
  await done;
}

/**
 * Removes `address` from `client`, moving `virtual` on (up to 10 ms) while
 * the removal runs: its outcome ("removed", what it rejected with, or
 * "pending") and the addresses `nodeRemoved` told meanwhile.
 */
export async function removeNodeOn(
  client: Client,
  virtual: VirtualClock,
  address: string,
): Promise<{ outcome: unknown; removed: string[] }> {
  const removed: string[] = [];
  const listener = (e: { detail: { address: string } }) =>
    removed.push(e.detail.address);
  client.addEventListener("nodeRemoved", listener);
  let outcome: unknown = "pending";
  client.removeNode(address).then(
    () => (outcome = "removed"),
    (error) => (outcome = error),
  );
  for (let i = 0; i < 10 && outcome === "pending"; i++) {
    await virtual.advance(1);
    await tickEnds();
  }
  client.removeEventListener("nodeRemoved", listener);
  return { outcome, removed };
}

/** What differs between the scenes of {@link clientOnBreakableClock}. */
export interface BreakableSceneOptions {
  /** Test nodes on the memory network (1 unless told). */
  nodes?: number;
  /** How many of the nodes, the first ones, sit behind a fault proxy (0). */
  proxied?: number;
  /**
   * Laid over the client's config: `healthConfig: { intervalMs: 0 }` (no
   * sweep reads the clock on its own) and one connection per node.
   */
  config?: Partial<ConnectionConfig>;
  /** Microtask rounds run once the pool's first timers fired (3). */
  ticks?: number;
}

/**
 * A client on a {@link breakableClock} (not broken yet) over test nodes
 * on a fresh memory network, its pools filled (the virtual clock moved by
 * 0, then `ticks` rounds of microtasks), escapes watched from just after
 * the connect (`watch`). `teardown()` mends the clock, disconnects, closes the
 * proxies and nodes and gives what escaped meanwhile.
 *
 * @example
 * ```ts
 * const s = await clientOnBreakableClock({ config: { loadBalancing: "peak-ewma" } });
 * let escaped: unknown[] = [];
 * try {
 *   s.state.reads = 0;
 *   // ... drive s.client, check what it did ...
 * } finally {
 *   escaped = await s.teardown();
 * }
 * assert.deepEqual(escaped, []);
 * ```
 */
export async function clientOnBreakableClock(
  options: BreakableSceneOptions = {},
) {
  const breakable = breakableClock();
  const { virtual, clock, state } = breakable;
  const network = createMemoryNetwork();
  const nodes: TestNode[] = [];
  for (let i = 0; i < (options.nodes ?? 1); i++) {
    nodes.push(await startTestNode({ runtime: network, clock: virtual }));
  }
  const proxies: FaultProxy[] = [];
  for (const target of nodes.slice(0, options.proxied ?? 0)) {
    proxies.push(
      await startFaultProxy({ target, runtime: network, clock: virtual }),
    );
  }
  const client = await Client.connect({
    hosts: nodes.map((node, i) => (proxies[i] ?? node).address),
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
    ...options.config,
  });
  const watch = watchEscapes();
  await virtual.advance(0);
  for (let i = 0; i < (options.ticks ?? 3); i++) await tickEnds();
  return {
    ...breakable,
    network,
    nodes,
    proxies,
    client,
    watch,
    /** Mends the clock, closes everything; what escaped since the connect. */
    async teardown(): Promise<unknown[]> {
      state.reads = Infinity;
      state.clears = Infinity;
      state.sets = Infinity;
      await disconnectOn(client, virtual);
      for (const proxy of proxies) await proxy.close();
      for (const node of nodes) await node.close();
      return await watch.stop();
    },
  };
}

/**
 * A pool of fake connections on `clock` (a {@link breakableClock}'s),
 * without jitter; `factory` opens each connection (at once, unless told).
 *
 * @example
 * ```ts
 * const { clock, state } = breakableClock();
 * const pool = fakePoolOn(clock, { minConnections: 0, maxConnections: 1 });
 * ```
 */
export function fakePoolOn(
  clock: Clock,
  config: Partial<PoolConfig>,
  factory: () => Promise<FakeConnection> = () =>
    Promise.resolve(new FakeConnection()),
): ConnectionPool<FakeConnection> {
  return new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config,
    clock,
    random: () => 0.5,
    factory,
  });
}
