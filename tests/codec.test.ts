import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
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
