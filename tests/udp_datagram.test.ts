import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fc } from "./support/fc.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import {
  ConfigError,
  InvalidArgumentError,
  ProtocolError,
} from "../src/errors.ts";
import {
  DATAGRAM_OVERHEAD,
  type DatagramFrame,
  decodeDatagram,
  decodeDatagramFrames,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagram,
  encodeDatagramFrames,
  formatUdpToken,
  hasToken,
  MAX_DATAGRAM_SIZE,
  newUdpToken,
  parseUdpToken,
  UDP_TOKEN_SIZE,
} from "../src/protocol/datagram.ts";
import { DatagramPacker } from "../src/protocol/datagram_packer.ts";
import {
  FrameFlags,
  HEADER_SIZE,
  MAX_SEQUENCE,
  MessageType,
} from "../src/protocol/frame.ts";
import {
  agreeFeatures,
  decodeHello,
  decodeHelloOk,
  encodeHello,
  encodeJson,
} from "../src/protocol/messages.ts";
import { decodeNegotiateOk } from "../src/protocol/negotiation.ts";
import { udpTransport } from "../src/handshake/udp.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { getAdapter } from "../src/runtime/detect.ts";

function fromHex(text: string): Uint8Array {
  if (text.trim() === "(empty)") return new Uint8Array(0);
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(
    { length: clean.length / 2 },
    (_, i) => parseInt(clean.slice(2 * i, 2 * i + 2), 16),
  );
}

test("a datagram is the token, then one frame with the stream's 16-byte header", () => {
  const token = fromHex("000102030405060708090a0b0c0d0e0f");
  const bytes = encodeDatagram(
    token,
    MessageType.Request,
    FrameFlags.Idempotent,
    258,
    new Uint8Array([1, 0x68, 0x69]),
  );
  assert.deepEqual(
    bytes,
    fromHex(
      "000102030405060708090a0b0c0d0e0f" +
        "01200001000000000000010200000003" + "016869",
    ),
  );
  assert.equal(DATAGRAM_OVERHEAD, 32);
});

