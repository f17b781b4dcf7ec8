// The wire format's public codecs as a careless caller drives them (the
// review of src/protocol/): ERROR payloads and frame headers given what
// is no payload or no field of the right kind.
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeDatagramFrames } from "../src/protocol/datagram.ts";
import { selectProtocol, sortProtocols } from "../src/protocol/negotiation.ts";
import {
  agreeFeatures,
  decodeError,
  decodeJson,
  encodeError,
  encodeJson,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { writeHeader } from "../src/protocol/header_bytes.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { InvalidArgumentError, ProtocolError } from "../src/errors.ts";
import { invalid, revoked } from "./support/doors.ts";

test('encodeError refuses an error that is no object, or whose message is no string or retryable no boolean, naming the field: null was a raw TypeError, and a missing message went out as empty text, an object as "[object Object]"', () => {
  const ok = { code: RemoteErrorCode.NotFound, retryable: false, message: "x" };
  const bad: [unknown, string][] = [
    [null, "error"],
    [undefined, "error"],
    [5, "error"],
    [revoked(), "error"],
    [{ code: 1, retryable: false }, "error.message"],
    [{ ...ok, message: { text: "x" } }, "error.message"],
    [{ ...ok, message: 5 }, "error.message"],
    [{ ...ok, retryable: "no" }, "error.retryable"],
    [{ ...ok, retryable: undefined }, "error.retryable"],
    [{ ...ok, code: 1.5 }, "error.code"],
  ];
  for (const [value, argument] of bad) {
    assert.throws(
      () => encodeError(value as never),
      invalid("encodeError", argument),
      argument,
    );
  }
  assert.deepEqual(decodeError(encodeError(ok)), ok);
});

test("decodeError refuses a payload that is no Uint8Array with an InvalidArgumentError naming payload: null was a raw TypeError, an array a ProtocolError saying the bytes were not UTF-8", () => {
  for (const value of [null, undefined, [1, 0, 3, 104, 105], "abc"]) {
    assert.throws(
      () => decodeError(value as never),
      invalid("decodeError", "payload"),
      String(value),
    );
  }
});

test('MessageCodec.encode and writeHeader refuse a header field that is a BigInt or a symbol with a ProtocolError naming the field and showing the value: a raw TypeError ("Cannot mix BigInt and other types"), and a sequence of 1n was "sequence 1 is out of range"', () => {
  const codec = new MessageCodec();
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  };
  const bad: [object, RegExp][] = [
    [{ ...ping, type: 16n }, /message type 16n/],
    [{ ...ping, flags: 0n }, /flag bits 0n/],
    [{ ...ping, flags: Symbol("f") }, /flag bits a symbol/],
    [{ ...ping, sequence: 1n }, /sequence 1n is out of range/],
    [{ ...ping, sequence: Symbol("s") }, /sequence a symbol is out of range/],
  ];
  for (const [message, words] of bad) {
    assert.throws(() => codec.encode(message as never), (error) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, words);
      return true;
    });
  }
  const header = new Uint8Array(HEADER_SIZE);
  for (
    const args of [
      [0n, MessageType.Ping, 0, 1, 0],
      [0, MessageType.Ping, 0, 1, 0n],
      [0, MessageType.Ping, 0, 1, Symbol("n")],
    ]
  ) {
    assert.throws(
      () =>
        writeHeader(
          header,
          ...(args as [number, number, number, number, number]),
        ),
      (error) =>
        error instanceof ProtocolError ||
        error instanceof InvalidArgumentError,
      String(args.map(String)),
    );
  }
});

