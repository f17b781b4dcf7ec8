/**
 * The counters of a reference node, apart from the node so that each of
 * its parts (a session, its SCRAM exchange, its TLS switch, the requests)
 * can count in them without importing the node.
 *
 * @module
 */

/**
 * Counters of a reference node.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { ops, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const client = await Client.connect({ hosts: [node.address] });
 * await client.request(ops.echo("hi"));
 * console.log(node.stats.requests, node.stats.open); // 1 and the pool's connections
 * await client.disconnect();
 * await node.close();
 * ```
 */
export interface TestNodeStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Requests answered (results and errors). */
  requests: number;
  /** Pings answered. */
  pings: number;
  /** NEGOTIATE messages answered. */
  negotiations: number;
  /** SCRAM exchanges started (AUTH_START received). */
  authAttempts: number;
  /** SCRAM exchanges that succeeded. */
  authSuccesses: number;
  /** SCRAM exchanges that failed. */
  authFailures: number;
  /** TLS handshakes completed (upgrades and direct connections). */
  tlsHandshakes: number;
  /** TLS upgrades that failed (the client refused the certificate, say). */
  tlsFailures: number;
}
