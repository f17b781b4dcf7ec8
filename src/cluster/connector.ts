/**
 * How the manager opens connections to a node: the handshake built from the
 * client's config (negotiation, the TLS and UDP transports this runtime
 * can do, authentication), and a pool per node whose factory connects,
 * runs the handshake and learns from each connection the node's id and
 * the protocol chosen (a change of protocol is the manager's
 * `protocolSelected`). Also the idle heartbeat the pools run.
 *
 * @module
 */

import type { ResolvedConfig } from "../config/shapes.ts";
import { MAX_TIMER_DELAY_MS } from "../config/validate.ts";
import {
  Connection,
  type ConnectionOptions,
} from "../connection/connection.ts";
import { ConnectionLostError, messageOf } from "../errors.ts";
import type { TypedEventTarget } from "../events.ts";
import {
  type Handshake,
  handshakeFromConfig,
  handshakeResult,
} from "../handshake/handshake.ts";
import { tlsTransport } from "../handshake/tls.ts";
import { udpTransport } from "../handshake/udp.ts";
import { ConnectionPool } from "../pool/pool.ts";
import type { RuntimeAdapter } from "../runtime/types.ts";
import { type ManagerEventMap, ProtocolSelectedEvent } from "./events.ts";
import type { ManagedNode } from "./node.ts";
import { opened, openFailed } from "./connection_diagnostics.ts";
import { loadChannels } from "../diagnostics/channels.ts";
import { logPoolEvents } from "./log.ts";

/**
 * The handshake for every connection of a client: negotiation and
 * authentication from `config`, with the transports `adapter` can do.
 */
export function handshakeFor(
  config: ResolvedConfig,
  adapter: RuntimeAdapter,
): Handshake {
  return handshakeFromConfig(config, {
    udp: udpTransport({
      adapter,
      maxDatagramSize: config.maxDatagramSize,
    }),
    // Offered only when the adapter can do it (not the memory network).
    tls: adapter.supportsTls
      ? tlsTransport({ tls: config.tls, clock: config.clock })
      : undefined,
  });
}

/**
 * The factory of every node's pool for one manager (`clientId`): its
 * connections are opened with `connectionOptions` and the handshake, and
 * each tells `target` what it taught about its node ({@linkcode learn}).
 */
export function nodePools(
  clientId: number,
  target: TypedEventTarget<ManagerEventMap>,
  config: ResolvedConfig,
  adapter: RuntimeAdapter,
  connectionOptions: Partial<ConnectionOptions>,
): (node: ManagedNode) => ConnectionPool<Connection> {
  // Negotiation and authentication, unless the caller brings its own.
  const handshake = connectionOptions.handshake ??
    handshakeFor(config, adapter);
  const poolOptions: NodePoolOptions = {
    clientId,
    config,
    adapter,
    connectionOptions,
    handshake,
    onOpened: (node, connection) =>
      learn(target, config.clock, node, connection),
  };
  return (node) => createNodePool(node, poolOptions);
}

/**
 * What a new connection taught about its node: its id and protocol; a
 * protocol that changed is dispatched on `target` (`protocolSelected`).
 */
export function learn(
  target: TypedEventTarget<ManagerEventMap>,
  clock: { now(): number },
  node: ManagedNode,
  connection: Connection,
): void {
  node.nodeId = connection.nodeId;
  const protocol = handshakeResult(connection)?.protocol;
  if (protocol === undefined || protocol === node.protocol) return;
  const previous = node.protocol;
  node.protocol = protocol;
  if (!target.hasListeners("protocolSelected")) return;
  target.dispatchEvent(
    new ProtocolSelectedEvent({
      address: node.address,
      nodeId: node.nodeId,
      protocol,
      previous,
    }, clock.now()),
  );
}

/** What {@linkcode createNodePool} needs besides the node. */
export interface NodePoolOptions {
  /** The client's number in diagnostics messages. */
  clientId: number;
  /** The client's resolved configuration. */
  config: ResolvedConfig;
  /** The runtime adapter that opens sockets. */
  adapter: RuntimeAdapter;
  /** Added to what each connection is opened with. */
  connectionOptions: Partial<ConnectionOptions>;
  /** Runs on every connection after HELLO_OK. */
  handshake: Handshake;
  /** Called with every connection the pool opens, before it is lent. */
  onOpened(node: ManagedNode, connection: Connection): void;
}

/** The pool of `node`: it opens connections with the client's settings. */
export function createNodePool(
  node: ManagedNode,
  options: NodePoolOptions,
): ConnectionPool<Connection> {
  const { clientId, config, adapter, connectionOptions, handshake, onOpened } =
    options;
  const host = node.host;
  const hint = startsTls(config);
  const pool = new ConnectionPool<Connection>({
    address: host.address,
    config: config.poolConfig,
    clock: config.clock,
    heartbeat: (connection) => heartbeat(connection, config),
    // A backstop for a connect stuck past its own timeout (an adapter or
    // handshake deaf to the signal); the second lets that timeout's error
    // come first.
    createTimeoutMs: Math.min(config.timeoutMs + 1000, MAX_TIMER_DELAY_MS),
    factory: async (signal) => {
      // Subscribers hear about the first connection too.
      const loading = loadChannels();
      if (loading) await loading;
      const started = config.clock.now();
      const connection = await Connection.connect({
        adapter,
        hostname: host.hostname,
        port: host.port,
        timeoutMs: config.timeoutMs,
        requestTimeoutMs: config.requestTimeoutMs,
        maxFrameSize: config.maxFrameSize,
        clock: config.clock,
        clientName: config.clientName,
        tls: config.tls.direct
          ? {
            serverName: config.tls.serverName ?? host.hostname,
            ca: config.tls.ca,
            dangerouslySkipVerify: config.tls.dangerouslySkipVerify,
          }
          : undefined,
        startsTls: hint,
        ...connectionOptions,
        handshake,
        signal,
      }).catch((error) => {
        throw openFailed(clientId, node, config.clock, started, error);
      });
      onOpened(node, connection);
      opened(clientId, node, config.clock, started, connection);
      return connection;
    },
  });
  if (config.logger) logPoolEvents(config.logger, pool);
  return pool;
}

/**
 * Whether the handshake will upgrade to TLS (negotiation picks it whenever
 * the node offers it), verifying the node: the hint lets the adapter open
 * the socket its own TLS is fastest on. Under "prefer" a node without TLS
 * then gets plain traffic on that socket (on Deno a `Deno.Conn`: level with
 * `node:net` on small requests, slower on 1 KiB ones).
 */
function startsTls(config: ResolvedConfig): boolean {
  return !config.tls.direct && config.tlsPolicy !== "disable" &&
    config.protocols.includes("tls") && !config.tls.dangerouslySkipVerify;
}

/**
 * The idle heartbeat: a ping within the health timeout. A miss becomes the
 * error the pool destroys the connection with, naming the heartbeat.
 */
async function heartbeat(
  connection: Connection,
  config: ResolvedConfig,
): Promise<void> {
  const timeoutMs = config.healthConfig.timeoutMs;
  try {
    await connection.ping({ timeoutMs });
  } catch (error) {
    throw new ConnectionLostError(
      connection,
      `no answer to a heartbeat within ${timeoutMs} ms (${messageOf(error)})`,
      { cause: error },
    );
  }
}
