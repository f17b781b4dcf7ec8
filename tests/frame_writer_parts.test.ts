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
import { MIN_PART_FRAMES } from "../src/connection/write_parts.ts";
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

/** The smallest part. */
const MIN = MIN_PART_FRAMES;

test("a writer told what is in flight sends a tick of many frames in parts: half of it, then doubling", async () => {
  const { channel, writes } = recorder();
  // Half of what is in flight, above the smallest part.
  const half = MIN + 12;
  const writer = new FrameWriter(channel, undefined, undefined, () => 2 * half);
  await warmUp(writer, writes);
  // Parts at half, twice and four times that many frames of this tick,
  // the rest at its end.
  pushRange(writer, 101, 100 + 5 * half);
  assert.deepEqual(
    sizes(writes),
    [half, half, 2 * half],
    "parts before the tick ends",
  );
  await tickEnds();
  assert.deepEqual(sizes(writes), [half, half, 2 * half, half]);
  assert.deepEqual(
    writes.flat(),
    range(101, 100 + 5 * half),
    "every frame, in order",
  );
});

test("a writer's first tick goes in one write: nothing is known of the peer yet", async () => {
  const { channel, writes } = recorder();
  const writer = new FrameWriter(channel, undefined, undefined, () => 0);
  pushRange(writer, 1, 50);
  await tickEnds();
  assert.deepEqual(sizes(writes), [50]);
});

test("parts are never smaller than MIN_PART_FRAMES frames, however little is in flight", async () => {
  const { channel, writes } = recorder();
  let inFlight = 1;
  const writer = new FrameWriter(channel, undefined, undefined, () => inFlight);
  await warmUp(writer, writes);
  pushRange(writer, 1, 3 * MIN - 2);
  inFlight = 0;
  await tickEnds();
  // Parts at MIN and twice MIN frames, then the rest at the tick's end.
  assert.deepEqual(sizes(writes), [MIN, MIN, MIN - 2]);
  // A tick of fewer frames goes in one write, and one of as many in one
  // part (the tick's end finds nothing left).
  for (const frames of [MIN - 1, MIN]) {
    writes.length = 0;
    pushRange(writer, 1, frames);
    await tickEnds();
    assert.deepEqual(sizes(writes), [frames]);
  }
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
  const MOST_WRITES = Math.ceil(Math.log2(700 / MIN)) + 2;
  // Ticks that went in parts, over every run: some must have.
  let inParts = 0;
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
          // Every part but the tick's last holds MIN frames or more, and
          // parts double: log2(700 / MIN) + 2 writes at most.
          parts.slice(0, -1).forEach((n) => assert.ok(n >= MIN, `${parts}`));
          assert.ok(parts.length <= MOST_WRITES, `${parts}`);
          if (parts.length > 1) inParts++;
        }
        assert.deepEqual(writes.flat(), range(1, next - 1));
      },
    ),
  );
  assert.ok(inParts > 0, "no tick went in parts");
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
  // Too few in flight for half of it to be a part: parts at MIN and twice
  // MIN frames, the rest at the tick's end.
  send(3 * MIN);
  await tickEnds();
  assert.deepEqual(sizes(writes), [MIN, MIN, MIN]);
  // 5 + 3 * MIN in flight at that tick's end: this tick's first part at
  // half of that, the next at twice the first, the rest at its end.
  const half = Math.floor((5 + 3 * MIN) / 2);
  writes.length = 0;
  send(2 * half + MIN);
  await tickEnds();
  assert.deepEqual(sizes(writes), [half, half, MIN]);
  connection.destroy();
  await Promise.all(requests);
});
