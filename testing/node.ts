/**
 * A real reference node: a server that speaks the wire protocol over the
 * same runtime adapters as the client, on Deno, Bun and Node. Tests,
 * benchmarks and the demo run clusters of these on loopback.
 *
 * @module
 */

import { type Clock, systemClock, type TimerHandle } from "../src/clock.ts";
import { DEFAULT_MAX_FRAME_SIZE } from "../src/config.ts";
import { formatAddress } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/protocol/frame_writer.ts";
import {
  encodeError,
  encodeJson,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
  RuntimeName,
} from "../src/runtime/types.ts";
import { encodeReply, Op } from "./ops.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Options for {@linkcode startTestNode}. */
export interface TestNodeOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind. Default `127.0.0.1`. */
  hostname?: string;
  /** The node's id, echoed in every reply. Default `node-<port>`. */
  nodeId?: string;
  /** Adapter to listen with. Default: the runtime's native one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Largest payload accepted. Default 16 MiB. */
  maxFrameSize?: number;
  /** Clock for SLEEP. Default the system clock. */
  clock?: Clock;
}

/** Counters of a reference node. */
export interface TestNodeStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Requests answered (results and errors). */
  requests: number;
  /** Pings answered. */
  pings: number;
}

interface Session {
  channel: ByteChannel;
  writer: FrameWriter;
  greeted: boolean;
  inFlight: number;
}

/**
 * A running reference node. Stop it to simulate a crash, start it again on
 * the same port to simulate a restart.
 *
 * @example
 * ```ts
 * import { startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode({ nodeId: "n1" });
 * console.log(node.address); // e.g. "127.0.0.1:41234"
 * await node.close();
 * ```
 */
export class TestNode {
  /** Counters. */
  readonly stats: TestNodeStats = {
    accepted: 0,
    open: 0,
    requests: 0,
    pings: 0,
  };

  readonly #adapter: RuntimeAdapter;
  readonly #hostname: string;
  #port: number;
  readonly #maxFrameSize: number;
  readonly #clock: Clock;
  #nodeId: string | undefined;
  #nodeIdBytes = new Uint8Array(0);
  readonly #store = new Map<string, Uint8Array>();
  readonly #sessions = new Set<Session>();
  readonly #timers = new Set<TimerHandle>();
  #listener: Listener | undefined;

  /** @internal Use {@linkcode startTestNode}. */
  constructor(
    adapter: RuntimeAdapter,
    options: TestNodeOptions,
  ) {
    this.#adapter = adapter;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 0;
    this.#maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.#clock = options.clock ?? systemClock;
    this.#nodeId = options.nodeId;
  }

  /** The node's id, echoed in every reply. */
  get nodeId(): string {
    return this.#nodeId ?? `node-${this.#port}`;
  }

  /** The bound host. */
  get hostname(): string {
    return this.#hostname;
  }

  /** The bound port (stays the same across restarts). */
  get port(): number {
    return this.#port;
  }

