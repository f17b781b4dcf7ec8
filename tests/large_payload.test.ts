// Large payloads (issue #15, point 6): a payload at or above the direct
// threshold leaves as the caller's own bytes after its header, never copied
// into the writer's slab nor merged by the write queue; frames of every size
// around the threshold arrive intact and in order over the memory channel
// and a real socket; replies are views of what was read, not of the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  DIRECT_PAYLOAD_BYTES,
  FrameWriter,
} from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { HEADER_SIZE, type Message } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { COPY_BELOW, WriteQueue } from "../src/runtime/write_queue.ts";
import { openTestConnection } from "./support/test_connection.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { concatBytes } from "../testing/bytes.ts";
import { Buffer } from "node:buffer";

/** A channel that keeps every chunk written to it, as handed over. */
function recordingChannel(): ByteChannel & { chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    bufferedAmount: 0,
    remoteAddress: undefined,
    onData() {},
    onClose() {},
    write(bytes: Uint8Array) {
      chunks.push(bytes);
      return true;
    },
    drained: () => Promise.resolve(),
    close() {},
    destroy() {},
  } as unknown as ByteChannel & { chunks: Uint8Array[] };
}

/** A payload of `size` bytes whose content says which frame it is. */
function payloadOf(size: number, tag: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (tag * 31 + i) & 0xff;
  return bytes;
}

/**
 * Byte-wise equality, whatever the view's class (Bun reads into Buffers).
 */
function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(actual.byteLength, expected.byteLength);
  for (let i = 0; i < actual.byteLength; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`byte ${i}: ${actual[i]} !== ${expected[i]}`);
    }
  }
}

/** Sizes near the threshold, small ones and a few large. */
const sizeArb = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({
    min: DIRECT_PAYLOAD_BYTES - HEADER_SIZE - 8,
    max: DIRECT_PAYLOAD_BYTES + 8,
  }),
  fc.integer({ min: 0, max: 3 * DIRECT_PAYLOAD_BYTES }),
);

test("a large payload is handed to the channel as the caller's own memory, after its header", async () => {
  const channel = recordingChannel();
  const writer = new FrameWriter(channel);
  const small = payloadOf(10, 1);
  const large = payloadOf(DIRECT_PAYLOAD_BYTES, 2);
  writer.push(0x20, 0, 1, small);
  writer.push(0x20, 0, 2, large);
  writer.push(0x20, 0, 3, small);
  await Promise.resolve();
  // The slab with the first frame and the large one's header, then the
  // payload itself, then the slab with the third frame.
  assert.equal(channel.chunks.length, 3);
  assert.equal(channel.chunks[0].byteLength, 2 * HEADER_SIZE + 10);
  // The caller's own memory (a plain view of it, not a copy).
  assert.equal(channel.chunks[1].buffer, large.buffer);
  assert.equal(channel.chunks[1].byteOffset, large.byteOffset);
  assert.equal(channel.chunks[1].byteLength, large.byteLength);
  assert.equal(channel.chunks[2].byteLength, HEADER_SIZE + 10);
  // One byte under the threshold is still copied into the slab.
  const below = payloadOf(DIRECT_PAYLOAD_BYTES - 1, 3);
  writer.push(0x20, 0, 4, below);
  await Promise.resolve();
  assert.equal(channel.chunks.length, 4);
  assert.notEqual(channel.chunks[3], below);
  assert.equal(channel.chunks[3].byteLength, HEADER_SIZE + below.byteLength);
});

test("the write queue never copies a large chunk, and still merges small ones", () => {
  const queue = new WriteQueue();
  const header = new Uint8Array(HEADER_SIZE);
  const large = new Uint8Array(COPY_BELOW);
  queue.push(new Uint8Array(5));
  queue.push(header);
  queue.push(large);
  queue.push(new Uint8Array(3));
  const first = queue.peek();
  assert.equal(first.byteLength, 5 + HEADER_SIZE);
  queue.consume(first.byteLength);
  assert.equal(queue.peek(), large);
  queue.consume(large.byteLength);
  assert.equal(queue.peek().byteLength, 3);
});

test("frames of any size around the threshold leave whole and in order", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(sizeArb, { minLength: 1, maxLength: 6 }), {
        minLength: 1,
        maxLength: 6,
      }),
      async (ticks) => {
        const channel = recordingChannel();
        const writer = new FrameWriter(channel);
        const sent: Uint8Array[] = [];
        for (const sizes of ticks) {
          for (const size of sizes) {
            const payload = payloadOf(size, sent.length);
            sent.push(payload);
            writer.push(0x20, 0, sent.length, payload);
          }
          await Promise.resolve();
        }
        const codec = new MessageCodec(1 << 20);
        const got: Message[] = [];
        for (const chunk of channel.chunks) {
          codec.decode(chunk, (m) => got.push(m));
        }
        assert.equal(got.length, sent.length);
        got.forEach((m, i) => {
          assert.equal(m.sequence, i + 1);
          assertBytes(m.payload, sent[i]);
        });
      },
    ),
    { numRuns: 40 },
  );
});

