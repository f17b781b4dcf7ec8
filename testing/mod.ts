/**
 * Test support for nodewire users and for nodewire's own suite: a real
 * reference node that speaks the wire protocol, its operation set, and a
 * virtual clock.
 *
 * @example Start a node, talk to it, stop it
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { ops, replyText, startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode();
 * const client = await Client.connect({ hosts: [node.address] });
 * console.log(replyText(await client.request(ops.echo("hi")))); // "hi"
 * await client.disconnect();
 * await node.close();
 * ```
 *
 * @module
 */

export { startTestNode, TestNode } from "./node.ts";
export type { TestNodeOptions } from "./node_options.ts";
export type { TestNodeStats } from "./node_stats.ts";
export {
  decodeReply,
  encodeReply,
  Op,
  type OpBuilders,
  ops,
  type Reply,
  replyText,
} from "./ops.ts";
export { VirtualClock } from "./virtual_clock.ts";
export type { ReplyWriter, UdpServiceStats } from "./udp_service.ts";
export {
  type AddCredentialOptions,
  CredentialStore,
  ScramServer,
  type ScramServerOptions,
  type StoredCredential,
} from "./auth.ts";
export { FaultProxy, startFaultProxy } from "./proxy.ts";
export type {
  FaultProxyOptions,
  FaultProxyStats,
  ProxyFaults,
} from "./proxy.ts";
