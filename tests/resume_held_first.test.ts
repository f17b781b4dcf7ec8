// resumeReading() (/core) resumed the channel before acting on the frames
// kept behind the pause point: a custom channel that delivers at once,
// inside its resume(), had its newer frames acted on before the older
// kept ones (a node's PINGs answered out of order, control messages
// handed to receiveMessage() out of order). Now the kept frames are acted
// on first, in arrival order, and only then is the channel resumed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();

function frame(type: number, sequence: number): Uint8Array {
  return codec.encode({
    type,
    flags: 0,
    sequence,
    payload: new Uint8Array([sequence]),
  });
}

function joined(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

test("resumeReading() acts on the frames kept since the pause before those a channel delivers inside its resume(), in arrival order", async () => {
  let onData!: (chunk: Uint8Array) => void;
  const calls: string[] = [];
  const written: Message[] = [];
  const channel = stubChannel({
    onData: (fn) => (onData = fn),
    write: (bytes) => {
      codec.decode(bytes, (m) => written.push({ ...m }));
      return true;
    },
    pause: () => calls.push("pause"),
    // A custom channel with bytes buffered hands them over at once.
    resume: () => {
      calls.push("resume");
      onData(joined(
        frame(MessageType.Ping, 6),
        frame(MessageType.AuthChallenge, 3),
      ));
    },
  });
  const clock = new VirtualClock();
  const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
  });
  const taken = connection.receiveMessage({ pauseReading: true });
  // One chunk: the message taken, then two kept behind the pause point.
  onData(joined(
    frame(MessageType.NegotiateOk, 1),
    frame(MessageType.Ping, 5),
    frame(MessageType.AuthChallenge, 2),
  ));
  assert.equal((await taken).type, MessageType.NegotiateOk);
  assert.deepEqual(calls, ["pause"]);
  assert.equal(written.length, 0, "nothing kept is acted on before resume");

  connection.resumeReading();
  const first = await connection.receiveMessage();
  const second = await connection.receiveMessage();
  // The writer flushes the PONGs at the end of the tick (a microtask).
  for (let i = 0; i < 5; i++) await Promise.resolve();

  assert.deepEqual(calls, ["pause", "resume"]);
  assert.deepEqual(
    [first.sequence, second.sequence],
    [2, 3],
    "control messages reach receiveMessage() in arrival order",
  );
  assert.deepEqual(
    written.map((m) => [m.type, m.sequence]),
    [[MessageType.Pong, 5], [MessageType.Pong, 6]],
    "the node's PINGs are answered in arrival order",
  );
  connection.destroy();
  assert.equal(clock.pendingTimers, 0);
});

test("a receive with pauseReading that takes a kept frame pauses again: the channel is not resumed, the rest stay kept until the next resumeReading()", async () => {
  let onData!: (chunk: Uint8Array) => void;
  const calls: string[] = [];
  let paused = false;
  const channel = stubChannel({
    onData: (fn) => (onData = fn),
    pause: () => {
      paused = true;
      calls.push("pause");
    },
    resume: () => {
      paused = false;
      calls.push("resume");
      onData(frame(MessageType.AuthChallenge, 4));
    },
  });
  const clock = new VirtualClock();
  const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
  });
  const taken = connection.receiveMessage({ pauseReading: true });
  onData(joined(
    frame(MessageType.NegotiateOk, 1),
    frame(MessageType.AuthChallenge, 2),
    frame(MessageType.AuthChallenge, 3),
  ));
  assert.equal((await taken).type, MessageType.NegotiateOk);
  // Waits when the kept frames are acted on, and pauses behind the first.
  const again = connection.receiveMessage({ pauseReading: true });
  connection.resumeReading();
  assert.equal((await again).sequence, 2);
  assert.ok(paused, "the channel stays paused");
  assert.deepEqual(calls, ["pause", "pause"]);

  connection.resumeReading();
  const rest = [
    await connection.receiveMessage(),
    await connection.receiveMessage(),
  ];
  assert.deepEqual(rest.map((m) => m.sequence), [3, 4]);
  assert.deepEqual(calls, ["pause", "pause", "resume"]);
  connection.destroy();
  assert.equal(clock.pendingTimers, 0);
});
