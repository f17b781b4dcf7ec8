// A channel that asks for `smallParts` (Bun's and Deno's sockets) gets a
// tick's first part at MIN_PART_FRAMES while at most SMALL_PARTS_UP_TO
// requests are in flight, and half the window beyond (frame_writer.ts).
// Anything but `true`, or a getter that throws, is no hint: halves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { stubChannel } from "./support/stub_channel.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import {
  MIN_PART_FRAMES,
  SMALL_PARTS_UP_TO,
} from "../src/connection/write_parts.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { detectRuntime } from "../src/runtime/runtime_name.ts";

const MIN = MIN_PART_FRAMES;
const small = new Uint8Array([1, 2, 3]);

/** A channel that records the sequence numbers of each write. */
function recorder(hint: Partial<ByteChannel> = {}) {
  const writes: number[][] = [];
  const codec = new MessageCodec(1 << 24);
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      const sequences: number[] = [];
      codec.decode(bytes.slice(), (m) => sequences.push(m.sequence));
      writes.push(sequences);
      return true;
    },
    releasesWrites: true,
    ...hint,
  });
  return { channel, writes };
}

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * A writer over `channel` whose peer has `inFlight()` unanswered, after a
 * tick that grew its slab to the largest size (a full slab writes on its
 * own, which is not what these tests are about) and sized the next
 * tick's parts.
 */
async function warmWriter(channel: ByteChannel, inFlight: () => number) {
  const writer = new FrameWriter(channel, undefined, undefined, inFlight);
  for (let i = 0; i < 5; i++) {
    writer.push(
      MessageType.Request,
      0,
      1_000_000 + i,
      new Uint8Array(DIRECT_PAYLOAD_BYTES - 1),
    );
  }
  await tickEnds();
  return writer;
}

/** The sizes of the writes of one tick of `frames` frames. */
async function tickOf(
  hint: Partial<ByteChannel>,
  inFlight: number,
  frames: number,
): Promise<number[]> {
  const { channel, writes } = recorder(hint);
  const writer = await warmWriter(channel, () => inFlight);
  writes.length = 0;
  for (let sequence = 1; sequence <= frames; sequence++) {
    writer.push(MessageType.Request, 0, sequence, small);
  }
  await tickEnds();
  assert.deepEqual(
    writes.flat(),
    Array.from({ length: frames }, (_, i) => i + 1),
    "every frame once, in order",
  );
  return writes.map((w) => w.length);
}

/** What a tick's writes should be: parts at `first`, doubling, the rest. */
function expected(first: number, frames: number): number[] {
  const sizes: number[] = [];
  let sent = 0;
  for (let at = first; at <= frames; at *= 2) {
    sizes.push(at - sent);
    sent = at;
  }
  if (sent < frames) sizes.push(frames - sent);
  return sizes;
}

test("with smallParts and up to SMALL_PARTS_UP_TO in flight, the first part is MIN_PART_FRAMES", async () => {
  const window = SMALL_PARTS_UP_TO;
  assert.deepEqual(
    await tickOf({ smallParts: true }, window, window),
    [MIN, MIN, 2 * MIN, window - 4 * MIN].filter((n) => n > 0),
  );
  // Without the hint, the same tick goes in halves.
  assert.deepEqual(await tickOf({}, window, window), [window / 2, window / 2]);
  // One more in flight than the bound: halves again, hint or not.
  const over = window + 1;
  assert.deepEqual(
    await tickOf({ smallParts: true }, over, 100),
    expected(Math.floor(over / 2), 100),
  );
});

test("a smallParts hint that is not true, or cannot be read, is no hint: halves, and nothing thrown", async () => {
  const window = SMALL_PARTS_UP_TO;
  const halves = [window / 2, window / 2];
  for (const value of [1, "true", {}, false, null]) {
    const hint = { smallParts: value } as unknown as Partial<ByteChannel>;
    assert.deepEqual(await tickOf(hint, window, window), halves, `${value}`);
  }
  const { channel, writes } = recorder();
  Object.defineProperty(channel, "smallParts", {
    get() {
      throw new Error("hostile getter");
    },
  });
  const writer = await warmWriter(channel, () => window);
  writes.length = 0;
  for (let sequence = 1; sequence <= window; sequence++) {
    writer.push(MessageType.Request, 0, sequence, small);
  }
  await tickEnds();
  assert.deepEqual(writes.map((w) => w.length), halves);
});

test("parts follow the rule for any window and tick, with the hint or without", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.integer({ min: 0, max: 3 * SMALL_PARTS_UP_TO }),
      fc.integer({ min: 1, max: 600 }),
      async (hinted, inFlight, frames) => {
        const first = hinted && inFlight <= SMALL_PARTS_UP_TO
          ? MIN
          : Math.max(MIN, Math.floor(inFlight / 2));
        assert.deepEqual(
          await tickOf(hinted ? { smallParts: true } : {}, inFlight, frames),
          expected(first, frames),
        );
      },
    ),
    { numRuns: 60 },
  );
});

test("this runtime's sockets ask for small parts on Bun and Deno, not on Node", async () => {
  const adapter = await getAdapter();
  const accepted: ByteChannel[] = [];
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => accepted.push(channel),
  );
  try {
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: listener.port,
    });
    try {
      assert.equal(channel.smallParts === true, detectRuntime() !== "node");
    } finally {
      channel.destroy();
    }
  } finally {
    accepted.forEach((channel) => channel.destroy());
    await listener.close();
  }
});
