// FrameWriter's slab reuse: a channel that says it lets go of what it was
// given (`releasesWrites`) gets frames written into the same buffer again
// once it has nothing buffered; any other channel keeps every byte it was
// handed, unchanged, for as long as it holds it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { stubChannel } from "./support/stub_channel.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { openTestConnection } from "./support/test_connection.ts";
import { decodeReply, ops } from "../testing/ops.ts";

/**
 * A channel that keeps what it is given, as given, and a copy of it;
 * `released`, when given, is its count of released writes.
 */
function recorder(options: {
  releases?: boolean;
  buffered?: () => number;
  released?: () => number;
}) {
  const kept: Uint8Array[] = [];
  const copies: Uint8Array[] = [];
  const channel: ByteChannel = stubChannel({
    onData: () => {},
    write(bytes) {
      kept.push(bytes);
      copies.push(bytes.slice());
      return true;
    },
    ...(options.releases === undefined
      ? {}
      : { releasesWrites: options.releases }),
  });
  // Defined after: stubChannel's spread would read a getter once.
  Object.defineProperty(channel, "bufferedAmount", {
    get: () => options.buffered?.() ?? 0,
  });
  if (options.released !== undefined) {
    Object.defineProperty(channel, "releasedWrites", {
      get: options.released,
    });
  }
  return { channel, kept, copies };
}

/** Payload lengths that go into the slab, up to ones that fill it fast. */
const slabLengths = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 65, max: 3000 }),
  fc.integer({ min: 3001, max: DIRECT_PAYLOAD_BYTES - 1 }),
);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The REQUEST frames in `chunks`, decoded as one stream: [sequence, payload]. */
function framesIn(chunks: Uint8Array[]): [number, number[]][] {
  const codec = new MessageCodec();
  const frames: [number, number[]][] = [];
  for (const chunk of chunks) {
    codec.decode(chunk, (m) => frames.push([m.sequence, [...m.payload]]));
  }
  return frames;
}

function payloadOf(sequence: number, length: number): Uint8Array {
  const payload = new Uint8Array(length);
  for (let i = 0; i < length; i++) payload[i] = (sequence * 31 + i) & 0xff;
  return payload;
}

test("a channel that releases its writes gets the same buffer again once it has nothing buffered", () => {
  const { channel, kept, copies } = recorder({ releases: true });
  const writer = new FrameWriter(channel);
  for (let sequence = 1; sequence <= 3; sequence++) {
    writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 20));
    writer.flush();
  }
  assert.equal(kept.length, 3);
  // Each flush started over at the slab's beginning.
  for (const bytes of kept) {
    assert.equal(bytes.buffer, kept[0].buffer);
    assert.equal(bytes.byteOffset, 0);
  }
  // What went out, read as it was written, is every frame in order.
  assert.deepEqual(
    framesIn(copies).map(([s]) => s),
    [1, 2, 3],
  );
});

test("a releasing channel takes a tick's frames beyond the largest slab in the same buffer, not a fresh one per 64 KiB", () => {
  const { channel, kept, copies } = recorder({ releases: true });
  const writer = new FrameWriter(channel);
  // 200 frames of 1 KiB in one tick: 200 KiB, three slabs' worth.
  for (let sequence = 1; sequence <= 200; sequence++) {
    writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 1024));
  }
  writer.flush();
  assert.ok(kept.length >= 4, `${kept.length} writes`);
  // The slab grew up to the largest size once, then started over each
  // time the channel had let go of it.
  const largest = kept.filter((bytes) => bytes.buffer.byteLength >= 64 * 1024);
  assert.ok(largest.length >= 3, `${largest.length} writes from a 64 KiB slab`);
  for (const bytes of largest) assert.equal(bytes.buffer, largest[0].buffer);
  assert.deepEqual(
    framesIn(copies).map(([s, p]) => [s, p.length]),
    Array.from({ length: 200 }, (_, i) => [i + 1, 1024]),
  );
});

