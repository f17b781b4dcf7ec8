// A channel may hand a reply back from inside its own write (a custom
// adapter's), whose sink sends again at once: FrameWriter.push() then runs
// inside the channel's write, called by the writer itself (a tick's part,
// a full slab's flush, a large payload's header). What it pushes there
// goes out whole, once, in order, and never inside another frame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { stubChannel } from "./support/stub_channel.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import { MIN_PART_FRAMES } from "../src/connection/write_parts.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * A channel that reads what it is given as one stream ([sequence, payload
 * length] per frame, or what reading it threw) and, once, runs `inside`
 * from inside a write, after taking the bytes.
 */
function reentrantChannel() {
  const frames: [number, number][] = [];
  const faults: unknown[] = [];
  const codec = new MessageCodec(1 << 24);
  const scene = {
    inside: undefined as (() => void) | undefined,
    frames,
    faults,
  };
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      try {
        codec.decode(
          bytes.slice(),
          (m) => frames.push([m.sequence, m.payload.length]),
        );
      } catch (error) {
        faults.push(error);
      }
      const inside = scene.inside;
      scene.inside = undefined;
      inside?.();
      return true;
    },
  });
  return { channel, scene };
}

const small = new Uint8Array([1, 2, 3]);

/** Sequence numbers `from` to `to`, both included. */
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("frames pushed from inside the write of a large payload's header go after its payload: a part sent there went between the two, and the reader took its frames for the payload", async () => {
  const { channel, scene } = reentrantChannel();
  const writer = new FrameWriter(channel, undefined, undefined, () => 0);
  // A first tick: the next one's parts go at MIN_PART_FRAMES frames.
  writer.push(MessageType.Request, 0, 1, small);
  await tickEnds();
  // A reply to more requests than a part holds handed back as the header
  // goes, each sink sending one more.
  const last = MIN_PART_FRAMES + 4;
  scene.inside = () => {
    for (let sequence = 3; sequence <= last; sequence++) {
      writer.push(MessageType.Request, 0, sequence, small);
    }
  };
  writer.push(MessageType.Request, 0, 2, new Uint8Array(DIRECT_PAYLOAD_BYTES));
  await tickEnds();
  assert.deepEqual(scene.faults, []);
  assert.deepEqual(scene.frames, [
    [1, 3],
    [2, DIRECT_PAYLOAD_BYTES],
    ...range(3, last).map((s): [number, number] => [s, 3]),
  ]);
  // As many pushed in a tick of their own, on a writer as new as this
  // one, make a part: those above would have sent one there.
  const other = reentrantChannel();
  const fresh = new FrameWriter(other.channel, undefined, undefined, () => 0);
  fresh.push(MessageType.Request, 0, 1, small);
  await tickEnds();
  let inPart = 0;
  other.scene.inside = () => void (inPart = other.scene.frames.length - 1);
  for (let sequence = 3; sequence <= last; sequence++) {
    fresh.push(MessageType.Request, 0, sequence, small);
  }
  assert.equal(inPart, MIN_PART_FRAMES, "a part before the tick's end");
  await tickEnds();
});

test("a large payload pushed from inside the write of another's header goes after that one's payload, not between its header and payload", async () => {
  const { channel, scene } = reentrantChannel();
  const writer = new FrameWriter(channel);
  scene.inside = () => {
    writer.push(
      MessageType.Request,
      0,
      2,
      new Uint8Array(DIRECT_PAYLOAD_BYTES + 1),
    );
  };
  writer.push(MessageType.Request, 0, 1, new Uint8Array(DIRECT_PAYLOAD_BYTES));
  await tickEnds();
  assert.deepEqual(scene.faults, []);
  assert.deepEqual(scene.frames, [
    [1, DIRECT_PAYLOAD_BYTES],
    [2, DIRECT_PAYLOAD_BYTES + 1],
  ]);
});

test("a large payload pushed from inside a write goes whole, after what came before it", async () => {
  const { channel, scene } = reentrantChannel();
  const writer = new FrameWriter(channel, undefined, undefined, () => 0);
  writer.push(MessageType.Request, 0, 1, small);
  await tickEnds();
  // Inside the first part's write: its header and payload must not be
  // split by the frames still to come, nor come before them.
  scene.inside = () => {
    writer.push(
      MessageType.Request,
      0,
      100,
      new Uint8Array(DIRECT_PAYLOAD_BYTES),
    );
  };
  const last = MIN_PART_FRAMES + 4;
  for (let sequence = 2; sequence <= last; sequence++) {
    writer.push(MessageType.Request, 0, sequence, small);
  }
  await tickEnds();
  assert.deepEqual(scene.faults, []);
  // The part (frames 2 to MIN_PART_FRAMES + 1), the large payload pushed
  // inside its write, then the rest of the tick.
  assert.deepEqual(scene.frames.map(([s]) => s), [
    ...range(1, MIN_PART_FRAMES + 1),
    100,
    ...range(MIN_PART_FRAMES + 2, last),
  ]);
  assert.deepEqual(scene.frames.find(([s]) => s === 100), [
    100,
    DIRECT_PAYLOAD_BYTES,
  ]);
});

test("a frame pushed from inside the write of a full slab's flush is written: the fresh slab left it behind, never sent and never reported", async () => {
  const { channel, scene } = reentrantChannel();
  const writer = new FrameWriter(channel);
  // The first slab (1 KiB) nearly full: room for a small frame, not for
  // the next one.
  writer.push(MessageType.Request, 0, 1, new Uint8Array(932));
  scene.inside = () => writer.push(MessageType.Request, 0, 3, small);
  writer.push(MessageType.Request, 0, 2, new Uint8Array(200));
  await tickEnds();
  assert.deepEqual(scene.faults, []);
  assert.deepEqual(scene.frames, [[1, 932], [3, 3], [2, 200]]);
});

test("a slab whose write is under way is not taken up again as the spare by a push from inside that write: a channel counting released writes had its held bytes overwritten", () => {
  // A channel that counts the writes it let go of (as Deno's do) and keeps
  // what it was given until then.
  const kept: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  let released = 1e9;
  let inside: (() => void) | undefined;
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      kept.push(bytes);
      copies.push(bytes.slice());
      const run = inside;
      inside = undefined;
      run?.();
      return true;
    },
  });
  Object.defineProperty(channel, "releasedWrites", { get: () => released });
  const writer = new FrameWriter(channel);
  let sequence = 0;
  const send = (length: number) => {
    writer.push(MessageType.Request, 0, ++sequence, new Uint8Array(length));
    writer.flush();
  };
  const last = () => kept[kept.length - 1];
  const largest = new Set<ArrayBufferLike>();
  // Slabs grow to the largest size and two of them take turns, until the
  // one in use has no room left for 16000 bytes more.
  for (let i = 0; i < 1000; i++) {
    send(1000);
    const bytes = last();
    if (bytes.buffer.byteLength === 64 * 1024) largest.add(bytes.buffer);
    if (largest.size >= 2 && bytes.byteOffset + bytes.length > 48 * 1024) break;
  }
  assert.equal(largest.size, 2);
  // A reply handed back from inside this write, whose sink sends 16000
  // bytes (no room in this slab); the channel has let go of every write
  // but this one.
  inside = () => {
    released = kept.length - 1;
    writer.push(MessageType.Request, 0, ++sequence, new Uint8Array(16_000));
  };
  send(10);
  const held = kept.length - 1;
  // The writes that follow fill slabs again, while that one is held.
  for (let i = 0; i < 200; i++) send(1000);
  assert.deepEqual([...kept[held]], [...copies[held]], "a held write changed");
});
