/**
 * A manager's parts built and wired to each other: its arguments read (by
 * its door), the registry of its nodes with a pool each, the set of the
 * healthy ones, the balancer over it, the health watch, and the log of
 * its events when the config has a logger. Runs once, in the manager's
 * constructor; apart from the class, which keeps the choice of node and
 * the bookings of what requests saw.
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import type { ConnectionOptions } from "../connection/connection.ts";
import type { TypedEventTarget } from "../events.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import type { Balancer } from "./balancer.ts";
import { nodePools } from "./connector.ts";
import type { ManagerEventMap } from "./events.ts";
import { HealthWatch } from "./health_watch.ts";
import { HealthyNodeSet } from "./healthy_set.ts";
import { logManagerEvents } from "./log.ts";
import { readManagerArguments } from "./manager_door.ts";
import type { ManagedNode, NodeRecord } from "./node.ts";
import { NodeRegistry, type RegistryOwner } from "./registry.ts";

/** The manager, as its parts are built: where they dispatch, and its id. */
export interface ManagerShell extends TypedEventTarget<ManagerEventMap> {
  /** Names the manager's client in diagnostics messages. */
  readonly id: number;
}

/** What the parts call back into the manager for. */
export interface ManagerHooks extends Pick<RegistryOwner, "grew" | "left"> {
  /** Whether the manager is closed: health changes stop mattering then. */
  isClosed(): boolean;
}

/** The parts of one manager. */
export interface ManagerParts {
  /** The members, found by address, each with its pool. */
  readonly registry: NodeRegistry;
  /** The healthy members, which the balancer picks from. */
  readonly healthy: HealthyNodeSet<ManagedNode>;
  /** The configured balancer over `healthy`. */
  readonly balancer: Balancer<ManagedNode>;
  /** The health loop, the ejector and the marks. */
  readonly watch: HealthWatch;
}

/**
 * Builds a manager's parts from its constructor's arguments, read and
 * checked here first, and has its events logged when `config.logger` is
 * set.
 *
 * @throws {InvalidArgumentError} as `new ConnectionManager()` documents,
 *   before anything is built.
 */
export function assembleManager(
  manager: ManagerShell,
  config: ResolvedConfig,
  adapter: RuntimeAdapter,
  connectionOptions: Partial<ConnectionOptions>,
  hooks: ManagerHooks,
): ManagerParts {
  connectionOptions = readManagerArguments(
    config,
    adapter,
    connectionOptions,
  );
  const registry = new NodeRegistry(
    config,
    nodePools(manager.id, manager, config, adapter, connectionOptions),
    { target: manager, grew: hooks.grew, left: hooks.left },
  );
  const nodes = registry.nodes;
  const healthy = new HealthyNodeSet<ManagedNode>(nodes, {
    slotOf: (node) => (node as NodeRecord).slot,
  });
  const balancer = registry.balancer(healthy);
  const watch = new HealthWatch(
    { target: manager, clientId: manager.id, isClosed: hooks.isClosed },
    registry,
    healthy,
    config,
  );
  if (config.logger) logManagerEvents(config.logger, manager);
  return { registry, healthy, balancer, watch };
}
