/**
 * A cluster behind fault proxies with a client in front, wired for the
 * fault matrix: counted timers and channels for leak checks, a tracker for
 * every request, and a watch on errors escaping to the process. One scene
 * per test; `finish()` checks that nothing leaked and nothing escaped.
 *
 * @module
 */

import { Client } from "../../src/client/client.ts";
import type { RetryEvent } from "../../src/client/events.ts";
import { type Clock, systemClock } from "../../src/clock.ts";
import type { ConnectionConfig } from "../../src/config/shapes.ts";
import { createMemoryNetwork } from "../../src/runtime/memory.ts";
import { getAdapter } from "../../src/runtime/detect.ts";
import type { RuntimeAdapter } from "../../src/runtime/types.ts";
import { countChannels, CountingClock } from "./counting.ts";
import {
  drive,
  type EscapeWatch,
  eventually,
  observe,
  type ObservedAdapter,
  Tracker,
  watchEscapes,
} from "./fault_harness.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";
import { type FaultProxy, startFaultProxy } from "../../testing/proxy.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";

/** Options of {@linkcode startScene}. */
export interface SceneOptions {
  /** `"virtual"`: memory network and virtual clock; `"loopback"`: real sockets. */
  mode: "virtual" | "loopback";
  /** Nodes in the cluster. Default 1. */
  nodes?: number;
  /** Put a fault proxy in front of each node. Default true. */
  proxied?: boolean;
  /** Client settings on top of the scene's (hosts, runtime, clock are set). */
  config?: Partial<ConnectionConfig>;
  /** Skip `Client.connect`; the test connects itself. */
  noClient?: boolean;
}

/** What a test works with. */
export interface Scene {
  /** Virtual in `"virtual"` mode, the system clock otherwise. */
  readonly clock: Clock;
  /** The virtual clock, in `"virtual"` mode. */
  readonly virtual: VirtualClock | undefined;
  /** The client's clock, counting live timers. */
  readonly counting: CountingClock;
  /** The client's adapter: counts open channels, records chunks and connects. */
  readonly adapter: ObservedAdapter & { readonly openChannels: number };
  /** The adapter nodes and proxies use (the same network, uncounted). */
  readonly base: RuntimeAdapter;
  /** The reference nodes. */
  readonly nodes: TestNode[];
  /** One proxy per node (empty when not proxied). */
  readonly proxies: FaultProxy[];
  /** Addresses the client is given: proxies, or nodes. */
  readonly hosts: string[];
  /** The client, unless `noClient`. */
  client: Client;
  /** Retry events seen by the client. */
  readonly retries: RetryEvent[];
  /** Tracks requests. */
  readonly tracker: Tracker;
  /** Watches for escaped errors. */
  readonly escapes: EscapeWatch;
  /** The config the client was (or would be) connected with. */
  readonly config: ConnectionConfig;
  /** Connects a client with the scene's config plus `extra`. */
  connect(extra?: Partial<ConnectionConfig>): Promise<Client>;
  /** Waits for `promise`: runs the virtual clock, or just awaits. */
  run<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  /** Moves time on: the virtual clock, or real sleeping. */
  pass(ms: number): Promise<void>;
  /**
   * Disconnects, then checks every channel the client opened is closed and
   * every timer it set is gone, closes proxies and nodes, and checks that
   * no error escaped. Returns the escaped errors (must be empty).
   */
  finish(): Promise<
    { openChannels: number; liveTimers: number; escaped: unknown[] }
  >;
}

/**
 * Starts nodes, proxies and (unless `noClient`) a client.
 *
 * @example
 * ```ts
 * import { startScene } from "./fault_scene.ts";
 * const scene = await startScene({ mode: "virtual", nodes: 2 });
 * await scene.proxies[0].setFaults({ stall: true });
 * const result = await scene.finish();
 * console.log(result.openChannels, result.liveTimers, result.escaped.length); // 0 0 0
 * ```
 */
export async function startScene(options: SceneOptions): Promise<Scene> {
  const escapes = watchEscapes();
  const virtual = options.mode === "virtual" ? new VirtualClock() : undefined;
  const clock: Clock = virtual ?? systemClock;
  const base = options.mode === "virtual"
    ? createMemoryNetwork()
    : await getAdapter();
  const observed = observe(base, clock);
  const adapter = Object.assign(countChannels(observed), {
    chunks: observed.chunks,
    connects: observed.connects,
  });
  const counting = new CountingClock(clock);
  const nodes = await Promise.all(
    Array.from(
      { length: options.nodes ?? 1 },
      (_, i) => startTestNode({ runtime: base, clock, nodeId: `n${i}` }),
    ),
  );
  const proxied = options.proxied ?? true;
  const proxies = proxied
    ? await Promise.all(
      nodes.map((node) =>
        startFaultProxy({ target: node, runtime: base, clock })
      ),
    )
    : [];
  const hosts = proxied
    ? proxies.map((p) => p.address)
    : nodes.map((n) => n.address);
  const config: ConnectionConfig = {
    hosts,
    runtime: adapter,
    clock: counting,
    // The health loop is switched on by the rows that need it.
    healthConfig: { intervalMs: 0 },
    ...options.config,
  };
  const run = <T>(promise: Promise<T>, limitMs?: number): Promise<T> =>
    virtual ? drive(virtual, promise, limitMs) : promise;
  const retries: RetryEvent[] = [];
  const scene: Scene = {
    clock,
    virtual,
    counting,
    adapter,
    base,
    nodes,
    proxies,
    hosts,
    client: undefined as unknown as Client,
    retries,
    tracker: new Tracker(clock),
    escapes,
    config,
    async connect(extra = {}) {
      const client = await run(Client.connect({ ...config, ...extra }));
      client.addEventListener("retry", (e) => retries.push(e));
      return client;
    },
    run,
    async pass(ms: number) {
      if (virtual) await virtual.advance(ms);
      else await new Promise((resolve) => setTimeout(resolve, ms));
    },
    async finish() {
      if (scene.client) await run(scene.client.disconnect());
      await scene.tracker.settled();
      if (virtual) await virtual.advance(0);
      else await eventually(() => adapter.openChannels === 0);
      const openChannels = adapter.openChannels;
      const liveTimers = counting.liveTimers;
      await Promise.all(proxies.map((p) => p.close()));
      await Promise.all(nodes.map((n) => n.close()));
      if (virtual) await virtual.advance(0);
      const escaped = await escapes.stop();
      return { openChannels, liveTimers, escaped };
    },
  };
  if (!options.noClient) scene.client = await scene.connect();
  return scene;
}