test("a releasing channel that still buffers gets a fresh slab once the largest is full, its bytes untouched", () => {
  const { channel, kept, copies } = recorder({
    releases: true,
    buffered: () => 1,
  });
  const writer = new FrameWriter(channel);
  for (let sequence = 1; sequence <= 200; sequence++) {
    writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 1024));
  }
  writer.flush();
  const largest = kept.filter((bytes) => bytes.buffer.byteLength >= 64 * 1024);
  assert.ok(largest.length >= 3, `${largest.length} writes from a 64 KiB slab`);
  assert.equal(
    new Set(largest.map((bytes) => bytes.buffer)).size,
    largest.length,
  );
  for (let i = 0; i < kept.length; i++) {
    assert.deepEqual([...kept[i]], [...copies[i]], `write ${i} changed`);
  }
  assert.deepEqual(
    framesIn(copies).map(([s, p]) => [s, p.length]),
    Array.from({ length: 200 }, (_, i) => [i + 1, 1024]),
  );
});

test("a channel that counts released writes gets a slab taken up again only once it let go of every write from it", () => {
  let released = 0;
  const { channel, kept, copies } = recorder({ released: () => released });
  const writer = new FrameWriter(channel);
  let sequence = 0;
  const tick = (count: number) => {
    for (let i = 0; i < count; i++) {
      sequence++;
      writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 1024));
    }
    writer.flush();
  };
  const unchangedFrom = (first: number) => {
    for (let i = first; i < kept.length; i++) {
      assert.deepEqual([...kept[i]], [...copies[i]], `write ${i} changed`);
    }
  };
  const buffersFrom = (first: number) =>
    new Set(kept.slice(first).map((bytes) => bytes.buffer));
  // Ticks of 100 KiB while the channel holds every write: the slab grows
  // to 64 KiB and moves on to fresh ones, none written twice.
  tick(100);
  tick(100);
  const before = buffersFrom(0);
  assert.ok(before.size >= 3, `${before.size} slabs`);
  unchangedFrom(0);
  let inUse = kept[kept.length - 1].buffer;
  let first = kept.length;
  tick(100);
  for (const buffer of buffersFrom(first)) {
    assert.ok(buffer === inUse || !before.has(buffer), "a held slab reused");
  }
  unchangedFrom(0);
  // Every write let go of: the next tick takes up a slab written before
  // (the spare) instead of a fresh one, and overwrites only what was let go.
  released = kept.length;
  inUse = kept[kept.length - 1].buffer;
  const known = buffersFrom(0);
  first = kept.length;
  tick(100);
  const taken = [...buffersFrom(first)].filter((buffer) =>
    buffer !== inUse && known.has(buffer)
  );
  assert.equal(taken.length, 1, "the spare taken up");
  unchangedFrom(released);
  assert.deepEqual(
    framesIn(copies).map(([s, p]) => [s, p.length]),
    Array.from({ length: 400 }, (_, i) => [i + 1, 1024]),
  );
});

test("a channel that does not say it releases its writes keeps every byte it was given", () => {
  for (const releases of [undefined, false]) {
    const { channel, kept, copies } = recorder({ releases });
    const writer = new FrameWriter(channel);
    for (let sequence = 1; sequence <= 200; sequence++) {
      writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 40));
      if (sequence % 3 === 0) writer.flush();
    }
    writer.flush();
    // The bytes it holds are still the bytes it was given.
    assert.deepEqual(kept.map((b) => [...b]), copies.map((b) => [...b]));
    assert.equal(new Set(kept.map((b) => b.buffer)).size > 1, true);
  }
});

test("a releasing channel with bytes still buffered keeps them unchanged", () => {
  let buffered = 1;
  const { channel, kept, copies } = recorder({
    releases: true,
    buffered: () => buffered,
  });
  const writer = new FrameWriter(channel);
  for (let sequence = 1; sequence <= 100; sequence++) {
    writer.push(MessageType.Request, 0, sequence, payloadOf(sequence, 30));
    writer.flush();
  }
  assert.deepEqual(kept.map((b) => [...b]), copies.map((b) => [...b]));
  // Once it has drained (so it holds none of them), the writer starts over.
  buffered = 0;
  writer.push(MessageType.Request, 0, 101, payloadOf(101, 30));
  writer.flush();
  writer.push(MessageType.Request, 0, 102, payloadOf(102, 30));
  writer.flush();
  assert.equal(kept.at(-1)!.byteOffset, 0);
  assert.deepEqual(framesIn(copies).map(([s]) => s).slice(-3), [100, 101, 102]);
});

