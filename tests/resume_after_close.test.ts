// resumeReading() (/core) on a connection already closed or destroyed
// resumed its dead channel and acted on the messages kept behind the
// pause point, as if the connection still read. Now it is refused as
// sendMessage() is on a closed connection: a ConnectionLostError saying
// how it ended; the channel is not resumed, nothing kept is acted on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ConnectionLostError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError } from "../src/protocol/messages.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();

for (const how of ["destroy", "close"] as const) {
  test(`resumeReading() after ${how}() is refused with a ConnectionLostError, as sendMessage() is: the channel is not resumed and nothing kept is acted on`, async () => {
    let onData!: (chunk: Uint8Array) => void;
    const calls: string[] = [];
    const channel = stubChannel({
      onData: (fn) => (onData = fn),
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
    });
    const clock = new VirtualClock();
    const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
      clock,
    });
    const taken = connection.receiveMessage({ pauseReading: true });
    // One chunk: the message taken, then one kept behind the pause point.
    const first = codec.encode({
      type: MessageType.NegotiateOk,
      flags: 0,
      sequence: 1,
      payload: new Uint8Array(0),
    });
    const kept = codec.encode({
      type: MessageType.Error,
      flags: 0,
      sequence: 0,
      payload: encodeError({ code: 1, message: "kept", retryable: false }),
    });
    const chunk = new Uint8Array(first.length + kept.length);
    chunk.set(first);
    chunk.set(kept, first.length);
    onData(chunk);
    assert.equal((await taken).type, MessageType.NegotiateOk);
    const later = connection.receiveMessage().then((m) => m, (e) => e);
    if (how === "destroy") connection.destroy();
    else await connection.close();
    assert.equal(connection.isOpen, false);
    let refused: unknown;
    try {
      connection.resumeReading();
    } catch (error) {
      refused = error;
    }
    let sendRefused: unknown;
    try {
      connection.sendMessage(MessageType.Ping, new Uint8Array(0));
    } catch (error) {
      sendRefused = error;
    }
    // Before: no error, and the dead channel resumed.
    assert.deepEqual(calls, ["pause"], "the channel is not resumed");
    assert.ok(refused instanceof ConnectionLostError, String(refused));
    assert.ok(sendRefused instanceof ConnectionLostError, String(sendRefused));
    assert.equal(refused.message, sendRefused.message);
    // The receive pending at the close ended with the connection, not
    // with the kept message.
    assert.ok((await later) instanceof ConnectionLostError);
    assert.equal(clock.pendingTimers, 0);
  });
}
