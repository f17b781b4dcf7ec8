/**
 * A node that greets and then never answers: it completes the HELLO
 * handshake, counts the requests and pings that reach it and drops them.
 * Requests sent to it stay in flight on the client until they time out or
 * the connection goes, and it keeps nothing per request, so a heap
 * measurement taken while they are in flight sees the client's cost alone.
 *
 * @module
 */

import { formatAddress } from "../../src/errors.ts";
import { MessageCodec } from "../../src/protocol/codec.ts";
import { FrameWriter } from "../../src/connection/frame_writer.ts";
import { type Message, MessageType } from "../../src/protocol/frame.ts";
import { encodeJson } from "../../src/protocol/messages.ts";
import type { ByteChannel, RuntimeAdapter } from "../../src/runtime/types.ts";

/** A running black-hole node. */
export interface BlackHole {
  /** `host:port` to give to a client. */
  readonly address: string;
  /** Requests received (and dropped) since start. */
  readonly requests: number;
  /** Pings received (and dropped) since start. */
  readonly pings: number;
  /** Connections open now. */
  readonly open: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/**
 * Starts a black-hole node on `adapter` (a native adapter for loopback, or
 * a memory network), on a free port of `hostname`.
 *
 * @example
 * ```ts
 * import { getAdapter } from "../../src/runtime/detect.ts";
 * import { startBlackHole } from "./black_hole.ts";
 * const hole = await startBlackHole(await getAdapter());
 * console.log(hole.address, hole.requests); // e.g. 127.0.0.1:41234 0
 * await hole.close();
 * ```
 */
export async function startBlackHole(
  adapter: RuntimeAdapter,
  hostname = "127.0.0.1",
): Promise<BlackHole> {
  let requests = 0;
  let pings = 0;
  const channels = new Set<ByteChannel>();
  // No `protocols` list: the client then skips negotiation, and the
  // stream stays the plain TCP one it opened.
  const hello = encodeJson({
    nodeId: "black-hole",
    maxFrameSize: 1 << 20,
    auth: "none",
  });
  const listener = await adapter.listen({ hostname, port: 0 }, (channel) => {
    channels.add(channel);
    const writer = new FrameWriter(channel);
    const codec = new MessageCodec(1 << 20);
    // One callback per connection, not per message: nothing per request.
    const onMessage = (message: Message): void => {
      const type = message.type;
      if (type === MessageType.Request) requests++;
      else if (type === MessageType.Ping) pings++;
      else if (type === MessageType.Hello) {
        writer.push(MessageType.HelloOk, 0, message.sequence, hello);
      } else if (type === MessageType.Goodbye) channel.close();
    };
    channel.onData((chunk) => {
      try {
        codec.decode(chunk, onMessage);
      } catch {
        channel.destroy();
      }
    });
    channel.onClose(() => channels.delete(channel));
  });
  return {
    address: formatAddress({ hostname, port: listener.port }),
    get requests() {
      return requests;
    },
    get pings() {
      return pings;
    },
    get open() {
      return channels.size;
    },
    async close() {
      await listener.close();
      for (const channel of [...channels]) channel.destroy();
      channels.clear();
    },
  };
}