test("a frame taken back just before a large payload's frame leaves the stream whole", () => {
  // The compaction of taken-back frames walked into the large frame's
  // header, whose payload is written apart: 16 KiB of stale slab went out
  // in its place, and the node read garbage.
  for (const releases of [false, true]) {
    const { channel, copies } = recorder({ releases });
    const writer = new FrameWriter(channel);
    writer.push(MessageType.Request, 0, 1, payloadOf(1, 10));
    writer.push(MessageType.Request, 0, 2, payloadOf(2, 0));
    assert.equal(writer.withdraw(2), true);
    const large = payloadOf(3, DIRECT_PAYLOAD_BYTES);
    writer.push(MessageType.Request, 0, 3, large);
    writer.flush();
    assert.deepEqual(framesIn(copies), [
      [1, [...payloadOf(1, 10)]],
      [3, [...large]],
    ]);
  }
});

test("a releasesWrites getter that throws means no reuse, and no throw", () => {
  const kept: Uint8Array[] = [];
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      kept.push(bytes);
      return true;
    },
  });
  Object.defineProperty(channel, "releasesWrites", {
    get() {
      throw new Error("no");
    },
  });
  const writer = new FrameWriter(channel);
  writer.push(MessageType.Request, 0, 1, payloadOf(1, 10));
  writer.flush();
  const first = [...kept[0]];
  writer.push(MessageType.Request, 0, 2, payloadOf(2, 10));
  writer.flush();
  assert.deepEqual([...kept[0]], first);
});

test("property: whatever is pushed, withdrawn and flushed, and whatever the channel buffers, the stream is the frames not withdrawn, in order", () => {
  // Pushes outweigh the rest, so that between two flushes the slab now
  // and then fills up to the largest size and past it.
  const step = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant("push" as const),
        length: fc.oneof(slabLengths, fc.constant(DIRECT_PAYLOAD_BYTES)),
      }),
    },
    fc.record({
      kind: fc.constant("withdraw" as const),
      back: fc.integer({ min: 0, max: 5 }),
    }),
    fc.record({ kind: fc.constant("flush" as const) }),
    fc.record({
      kind: fc.constant("buffered" as const),
      value: fc.integer({ min: 0, max: 2 }),
    }),
  );
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(step, { maxLength: 200 }),
      (releases, steps) => {
        let buffered = 0;
        const { channel, kept, copies } = recorder({
          releases,
          buffered: () => buffered,
        });
        const writer = new FrameWriter(channel);
        const expected = new Map<number, number[]>();
        let sequence = 0;
        // What the channel holds must not change while it holds it: a
        // non-releasing channel holds everything; a releasing one, what
        // it was given since it last had nothing buffered.
        let heldFrom = 0;
        for (const s of steps) {
          if (s.kind === "push") {
            sequence++;
            const payload = payloadOf(sequence, s.length);
            writer.push(MessageType.Request, 0, sequence, payload);
            expected.set(sequence, [...payload]);
          } else if (s.kind === "withdraw") {
            const target = sequence - s.back;
            if (target > 0 && writer.withdraw(target)) expected.delete(target);
          } else if (s.kind === "flush") {
            writer.flush();
          } else {
            buffered = s.value;
          }
          if (!releases || buffered > 0) continue;
          heldFrom = kept.length;
        }
        writer.flush();
        for (let i = releases ? heldFrom : 0; i < kept.length; i++) {
          assert.deepEqual([...kept[i]], [...copies[i]], `write ${i} changed`);
        }
        assert.deepEqual(framesIn(copies), [...expected.entries()]);
      },
    ),
  );
});

