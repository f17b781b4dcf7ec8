/**
 * A scripted node on the in-memory network that a test steers frame by
 * frame: it answers HELLO (and NEGOTIATE) as told, then records what the
 * client sends and writes whatever bytes the test asks for, whole, split
 * at chosen points or one byte at a time.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Clock } from "../../src/clock.ts";
import type { ConnectionConfig } from "../../src/config/shapes.ts";
import {
  Connection,
  type ConnectionOptions,
} from "../../src/connection/connection.ts";
import { NodewireError } from "../../src/errors.ts";
import { MessageCodec } from "../../src/protocol/codec.ts";
import { type Message, MessageType } from "../../src/protocol/frame.ts";
import { encodeJson } from "../../src/protocol/messages.ts";
import type { MemoryNetwork } from "../../src/runtime/memory.ts";
import type { ByteChannel, Listener } from "../../src/runtime/types.ts";
import type { VirtualClock } from "../../testing/virtual_clock.ts";
import type { Tracked } from "./fault_harness.ts";

/** How the node answers the handshake; `undefined` fields are the usual. */
export interface HandshakeScript {
  /** The HELLO_OK payload (any JSON), or raw bytes. */
  helloOk?: unknown;
  /** Answer HELLO with this type instead of HELLO_OK. */
  helloType?: number;
  /** Answer HELLO with this sequence instead of HELLO's. */
  helloSequence?: number;
  /** The NEGOTIATE_OK payload (any JSON), or raw bytes. */
  negotiateOk?: unknown;
  /** Answer NEGOTIATE with this type. */
  negotiateType?: number;
  /** Bytes sent right behind the answer to HELLO, in the same write. */
  afterHello?: Uint8Array;
  /** Bytes sent right behind the answer to NEGOTIATE, in the same write. */
  afterNegotiate?: Uint8Array;
  /** Answers AUTH_START and AUTH_FINAL (nothing when absent). */
  auth?: (
    message: Message,
    reply: (type: number, sequence: number, payload: Uint8Array) => void,
  ) => void | Promise<void>;
}

/** A message the client sent after the handshake. */
export interface Received extends Message {
  /** Whether the node answered it already. */
  answered: boolean;
}

/** The maxFrameSize a node announces unless told: the least allowed. */
export const NODE_MAX_FRAME = 1024;

const ERROR_PAYLOAD = new Uint8Array([0, 0, 1, 0x78]);

/** One node; `session` is the latest connection's. */
export class HostileNode {
  listener!: Listener;
  /**
   * Every REQUEST and PING the client sent on the latest connection, in
   * order (sequence numbers start over on each connection).
   */
  received: Received[] = [];
  /** The latest connection's channel. */
  channel: ByteChannel | undefined;
  /** Channels still open on the node's side. */
  readonly open = new Set<ByteChannel>();
  /** Where the next write is cut (offsets into the frame); empty: whole. */
  splits: number[] = [];
  /** Whether writes go one byte at a time. */
  byteByByte = false;
  /**
   * Frames from the client that broke the node's own rules (a payload
   * over the maxFrameSize its HELLO_OK announced, a bad header).
   */
  readonly violations: string[] = [];

  /** Starts a node on `network` that answers the handshake per `script`. */
  static async start(
    network: MemoryNetwork,
    script: HandshakeScript = {},
  ): Promise<HostileNode> {
    const node = new HostileNode();
    node.network = network;
    node.listener = await network.listen(
      { port: 0 },
      (channel) => node.#accept(channel, script),
    );
    return node;
  }

  get port(): number {
    return this.listener.port;
  }

  /** The network it listens on. */
  network!: MemoryNetwork;

  /** A Client's config for this node on its network, with `extra`. */
  clientConfig(
    clock: Clock,
    extra: Partial<ConnectionConfig> = {},
  ): ConnectionConfig {
    return {
      hosts: [`127.0.0.1:${this.port}`],
      runtime: this.network,
      clock,
      ...extra,
    };
  }

  /** `Connection.connect` to this node on its network, with `options`. */
  connect(
    clock: Clock,
    options: Partial<ConnectionOptions> = {},
  ): Promise<Connection> {
    return Connection.connect({
      adapter: this.network,
      hostname: "127.0.0.1",
      port: this.port,
      clock,
      ...options,
    });
  }

  #accept(channel: ByteChannel, script: HandshakeScript): void {
    this.channel = channel;
    this.received = [];
    this.open.add(channel);
    // What the node announces is what it accepts.
    const announced = (script.helloOk as { maxFrameSize?: unknown })
      ?.maxFrameSize;
    const codec = new MessageCodec(
      script.helloOk === undefined
        ? NODE_MAX_FRAME
        : typeof announced === "number" && Number.isInteger(announced) &&
            announced >= 0 && announced <= 2 ** 30
        ? announced
        : 2 ** 30,
    );
    channel.onClose(() => this.open.delete(channel));
    channel.onData((chunk) => {
      try {
        codec.decode(chunk, (m) => this.#onMessage(channel, m, script));
      } catch (error) {
        this.violations.push(String(error));
        channel.destroy();
      }
    });
  }