test("small payloads copied by the loop put the same bytes on the wire as MessageCodec.encode: Buffers, odd-offset views, 0, 32 and 33 bytes", async () => {
  // How the payload is held: its own buffer, a Buffer (a Uint8Array
  // subclass whose pooled buffer starts anywhere), or a view at an odd
  // offset into a larger buffer with bytes either side.
  const holderArb = fc.constantFrom("own", "buffer", "view");
  const frameArb = fc.record({
    type: fc.constantFrom(0x10, 0x11, 0x20, 0x21),
    flags: fc.constantFrom(0, 1),
    sequence: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    size: fc.oneof(
      fc.constantFrom(0, 1, 31, 32, 33, 34),
      fc.integer({ min: 0, max: 80 }),
    ),
    holder: holderArb,
    offset: fc.integer({ min: 1, max: 9 }).map((n) => 2 * n - 1),
    seed: fc.nat(255),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(frameArb, { minLength: 1, maxLength: 8 }), {
        minLength: 1,
        maxLength: 5,
      }),
      async (ticks) => {
        const channel = recordingChannel();
        const writer = new FrameWriter(channel);
        const codec = new MessageCodec(1 << 20);
        const expected: Uint8Array[] = [];
        for (const frames of ticks) {
          for (const f of frames) {
            const bytes = payloadOf(f.size, f.seed);
            let payload: Uint8Array;
            if (f.holder === "buffer") payload = Buffer.from(bytes);
            else if (f.holder === "view") {
              const backing = new Uint8Array(f.offset + f.size + 7).fill(0xee);
              backing.set(bytes, f.offset);
              payload = backing.subarray(f.offset, f.offset + f.size);
            } else payload = bytes;
            writer.push(f.type, f.flags, f.sequence, payload);
            expected.push(
              codec.encode({
                type: f.type,
                flags: f.flags,
                sequence: f.sequence,
                payload: bytes,
              }),
            );
          }
          await Promise.resolve();
        }
        assertBytes(concatBytes(channel.chunks), concatBytes(expected));
      },
    ),
    { numRuns: 200, endOnFailure: true },
  );
});

for (const kind of ["memory", "socket"] as const) {
  test(`echoes of random sizes around the threshold arrive intact and in order (${kind})`, async () => {
    const adapter: RuntimeAdapter = kind === "memory"
      ? createMemoryNetwork()
      : await getAdapter();
    const { connection, close } = await openTestConnection(adapter);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(sizeArb, { minLength: 1, maxLength: 12 }),
          async (sizes) => {
            const payloads = sizes.map((size, i) =>
              ops.echo(payloadOf(size, i))
            );
            // All in flight at once, so frames of mixed sizes interleave.
            const replies = await Promise.all(
              payloads.map((p) => connection.sendRequest(p)),
            );
            replies.forEach((reply, i) => {
              assertBytes(decodeReply(reply).data, payloads[i].subarray(1));
            });
          },
        ),
        { numRuns: 15 },
      );
    } finally {
      await close();
    }
  });
}

test("1 KiB, 64 KiB and 1 MiB payloads round-trip; the reply is not a view of the request", async () => {
  const adapter = await getAdapter();
  const { connection, close } = await openTestConnection(adapter);
  try {
    for (const size of [1024, 64 * 1024, 1024 * 1024]) {
      const payload = ops.echo(payloadOf(size, size));
      const reply = await connection.sendRequest(payload);
      const data = decodeReply(reply).data;
      assertBytes(data, payload.subarray(1));
      // Once the request settled the payload is the caller's again:
      // changing it changes nothing already received.
      const before = data.slice();
      payload.fill(0);
      assertBytes(data, before);
      assert.notEqual(data.buffer, payload.buffer);
    }
  } finally {
    await close();
  }
});

test("a payload whose getters say other than its bytes never puts the stream out of step: every frame decodes, in order, with its real bytes", async () => {
  // A stateful getter can answer the Client's door truthfully and lie to
  // the writer, and a Connection is given payloads as they are. The large
  // path framed `length` and wrote the real bytes after it: the node then
  // read the next requests' frames as this one's payload; the small path
  // framed what `length` said, cutting or padding the bytes.
  const frameArb = fc.record({
    real: fc.oneof(
      fc.integer({ min: 0, max: 40 }),
      fc.integer({
        min: DIRECT_PAYLOAD_BYTES - 4,
        max: DIRECT_PAYLOAD_BYTES + 4,
      }),
    ),
    said: fc.option(
      fc.oneof(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({
          min: DIRECT_PAYLOAD_BYTES - 4,
          max: 2 * DIRECT_PAYLOAD_BYTES,
        }),
      ),
      { nil: undefined },
    ),
    other: fc.constantFrom("none", "byteLength", "byteOffset", "buffer"),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(frameArb, { minLength: 1, maxLength: 8 }),
      async (frames) => {
        const channel = recordingChannel();
        const writer = new FrameWriter(channel);
        const expected: { sequence: number; bytes: Uint8Array }[] = [];
        frames.forEach((f, i) => {
          const said = f.said ?? f.real;
          class Lying extends Uint8Array {
            override get length(): number {
              return said;
            }
          }
          const payload = new Lying(payloadOf(f.real, i));
          if (f.other !== "none") {
            const value = f.other === "buffer" ? new ArrayBuffer(8) : 3;
            Object.defineProperty(payload, f.other, { get: () => value });
          }
          writer.push(0x20, 0, i + 1, payload);
          expected.push({ sequence: i + 1, bytes: payloadOf(f.real, i) });
        });
        await Promise.resolve();
        const codec = new MessageCodec(1 << 20);
        const got: Message[] = [];
        for (const chunk of channel.chunks) {
          // What the runtime would send: the chunk's real bytes, read
          // through its internal slots, not its getters.
          codec.decode(new Uint8Array(chunk), (m) => got.push(m));
        }
        assert.deepEqual(
          got.map((m) => m.sequence),
          expected.map((e) => e.sequence),
        );
        got.forEach((m, i) => assertBytes(m.payload, expected[i].bytes));
      },
    ),
    { numRuns: 200, endOnFailure: true },
  );
});