test("property: a channel that counts released writes never sees a write it still holds change", () => {
  const step = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant("push" as const),
        length: slabLengths,
      }),
    },
    fc.record({ kind: fc.constant("flush" as const) }),
    fc.record({
      kind: fc.constant("release" as const),
      count: fc.integer({ min: 0, max: 4 }),
    }),
  );
  fc.assert(
    // Long runs (fast-check's default size keeps arrays short): the slab
    // must grow to its largest and fill, many times, for spares to matter.
    fc.property(fc.array(step, { minLength: 100, maxLength: 300 }), (steps) => {
      let released = 0;
      const { channel, kept, copies } = recorder({ released: () => released });
      const writer = new FrameWriter(channel);
      const expected: [number, number][] = [];
      let sequence = 0;
      // A write is checked once, as the channel lets go of it (it was held
      // until then), and those still held at the end: each byte once.
      const unchangedUpTo = (end: number) => {
        for (let i = released; i < end; i++) {
          const [now, then] = [kept[i], copies[i]];
          assert.ok(sameBytes(now, then), `held write ${i} changed`);
        }
      };
      for (const s of steps) {
        if (s.kind === "push") {
          sequence++;
          const payload = payloadOf(sequence, s.length);
          writer.push(MessageType.Request, 0, sequence, payload);
          expected.push([sequence, s.length]);
        } else if (s.kind === "flush") {
          writer.flush();
        } else {
          const next = Math.min(kept.length, released + s.count);
          unchangedUpTo(next);
          released = next;
        }
      }
      writer.flush();
      unchangedUpTo(kept.length);
      // What went out is every frame in order, each with its own bytes.
      const codec = new MessageCodec();
      const seen: [number, number][] = [];
      for (const chunk of copies) {
        codec.decode(chunk, (m) => {
          const want = payloadOf(m.sequence, m.payload.length);
          assert.ok(sameBytes(m.payload, want), `frame ${m.sequence}`);
          seen.push([m.sequence, m.payload.length]);
        });
      }
      assert.deepEqual(seen, expected);
    }),
    // A failure is reported at once: shrinking runs this long would take
    // minutes.
    { numRuns: 50, endOnFailure: true },
  );
});

test("over this runtime's sockets, thousands of requests in waves each get their own bytes back", async () => {
  const adapter = await getAdapter();
  const { node, connection, close } = await openTestConnection(adapter);
  try {
    // Whether the writer starts its buffer over here: on Node and Bun
    // their sockets say so; Deno's node:net must not (see NodeChannel).
    const channel = await adapter.connect({
      hostname: "127.0.0.1",
      port: node.port,
    });
    const g = globalThis as { Deno?: unknown };
    assert.equal(channel.releasesWrites === true, g.Deno === undefined);
    // Deno's counts the writes it let go of, whose callbacks come late.
    assert.equal(
      typeof channel.releasedWrites === "number",
      g.Deno !== undefined,
    );
    channel.destroy();
    // Waves of small payloads, then of 1 KiB ones: 200 KiB a tick, which
    // fills the largest slab more than once (Deno then takes up its spare).
    for (let wave = 0; wave < 30; wave++) {
      const payloads = Array.from(
        { length: 200 },
        (_, i) =>
          ops.echo(
            payloadOf(
              wave * 1000 + i,
              i === 7
                ? DIRECT_PAYLOAD_BYTES + 5
                : wave >= 20
                ? 1024 + ((i + wave) % 3)
                : (i * 37 + wave) % 300,
            ),
          ),
      );
      const replies = await Promise.all(
        payloads.map((p) => connection.sendRequest(p)),
      );
      replies.forEach((reply, i) => {
        assert.deepEqual(
          [...decodeReply(reply).data],
          [...payloads[i].subarray(1)],
          `wave ${wave}, request ${i}`,
        );
      });
    }
  } finally {
    await close();
  }
});

test("a frame pushed from inside the channel's write (a reply delivered synchronously, whose sink sends the next request) is written by the next flush, not lost when the slab starts over", async () => {
  const frames: number[] = [];
  // Made once the channel exists; its write pushes through it.
  const made: { writer?: FrameWriter } = {};
  let pushes = 0;
  const channel: ByteChannel = stubChannel({
    onData: () => {},
    write(bytes) {
      const codec = new MessageCodec();
      codec.decodeFrames(bytes.slice(), (_type, _flags, sequence) => {
        frames.push(sequence);
      });
      // The channel took the bytes at once (bufferedAmount stays 0); the
      // "reply" to frame 1 makes its sender push frame 2 right here.
      if (pushes++ === 0) {
        made.writer!.push(MessageType.Request, 0, 2, ops.echo("two"));
      }
      return true;
    },
    releasesWrites: true,
  });
  Object.defineProperty(channel, "bufferedAmount", { get: () => 0 });
  const writer = made.writer = new FrameWriter(channel);
  writer.push(MessageType.Request, 0, 1, ops.echo("one"));
  // The flushes run as microtasks.
  for (let i = 0; i < 5; i++) await null;
  assert.deepEqual(frames, [1, 2]);
});
