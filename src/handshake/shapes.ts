/**
 * The shapes of the handshake: what negotiation and the whole handshake
 * establish on a connection, the transport switches it may call for, the
 * options of `createHandshake` and the hook it builds. Apart so
 * that the transports and the steps name them without importing the hook.
 *
 * @module
 */

import type { Connection } from "../connection/connection.ts";
import type { HelloOkPayload } from "../protocol/messages.ts";
import type { TlsPolicy } from "../protocol/negotiation.ts";
import type { ProtocolType } from "../protocol_type.ts";
import type { Secret } from "../secret.ts";

/**
 * The outcome of negotiation on one connection.
 *
 * @example
 * ```ts
 * import type { TransportUpgrade } from "@nodewire/client/core";
 * const logChoice: TransportUpgrade = (_connection, negotiated) => {
 *   console.log(`${negotiated.protocol} of ${negotiated.nodeProtocols.join(", ")} on port ${negotiated.udpPort}`);
 *   return Promise.resolve();
 * };
 * ```
 */
export interface NegotiationResult {
  /** The protocol both sides chose. */
  protocol: ProtocolType;
  /** What the client offered, best first. */
  clientProtocols: ProtocolType[];
  /** What the node serves, best first. */
  nodeProtocols: ProtocolType[];
  /** The node's UDP port, when it serves UDP. */
  udpPort?: number;
  /** The UDP session token (32 hex digits), when UDP was chosen. */
  udpToken?: string;
}

/**
 * What the handshake established on one connection.
 *
 * @example
 * ```ts
 * import { type Connection, handshakeResult } from "@nodewire/client/core";
 * declare const connection: Connection;
 * const result = handshakeResult(connection);
 * if (result?.authenticated) console.log(`${result.username} over ${result.protocol}`);
 * ```
 */
export interface HandshakeResult extends NegotiationResult {
  /** Whether SCRAM authentication ran and both sides proved themselves. */
  authenticated: boolean;
  /** The user name authenticated as, when `authenticated`. */
  username?: string;
}

/**
 * Switches a connection to a negotiated transport other than TCP. Runs
 * right after NEGOTIATE_OK and before authentication, so that credentials
 * are exchanged over the chosen transport. It must fail, never fall back:
 * a TLS upgrade that resolves with the stream still in plaintext fails the
 * connection with a `TlsError`.
 *
 * @example
 * ```ts
 * import type { TransportUpgrade } from "@nodewire/client/core";
 * const refuse: TransportUpgrade = () => Promise.reject(new Error("no TLS here"));
 * ```
 */
export type TransportUpgrade = (
  connection: Connection,
  negotiated: NegotiationResult,
  signal: AbortSignal,
) => Promise<void>;

/**
 * The transports, beyond TCP, that this client can switch to. The client
 * offers only what it can do: a protocol with no upgrade here is never
 * offered, whatever the policy allows.
 *
 * @example
 * ```ts
 * import { createHandshake, resolveTlsConfig, systemClock, tlsTransport } from "@nodewire/client/core";
 * const handshake = createHandshake({
 *   tlsPolicy: "prefer", // TLS when the node offers it, else plain TCP
 *   protocols: ["tls", "tcp"],
 *   transports: { tls: tlsTransport({ tls: resolveTlsConfig({}, "prefer"), clock: systemClock }) },
 * });
 * ```
 */
export interface TransportUpgrades {
  /** Upgrades the open stream to TLS. */
  tls?: TransportUpgrade;
  /** Moves requests to the node's UDP port. */
  udp?: TransportUpgrade;
}

/**
 * Options for {@linkcode createHandshake}.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * import { Connection, createHandshake } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * const connection = await Connection.connect({
 *   adapter: await getAdapter(),
 *   hostname: "127.0.0.1",
 *   port: 7000,
 *   handshake: createHandshake({ username: "app", password: new Secret("s3cret"), protocols: ["tcp"] }),
 * });
 * ```
 */
export interface HandshakeOptions {
  /** User name for SCRAM. */
  username?: string;
  /** Password for SCRAM, revealed only inside the SCRAM computation. */
  password?: Secret;
  /**
   * TLS policy. Default `"require"` with `enableTls`, else `"disable"`;
   * given with `enableTls`, it must agree with it.
   */
  tlsPolicy?: TlsPolicy;
  /** Require TLS (the policy's default becomes `"require"`). */
  enableTls?: boolean;
  /**
   * Protocols the client may use at all, at least one the TLS policy
   * keeps. Default all three.
   */
  protocols?: readonly ProtocolType[];
  /** The transports this client can switch to, besides TCP. */
  transports?: TransportUpgrades;
}

/**
 * The function `Connection.connect` runs after HELLO_OK.
 *
 * @example
 * ```ts
 * import { Connection, type Handshake } from "@nodewire/client/core";
 * import { getAdapter } from "@nodewire/client/runtime";
 * // Refuses nodes of an unexpected cluster before any request is sent.
 * const checkNode: Handshake = (_connection, hello) =>
 *   hello.nodeId.startsWith("eu-") ? Promise.resolve() : Promise.reject(new Error(`unexpected node ${hello.nodeId}`));
 * const connection = await Connection.connect({ adapter: await getAdapter(), hostname: "127.0.0.1", port: 7000, handshake: checkNode });
 * ```
 */
export type Handshake = (
  connection: Connection,
  hello: HelloOkPayload,
  signal: AbortSignal,
) => Promise<void>;
