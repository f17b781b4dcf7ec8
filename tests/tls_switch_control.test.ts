// A control message sent while the stream switches to TLS: the plaintext
// stream then carries the TLS handshake, and a frame written into it would
// go out unencrypted and corrupt the handshake. sendMessage refuses it
// with a ProtocolError naming the switch; the stream stays as it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ProtocolError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A channel that records the type of every frame written to it. */
function recording(parts: Partial<ByteChannel> = {}) {
  const types: number[] = [];
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      new MessageCodec().decode(bytes.slice(), (m) => types.push(m.type));
      return true;
    },
    ...parts,
  });
  return { channel, types };
}

test("a control message sent while the stream switches to TLS is refused with a ProtocolError, and nothing goes out in plaintext into the handshake", async () => {
  let upgrade!: (secure: ByteChannel) => void;
  const plain = recording({
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  const secure = recording();
  const connection = new Connection(plain.channel, {
    hostname: "fake",
    port: 1,
  }, { clock: new VirtualClock() });
  const switched = connection.startTls({ serverName: "n1" });
  let refused: unknown;
  try {
    connection.sendMessage(MessageType.AuthStart, new Uint8Array([1, 2, 3]));
  } catch (error) {
    refused = error;
  }
  await tickEnds();
  // Before: the AUTH_START frame was written to the plaintext stream.
  assert.deepEqual(plain.types, [], "nothing written in plaintext");
  assert.ok(refused instanceof ProtocolError, String(refused));
  assert.match(refused.message, /TLS switch/);
  upgrade(secure.channel);
  await switched;
  // Once switched, control messages go out on the secure stream.
  connection.sendMessage(MessageType.AuthStart, new Uint8Array([1, 2, 3]));
  await tickEnds();
  assert.deepEqual(secure.types, [MessageType.AuthStart]);
  assert.deepEqual(plain.types, []);
  connection.destroy();
});
