import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError, ProtocolError } from "../src/errors.ts";
import {
  DATAGRAM_OVERHEAD,
  decodeDatagram,
  DEFAULT_MAX_DATAGRAM_SIZE,
  encodeDatagram,
  formatUdpToken,
  hasToken,
  MAX_DATAGRAM_SIZE,
  newUdpToken,
  parseUdpToken,
  UDP_TOKEN_SIZE,
} from "../src/protocol/datagram.ts";
import {
  FrameFlags,
  MAX_SEQUENCE,
  MessageType,
} from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { decodeNegotiateOk } from "../src/protocol/negotiation.ts";
import { udpTransport } from "../src/handshake/udp.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { getAdapter } from "../src/runtime/detect.ts";

function fromHex(text: string): Uint8Array {
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

test("the UDP vector in docs/PROTOCOL.md encodes and decodes as documented", () => {
  const doc = readFileSync(
    new URL("../docs/PROTOCOL.md", import.meta.url),
    "utf8",
  );
  const blocks = [...doc.matchAll(/```text datagram\n([\s\S]*?)```/g)];
  assert.ok(blocks.length >= 2, "PROTOCOL.md has datagram vectors");
  for (const [, body] of blocks) {
    const field = (name: string) => {
      const m = body.match(new RegExp(`^${name}: (.*)$`, "m"));
      assert.ok(m, `datagram vector is missing ${name}:\n${body}`);
      return m[1];
    };
    const datagram = fromHex(body.slice(body.indexOf("datagram:") + 9));
    const token = fromHex(field("token"));
    const payload = fromHex(field("payload"));
    const type = parseInt(field("type"), 16);
    const flags = parseInt(field("flags"), 16);
    const sequence = Number(field("sequence"));
    assert.deepEqual(
      encodeDatagram(token, type, flags, sequence, payload),
      datagram,
      field("name"),
    );
    const decoded = decodeDatagram(datagram);
    assert.deepEqual(decoded.token, token);
    assert.equal(decoded.message.type, type);
    assert.equal(decoded.message.sequence, sequence);
    assert.deepEqual(decoded.message.payload, payload);
  }
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
        assert.throws(() => decodeDatagram(changed), ProtocolError);
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
    assert.throws(() => parseUdpToken(bad), ProtocolError);
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
    ConfigError,
  );
});
