import { MessageCodec } from "../../src/protocol/codec.ts";
import { MessageType } from "../../src/protocol/frame.ts";
import { concatBytes } from "../../testing/bytes.ts";

/** RESPONSE frames (payload `[1]`) answering `sequences`, in one chunk. */
export function replies(sequences: readonly number[]): Uint8Array {
  const codec = new MessageCodec();
  return concatBytes(sequences.map((sequence) =>
    codec.encode({
      type: MessageType.Response,
      flags: 0,
      sequence,
      payload: new Uint8Array([1]),
    })
  ));
}
