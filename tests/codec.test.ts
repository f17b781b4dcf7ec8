import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { SPLIT_FRAME_FIRST_ROOM } from "../src/protocol/split_frame.ts";
import {
  HEADER_SIZE,
  type Message,
  MessageType,
} from "../src/protocol/frame.ts";
import { InvalidArgumentError, ProtocolError } from "../src/errors.ts";
import { concatBytes } from "../testing/bytes.ts";

const types = Object.values(MessageType) as number[];

const messageArb = fc.record({
  type: fc.constantFrom(...types),
  flags: fc.constantFrom(0, 1),
  sequence: fc.oneof(
    fc.integer({ min: 0, max: 2 ** 32 }),
    fc.constant(Number.MAX_SAFE_INTEGER),
  ),
  payload: fc.uint8Array({ maxLength: 300 }),
});

/** Splits `bytes` at the given cut points into chunks. */
function chunk(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort(
    (a, b) => a - b,
  );
  const chunks: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(last, p));
    last = p;
  }
  chunks.push(bytes.subarray(last));
  return chunks;
}

function header(type: number, flags: number, length: number, version = 1) {
  const h = new Uint8Array(HEADER_SIZE);
  h[0] = version;
  h[1] = type;
  h[2] = flags >> 8;
  h[3] = flags & 0xff;
  new DataView(h.buffer).setUint32(12, length);
  return h;
}