  /** `host:port` to give to a client. */
  get address(): string {
    return formatAddress({ hostname: this.#hostname, port: this.#port });
  }

  /** Whether the node is listening. */
  get running(): boolean {
    return this.#listener !== undefined;
  }

  /** Starts listening (again), on the same port as before. */
  async start(): Promise<void> {
    if (this.#listener) return;
    this.#listener = await this.#adapter.listen(
      { hostname: this.#hostname, port: this.#port },
      (channel) => this.#serve(channel),
    );
    this.#port = this.#listener.port;
    this.#nodeIdBytes = encoder.encode(this.nodeId);
  }

  /**
   * Stops listening. By default open connections are dropped at once, like
   * a crash; with `graceful` the node says GOODBYE, finishes what is in
   * flight and then closes them.
   */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.close();
    for (const session of [...this.#sessions]) {
      if (options.graceful) {
        session.writer.push(MessageType.Goodbye, 0, 0, new Uint8Array(0));
        session.writer.flush();
        if (session.inFlight === 0) session.channel.close();
      } else {
        session.channel.destroy();
        this.#sessions.delete(session);
      }
    }
    if (!options.graceful) {
      for (const t of this.#timers) this.#clock.clearTimeout(t);
      this.#timers.clear();
    }
  }

  /** Stops the node for good, dropping every connection. */
  async close(): Promise<void> {
    await this.stop();
  }

  /** `await using node = await startTestNode()` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #serve(channel: ByteChannel): void {
    if (!this.#listener) {
      channel.destroy();
      return;
    }
    const session: Session = {
      channel,
      writer: new FrameWriter(channel),
      greeted: false,
      inFlight: 0,
    };
    const codec = new MessageCodec(this.#maxFrameSize);
    this.#sessions.add(session);
    this.stats.accepted++;
    this.stats.open++;
    channel.onData((chunk) => {
      try {
        codec.decode(chunk, (message) => this.#handle(session, message));
      } catch (error) {
        // A client that breaks the protocol gets told why, then dropped.
        this.#sendError(session, 0, RemoteErrorCode.BadRequest, false, error);
        session.writer.flush();
        channel.close();
      }
    });
    channel.onClose(() => {
      this.stats.open--;
      this.#sessions.delete(session);
    });
  }

  #handle(session: Session, message: Message): void {
    const { type, sequence } = message;
    if (!session.greeted) {
      if (type !== MessageType.Hello) {
        throw new Error("the first message must be HELLO");
      }
      session.greeted = true;
      session.writer.push(
        MessageType.HelloOk,
        0,
        sequence,
        encodeJson({
          nodeId: this.nodeId,
          maxFrameSize: this.#maxFrameSize,
          auth: "none",
          protocols: ["tcp"],
        }),
      );
      return;
    }
    switch (type) {
      case MessageType.Ping:
        this.stats.pings++;
        session.writer.push(MessageType.Pong, 0, sequence, message.payload);
        return;
      case MessageType.Request:
        this.#request(session, sequence, message.payload);
        return;
      case MessageType.Goodbye:
        session.channel.close();
        return;
      default:
        this.#sendError(
          session,
          sequence,
          RemoteErrorCode.BadRequest,
          false,
          `unexpected message type 0x${type.toString(16)}`,
        );
    }
  }

  #request(session: Session, sequence: number, payload: Uint8Array): void {
    const op = payload[0];
    const args = payload.subarray(1);
    switch (op) {
      case Op.Echo:
        return this.#reply(session, sequence, args);
      case Op.Get: {
        const value = this.#store.get(decoder.decode(args));
        if (value === undefined) {
          return this.#sendError(
            session,
            sequence,
            RemoteErrorCode.NotFound,
            false,
            "key not found",
          );
        }
        return this.#reply(session, sequence, value);
      }
      case Op.Put: {
        if (args.byteLength < 2) break;
        const keyLength = (args[0] << 8) | args[1];
        if (args.byteLength < 2 + keyLength) break;
        const key = decoder.decode(args.subarray(2, 2 + keyLength));
        // Copy: the payload is a view into a socket chunk.
        this.#store.set(key, args.slice(2 + keyLength));
        return this.#reply(session, sequence, new Uint8Array(0));
      }
      case Op.Delete: {
        const existed = this.#store.delete(decoder.decode(args));
        return this.#reply(
          session,
          sequence,
          new Uint8Array([existed ? 1 : 0]),
        );
      }
      case Op.Sleep: {
        if (args.byteLength < 4) break;
        const ms = new DataView(args.buffer, args.byteOffset, 4).getUint32(0);
        const data = args.slice(4);
        session.inFlight++;
        const timer = this.#clock.setTimeout(() => {
          this.#timers.delete(timer);
          session.inFlight--;
          this.#reply(session, sequence, data);
          if (!this.#listener && session.inFlight === 0) {
            session.writer.flush();
            session.channel.close();
          }
        }, ms);
        this.#timers.add(timer);
        return;
      }
      case Op.Fail: {
        if (args.byteLength < 3) break;
        return this.#sendError(
          session,
          sequence,
          (args[0] << 8) | args[1],
          args[2] === 1,
          decoder.decode(args.subarray(3)),
        );
      }
    }
    this.#sendError(
      session,
      sequence,
      RemoteErrorCode.BadRequest,
      false,
      `malformed or unknown operation 0x${(op ?? 0).toString(16)}`,
    );
  }

  #reply(session: Session, sequence: number, data: Uint8Array): void {
    this.stats.requests++;
    session.writer.push(
      MessageType.Response,
      0,
      sequence,
      encodeReply(this.#nodeIdBytes, data),
    );
  }

  #sendError(
    session: Session,
    sequence: number,
    code: number,
    retryable: boolean,
    error: unknown,
  ): void {
    this.stats.requests++;
    const message = error instanceof Error ? error.message : String(error);
    session.writer.push(
      MessageType.Error,
      0,
      sequence,
      encodeError({ code, retryable, message }),
    );
  }
}

/**
 * Starts a reference node and resolves once it listens.
 *
 * @example
 * ```ts
 * import { startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode({ port: 0, nodeId: "a" });
 * await node.stop();   // like a crash
 * await node.start();  // back on the same port
 * await node.close();
 * ```
 */
export async function startTestNode(
  options: TestNodeOptions = {},
): Promise<TestNode> {
  const adapter = await getAdapter(options.runtime);
  const node = new TestNode(adapter, options);
  await node.start();
  return node;
}
