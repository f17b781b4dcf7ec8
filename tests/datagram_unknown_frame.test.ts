// A frame of an unknown type, or with a reserved flag bit set, breaks a
// rule of "Frame" (docs/PROTOCOL.md): a receiver drops the datagram that
// carries it whole, its other frames included, as DatagramPacker's JSDoc
// now says. Only a known type sent the wrong way is skipped on its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ProtocolError } from "../src/errors.ts";
import {
  decodeDatagramFrames,
  parseUdpToken,
} from "../src/protocol/datagram.ts";
import { DatagramPacker } from "../src/protocol/datagram_packer.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { UdpService } from "../testing/udp_service.ts";
import { root } from "./support/repo.ts";

const UNKNOWN_TYPE = 0x7f;
const RESERVED_FLAG = 0x8000;

/** One datagram: a REQUEST (sequence 1), then `second` (sequence 2). */
function packed(
  token: Uint8Array,
  second: { type: number; flags: number },
): Uint8Array {
  const sent: Uint8Array[] = [];
  const packer = new DatagramPacker(token, 1200, (d) => sent.push(d));
  packer.push(MessageType.Request, 0, 1, new Uint8Array([1]));
  packer.push(second.type, second.flags, 2, new Uint8Array(0));
  packer.flush();
  assert.equal(sent.length, 1);
  return sent[0];
}

/** A reference node's UDP side on a stub channel, one batching session. */
async function batchingNode() {
  let deliver!: (bytes: Uint8Array, ip: string, port: number) => void;
  const channel: DatagramChannel = {
    hostname: "127.0.0.1",
    port: 7001,
    closed: false,
    onMessage(fn) {
      deliver = fn;
    },
    onClose() {},
    send: () => true,
    close() {},
  };
  const adapter = {
    datagram: () => Promise.resolve(channel),
  } as unknown as RuntimeAdapter;
  const served: number[] = [];
  const service = new UdpService<object>({
    adapter,
    onMessage: (_session, message) => void served.push(message.sequence),
  });
  await service.bind("127.0.0.1", 7001);
  const token = parseUdpToken(service.open({}, undefined, true));
  const send = (bytes: Uint8Array) => deliver(bytes, "127.0.0.1", 5000);
  return { service, token, served, send };
}

const breaking = [
  { what: "an unknown type", type: UNKNOWN_TYPE, flags: 0 },
  { what: "a reserved flag bit", type: MessageType.Ping, flags: RESERVED_FLAG },
];

for (const { what, type, flags } of breaking) {
  test(`a datagram with a frame of ${what} is dropped whole by the reference node: its REQUEST is not served`, async () => {
    const { service, token, served, send } = await batchingNode();
    send(packed(token, { type, flags }));
    assert.deepEqual(served, []);
    assert.equal(service.stats.accepted, 0);
    assert.equal(service.stats.rejected, 1);
    assert.equal(service.stats.datagramsReceived, 0);
  });

  test(`a datagram with a frame of ${what} is refused whole by decodeDatagramFrames, which the client's UDP route reads with`, () => {
    const bytes = packed(new Uint8Array(16), { type, flags });
    assert.throws(() => decodeDatagramFrames(bytes), ProtocolError);
  });
}

test("a frame of a known type sent the wrong way is skipped on its own: the REQUEST beside it is served", async () => {
  const { service, token, served, send } = await batchingNode();
  send(packed(token, { type: MessageType.Response, flags: 0 }));
  assert.deepEqual(served, [1]);
  assert.equal(service.stats.accepted, 1);
  assert.equal(service.stats.rejected, 1);
});

test("DatagramPacker's and encodeDatagram's JSDoc say that a receiver drops such a datagram (they said only that the frame is written)", () => {
  const packer = readFileSync(
    join(root, "src/protocol/datagram_packer.ts"),
    "utf8",
  );
  const doc = packer.slice(
    packer.lastIndexOf("/**", packer.indexOf("export class DatagramPacker")),
    packer.indexOf("export class DatagramPacker"),
  );
  assert.match(doc, /unknown type/);
  assert.match(doc, /reserved flag bit/);
  assert.match(doc, /drop the whole\s+(\*\s+)?datagram/);
  const push = packer.slice(
    packer.indexOf("Adds one frame;", packer.indexOf("class DatagramPacker")),
  );
  assert.match(push.slice(0, push.indexOf("push(")), /drops the whole/);
  const datagram = readFileSync(join(root, "src/protocol/datagram.ts"), "utf8");
  const encode = datagram.slice(
    datagram.lastIndexOf(
      "/**",
      datagram.indexOf("export function encodeDatagram("),
    ),
    datagram.indexOf("export function encodeDatagram("),
  );
  assert.match(encode, /receiver drops/);
});
