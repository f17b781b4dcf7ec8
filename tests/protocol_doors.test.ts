// The public entries of /protocol refuse bad input with an
// InvalidArgumentError naming the argument and the method: encode(null)
// and encodeHello(null) were raw TypeErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DatagramPacker,
  decodeDatagram,
  decodeDatagramFrames,
  encodeDatagram,
  encodeDatagramFrames,
  encodeHello,
  formatUdpToken,
  hasToken,
  isKnownMessageType,
  MessageCodec,
  MessageType,
} from "../protocol.ts";
import { ProtocolError } from "../mod.ts";
import { invalid, revoked } from "./support/doors.ts";

test("MessageCodec.encode refuses a message that is no object", () => {
  const codec = new MessageCodec();
  const ping = { type: MessageType.Ping, flags: 0, sequence: 1 };
  const bad: [unknown, string][] = [
    [null, "message"],
    [5, "message"],
    [revoked(), "message"],
    [ping, "message.payload"],
    [{ ...ping, payload: [1, 2] }, "message.payload"],
  ];
  for (const [message, argument] of bad) {
    assert.throws(
      () => codec.encode(message as never),
      invalid("MessageCodec.encode", argument),
    );
  }
  const bytes = codec.encode({ ...ping, payload: new Uint8Array([7]) });
  codec.decode(bytes, (m) => assert.deepEqual([...m.payload], [7]));
});

test("encodeHello refuses a hello that is no object or has bad fields", () => {
  const hello = { version: 1, client: "c", maxFrameSize: 1024 };
  const bad: [unknown, string][] = [
    [null, "hello"],
    [revoked(), "hello"],
    [{ ...hello, version: "1" }, "hello.version"],
    [{ ...hello, client: 5 }, "hello.client"],
    [{ ...hello, maxFrameSize: NaN }, "hello.maxFrameSize"],
    [{ ...hello, features: "udp-batch" }, "hello.features"],
  ];
  for (const [value, argument] of bad) {
    assert.throws(
      () => encodeHello(value as never),
      invalid("encodeHello", argument),
    );
  }
});

test("the datagram codec refuses what is no datagram, token or frame", () => {
  const token = new Uint8Array(16);
  const empty = new Uint8Array(0);
  const ping = { type: MessageType.Ping, flags: 0, sequence: 1 };
  const bad: [() => unknown, string, string][] = [
    [
      () => encodeDatagramFrames(5 as never, []),
      "encodeDatagramFrames",
      "token",
    ],
    [
      () => encodeDatagramFrames(token, 5 as never),
      "encodeDatagramFrames",
      "frames",
    ],
    [
      () => encodeDatagramFrames(token, [null as never]),
      "encodeDatagramFrames",
      "frames[0]",
    ],
    [
      () =>
        encodeDatagramFrames(token, [{ ...ping, type: NaN, payload: empty }]),
      "encodeDatagramFrames",
      "frames[0].type",
    ],
    [() => decodeDatagramFrames(5 as never), "decodeDatagramFrames", "bytes"],
    [() => decodeDatagram(5 as never), "decodeDatagram", "bytes"],
    [
      () => encodeDatagram(5 as never, 16, 0, 1, empty),
      "encodeDatagram",
      "token",
    ],
    [() => encodeDatagram(token, NaN, 0, 1, empty), "encodeDatagram", "type"],
    [() => encodeDatagram(token, 16, 1.5, 1, empty), "encodeDatagram", "flags"],
    [
      () => encodeDatagram(token, 16, 0, -1, empty),
      "encodeDatagram",
      "sequence",
    ],
    [
      () => encodeDatagram(token, 16, 0, 1, [1] as never),
      "encodeDatagram",
      "payload",
    ],
    [() => formatUdpToken(5 as never), "formatUdpToken", "token"],
    [() => formatUdpToken(new Uint8Array(3)), "formatUdpToken", "token"],
    [() => hasToken(5 as never, 5 as never), "hasToken", "bytes"],
    [() => hasToken(new Uint8Array(40), 5 as never), "hasToken", "token"],
  ];
  for (const [call, method, argument] of bad) {
    assert.throws(call, invalid(method, argument));
  }
  // An unknown type still fits its byte: a tool may send one to a receiver.
  const odd = encodeDatagramFrames(token, [{
    ...ping,
    type: 0x7f,
    payload: empty,
  }]);
  assert.equal(odd[17], 0x7f);
  assert.ok(hasToken(odd, token));
  assert.equal(formatUdpToken(token), "0".repeat(32));
});

test("MessageCodec.decode and checkLength refuse what they cannot use", () => {
  const codec = new MessageCodec(1024);
  assert.throws(
    () => codec.decode(new Uint8Array(0), 5 as never),
    invalid("MessageCodec.decode", "onMessage"),
  );
  for (const length of ["x", NaN, -1, 1.5]) {
    assert.throws(
      () => codec.checkLength(length as never),
      invalid("MessageCodec.checkLength", "length"),
    );
  }
  codec.checkLength(1024);
  assert.throws(() => codec.checkLength(1025), /exceeds the maximum/);
});

