/**
 * What the UDP tests share: an SDK connection to a reference node whose
 * handshake may choose UDP, a bare datagram socket that records what it
 * receives, and a real-time poll for what arrives by socket.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Connection } from "../../src/connection/connection.ts";
import {
  createHandshake,
  type TransportUpgrade,
} from "../../src/handshake/handshake.ts";
import { udpTransport } from "../../src/handshake/udp.ts";
import type { ProtocolType } from "../../src/protocol_type.ts";
import type { DatagramChannel } from "../../src/runtime/datagram.ts";
import { getAdapter } from "../../src/runtime/detect.ts";
import type { RuntimeAdapter } from "../../src/runtime/types.ts";
import type { TestNode } from "../../testing/node.ts";
import type { VirtualClock } from "../../testing/virtual_clock.ts";

/** Polls `check` until it holds, for at most `ms` of real time. */
export async function waitFor(
  check: () => boolean,
  what: string,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** How {@link connectUdp} connects. */
export interface ConnectUdpOptions {
  adapter?: RuntimeAdapter;
  clock?: VirtualClock;
  /** The handshake's protocols (its default when absent). */
  protocols?: readonly ProtocolType[];
  /** The UDP upgrade (the SDK's `udpTransport` when absent). */
  udp?: TransportUpgrade;
  /** Sends the datagrams to this port instead of the one negotiated. */
  udpPort?: number;
}

/** One connection to `node` whose handshake may choose UDP. */
export async function connectUdp(
  node: TestNode,
  options: ConnectUdpOptions = {},
): Promise<Connection> {
  const adapter = options.adapter ?? await getAdapter();
  let udp = options.udp ?? udpTransport({ adapter });
  const udpPort = options.udpPort;
  if (udpPort !== undefined && udp !== undefined) {
    const upgrade = udp;
    udp = (c, negotiated, signal) =>
      upgrade(c, { ...negotiated, udpPort }, signal);
  }
  return await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
    clock: options.clock,
    handshake: createHandshake({
      protocols: options.protocols,
      transports: { udp },
    }),
  });
}

/** A raw datagram socket on loopback that collects what it receives. */
export async function rawSocket(
  hostname = "127.0.0.1",
): Promise<{ socket: DatagramChannel; received: Uint8Array[] }> {
  const socket: DatagramChannel = await (await getAdapter()).datagram!({
    hostname,
  });
  const received: Uint8Array[] = [];
  socket.onMessage((bytes) => received.push(bytes));
  return { socket, received };
}