test("the UDP vectors in docs/PROTOCOL.md encode and decode as documented, one frame or several", () => {
  const doc = readFileSync(
    new URL("../docs/PROTOCOL.md", import.meta.url),
    "utf8",
  );
  const blocks = [...doc.matchAll(/```text datagram\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 6, "PROTOCOL.md has datagram vectors");
  let batched = 0;
  let dropped = 0;
  for (const [, body] of blocks) {
    const all = (name: string) =>
      [...body.matchAll(new RegExp(`^${name}: (.*)$`, "gm"))].map((m) => m[1]);
    const field = (name: string) => {
      const values = all(name);
      assert.equal(
        values.length,
        1,
        `datagram vector needs one ${name}:\n${body}`,
      );
      return values[0];
    };
    const name = field("name");
    const datagram = fromHex(body.slice(body.indexOf("datagram:") + 9));
    const token = fromHex(field("token"));
    if (all("result")[0] === "dropped") {
      dropped++;
      assert.throws(
        () => decodeDatagramFrames(datagram),
        (error) =>
          error instanceof ProtocolError && error.code === "PROTOCOL_ERROR" &&
          /frame length \d+ runs past the \d+ bytes left in its datagram/
            .test(error.message),
        name,
      );
      assert.throws(
        () => decodeDatagram(datagram),
        (error) =>
          error instanceof ProtocolError && error.code === "PROTOCOL_ERROR" &&
          /frame length \d+ does not match the \d+ payload bytes/.test(
            error.message,
          ),
        name,
      );
      continue;
    }
    const types = all("type");
    const flags = all("flags");
    const sequences = all("sequence");
    const payloads = all("payload");
    assert.ok(types.length >= 1, name);
    for (const list of [flags, sequences, payloads]) {
      assert.equal(list.length, types.length, `${name}: a field per frame`);
    }
    const frames: DatagramFrame[] = types.map((type, i) => ({
      type: parseInt(type, 16),
      flags: parseInt(flags[i], 16),
      sequence: Number(sequences[i]),
      payload: fromHex(payloads[i]),
    }));
    assert.deepEqual(encodeDatagramFrames(token, frames), datagram, name);
    const decoded = decodeDatagramFrames(datagram);
    assert.deepEqual(decoded.token, token);
    assert.deepEqual(decoded.messages, frames, name);
    if (frames.length === 1) {
      // One frame: the same bytes with or without "udp-batch".
      const [{ type, flags, sequence, payload }] = frames;
      assert.deepEqual(
        encodeDatagram(token, type, flags, sequence, payload),
        datagram,
        name,
      );
      assert.deepEqual(decodeDatagram(datagram).message, frames[0], name);
    } else {
      batched++;
      assert.throws(
        () => decodeDatagram(datagram),
        (error) =>
          error instanceof ProtocolError && error.code === "PROTOCOL_ERROR" &&
          error.message.includes(
            `does not match the ${
              datagram.byteLength - DATAGRAM_OVERHEAD
            } payload bytes of its datagram`,
          ),
        `${name}: refused by a session without "udp-batch"`,
      );
    }
  }
  assert.ok(batched >= 2, "a request and a reply datagram of several frames");
  assert.ok(dropped >= 1, "a datagram dropped whole");
});

test("property: decodeDatagram inverts encodeDatagram for every valid message", () => {
  const types = Object.values(MessageType);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.constantFrom(...types),
      fc.constantFrom(0, FrameFlags.Idempotent),
      fc.integer({ min: 0, max: MAX_SEQUENCE }),
      fc.uint8Array({ maxLength: 300 }),
      (token, type, flags, sequence, payload) => {
        const bytes = encodeDatagram(token, type, flags, sequence, payload);
        assert.equal(bytes.byteLength, DATAGRAM_OVERHEAD + payload.byteLength);
        assert.ok(hasToken(bytes, token));
        const { token: t, message } = decodeDatagram(bytes);
        assert.deepEqual(t, token);
        assert.deepEqual(message, { type, flags, sequence, payload });
      },
    ),
  );
});

test("property: a datagram whose length field disagrees with its size is refused", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 100 }),
      fc.integer({ min: -40, max: 40 }).filter((d) => d !== 0),
      (payload, delta) => {
        const bytes = encodeDatagram(
          new Uint8Array(16),
          MessageType.Response,
          0,
          1,
          payload,
        );
        // Truncated or padded: one frame per datagram, exactly.
        const size = Math.max(0, bytes.byteLength + delta);
        const changed = new Uint8Array(size);
        changed.set(bytes.subarray(0, Math.min(size, bytes.byteLength)));
        assert.throws(
          () => decodeDatagram(changed),
          (error) =>
            error instanceof ProtocolError &&
            error.code === "PROTOCOL_ERROR" &&
            error.message.includes(
              size < DATAGRAM_OVERHEAD
                ? `datagram of ${size} bytes is shorter than a token and a frame header`
                : `frame length ${payload.byteLength} ${
                  delta < 0 ? "runs past the" : "does not match the"
                } ${size - DATAGRAM_OVERHEAD} `,
            ),
        );
      },
    ),
  );
});

test("malformed datagrams are refused with a ProtocolError that says why", () => {
  const good = encodeDatagram(
    new Uint8Array(16),
    MessageType.Ping,
    0,
    7,
    new Uint8Array(0),
  );
  const broken = (at: number, value: number) => {
    const copy = good.slice();
    copy[at] = value;
    return copy;
  };
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 31), /shorter than a token and a frame header/],
    [broken(16, 2), /unsupported protocol version 2/],
    [broken(17, 0x7f), /unknown message type 0x7f/],
    [broken(19, 0x80), /reserved flag bits/],
    [broken(20, 0xff), /sequence number above 2\^53 - 1/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeDatagram(bytes), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, message);
      return true;
    });
  }
});

test("tokens are 16 random bytes written as 32 hex digits, and only that parses", () => {
  const a = newUdpToken();
  const b = newUdpToken();
  assert.equal(a.byteLength, UDP_TOKEN_SIZE);
  assert.notDeepEqual(a, b);
  assert.deepEqual(parseUdpToken(formatUdpToken(a)), a);
  assert.equal(formatUdpToken(new Uint8Array(16).fill(0xab)), "ab".repeat(16));
  for (const bad of ["ab".repeat(15), "zz".repeat(16), 42, undefined, ""]) {
    assert.throws(
      () => parseUdpToken(bad),
      (error) =>
        error instanceof ProtocolError && error.code === "PROTOCOL_ERROR" &&
        /^udpToken .* is not 16 bytes in hex$/.test(error.message),
    );
  }
  assert.ok(!hasToken(new Uint8Array(8), a), "too short to carry a token");
});

test("NEGOTIATE_OK carries the UDP token when UDP is chosen, and a malformed one is refused", () => {
  const token = "0123456789abcdef0123456789abcdef";
  const ok = decodeNegotiateOk(
    encodeJson({
      protocols: ["udp"],
      selected: "udp",
      udpPort: 7001,
      udpToken: token,
    }),
  );
  assert.equal(ok.udpToken, token);
  assert.throws(
    () =>
      decodeNegotiateOk(
        encodeJson({
          protocols: ["udp"],
          selected: "udp",
          udpPort: 7001,
          udpToken: "not hex",
        }),
      ),
    /udpToken is not 32 hex digits/,
  );
});

test("maxDatagramSize defaults to 1200 and must lie within 64 to 65507", () => {
  assert.equal(
    resolveConfig({ hosts: ["127.0.0.1"] }).maxDatagramSize,
    DEFAULT_MAX_DATAGRAM_SIZE,
  );
  assert.equal(
    resolveConfig({ hosts: ["127.0.0.1"], maxDatagramSize: 65507 })
      .maxDatagramSize,
    MAX_DATAGRAM_SIZE,
  );
  for (const bad of [63, 65508, 1200.5, "1200"]) {
    assert.throws(
      () =>
        resolveConfig({
          hosts: ["127.0.0.1"],
          maxDatagramSize: bad as number,
        }),
      (error) =>
        error instanceof ConfigError && error.field === "maxDatagramSize",
    );
  }
});

test("an adapter without datagram sockets has no UDP transport, so UDP is never offered", async () => {
  assert.equal(udpTransport({ adapter: createMemoryNetwork() }), undefined);
  const native = await getAdapter();
  assert.equal(typeof udpTransport({ adapter: native }), "function");
  assert.throws(
    () => udpTransport({ adapter: native, maxDatagramSize: 65508 }),
    (error) =>
      error instanceof InvalidArgumentError &&
      error.argument === "options.maxDatagramSize" &&
      /expected an integer in 64–65507, got 65508/.test(error.message),
  );
});

const frameArbitrary: fc.Arbitrary<DatagramFrame> = fc.record({
  type: fc.constantFrom(...Object.values(MessageType)),
  flags: fc.constantFrom(0, FrameFlags.Idempotent),
  sequence: fc.integer({ min: 0, max: MAX_SEQUENCE }),
  payload: fc.uint8Array({ maxLength: 80 }),
}).map((f) => ({ ...f })); // a plain object, as the decoder makes

test("property: decodeDatagramFrames inverts encodeDatagramFrames for every list of valid frames", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.array(frameArbitrary, { minLength: 1, maxLength: 12 }),
      (token, frames) => {
        const bytes = encodeDatagramFrames(token, frames);
        const { token: t, messages } = decodeDatagramFrames(bytes);
        assert.deepEqual(t, token);
        assert.deepEqual(messages, frames);
      },
    ),
  );
});

test("property: a multi-frame datagram cut anywhere short is dropped whole, with a ProtocolError and nothing else", () => {
  fc.assert(
    fc.property(
      fc.array(frameArbitrary, { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (frames, cut) => {
        const bytes = encodeDatagramFrames(new Uint8Array(16), frames);
        // Every frame boundary is a valid end; any other length is not.
        const ends = new Set<number>();
        let at = UDP_TOKEN_SIZE;
        for (const f of frames) {
          ends.add(at += HEADER_SIZE + f.payload.byteLength);
        }
        const size = cut % bytes.byteLength;
        const short = bytes.subarray(0, size);
        if (ends.has(size)) {
          assert.ok(decodeDatagramFrames(short).messages.length >= 1);
        } else {
          assert.throws(
            () => decodeDatagramFrames(short),
            (error) =>
              error instanceof ProtocolError &&
              error.code === "PROTOCOL_ERROR" &&
              (size < DATAGRAM_OVERHEAD
                ? error.message.includes(
                  `datagram of ${size} bytes is shorter than a token and a frame header`,
                )
                : /ends \d+ bytes into a frame header|runs past the \d+ bytes left/
                  .test(error.message)),
          );
        }
      },
    ),
  );
});

test("property: corrupting any byte of a multi-frame datagram never throws anything but ProtocolError, and what decodes is whole frames", () => {
  fc.assert(
    fc.property(
      fc.array(frameArbitrary, { minLength: 1, maxLength: 6 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      fc.uint8Array({ maxLength: 40 }),
      (frames, where, xor, tail) => {
        const bytes = encodeDatagramFrames(new Uint8Array(16), frames);
        const changed = new Uint8Array(bytes.byteLength + tail.byteLength);
        changed.set(bytes);
        changed.set(tail, bytes.byteLength);
        const at = UDP_TOKEN_SIZE +
          where % (changed.byteLength - UDP_TOKEN_SIZE);
        changed[at] ^= xor;
        let messages;
        try {
          messages = decodeDatagramFrames(changed).messages;
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
          return;
        }
        // Accepted: the frames account for every byte after the token.
        const total = messages.reduce(
          (sum, m) => sum + HEADER_SIZE + m.payload.byteLength,
          UDP_TOKEN_SIZE,
        );
        assert.equal(total, changed.byteLength);
      },
    ),
  );
});

test("a multi-frame datagram with one bad frame anywhere is refused whole, saying why", () => {
  const token = new Uint8Array(16);
  const ping = (sequence: number): DatagramFrame => ({
    type: MessageType.Ping,
    flags: 0,
    sequence,
    payload: new Uint8Array(0),
  });
  const good = encodeDatagramFrames(token, [ping(1), ping(2), ping(3)]);
  const broken = (at: number, value: number) => {
    const copy = good.slice();
    copy[at] = value;
    return copy;
  };
  const second = UDP_TOKEN_SIZE + HEADER_SIZE;
  const cases: [Uint8Array, RegExp][] = [
    [broken(second, 2), /unsupported protocol version 2/],
    [broken(second + 1, 0x7f), /unknown message type 0x7f/],
    [broken(second + 3, 0x80), /reserved flag bits/],
    [broken(second + 12, 1), /frame length 16777216 runs past/],
    [
      good.subarray(0, good.byteLength - 1),
      /ends 15 bytes into a frame header/,
    ],
    [good.subarray(0, 31), /shorter than a token and a frame header/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeDatagramFrames(bytes), (error) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, message);
      return true;
    });
  }
});

test("the packer fills each datagram up to its limit, in order, and starts a new one only when the next frame would not fit", () => {
  const token = new Uint8Array(16).fill(9);
  const sent: Uint8Array[] = [];
  // 33 bytes a frame: 3 fit a 115-byte datagram (16 + 99), not 4.
  const packer = new DatagramPacker(token, 115, (d) => sent.push(d.slice()));
  const payload = new Uint8Array(17);
  for (let i = 1; i <= 7; i++) packer.push(MessageType.Request, 0, i, payload);
  assert.equal(sent.length, 2, "two full datagrams went as the third began");
  assert.equal(packer.pending, 1);
  packer.flush();
  packer.flush();
  assert.equal(sent.length, 3, "a flush with nothing packed sends nothing");
  const sequences = sent.map((d) =>
    decodeDatagramFrames(d).messages.map((m) => m.sequence)
  );
  assert.deepEqual(sequences, [[1, 2, 3], [4, 5, 6], [7]]);
  for (const d of sent) {
    assert.ok(d.byteLength <= 115);
    assert.ok(hasToken(d, token));
  }
  assert.throws(
    () => new DatagramPacker(token, 31, () => {}),
    (error) =>
      error instanceof InvalidArgumentError &&
      error.code === "INVALID_ARGUMENT" && error.argument === "limit" &&
      /expected an integer from 32 to 65507, got 31/.test(error.message),
  );
});

test("property: packed datagrams carry every frame once, in order, each within the limit, and never change after they are handed out", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 64, max: 2000 }),
      fc.array(
        fc.tuple(frameArbitrary, fc.boolean()),
        { minLength: 1, maxLength: 200 },
      ),
      (limit, steps) => {
        const handed: { view: Uint8Array; copy: Uint8Array }[] = [];
        const packer = new DatagramPacker(
          new Uint8Array(16).fill(1),
          limit,
          (view) => handed.push({ view, copy: view.slice() }),
        );
        const frames = steps.map(([f]) => f).filter((f) =>
          DATAGRAM_OVERHEAD + f.payload.byteLength <= limit
        );
        for (const [frame, flushAfter] of steps) {
          if (DATAGRAM_OVERHEAD + frame.payload.byteLength > limit) continue;
          packer.push(frame.type, frame.flags, frame.sequence, frame.payload);
          if (flushAfter) packer.flush();
        }
        packer.flush();
        const decoded = handed.flatMap(({ view, copy }) => {
          assert.deepEqual(view, copy, "bytes handed out were written again");
          assert.ok(view.byteLength <= limit);
          return decodeDatagramFrames(view).messages;
        });
        assert.deepEqual(decoded, frames);
      },
    ),
  );
});

test("HELLO and HELLO_OK carry features: unknown names are ignored, a wrong type is refused, and none means none", () => {
  const hello = decodeHello(
    encodeJson({
      version: 1,
      client: "c",
      maxFrameSize: 1024,
      features: ["future-thing", "udp-batch"],
    }),
  );
  assert.deepEqual(hello.features, ["udp-batch"]);
  assert.equal(
    decodeHello(encodeJson({ version: 1, client: "c", maxFrameSize: 1024 }))
      .features,
    undefined,
  );
  const round = encodeHello({
    version: 1,
    client: "c",
    maxFrameSize: 1024,
    features: ["udp-batch"],
  });
  assert.deepEqual(decodeHello(round).features, ["udp-batch"]);
  // Offering nothing sends what a client from before features sent.
  assert.deepEqual(
    encodeHello({ version: 1, client: "c", maxFrameSize: 9, features: [] }),
    encodeJson({ version: 1, client: "c", maxFrameSize: 9 }),
  );
  for (const bad of ["udp-batch", [1], { a: 1 }, null]) {
    assert.throws(
      () =>
        decodeHello(
          encodeJson({
            version: 1,
            client: "c",
            maxFrameSize: 1024,
            features: bad,
          }),
        ),
      /HELLO features is not an array of strings/,
    );
    assert.throws(
      () =>
        decodeHelloOk(
          encodeJson({
            nodeId: "n",
            maxFrameSize: 1024,
            auth: "none",
            features: bad,
          }),
        ),
      /HELLO_OK features is not an array of strings/,
    );
  }
  for (
    const [bad, said] of [
      [{}, /HELLO has no valid version/],
      [{ version: 0, client: "c", maxFrameSize: 1024 }, /no valid version/],
      [{ version: 1, maxFrameSize: 1024 }, /HELLO has no client string/],
      [
        { version: 1, client: "c", maxFrameSize: 1 },
        /HELLO maxFrameSize is 1, expected an integer of at least \d+/,
      ],
    ] as const
  ) {
    assert.throws(
      () => decodeHello(encodeJson(bad)),
      (error) =>
        error instanceof ProtocolError && error.code === "PROTOCOL_ERROR" &&
        said.test(error.message),
      String(said),
    );
  }
  const ok = decodeHelloOk(
    encodeJson({
      nodeId: "n",
      maxFrameSize: 1024,
      auth: "none",
      features: ["udp-batch", "x"],
    }),
  );
  assert.deepEqual(ok.features, ["udp-batch"]);
  assert.equal(
    decodeHelloOk(
      encodeJson({ nodeId: "n", maxFrameSize: 1024, auth: "none" }),
    )
      .features,
    undefined,
  );
  assert.deepEqual(agreeFeatures(["udp-batch"], ["udp-batch"]), ["udp-batch"]);
  assert.deepEqual(agreeFeatures(["udp-batch"], []), []);
  assert.deepEqual(agreeFeatures(undefined, ["udp-batch"]), []);
});

test("the packer refuses what a careless or hostile caller gives it with InvalidArgumentError: a token that is a proxy, a payload that is no Uint8Array or too large for a datagram; a token it keeps is its own copy", () => {
  const token = new Uint8Array(16).fill(3);
  const sent: Uint8Array[] = [];
  assert.throws(
    () => new DatagramPacker(new Proxy(token, {}), 100, () => {}),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "token" &&
      /expected 16 bytes/.test(e.message),
  );
  const packer = new DatagramPacker(token, 100, (d) => sent.push(d.slice()));
  token.fill(0); // the caller's array changes; the session's token not
  for (
    const bad of [
      "abc",
      null,
      new Uint16Array(2),
      new DataView(new ArrayBuffer(2)),
    ]
  ) {
    assert.throws(
      () => packer.push(MessageType.Request, 0, 1, bad as never),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "payload" &&
        /expected a Uint8Array/.test(e.message),
      String(bad),
    );
  }
  assert.throws(
    () => packer.push(MessageType.Request, 0, 1, new Uint8Array(69)),
    (e: unknown) =>
      e instanceof InvalidArgumentError &&
      /expected at most 68 \(a datagram of 100\), got "69 bytes"/.test(
        e.message,
      ),
  );
  assert.equal(packer.pending, 0, "nothing was packed");
  packer.push(MessageType.Request, 0, 1, new Uint8Array(68));
  packer.flush();
  assert.equal(sent.length, 1);
  assert.equal(sent[0].length, 100);
  assert.deepEqual(sent[0].subarray(0, 16), new Uint8Array(16).fill(3));
});