test("decodeFrames refuses an onFrame that is no function before it reads a frame", () => {
  const codec = new MessageCodec();
  const bytes = codec.encode({
    type: MessageType.Ping,
    flags: 0,
    sequence: 7,
    payload: new Uint8Array(0),
  });
  for (const onFrame of [undefined, 5, {}]) {
    assert.throws(
      () => codec.decodeFrames(bytes, onFrame as never),
      (e: unknown) =>
        e instanceof Error && e.name === "InvalidArgumentError" &&
        (e as { argument?: string }).argument === "onFrame",
    );
  }
  // The codec is not spent by the refusal: the same bytes still decode.
  const seen: number[] = [];
  codec.decodeFrames(bytes, (_type, _flags, sequence) => seen.push(sequence));
  assert.deepEqual(seen, [7]);
});

test("the encoders name the field whose read threw (a getter, a proxy's trap), and the object itself only when nothing of it can be read", () => {
  const throwing = (target: object, field: string) =>
    Object.defineProperty({ ...target }, field, {
      get() {
        throw new Error("getter");
      },
      enumerable: true,
    });
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  };
  const hello = { version: 1, client: "c", maxFrameSize: 1024 };
  const token = new Uint8Array(16);
  const cases: [() => unknown, string, string][] = [
    [
      () => new MessageCodec().encode(throwing(ping, "payload") as never),
      "MessageCodec.encode",
      "message.payload",
    ],
    [
      () => encodeHello(throwing(hello, "client") as never),
      "encodeHello",
      "hello.client",
    ],
    [
      () => encodeDatagramFrames(token, [throwing(ping, "sequence") as never]),
      "encodeDatagramFrames",
      "frames[0].sequence",
    ],
    [
      () => new MessageCodec().encode(revoked() as never),
      "MessageCodec.encode",
      "message",
    ],
  ];
  for (const [call, method, argument] of cases) {
    assert.throws(call, (error) => {
      invalid(method, argument)(error);
      assert.match((error as Error).message, /could not be read/);
      if (argument !== "message") {
        assert.equal(((error as Error).cause as Error).message, "getter");
      }
      return true;
    });
  }
});

test("isKnownMessageType answers false for what is no number (a BigInt, a symbol, a string, an object): 16n threw a raw TypeError", () => {
  for (
    const value of [16n, Symbol("x"), "16", { valueOf: () => 16 }, null, NaN]
  ) {
    assert.equal(isKnownMessageType(value as never), false, String(value));
  }
  assert.equal(isKnownMessageType(MessageType.Ping), true);
  assert.equal(isKnownMessageType(16.5), false);
});

test("DatagramPacker.push names itself when it refuses a payload too large for a datagram, as its other refusals do (the message named no method)", () => {
  const packer = new DatagramPacker(new Uint8Array(16), 100, () => {});
  assert.throws(
    () => packer.push(MessageType.Request, 0, 1, new Uint8Array(69)),
    invalid("DatagramPacker.push", "payload"),
  );
  assert.equal(packer.pending, 0, "nothing was packed");
});

test("DatagramPacker.push refuses a type, flags or sequence that does not fit its header field, naming it, and packs nothing: a sequence of 2^64 or a type of 300 went out as another frame", () => {
  const sent: Uint8Array[] = [];
  const packer = new DatagramPacker(new Uint8Array(16), 1200, (d) => {
    sent.push(d.slice());
  });
  const ping = MessageType.Ping;
  const empty = new Uint8Array(0);
  const bad: [number, number, number, string][] = [
    [300, 0, 1, "type"],
    [-1, 0, 1, "type"],
    [1.5, 0, 1, "type"],
    [16n as never, 0, 1, "type"],
    [ping, 0x1_0000, 1, "flags"],
    [ping, NaN, 1, "flags"],
    [ping, 0, 2 ** 64, "sequence"],
    [ping, 0, -1, "sequence"],
    [ping, 0, 0.5, "sequence"],
    [ping, 0, "7" as never, "sequence"],
  ];
  for (const [type, flags, sequence, argument] of bad) {
    assert.throws(
      () => packer.push(type, flags, sequence, empty),
      invalid("DatagramPacker.push", argument),
      `${String(type)} ${flags} ${String(sequence)}`,
    );
  }
  assert.throws(
    () => packer.push(ping, 0, 1, [1, 2] as never),
    invalid("DatagramPacker.push", "payload"),
  );
  assert.equal(packer.pending, 0, "nothing was packed");
  packer.push(ping, 0, 9, empty);
  packer.flush();
  assert.equal(sent.length, 1);
  const [frame] = decodeDatagramFrames(sent[0]).messages;
  assert.equal(frame.type, ping);
  assert.equal(frame.sequence, 9);
});

test("encodeDatagramFrames refuses an empty list of frames, whose token-only datagram decodeDatagramFrames refuses", () => {
  const token = new Uint8Array(16);
  // What an empty list would put on the wire: the token alone.
  assert.throws(() => decodeDatagramFrames(token), ProtocolError);
  assert.throws(
    () => encodeDatagramFrames(token, []),
    (error: unknown) => {
      invalid("encodeDatagramFrames", "frames")(error);
      assert.match((error as Error).message, /at least one frame/);
      return true;
    },
  );
  // One frame is the least that round-trips.
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  };
  const one = decodeDatagramFrames(encodeDatagramFrames(token, [ping]));
  assert.deepEqual(one.messages.map((m) => m.sequence), [1]);
});
