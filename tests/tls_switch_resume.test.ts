// resumeReading() while the stream switches to TLS: the plaintext channel
// belongs to the TLS handshake then, and what arrives on it is no frame of
// ours. Refused with a ProtocolError naming the switch; the plaintext
// channel is not resumed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ProtocolError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();

test("resumeReading() during a TLS switch is refused with a ProtocolError: the plaintext channel is not resumed", async () => {
  let onData!: (chunk: Uint8Array) => void;
  let upgrade!: (secure: ByteChannel) => void;
  const calls: string[] = [];
  const plain = stubChannel({
    onData: (fn) => (onData = fn),
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  const secure = stubChannel({ onData: () => {} });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
  });
  const taken = connection.receiveMessage({ pauseReading: true });
  onData(codec.encode({
    type: MessageType.NegotiateOk,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  }));
  assert.equal((await taken).type, MessageType.NegotiateOk);
  const switched = connection.startTls({ serverName: "n1" });
  let refused: unknown;
  try {
    connection.resumeReading();
  } catch (error) {
    refused = error;
  }
  // Before: no error, the plaintext channel resumed mid-handshake.
  assert.deepEqual(calls, ["pause"], "the plaintext channel is not resumed");
  assert.ok(refused instanceof ProtocolError, String(refused));
  assert.match(refused.message, /TLS switch is under way/);
  assert.match(refused.message, /startTls\(\) has settled/);
  // (A frame arriving on it meanwhile is kept, not acted on, and fails
  // the switch once the upgrade is done: tls_switch_injected.test.ts.)
  upgrade(secure);
  await switched;
  assert.equal(connection.encrypted, true);
  assert.equal(connection.isOpen, true);
  // Once switched, resumeReading() does not throw (the secure channel
  // reads on its own).
  connection.resumeReading();
  connection.destroy();
  assert.equal(clock.pendingTimers, 0);
});