test("MessageCodec.decode whose onMessage throws leaves the codec unusable, as a ProtocolError does: the rest of the chunk went unread, and the next chunk was taken as starting a frame, so a payload's bytes came out as a frame the peer never sent", () => {
  const codec = new MessageCodec();
  const phantom = codec.encode({
    type: MessageType.Ping,
    flags: 0,
    sequence: 99,
    payload: new Uint8Array(0),
  });
  const first = codec.encode({
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  });
  // A REQUEST whose payload happens to read as a PING header, split after
  // its header.
  const request = codec.encode({
    type: MessageType.Request,
    flags: 0,
    sequence: 3,
    payload: phantom,
  });
  const chunk1 = new Uint8Array([
    ...first,
    ...request.subarray(0, HEADER_SIZE),
  ]);
  const chunk2 = request.slice(HEADER_SIZE);
  const refused = new Error("the handler refused the first message");
  const seen: number[] = [];
  assert.throws(
    () =>
      codec.decode(chunk1, (m) => {
        seen.push(m.sequence);
        throw refused;
      }),
    (error) => error === refused,
  );
  assert.throws(
    () => codec.decode(chunk2, (m) => void seen.push(m.sequence)),
    (error) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /onMessage threw/);
      return true;
    },
  );
  assert.deepEqual(seen, [1], "no frame after the throw, no phantom");
  assert.throws(() => codec.end(), ProtocolError);
  // A codec whose handler does not throw reads the same bytes as sent.
  const fresh = new MessageCodec();
  const all: number[] = [];
  fresh.decode(chunk1, (m) => void all.push(m.sequence));
  fresh.decode(chunk2, (m) => void all.push(m.sequence));
  assert.deepEqual(all, [1, 3]);
});

test("MessageCodec.decodeFrames whose onFrame throws leaves the codec unusable, as decode does: the next chunk was taken as starting a frame, and a payload's bytes came out as a PING the peer never sent", () => {
  const codec = new MessageCodec();
  const ping = (sequence: number, payload: Uint8Array = new Uint8Array(0)) =>
    codec.encode({ type: MessageType.Ping, flags: 0, sequence, payload });
  // A PING whose payload happens to read as a PING header, split after its
  // header, behind a first PING whose handling throws.
  const carrier = ping(3, ping(99));
  const chunk1 = new Uint8Array([
    ...ping(1),
    ...carrier.subarray(0, HEADER_SIZE),
  ]);
  const chunk2 = carrier.slice(HEADER_SIZE);
  const refused = new Error("the handler refused the first frame");
  const seen: number[] = [];
  assert.throws(
    () =>
      codec.decodeFrames(chunk1, (_type, _flags, sequence) => {
        seen.push(sequence);
        throw refused;
      }),
    (error) => error === refused,
  );
  assert.throws(
    () =>
      codec.decodeFrames(
        chunk2,
        (_type, _flags, sequence) => void seen.push(sequence),
      ),
    (error) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /frame handler threw.*place is lost/);
      assert.match(error.message, /the handler refused the first frame/);
      return true;
    },
  );
  assert.deepEqual(seen, [1], "no frame after the throw, no phantom");
  assert.throws(() => codec.end(), ProtocolError);
  // A handler that does not throw reads the same bytes as sent, also when
  // a frame is split, and decode still says onMessage threw.
  const fresh = new MessageCodec();
  const all: number[] = [];
  fresh.decodeFrames(chunk1, (_t, _f, sequence) => void all.push(sequence));
  fresh.decodeFrames(chunk2, (_t, _f, sequence) => void all.push(sequence));
  assert.deepEqual(all, [1, 3]);
});

test("encodeJson refuses what no JSON control payload is, naming value: undefined went out as an empty payload no peer can read, an array or a number as JSON no decodeJson takes, and a BigInt or a cycle threw a raw TypeError", () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const bad: unknown[] = [
    undefined,
    null,
    5,
    "text",
    [1, 2],
    { n: 1n },
    cycle,
    { toJSON: () => undefined },
    { toJSON: () => [1] },
    {
      toJSON: () => {
        throw new Error("no");
      },
    },
  ];
  for (const value of bad) {
    assert.throws(
      () => encodeJson(value as never),
      invalid("encodeJson", "value"),
      String(typeof value),
    );
  }
  // Whatever it takes, decodeJson reads back.
  for (
    const value of [{}, { a: [1, "x"], b: null }, { toJSON: () => ({ c: 1 }) }]
  ) {
    assert.deepEqual(
      decodeJson(encodeJson(value), "test"),
      JSON.parse(JSON.stringify(value)),
    );
  }
});

