/**
 * A node on real loopback sockets that stops reading: it answers HELLO
 * (plain TCP, no authentication) and, once told to `stop()`, reads nothing
 * more on any connection (new ones pause after their HELLO), so the
 * kernel's buffers fill and the client's writes back up. `hear()` reads
 * again; requests are then answered, and every frame it read is recorded.
 *
 * @module
 */

import { MessageCodec } from "../../src/protocol/codec.ts";
import { MessageType } from "../../src/protocol/frame.ts";
import { encodeJson } from "../../src/protocol/messages.ts";
import type { ByteChannel, RuntimeAdapter } from "../../src/runtime/types.ts";

/** A node that can stop reading, and what it read. */
export interface DeafNode {
  /** "127.0.0.1:port". */
  readonly address: string;
  /** The type of every message read after HELLO, in order. */
  readonly seen: number[];
  /** The payload length of every REQUEST read, in order. */
  readonly lengths: number[];
  /** Stops reading, on every connection, open or to come. */
  stop(): void;
  /** Reads again. */
  hear(): void;
  /** Drops every connection and unbinds the port. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 through `adapter`; reads until `stop()`. */
export async function deafNode(adapter: RuntimeAdapter): Promise<DeafNode> {
  const channels: ByteChannel[] = [];
  const seen: number[] = [];
  const lengths: number[] = [];
  let deaf = false;
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => {
      channels.push(channel);
      const codec = new MessageCodec(1 << 24);
      channel.onClose(() => {});
      channel.onData((chunk) =>
        codec.decode(chunk, (m) => {
          if (m.type === MessageType.Hello) {
            channel.write(codec.encode({
              type: MessageType.HelloOk,
              flags: 0,
              sequence: m.sequence,
              payload: encodeJson({
                nodeId: "deaf",
                maxFrameSize: 1 << 24,
                auth: "none",
              }),
            }));
            if (deaf) channel.pause?.();
            return;
          }
          seen.push(m.type);
          if (m.type === MessageType.Request) lengths.push(m.payload.length);
          const reply = m.type === MessageType.Request
            ? MessageType.Response
            : m.type === MessageType.Ping
            ? MessageType.Pong
            : undefined;
          if (reply === undefined) return;
          channel.write(codec.encode({
            type: reply,
            flags: 0,
            sequence: m.sequence,
            payload: new Uint8Array(1),
          }));
        })
      );
    },
  );
  return {
    address: `127.0.0.1:${listener.port}`,
    seen,
    lengths,
    stop() {
      deaf = true;
      for (const channel of channels) channel.pause?.();
    },
    hear() {
      deaf = false;
      for (const channel of channels) channel.resume?.();
    },
    async close() {
      for (const channel of channels) channel.destroy();
      await listener.close();
    },
  };
}
