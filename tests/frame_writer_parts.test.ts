// A tick of many frames goes to the channel in parts (frame_writer.ts,
// MIN_PART_FRAMES): the first once the tick holds half of what was in
// flight at the last tick's end, then at twice and four times that count,
// the rest at the tick's end. Without parts, many callers and the node
// take turns on one write each way, neither working while the other does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { stubChannel } from "./support/stub_channel.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import { Connection } from "../src/connection/connection.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";

/**
 * A channel that decodes each write (the sequence numbers it carried) and
 * lets go of it at once, so the writer starts its slab over each tick.
 */
function recorder() {
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
  });
  return { channel, writes };
}

/** Payloads that grow a writer's slab to its largest size in one tick. */
const slabFillers = () =>
  Array.from({ length: 5 }, () => new Uint8Array(DIRECT_PAYLOAD_BYTES - 1));

/**
 * A tick that grows the writer's slab to its largest size, whose writes
 * are then forgotten: a slab that fills makes a write of its own, which
 * the tests here are not about.
 */
async function warmUp(writer: FrameWriter, writes: number[][]) {
  slabFillers().forEach((payload, i) =>
    writer.push(MessageType.Request, 0, 1_000_000 + i, payload)
  );
  await tickEnds();
  writes.length = 0;
}

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const small = new Uint8Array([1, 2, 3]);

/** Pushes REQUEST frames `from`..`to` (inclusive) in this tick. */
function pushRange(writer: FrameWriter, from: number, to: number): void {
  for (let sequence = from; sequence <= to; sequence++) {
    writer.push(MessageType.Request, 0, sequence, small);
  }
}

const sizes = (writes: number[][]) => writes.map((w) => w.length);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("a writer told what is in flight sends a tick of many frames in parts: half of it, then doubling", async () => {
  const { channel, writes } = recorder();
  const writer = new FrameWriter(channel, undefined, undefined, () => 40);
  await warmUp(writer, writes);
  // 40 in flight at the last tick's end: parts at 20, 40 and 80 frames of
  // this tick, the rest at its end.
  pushRange(writer, 101, 200);
  assert.deepEqual(sizes(writes), [20, 20, 40], "parts before the tick ends");
  await tickEnds();
  assert.deepEqual(sizes(writes), [20, 20, 40, 20]);
  assert.deepEqual(writes.flat(), range(101, 200), "every frame, in order");
});

test("a writer's first tick goes in one write: nothing is known of the peer yet", async () => {
  const { channel, writes } = recorder();
  const writer = new FrameWriter(channel, undefined, undefined, () => 0);
  pushRange(writer, 1, 50);
  await tickEnds();
  assert.deepEqual(sizes(writes), [50]);
});

test("parts are never smaller than eight frames, however little is in flight", async () => {
  const { channel, writes } = recorder();
  let inFlight = 1;
  const writer = new FrameWriter(channel, undefined, undefined, () => inFlight);
  await warmUp(writer, writes);
  pushRange(writer, 2, 31);
  inFlight = 0;
  await tickEnds();
  // Parts at 8 and 16 frames, then 14 at the tick's end.
  assert.deepEqual(sizes(writes), [8, 8, 14]);
  // A tick under eight frames goes in one write.
  writes.length = 0;
  pushRange(writer, 32, 38);
  await tickEnds();
  assert.deepEqual(sizes(writes), [7]);
});

test("a writer not told what is in flight sends each tick in one write", async () => {
  const { channel, writes } = recorder();
  const writer = new FrameWriter(channel);
  await warmUp(writer, writes);
  for (let tick = 0; tick < 3; tick++) {
    pushRange(writer, tick * 500 + 1, tick * 500 + 500);
    await tickEnds();
  }
  assert.deepEqual(sizes(writes), [500, 500, 500]);
});

test("in parts or not, every frame goes out once and in order, and a tick costs a few writes at most", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          frames: fc.integer({ min: 0, max: 700 }),
          inFlight: fc.integer({ min: 0, max: 2000 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      async (ticks) => {
        const { channel, writes } = recorder();
        let inFlight = 0;
        const writer = new FrameWriter(
          channel,
          undefined,
          undefined,
          () => inFlight,
        );
        await warmUp(writer, writes);
        let next = 1;
        for (const tick of ticks) {
          const before = writes.length;
          pushRange(writer, next, next + tick.frames - 1);
          next += tick.frames;
          inFlight = tick.inFlight;
          await tickEnds();
          const parts = sizes(writes.slice(before));
          // Every part but the tick's last holds eight frames or more, and
          // parts double: log2(700 / 8) + 2 writes at most.
          parts.slice(0, -1).forEach((n) => assert.ok(n >= 8, `${parts}`));
          assert.ok(parts.length <= 9, `${parts}`);
        }
        assert.deepEqual(writes.flat(), range(1, next - 1));
      },
    ),
  );
});

test("a connection sizes a tick's parts by its requests awaiting replies", async () => {
  const { channel, writes } = recorder();
  const connection = new Connection(channel, { hostname: "fake", port: 1 });
  const requests: Promise<unknown>[] = [];
  const send = (count: number) => {
    for (let i = 0; i < count; i++) {
      requests.push(connection.sendRequest(ops.echo("x")).catch(() => {}));
    }
  };
  // The first tick grows the slab (see warmUp) and leaves 5 in flight.
  for (const payload of slabFillers()) {
    requests.push(connection.sendRequest(payload).catch(() => {}));
  }
  await tickEnds();
  writes.length = 0;
  // Parts at 8, 16 and 32 frames, the rest at the tick's end.
  send(64);
  await tickEnds();
  assert.deepEqual(sizes(writes), [8, 8, 16, 32]);
  // 69 in flight at that tick's end: this tick's first part at 34 frames,
  // the next at 68, the rest at its end.
  writes.length = 0;
  send(100);
  await tickEnds();
  assert.deepEqual(sizes(writes), [34, 34, 32]);
  connection.destroy();
  await Promise.all(requests);
});