test('the list arguments of ./protocol refuse a revoked proxy or a list with holes, naming the argument: Array.isArray threw a raw TypeError on the proxy, encodeDatagramFrames a TypeError on a hole, and sortProtocols read [, "tcp"] as ["tcp"]', () => {
  const gone = () => {
    const { proxy, revoke } = Proxy.revocable(["tcp"], {});
    revoke();
    return proxy;
  };
  const holed = (...items: unknown[]) => {
    const list = [...items];
    delete list[0];
    return list;
  };
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  };
  const named = (argument: string) => (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, argument, error.message);
    return true;
  };
  for (const list of [gone(), holed("x", "tcp")]) {
    assert.throws(() => sortProtocols(list as never), named("protocols"));
    assert.throws(() => selectProtocol(list as never, ["tcp"]), named("a"));
    assert.throws(() => selectProtocol(["tcp"], list as never), named("b"));
    assert.throws(() => agreeFeatures(list as never, []), named("offered"));
    assert.throws(
      () => agreeFeatures(["udp-batch"], list as never),
      named("supported"),
    );
  }
  const token = new Uint8Array(16);
  assert.throws(
    () => encodeDatagramFrames(token, gone() as never),
    invalid("encodeDatagramFrames", "frames"),
  );
  assert.throws(
    () => encodeDatagramFrames(token, holed(ping, ping) as never),
    invalid("encodeDatagramFrames", "frames[0]"),
  );
  assert.equal(encodeDatagramFrames(token, [ping, ping]).byteLength, 48);
});

test("MessageCodec.decodeFrames that cannot allocate a split frame's buffer says so, in a ProtocolError, not that the frame handler threw: a RangeError from the allocation was reported as the handler's throw", () => {
  const length = 4 * 1024 * 1024;
  const header = new Uint8Array(HEADER_SIZE);
  writeHeader(header, 0, MessageType.Ping, 0, 5, length);
  const real = Uint8Array;
  // Refuses buffers of `limit` bytes or more, as an engine out of memory
  // would: a split frame's first buffer is 1 MiB more than what has come.
  let limit = 1024 * 1024;
  const starved = new Proxy(real, {
    construct(target, args) {
      if (typeof args[0] === "number" && args[0] >= limit) {
        throw new RangeError("Array buffer allocation failed");
      }
      return Reflect.construct(target, args);
    },
  });
  // Where the buffer is made: a chunk with the header and some payload, a
  // header split over two chunks, and a buffer grown (its first fits).
  const ways: [string, Uint8Array[], number?][] = [
    ["header and payload in one chunk", [
      new real([...header, 1, 2, 3]),
    ]],
    ["header split", [header.slice(0, 6), header.slice(6)]],
    ["buffer grown", [header, new real(1024 * 1024 + 16)], 2 * 1024 * 1024],
  ];
  for (const [way, chunks, below = 1024 * 1024] of ways) {
    limit = below;
    const codec = new MessageCodec();
    const seen: number[] = [];
    let thrown: unknown;
    globalThis.Uint8Array = starved;
    try {
      for (const chunk of chunks) {
        codec.decodeFrames(
          chunk,
          (_t, _f, sequence) => void seen.push(sequence),
        );
      }
    } catch (error) {
      thrown = error;
    } finally {
      globalThis.Uint8Array = real;
    }
    assert.ok(thrown instanceof ProtocolError, `${way}: ${String(thrown)}`);
    assert.doesNotMatch(thrown.message, /handler/, way);
    assert.match(thrown.message, /could not allocate/, way);
    assert.match(thrown.message, /4194304-byte frame/, way);
    assert.match(thrown.message, /Array buffer allocation failed/, way);
    assert.deepEqual(seen, [], way);
    // The stream's place is lost: the codec stays failed.
    assert.throws(
      () => codec.decodeFrames(new real(0), () => {}),
      (e) => e === thrown,
      way,
    );
  }
});