  /** Sees every frame the client sends, before the node acts on it. */
  onFrame: ((message: Message) => void) | undefined;

  #onMessage(channel: ByteChannel, m: Message, script: HandshakeScript): void {
    this.onFrame?.(m);
    if (m.type === MessageType.Hello) {
      const payload = script.helloOk ??
        { nodeId: "hostile", maxFrameSize: NODE_MAX_FRAME, auth: "none" };
      this.#write(
        channel,
        script.helloType ?? MessageType.HelloOk,
        0,
        script.helloSequence ?? m.sequence,
        payload instanceof Uint8Array ? payload : encodeJson(payload as object),
        script.afterHello,
      );
      return;
    }
    if (m.type === MessageType.Negotiate) {
      const payload = script.negotiateOk ??
        { protocols: ["tcp"], selected: "tcp" };
      this.#write(
        channel,
        script.negotiateType ?? MessageType.NegotiateOk,
        0,
        m.sequence,
        payload instanceof Uint8Array ? payload : encodeJson(payload as object),
        script.afterNegotiate,
      );
      return;
    }
    if (
      script.auth !== undefined &&
      (m.type === MessageType.AuthStart || m.type === MessageType.AuthFinal)
    ) {
      const message = { ...m, payload: m.payload.slice() };
      void (async () => {
        await script.auth!(message, (type, sequence, payload) => {
          if (this.open.has(channel)) {
            this.#write(channel, type, 0, sequence, payload);
          }
        });
      })().catch(() => channel.destroy());
      return;
    }
    if (
      channel === this.channel &&
      (m.type === MessageType.Request || m.type === MessageType.Ping)
    ) {
      this.received.push({ ...m, payload: m.payload.slice(), answered: false });
    }
  }

  /** Writes one frame (fields unchecked) to the latest connection. */
  send(type: number, flags: number, sequence: number, payload: Uint8Array) {
    if (this.channel) this.#write(this.channel, type, flags, sequence, payload);
  }

  /** Writes raw bytes to the latest connection, cut as set. */
  sendBytes(bytes: Uint8Array): void {
    const channel = this.channel;
    if (channel === undefined) return;
    if (this.byteByByte) {
      for (let i = 0; i < bytes.length; i++) {
        channel.write(bytes.subarray(i, i + 1));
      }
      return;
    }
    let at = 0;
    for (const cut of this.splits) {
      const to = Math.min(cut, bytes.length);
      if (to > at) channel.write(bytes.subarray(at, to));
      at = Math.max(at, to);
    }
    if (at < bytes.length) channel.write(bytes.subarray(at));
  }

  #write(
    channel: ByteChannel,
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
    behind?: Uint8Array,
  ): void {
    let bytes = frame(type, flags, sequence, payload);
    if (behind !== undefined) {
      const both = new Uint8Array(bytes.length + behind.length);
      both.set(bytes, 0);
      both.set(behind, bytes.length);
      bytes = both;
    }
    if (channel === this.channel) this.sendBytes(bytes);
    else channel.write(bytes);
  }

  /** An ERROR payload of code 1. */
  static get errorPayload(): Uint8Array {
    return ERROR_PAYLOAD;
  }

  /** Closes every connection and the listener. */
  async close(): Promise<void> {
    for (const channel of this.open) channel.destroy();
    await this.listener.close();
  }
}

/**
 * A request payload that tells its run and call apart: an op byte `op`
 * (the node answers none of them itself), then `run` and `id`.
 */
export function tagged(op: number, run: number, id: number): Uint8Array {
  return new Uint8Array([op, run & 0xff, id >> 8, id & 0xff]);
}

/** Whether `a` and `b` hold the same bytes. */
export const same = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * A tracked call's outcome, as the hostile-node properties check it: a
 * reply is the one to `payload` (when given), a failure is typed.
 */
export function assertOwnOutcome(
  t: Tracked<unknown>,
  payload: Uint8Array | undefined,
): void {
  if (t.ok) {
    if (payload !== undefined) {
      assert.ok(
        same(t.value as Uint8Array, payload),
        `${t.label} got another request's reply`,
      );
    }
  } else {
    assert.ok(
      t.error instanceof NodewireError,
      `${t.label} failed untyped: ${t.error}`,
    );
    assert.equal(typeof t.error.code, "string");
  }
}

/**
 * No timer is left on `clock`; once `node` closes, no channel is left
 * open on its network.
 */
export async function endsClean(
  clock: VirtualClock,
  node: HostileNode,
): Promise<void> {
  assert.equal(clock.pendingTimers, 0, "a timer is left armed");
  await node.close();
  assert.equal(node.network.openChannels, 0, "a channel is left open");
}

/** A frame with any header fields, unchecked: what a hostile node sends. */
export function frame(
  type: number,
  flags: number,
  sequence: number,
  payload: Uint8Array,
  length = payload.length,
): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  const view = new DataView(out.buffer);
  out[0] = 1;
  out[1] = type;
  view.setUint16(2, flags);
  view.setUint32(4, Math.floor(sequence / 2 ** 32));
  view.setUint32(8, sequence >>> 0);
  view.setUint32(12, length);
  out.set(payload, 16);
  return out;
}
