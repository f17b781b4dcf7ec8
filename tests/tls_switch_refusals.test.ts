// startTls() refused before the switch starts, each for its own reason.
// Plaintext from the node after NEGOTIATE_OK (a whole frame kept behind
// the pause point, or part of one) is a protocol violation, as a man in
// the middle would inject it: it was refused but the connection stayed
// open, to be used on in plaintext. Now the connection ends with that
// ProtocolError. Requests in flight and a request route are the caller's
// state, not the node's doing: they were refused as "plaintext data
// arrived…", which was untrue; now each says what is under way, and the
// connection goes on as it was.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionClosedError,
  ConnectionLostError,
  ProtocolError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();

/** A connection over a stub channel that can start TLS (never called here). */
function scene() {
  let onData!: (chunk: Uint8Array) => void;
  let tlsCalls = 0;
  const channel = stubChannel({
    onData: (fn) => (onData = fn),
    pause: () => {},
    resume: () => {},
    startTls: () => {
      tlsCalls++;
      return new Promise<ByteChannel>(() => {});
    },
  });
  const clock = new VirtualClock();
  const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 1000,
  });
  return {
    connection,
    clock,
    deliver: (chunk: Uint8Array) => onData(chunk),
    tlsCalls: () => tlsCalls,
  };
}

const negotiateOk = codec.encode({
  type: MessageType.NegotiateOk,
  flags: 0,
  sequence: 1,
  payload: new Uint8Array(0),
});
const ping = codec.encode({
  type: MessageType.Ping,
  flags: 0,
  sequence: 99,
  payload: new Uint8Array([1]),
});

/** `a` then `b`, in one chunk. */
function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const all = new Uint8Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  return all;
}

for (
  const [what, behind] of [
    ["a whole frame", ping],
    ["part of a frame", ping.subarray(0, 5)],
  ] as const
) {
  test(`plaintext after NEGOTIATE_OK (${what}) refuses startTls() with a ProtocolError and ends the connection with it`, async () => {
    const s = scene();
    const taken = s.connection.receiveMessage({ pauseReading: true });
    s.deliver(join(negotiateOk, behind));
    assert.equal((await taken).type, MessageType.NegotiateOk);
    const error = await s.connection.startTls({ serverName: "n1" }).then(
      () => "switched",
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, /plaintext data arrived after the node agreed/);
    assert.equal(s.tlsCalls(), 0);
    // Before: still open, to be used on in plaintext.
    assert.equal(s.connection.isOpen, false);
    assert.throws(
      () => s.connection.sendMessage(MessageType.Ping, new Uint8Array(0)),
      ConnectionLostError,
    );
    assert.equal(s.clock.pendingTimers, 0);
  });
}

test("startTls() with requests in flight is refused with a ProtocolError that says so, not that plaintext arrived; the connection goes on", async () => {
  const s = scene();
  const request = s.connection.sendRequest(new Uint8Array([1])).then(
    () => "reply",
    (e: unknown) => e,
  );
  const error = await s.connection.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  assert.ok(error instanceof ProtocolError, String(error));
  // Before: "plaintext data arrived after the node agreed to switch to TLS".
  assert.doesNotMatch(error.message, /plaintext data arrived/);
  assert.match(error.message, /1 request in flight/);
  assert.equal(s.tlsCalls(), 0);
  assert.equal(s.connection.isOpen, true);
  s.connection.destroy();
  assert.ok((await request) instanceof ConnectionLostError);
});

test("startTls() on a connection with a request route is refused with a ProtocolError that says so, not that plaintext arrived; the connection goes on", async () => {
  const s = scene();
  s.connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send: () => {},
    close: () => new Set(),
  });
  const error = await s.connection.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  assert.ok(error instanceof ProtocolError, String(error));
  // Before: "plaintext data arrived after the node agreed to switch to TLS".
  assert.doesNotMatch(error.message, /plaintext data arrived/);
  assert.match(error.message, /request route/);
  assert.equal(s.tlsCalls(), 0);
  assert.equal(s.connection.isOpen, true);
  s.connection.destroy();
});

test("startTls() on a connection closing gracefully is refused with a ConnectionClosedError, as a request is then, not a ConnectionLostError saying it was lost; the close goes on", async () => {
  const s = scene();
  const request = s.connection.sendRequest(new Uint8Array([1])).then(
    () => "reply",
    (e: unknown) => e,
  );
  let closed = false;
  const closing = s.connection.close().then(() => (closed = true));
  const error = await s.connection.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  // Before: ConnectionLostError "lost: the connection was closed".
  assert.ok(error instanceof ConnectionClosedError, String(error));
  assert.equal(error.code, "CONNECTION_CLOSED");
  assert.equal(s.tlsCalls(), 0);
  assert.equal(closed, false, "still closing");
  s.deliver(codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array([2]),
  }));
  assert.equal(await request, "reply");
  await closing;
  assert.equal(await s.connection.closed, undefined);
});
