// A TLS switch that fails ends the connection itself, whatever the
// runtime adapter did with the socket: a custom adapter whose startTls
// rejects without destroying it (one that fails before touching the
// socket, or breaks the contract) left the connection open, its writer
// held for good (a request timed out "before it was sent") and the
// plaintext channel free to be resumed. Now it is destroyed with the
// switch's error, as the built-in handshake did by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ConnectionLostError, TlsError } from "../src/errors.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function switching(startTls: ByteChannel["startTls"]) {
  const calls: string[] = [];
  const plain = stubChannel({
    onData: () => {},
    write: () => (calls.push("write"), true),
    destroy: () => calls.push("destroy"),
    startTls,
  });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
  });
  return { connection, clock, calls };
}

test("a startTls the adapter rejects without destroying the socket ends the connection with the switch's error, failing the request that waited for it, with no timer left", async () => {
  let fail!: (error: Error) => void;
  const { connection, clock, calls } = switching(() =>
    new Promise<ByteChannel>((_, reject) => (fail = reject))
  );
  const switched = connection.startTls({ serverName: "n1" });
  // Sent during the switch: it waits for the secure channel.
  const request = connection.sendRequest(new Uint8Array([1, 2]));
  fail(new Error("no TLS here"));
  const refused = await switched.then(() => undefined, (error) => error);
  assert.ok(refused instanceof TlsError, String(refused));
  // Before: still open, the request held until its timeout.
  assert.equal(connection.isOpen, false);
  const outcome = await request.then(() => undefined, (error) => error);
  assert.ok(outcome instanceof ConnectionLostError, String(outcome));
  assert.equal(
    outcome.cause,
    refused,
    "the request fails with the switch's error",
  );
  assert.ok(calls.includes("destroy"), "the plaintext channel is destroyed");
  assert.ok(!calls.includes("write"), "nothing sent in plaintext");
  await tickEnds();
  assert.equal(clock.pendingTimers, 0);
});

test("a startTls that throws at the call ends the connection as well", async () => {
  const { connection, clock, calls } = switching(() => {
    throw new Error("refused before touching the socket");
  });
  await assert.rejects(connection.startTls({ serverName: "n1" }), TlsError);
  assert.equal(connection.isOpen, false);
  assert.ok(calls.includes("destroy"));
  await tickEnds();
  assert.equal(clock.pendingTimers, 0);
});

test("a startTls that hands back the plaintext channel ends the connection", async () => {
  // Called as a method: `this` is the plaintext channel.
  const { connection, clock } = switching(function (this: ByteChannel) {
    return Promise.resolve(this);
  });
  await assert.rejects(connection.startTls({ serverName: "n1" }));
  assert.equal(connection.isOpen, false);
  await tickEnds();
  assert.equal(clock.pendingTimers, 0);
});

for (const end of ["destroy", "close"] as const) {
  test(`${end}() during a switch the adapter never settles fails startTls() at once with the connection's ConnectionLostError, tells the adapter through its signal, and leaves no timer`, async () => {
    let told: AbortSignal | undefined;
    const { connection, clock } = switching((options) => {
      told = options.signal;
      return new Promise<ByteChannel>(() => {});
    });
    let outcome: unknown = "pending";
    const switched = connection.startTls({ serverName: "n1" }).then(
      () => (outcome = "switched"),
      (error: unknown) => (outcome = error),
    );
    await tickEnds();
    if (end === "destroy") connection.destroy();
    else await connection.close();
    await tickEnds();
    // Before: pending until the connect timeout, then a TlsError saying
    // the adapter did not settle, its timer holding the process till then.
    assert.ok(outcome instanceof ConnectionLostError, String(outcome));
    assert.equal(told?.aborted, true, "the adapter's handshake is given up");
    assert.equal(clock.pendingTimers, 0);
    await switched;
  });
}

test("a write that fails as startTls() flushes what was sent before it fails the switch with the connection's ConnectionLostError, and no upgrade starts on the destroyed channel", async () => {
  let upgrades = 0;
  const plain = stubChannel({
    onData: () => {},
    write: () => {
      throw new Error("adapter bug: write");
    },
    startTls: () => (upgrades++, new Promise<ByteChannel>(() => {})),
  });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
  });
  // Queued in plaintext before the switch, flushed as it starts.
  connection.sendMessage(MessageType.Ping, new Uint8Array(0));
  const outcome = await connection.startTls({ serverName: "n1" }).then(
    () => "switched",
    (error: unknown) => error,
  );
  assert.ok(outcome instanceof ConnectionLostError, String(outcome));
  assert.match(outcome.message, /failed to write/);
  assert.equal(connection.isOpen, false);
  // Before: the adapter was asked to upgrade the channel just destroyed.
  assert.equal(upgrades, 0);
  await tickEnds();
  assert.equal(clock.pendingTimers, 0);
});
