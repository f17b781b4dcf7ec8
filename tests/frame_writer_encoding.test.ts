// FrameWriter encodes frames itself (its header as four 32-bit words, a
// small payload by a loop): what it hands the channel must be, byte for
// byte, what MessageCodec.encode makes of the same frames, whatever the
// type, flags, sequence number (up to 2^53 - 1) and payload length.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { stubChannel } from "./support/stub_channel.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { FrameFlags, MessageType } from "../src/protocol/frame.ts";
import { concatBytes } from "../testing/bytes.ts";

const TYPES = [
  MessageType.Request,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Goodbye,
];

const frame = fc.record({
  type: fc.constantFrom(...TYPES),
  flags: fc.constantFrom(0, FrameFlags.Idempotent),
  sequence: fc.oneof(
    fc.integer({ min: 0, max: 0xffff_ffff }),
    fc.constantFrom(0x1_0000_0000, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER),
    fc.maxSafeNat(),
  ),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.uint8Array({ minLength: 60, maxLength: 300 }),
    fc.constant(new Uint8Array(DIRECT_PAYLOAD_BYTES).fill(0xa5)),
  ),
});

test("FrameWriter writes each frame exactly as MessageCodec.encode does", () => {
  fc.assert(
    fc.property(fc.array(frame, { minLength: 1, maxLength: 12 }), (frames) => {
      const written: Uint8Array[] = [];
      const writer = new FrameWriter(
        stubChannel({
          onData: () => {},
          write(bytes) {
            written.push(bytes.slice());
            return true;
          },
        }),
      );
      for (const f of frames) {
        writer.push(f.type, f.flags, f.sequence, f.payload);
      }
      writer.flush();
      const codec = new MessageCodec();
      const expected = frames.map((f) => codec.encode(f));
      assert.deepEqual(concatBytes(written), concatBytes(expected));
    }),
  );
});
