// The frame writer over this runtime's own socket, to a peer that reads
// nothing for a while: writes pile up in the runtime (Deno's complete
// later still), and a slab is only written again once the channel let
// go of every write from it. Every frame then arrives as it was pushed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel } from "../src/runtime/types.ts";

const PAYLOAD = 1024;
/** Ticks of 200 frames go on this long once the runtime holds a write. */
const TICKS_HELD = 20;
/** A bound on what is written while waiting for the runtime to hold some. */
const MAX_FRAMES = 40_000;

function payloadOf(sequence: number): Uint8Array {
  return Uint8Array.from(
    { length: PAYLOAD },
    (_, i) => (sequence * 7 + i) & 0xff,
  );
}

test("a peer that reads late gets every frame as it was pushed, in order", async () => {
  const adapter = await getAdapter();
  let accepted: (channel: ByteChannel) => void = () => {};
  const peer = new Promise<ByteChannel>((resolve) => accepted = resolve);
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => accepted(channel),
  );
  const channel = await adapter.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  channel.onData(() => {});
  const server = await peer;
  try {
    const writer = new FrameWriter(channel);
    // Ticks of 200 KiB (past the largest slab) while the peer reads
    // nothing, until the runtime holds some of the writes, and then on.
    let heldTicks = 0;
    let sequence = 0;
    while (heldTicks < TICKS_HELD && sequence < MAX_FRAMES) {
      for (let i = 0; i < 200; i++) {
        sequence++;
        writer.push(MessageType.Request, 0, sequence, payloadOf(sequence));
      }
      writer.flush();
      if (channel.bufferedAmount > 0 || writer.congested) heldTicks++;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(heldTicks, TICKS_HELD, "the runtime never held a write");
    const frames = sequence;
    // Now the peer reads it all.
    const codec = new MessageCodec();
    let next = 1;
    const done = new Promise<void>((resolve, reject) => {
      server.onData((chunk) => {
        try {
          codec.decode(chunk, (message) => {
            assert.equal(message.sequence, next);
            assert.deepEqual(message.payload, payloadOf(next), `frame ${next}`);
            if (++next > frames) resolve();
          });
        } catch (error) {
          reject(error);
        }
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`only ${next - 1} frames within 10 s`)),
          10_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } finally {
    channel.destroy();
    server.destroy();
    await listener.close();
  }
});
