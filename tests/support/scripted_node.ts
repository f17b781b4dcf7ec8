/**
 * A node, on any adapter's listener, that answers each control message
 * the way a test scripts it: to play a node that disagrees, misbehaves or
 * says what the test kit would refuse to say (the kit's rules are the
 * client's).
 *
 * @module
 */

import { FrameWriter } from "../../src/connection/frame_writer.ts";
import { MessageCodec } from "../../src/protocol/codec.ts";
import { type Message, MessageType } from "../../src/protocol/frame.ts";
import { encodeJson } from "../../src/protocol/messages.ts";
import type { RuntimeAdapter } from "../../src/runtime/types.ts";

/** A scripted node: where it listens, what it was sent, and its end. */
export interface ScriptedNode {
  readonly port: number;
  /** "127.0.0.1:port". */
  readonly address: string;
  /** The type of every message received, in order, on any connection. */
  readonly seen: number[];
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 through `adapter` and answers every message a
 * connection sends with `answer(message)`: the reply's type and the
 * object sent as its JSON payload, or undefined for no reply.
 */
export async function scriptedNode(
  adapter: RuntimeAdapter,
  answer: (message: Message) => [type: number, payload: object] | undefined,
): Promise<ScriptedNode> {
  const seen: number[] = [];
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => {
      const writer = new FrameWriter(channel);
      const codec = new MessageCodec(1 << 20);
      channel.onData((chunk) =>
        codec.decode(chunk, (m) => {
          seen.push(m.type);
          const reply = answer(m);
          if (reply !== undefined) {
            writer.push(reply[0], 0, m.sequence, encodeJson(reply[1]));
          }
        })
      );
      channel.onClose(() => {});
    },
  );
  return {
    port: listener.port,
    address: `127.0.0.1:${listener.port}`,
    seen,
    close: () => listener.close(),
  };
}

/** What answers HELLO with `helloOk`, and nothing else. */
export const answerHello = (helloOk: object) => (m: Message) =>
  m.type === MessageType.Hello
    ? [MessageType.HelloOk, helloOk] as [number, object]
    : undefined;
