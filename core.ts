/**
 * Building blocks for composing a client of your own: one
 * {@linkcode Connection} with many requests in flight, a
 * {@linkcode ConnectionPool} per node, the {@linkcode ConnectionManager}
 * that routes over healthy nodes, the balancers, {@linkcode NodeHealth},
 * the handshake (negotiation, TLS and UDP transports, authentication),
 * the clock abstraction, and the names and message shapes of the
 * `diagnostics_channel` channels a client publishes on. An application
 * normally needs only the root module's `Client`.
 *
 * @example One connection to one node
 * ```ts
 * import { Connection } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 * });
 * console.log(await connection.ping(), "ms");
 * await connection.close();
 * ```
 *
 * @module
 */

export {
  Connection,
  type ConnectionOptions,
} from "./src/connection/connection.ts";
export type {
  BatchReplySink,
  ConnectionStats,
  ReplySink,
  RequestOptions,
  RequestRoute,
} from "./src/connection/types.ts";
export { ConnectionPool } from "./src/pool/pool.ts";
export type {
  AcquireOptions,
  ConnectionFactory,
  ConnectionPoolOptions,
  PoolableConnection,
  PoolStats,
} from "./src/pool/types.ts";
export {
  type CheckoutFailedReason,
  type CheckoutMode,
  type ConnectionClosedReason,
  POOL_EVENT_NAMES,
  type PoolEventDetailMap,
  type PoolEventName,
} from "./src/pool/events.ts";
export {
  type EventMap,
  type ListenerOptions,
  TypedEventTarget,
  type TypedListener,
} from "./src/events.ts";
export { ConnectionManager } from "./src/cluster/manager.ts";
export type { ManagedNode } from "./src/cluster/node.ts";
// Membership events: heard through Client events too, so the root needs
// none of these names (the root stays small).
export {
  type ManagerEventMap,
  type NodeMembershipChange,
  NodeMembershipEvent,
} from "./src/cluster/events.ts";
export {
  type Balancer,
  createBalancer,
  HealthyNodeSet,
  LeastInFlightBalancer,
  type LeastInFlightOptions,
  PeakEwmaBalancer,
  type PeakEwmaOptions,
  RoundRobinBalancer,
} from "./src/cluster/balancer.ts";
export {
  PEAK_EWMA_DECAY_MS,
  PEAK_EWMA_FAILURE_MS,
  PeakEwma,
  peakEwmaFailureSample,
} from "./src/cluster/peak_ewma.ts";
export {
  isNodeFailure,
  NodeHealth,
  type NodeHealthOptions,
  type NodeHealthSnapshot,
} from "./src/cluster/health.ts";
export {
  createHandshake,
  type Handshake,
  type HandshakeOptions,
  type HandshakeResult,
  handshakeResult,
  type NegotiationResult,
  type TransportUpgrade,
  type TransportUpgrades,
} from "./src/handshake/handshake.ts";
export { tlsTransport } from "./src/handshake/tls.ts";
export {
  type UdpStats,
  udpStats,
  udpTransport,
  type UdpTransportOptions,
} from "./src/handshake/udp.ts";
export type { HostAddress, ResolvedConfig } from "./src/config/shapes.ts";
export { parseHost } from "./src/config/hosts.ts";
export { resolveConfig } from "./src/config/resolve.ts";
export { parseConnectionString } from "./src/config/url.ts";
export { type ResolvedTlsConfig, resolveTlsConfig } from "./src/config/tls.ts";
export { backoffDelay } from "./src/client/retry.ts";
// What Client.requestMany resolves with, for those who name it: the
// method's return type carries it, so the root need not.
export type { BatchResult } from "./src/client/batch.ts";
// The retry budget, hedging and outlier ejection: configured through the
// root's ConnectionConfig and heard through Client events, so an
// application needs none of these names; they are here for those who type
// them out (the root stays small).
export {
  RetryBudgetEvent,
  type RetryBudgetEventDetail,
} from "./src/client/events.ts";
export type {
  HedgingConfig,
  OutlierEjectionConfig,
  RetryBudgetConfig,
} from "./src/config/shapes.ts";
export {
  DEFAULT_HEDGING,
  DEFAULT_OUTLIER_EJECTION,
  DEFAULT_PANIC_THRESHOLD,
  DEFAULT_RETRY_BUDGET,
} from "./src/config/defaults.ts";
export {
  type CheckoutMessage,
  type ConnectionCloseMessage,
  type ConnectionOpenMessage,
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsMessages,
  type NodeHealthMessage,
  type RequestMessage,
} from "./src/diagnostics/channels.ts";
export { type Clock, systemClock, type TimerHandle } from "./src/clock.ts";
export { sleep } from "./src/client/sleep.ts";
export {
  type Endpoint,
  formatAddress,
  NEVER_RETRIED_CODES,
  NEVER_SENT_CODES,
  NOT_THE_NODES_FAULT,
} from "./src/errors.ts";