test("messages round-trip through encode and decode under any chunking", () => {
  fc.assert(
    fc.property(
      fc.array(messageArb, { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.integer({ min: 0, max: 400 }),
      (messages: Message[], cuts: number[], copyBelow: number) => {
        const codec = new MessageCodec(1024);
        codec.copyBelow = copyBelow;
        const stream = concatBytes(messages.map((m) => codec.encode(m)));
        const decoded: Message[] = [];
        for (const part of chunk(stream, cuts)) {
          codec.decode(
            part,
            (m) => decoded.push({ ...m, payload: m.payload.slice() }),
          );
        }
        codec.end();
        assert.equal(decoded.length, messages.length);
        decoded.forEach((d, i) => {
          assert.equal(d.type, messages[i].type);
          assert.equal(d.flags, messages[i].flags);
          assert.equal(d.sequence, messages[i].sequence);
          assert.deepEqual([...d.payload], [...messages[i].payload]);
        });
        assert.equal(codec.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test("arbitrary bytes raise nothing but ProtocolError and always return", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
      (chunks: Uint8Array[]) => {
        const codec = new MessageCodec(256);
        let count = 0;
        try {
          for (const c of chunks) codec.decode(c, () => count++);
          codec.end();
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
        }
        // At most one frame per header's worth of input.
        const total = chunks.reduce((n, c) => n + c.length, 0);
        assert.ok(count <= total / HEADER_SIZE);
      },
    ),
    { numRuns: 500 },
  );
});

test("mutated valid streams raise nothing but ProtocolError", () => {
  fc.assert(
    fc.property(
      fc.array(messageArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      (messages: Message[], flips: [number, number][]) => {
        const codec = new MessageCodec(512);
        const stream = concatBytes(messages.map((m) => codec.encode(m)));
        for (const [at, value] of flips) stream[at % stream.length] = value;
        try {
          codec.decode(stream, () => {});
          codec.end();
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
        }
      },
    ),
    { numRuns: 500 },
  );
});

test("payloads of whole frames are views into the chunk, not copies", () => {
  const codec = new MessageCodec();
  const bytes = codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 3,
    payload: new Uint8Array([9, 8, 7]),
  });
  let payload: Uint8Array | undefined;
  codec.decode(bytes, (m) => (payload = m.payload));
  assert.equal(payload!.buffer, bytes.buffer);
  assert.equal(payload!.byteOffset, HEADER_SIZE);
});

test("payloads shorter than copyBelow are copies, the rest views", () => {
  const codec = new MessageCodec();
  codec.copyBelow = 4;
  const frame = (sequence: number, length: number) =>
    codec.encode({
      type: MessageType.Response,
      flags: 0,
      sequence,
      payload: new Uint8Array(length).fill(sequence),
    });
  const bytes = concatBytes([frame(1, 3), frame(2, 4), frame(3, 0)]);
  const payloads: Uint8Array[] = [];
  codec.decodeFrames(bytes, (_type, _flags, _sequence, p) => payloads.push(p));
  assert.notEqual(payloads[0].buffer, bytes.buffer);
  assert.equal(payloads[1].buffer, bytes.buffer);
  assert.equal(payloads[2].byteLength, 0);
  // A copy keeps its bytes when the chunk is reused.
  bytes.fill(0);
  assert.deepEqual([...payloads[0]], [1, 1, 1]);
  assert.deepEqual([...payloads[1]], [0, 0, 0, 0]);
});

test("copyBelow takes an integer from 0 to 1024 and refuses anything else by name", () => {
  const codec = new MessageCodec();
  for (const bad of [-1, 1.5, NaN, Infinity, 1025, "8", null, undefined]) {
    assert.throws(
      () => (codec.copyBelow = bad as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "copyBelow" &&
        /0 to 1024/.test(e.message),
      String(bad),
    );
    assert.equal(codec.copyBelow, 0, "unchanged");
  }
  codec.copyBelow = 1024;
  assert.equal(codec.copyBelow, 1024);
});

/**
 * The lengths of the `new Uint8Array(n)` the codec makes while `run` runs:
 * the global is swapped for a counting proxy of it, for that long only.
 */
function allocations(run: () => void): number[] {
  const Real = globalThis.Uint8Array;
  const sizes: number[] = [];
  const counting: Uint8ArrayConstructor = new Proxy(Real, {
    construct(target, args, newTarget): object {
      if (typeof args[0] === "number") sizes.push(args[0]);
      return Reflect.construct(
        target,
        args,
        newTarget === counting ? target : newTarget,
      );
    },
  });
  globalThis.Uint8Array = counting;
  try {
    run();
  } finally {
    globalThis.Uint8Array = Real;
  }
  return sizes;
}

const MiB = 1 << 20;
const FIRST_ROOM = SPLIT_FRAME_FIRST_ROOM;

test("a header announcing a large payload makes the codec reserve memory as the bytes arrive, not the length it announces", () => {
  // 64 codecs, as many connections to a hostile node, each sent a header
  // announcing 16 MiB and a few bytes: 1 GiB, were it reserved at once.
  for (let i = 0; i < 64; i++) {
    const codec = new MessageCodec(16 * MiB);
    const head = header(MessageType.Response, 0, 16 * MiB);
    const first = new Uint8Array(10);
    const sizes = allocations(() => {
      codec.decodeFrames(head, () => {});
      codec.decodeFrames(first, () => {});
    });
    assert.equal(codec.bufferedBytes, 10);
    const reserved = sizes.reduce((a, b) => a + b, 0);
    assert.ok(reserved <= FIRST_ROOM + 10, `${reserved} bytes for 10 received`);
  }
  // The header and its first bytes in one chunk: the hot loop's path.
  const codec = new MessageCodec(16 * MiB);
  const chunk = concatBytes([
    header(MessageType.Response, 0, 16 * MiB),
    new Uint8Array(5),
  ]);
  const sizes = allocations(() => codec.decodeFrames(chunk, () => {}));
  assert.equal(codec.bufferedBytes, 5);
  const reserved = sizes.reduce((a, b) => a + b, 0);
  assert.ok(reserved <= FIRST_ROOM + 5, `${reserved} bytes for 5 received`);
});

test("property: a frame split across chunks comes out whole, in a buffer of its own size, and what the codec holds is never over twice what arrived or 1 MiB more", () => {
  fc.assert(
    fc.property(
      // Up to 2.5 MiB, past the room a split frame starts with.
      fc.integer({ min: 0, max: 5 * FIRST_ROOM / 2 }),
      fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1 }),
      fc.boolean(),
      (length, sizes, headerAlone) => {
        const payload = new Uint8Array(length);
        for (let i = 0; i < length; i++) payload[i] = (i * 7 + length) & 0xff;
        const codec = new MessageCodec(4 * MiB);
        const frame = codec.encode({
          type: MessageType.Response,
          flags: 0,
          sequence: 3,
          payload,
        });
        const got: Uint8Array[] = [];
        const onFrame = (_t: number, _f: number, _s: number, p: Uint8Array) =>
          got.push(p);
        // Every buffer made so far is held: the largest bounds the rest.
        let largest = 0;
        let at = 0;
        let chunks = 0;
        for (let i = 0; at < frame.length; i++) {
          const next = Math.min(
            frame.length,
            headerAlone && i === 0 ? HEADER_SIZE : at + sizes[i % sizes.length],
          );
          const chunk = frame.subarray(at, next);
          for (
            const n of allocations(() => codec.decodeFrames(chunk, onFrame))
          ) {
            largest = Math.max(largest, n);
          }
          at = next;
          chunks++;
          const arrived = Math.max(0, at - HEADER_SIZE);
          assert.ok(
            largest <= Math.max(FIRST_ROOM + arrived, 2 * arrived) &&
              largest <= length,
            `a buffer of ${largest} bytes for ${arrived} of ${length}`,
          );
        }
        assert.equal(got.length, 1);
        assert.deepEqual(got[0], payload);
        if (chunks > 1 && length > 0) {
          // Copied, since it came in pieces: into its own buffer, exactly.
          assert.equal(got[0].byteOffset, 0);
          assert.equal(got[0].buffer.byteLength, length);
        }
        assert.equal(codec.bufferedBytes, 0);
        codec.end();
      },
    ),
    { numRuns: 40 },
  );
});

test("an oversized length is rejected from the header alone", () => {
  const codec = new MessageCodec(1024);
  assert.throws(
    () => codec.decode(header(MessageType.Request, 0, 0xffff_ffff), () => {}),
    (e: unknown) =>
      e instanceof ProtocolError && /4294967295 bytes exceeds/.test(e.message),
  );
});

test("a bad version, an unknown type and reserved flags are named", () => {
  const cases: [Uint8Array, RegExp][] = [
    [header(MessageType.Ping, 0, 0, 2), /unsupported protocol version 2/],
    [header(0x7f, 0, 0), /unknown message type 0x7f/],
    [header(MessageType.Ping, 0x8000, 0), /reserved flag bits/],
  ];
  for (const [bytes, pattern] of cases) {
    const codec = new MessageCodec();
    assert.throws(
      () => codec.decode(bytes, () => {}),
      (e: unknown) => e instanceof ProtocolError && pattern.test(e.message),
    );
  }
});

test("a sequence number above 2^53 - 1 is rejected", () => {
  const h = header(MessageType.Ping, 0, 0);
  h[4] = 0x00;
  h[5] = 0x20; // high word 0x00200000 => 2^53
  assert.throws(
    () => new MessageCodec().decode(h, () => {}),
    /sequence number above/,
  );
});

test("a stream that ends inside a header or payload is truncated", () => {
  const codec = new MessageCodec();
  codec.decode(header(MessageType.Ping, 0, 0).subarray(0, 10), () => {});
  assert.throws(() => codec.end(), /inside a frame header \(10 of 16/);
  const codec2 = new MessageCodec();
  const frame = codec2.encode({
    type: MessageType.Request,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(10),
  });
  codec2.decode(frame.subarray(0, 20), () => {});
  assert.throws(() => codec2.end(), /inside a frame payload \(4 of 10/);
});

test("after a protocol error the decoder keeps failing", () => {
  const codec = new MessageCodec();
  let first: unknown;
  assert.throws(() => codec.decode(header(0x7f, 0, 0), () => {}), (error) => {
    assert.ok(error instanceof ProtocolError, String(error));
    first = error;
    return true;
  });
  const valid = codec.encode({
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  });
  // The same error, as decode's documentation says: not a new one that a
  // valid frame could not have caused.
  let frames = 0;
  assert.throws(() => codec.decode(valid, () => frames++), (error) => {
    assert.equal(error, first);
    return true;
  });
  assert.throws(() => codec.end(), (error) => error === first);
  assert.equal(frames, 0);
});

test("encode refuses payloads above the maximum and bad header fields", () => {
  const codec = new MessageCodec(1024);
  const ok = { type: MessageType.Request, flags: 0, sequence: 1 };
  assert.throws(
    () => codec.encode({ ...ok, payload: new Uint8Array(1025) }),
    /1025 bytes exceeds the maximum frame size of 1024/,
  );
  assert.throws(
    () => codec.encode({ ...ok, type: 0x7f, payload: new Uint8Array(0) }),
    /unknown message type/,
  );
  assert.throws(
    () => codec.encode({ ...ok, sequence: -1, payload: new Uint8Array(0) }),
    /out of range/,
  );
});
