/**
 * How a Client comes to be: the arguments of `Client.connect` in either
 * form, the configuration resolved, the adapter and the diagnostics
 * channels loaded, then the first connect (or none yet, when lazy); and
 * the manager's events the client re-dispatches as its own. Cold code,
 * apart from the client's request path.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { resolveConfig } from "../config/resolve.ts";
import { configFromArguments } from "../config/sources.ts";
import type { ConnectionConfig, ResolvedConfig } from "../config/shapes.ts";
import { type OnceTimer, onceTimer } from "../config/clock_failure.ts";
import type { ConnectionOptions } from "../connection/connection.ts";
import { AbortedError } from "../errors.ts";
import type { TypedEventTarget } from "../events.ts";
import type { ClientEventMap } from "./events.ts";
import { ConnectionManager } from "../cluster/manager.ts";
import {
  NodeHealthEvent,
  NodeMembershipEvent,
  ProtocolSelectedEvent,
} from "../cluster/events.ts";
import { POOL_EVENTS, PoolEvent, type PoolEventName } from "../pool/events.ts";
import { getAdapter } from "../runtime/detect.ts";
import { operationAborted } from "./retry.ts";
import { loadChannels } from "../diagnostics/channels.ts";
import { connectLogged } from "../cluster/log.ts";
import * as door from "./arguments.ts";

/** The options argument of `Client.connect`, in either form. */
export interface ConnectCallOptions {
  /** Gives up on connecting. */
  signal?: AbortSignal;
  /** Tunes each connection (for tests and tools). */
  connection?: Partial<ConnectionOptions>;
  /** Resolve at once; the first call connects. */
  lazy?: boolean;
}

/**
 * `Client.connect`'s work, whichever form it was called in: a config
 * object followed by the options, or a string (or nothing) followed by
 * the overrides, then the options. `make` builds the client (lazy: not
 * yet connected).
 */
export async function openClient<C>(
  first: string | ConnectionConfig | undefined,
  second: Partial<ConnectionConfig> | ConnectCallOptions | undefined,
  third: ConnectCallOptions | undefined,
  make: (
    config: ResolvedConfig,
    manager: ConnectionManager,
    lazy: boolean,
  ) => C,
): Promise<C> {
  const byObject = typeof first === "object" && first !== null;
  const config = configFromArguments(first, byObject ? undefined : second);
  const options = door.readConnectOptions<ConnectCallOptions>(
    byObject ? second : third,
  );
  const resolved = resolveConfig(config);
  // Given up before it began, lazy or not: no client.
  const signal = options.signal;
  if (signal?.aborted) {
    throw new AbortedError("the connect was aborted", signal.reason);
  }
  // Channels load before any timer runs (a virtual clock may not wait).
  const [adapter] = await Promise.all([
    getAdapter(resolved.runtime),
    loadChannels(),
  ]);
  const manager = new ConnectionManager(
    resolved,
    adapter,
    options.connection,
  );
  // No node is needed yet: the first call connects.
  if (options.lazy === true) return make(resolved, manager, true);
  try {
    await connectLogged(manager, resolved.logger, signal);
  } catch (error) {
    await manager.close();
    throw error;
  }
  return make(resolved, manager, false);
}

/**
 * `work`, or an {@linkcode AbortedError} as soon as `signal` aborts, or
 * `limit.error()` once `limit.ms` passed on `limit.clock`. `work` goes on
 * either way.
 */
export function abortable<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  limit?: { clock: Clock; ms: number; error: () => Error },
): Promise<T> {
  const aborted = () => operationAborted(signal!);
  if (signal?.aborted) {
    work.catch(() => {});
    return Promise.reject(aborted());
  }
  return new Promise<T>((resolve, reject) => {
    // Whichever comes first settles it and stops the other two.
    const end = (settle: () => void) => {
      signal?.removeEventListener("abort", onAbort);
      // A custom clock whose clearTimeout() throws: it settles all the
      // same, and the timer, when it fires, finds it settled. Let out,
      // the throw left it unsettled for good (the caller's first
      // request of a lazy client waiting), went out of the work's
      // settling as an unhandled rejection, or of the abort's dispatch.
      timer?.cancel();
      settle();
    };
    const onAbort = () => end(() => reject(aborted()));
    let timer: OnceTimer | undefined;
    if (limit) {
      try {
        timer = onceTimer(limit.clock, limit.ms, () => {
          work.catch(() => {});
          end(() => reject(limit.error()));
        });
      } catch (error) {
        // One whose setTimeout() throws: the ConfigError naming it, and
        // the work, no longer awaited here, no unhandled rejection.
        work.catch(() => {});
        throw error;
      }
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => end(() => resolve(value)),
      (error) => end(() => reject(error)),
    );
  });
}

/**
 * Re-dispatches `manager`'s events through `dispatch`, and adds the
 * listeners in `forwarding` (pool event name to forwarder) to the pool of
 * every node added from now on, before its first connection.
 */
export function forwardManagerEvents(
  manager: ConnectionManager,
  dispatch: (
    event: NodeHealthEvent | ProtocolSelectedEvent | NodeMembershipEvent,
  ) => void,
  forwarding: ReadonlyMap<PoolEventName, (e: PoolEvent) => void>,
): void {
  manager.addEventListener(
    "nodeHealthChanged",
    (e) => dispatch(new NodeHealthEvent(e.detail, e.at)),
  );
  manager.addEventListener(
    "protocolSelected",
    (e) => dispatch(new ProtocolSelectedEvent(e.detail, e.at)),
  );
  manager.addEventListener("nodeAdded", (e) => {
    // Before its first connection: listeners hear all of its pool.
    const pool = manager.node(e.detail.address)?.pool;
    for (const [type, forward] of forwarding) {
      pool?.addEventListener(type, forward);
    }
    dispatch(new NodeMembershipEvent("nodeAdded", e.detail, e.at));
  });
  manager.addEventListener(
    "nodeRemoved",
    (e) => dispatch(new NodeMembershipEvent("nodeRemoved", e.detail, e.at)),
  );
}

/**
 * Re-dispatches the pool event `type` of every node through `client` as
 * its own, unless `type` is not a pool event or is forwarded already;
 * records the forwarder in `forwarding`, so nodes added later get it too
 * (see {@linkcode forwardManagerEvents}).
 */
export function forwardPoolEvent(
  manager: ConnectionManager,
  type: string,
  client: TypedEventTarget<ClientEventMap>,
  forwarding: Map<PoolEventName, (e: PoolEvent) => void>,
): void {
  if (!POOL_EVENTS.has(type) || forwarding.has(type as PoolEventName)) return;
  const name = type as PoolEventName;
  const forward = (e: PoolEvent): void => {
    const event = new PoolEvent(name, e.detail, e.at);
    client.dispatchEvent(event as ClientEventMap[PoolEventName]);
  };
  forwarding.set(name, forward);
  for (const node of manager.nodes) {
    node.pool.addEventListener(name, forward);
  }
}
