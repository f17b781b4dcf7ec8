// Plaintext on the plaintext channel while the TLS handshake runs on it (a
// custom adapter's channel that goes on delivering what arrives): the
// bytes are no frames of the node's, which speaks TLS there, but what a
// man in the middle would inject. startTls() checked for plaintext only
// before the upgrade: a reply injected during it answered the request that
// waited for the secure channel, before that request ever went out, with
// the injected payload; a frame kept behind the pause point was dropped
// unread; part of a frame stayed in the decoder, to be read as the start
// of the secure stream. Each time the switch succeeded. Now what arrives
// during the switch is kept, not acted on, and checked for once the
// upgrade is done: any of it is a protocol violation, which ends the
// connection as it does before the upgrade.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ConnectionLostError, ProtocolError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError } from "../src/protocol/messages.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const codec = new MessageCodec();

const frame = (type: number, sequence: number, payload: Uint8Array) =>
  codec.encode({ type, flags: 0, sequence, payload });

/**
 * A connection over a plaintext stub whose startTls waits for `upgrade()`
 * and then hands over a secure stub that records what is written to it
 * and whether it was destroyed.
 */
function scene() {
  let deliver!: (chunk: Uint8Array) => void;
  let upgrade!: (secure: ByteChannel) => void;
  const secureCalls: string[] = [];
  const plain = stubChannel({
    onData: (fn) => (deliver = fn),
    pause: () => {},
    resume: () => {},
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  const secure = stubChannel({
    onData: () => {},
    write: () => (secureCalls.push("write"), true),
    destroy: () => void secureCalls.push("destroy"),
  });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
  });
  return {
    connection,
    clock,
    secureCalls,
    deliver: (chunk: Uint8Array) => deliver(chunk),
    upgrade: () => upgrade(secure),
  };
}

/** What the plaintext channel delivers during the handshake, and how. */
const injections: Array<{
  what: string;
  /** Whether NEGOTIATE_OK was taken with pauseReading first. */
  paused: boolean;
  /** The bytes, given the sequence number of the request that waits. */
  bytes: (sequence: number) => Uint8Array;
}> = [
  {
    what: "a reply to the request waiting for the secure channel",
    paused: false,
    bytes: (sequence) =>
      frame(MessageType.Response, sequence, new Uint8Array([6, 6, 6])),
  },
  {
    what: "a reply, behind the pause point",
    paused: true,
    bytes: (sequence) =>
      frame(MessageType.Response, sequence, new Uint8Array([6, 6, 6])),
  },
  {
    what: "a node's ERROR, behind the pause point",
    paused: true,
    bytes: () =>
      frame(
        MessageType.Error,
        0,
        encodeError({ code: 1, message: "injected", retryable: false }),
      ),
  },
  {
    what: "part of a frame",
    paused: true,
    bytes: (sequence) =>
      frame(MessageType.Response, sequence, new Uint8Array(8)).subarray(0, 9),
  },
];

for (const { what, paused, bytes } of injections) {
  test(`plaintext injected during the TLS handshake (${what}) fails startTls() with a ProtocolError and ends the connection: the waiting request is not answered by it`, async () => {
    const watch = watchEscapes();
    const s = scene();
    if (paused) {
      const taken = s.connection.receiveMessage({ pauseReading: true });
      s.deliver(frame(MessageType.NegotiateOk, 1, new Uint8Array(0)));
      assert.equal((await taken).type, MessageType.NegotiateOk);
    }
    const switched = s.connection.startTls({ serverName: "n1" }).then(
      () => "switched",
      (e: unknown) => e,
    );
    // Sent during the switch: it waits for the secure channel. The
    // connection's first sequence number (NEGOTIATE_OK was the node's).
    const request = s.connection.sendRequest(new Uint8Array([1])).then(
      (reply) => `answered with ${Array.from(reply)}`,
      (e: unknown) => e,
    );
    await tickEnds();
    s.deliver(bytes(1));
    // Not acted on while the handshake runs.
    assert.equal(s.connection.isOpen, true);
    s.upgrade();
    const refusal = await switched;
    // Before: "switched", the request answered by the injected reply.
    assert.ok(refusal instanceof ProtocolError, String(refusal));
    assert.match(refusal.message, /plaintext data arrived/);
    assert.equal(s.connection.isOpen, false);
    assert.equal(s.connection.encrypted, false);
    const outcome = await request;
    assert.ok(outcome instanceof ConnectionLostError, String(outcome));
    assert.equal(outcome.cause, refusal);
    assert.equal(outcome.sent, false, "never sent");
    assert.deepEqual(s.secureCalls, ["destroy"], "nothing went out on it");
    await tickEnds();
    assert.equal(s.clock.pendingTimers, 0);
    assert.deepEqual(await watch.stop(), []);
  });
}

test("plaintext delivered on the spent plaintext channel after the switch ends the connection: it answers no request sent over TLS", async () => {
  const watch = watchEscapes();
  const s = scene();
  const switched = s.connection.startTls({ serverName: "n1" });
  await tickEnds();
  s.upgrade();
  await switched;
  assert.equal(s.connection.encrypted, true);
  const request = s.connection.sendRequest(new Uint8Array([1])).then(
    (reply) => `answered with ${Array.from(reply)}`,
    (e: unknown) => e,
  );
  await tickEnds();
  // A custom adapter's spent channel, still handing over what arrives.
  s.deliver(frame(MessageType.Response, 1, new Uint8Array([6, 6, 6])));
  const outcome = await request;
  // Before: "answered with 6,6,6", over a connection still open.
  assert.ok(outcome instanceof ConnectionLostError, String(outcome));
  assert.match(outcome.message, /after the switch to TLS/);
  assert.equal(s.connection.isOpen, false);
  await tickEnds();
  assert.equal(s.clock.pendingTimers, 0);
  assert.deepEqual(await watch.stop(), []);
});

test("a secure channel that reads through the plaintext one (a custom adapter's pass-through, a test double of TLS) is read as the stream after the switch", async () => {
  const watch = watchEscapes();
  let deliver!: (chunk: Uint8Array) => void;
  const plain: ByteChannel = stubChannel({
    onData: (fn) => (deliver = fn),
    startTls: () =>
      Promise.resolve(stubChannel({
        // Its receiver is the plaintext channel's.
        onData: (fn) => plain.onData(fn),
        write: (bytes) => plain.write(bytes),
      })),
  });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
  });
  await connection.startTls({ serverName: "n1" });
  const request = connection.sendRequest(new Uint8Array([1])).then(
    (reply) => `answered with ${Array.from(reply)}`,
    (e: unknown) => e,
  );
  await tickEnds();
  deliver(frame(MessageType.Response, 1, new Uint8Array([7])));
  assert.equal(await request, "answered with 7");
  assert.equal(connection.isOpen, true);
  connection.destroy();
  await tickEnds();
  assert.equal(clock.pendingTimers, 0);
  assert.deepEqual(await watch.stop(), []);
});
