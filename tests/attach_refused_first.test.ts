// A custom adapter's channel refused at the connection's first attach:
// its onData takes the receiver, then its onClose throws. The connect
// fails with the refusal; but the channel kept the receiver, and what it
// delivered afterwards was read by the refused connection, whose frame
// writer was never set: a node's PING (answered with a PONG) or GOODBYE
// (the connection closing) met `undefined`, and the TypeError went back
// into the channel's delivery, uncaught when that runs from the
// channel's own I/O. Now the refused channel's receiver is dropped (the
// channel is handed one that ignores what it gets), and a channel that
// keeps the connection's receivers anyway finds the connection ended:
// nothing is answered, nothing throws.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ConnectionError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { encodeError } from "../src/protocol/error_payload.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { tickEnds } from "./support/stub_connection.ts";

const codec = new MessageCodec();
const frame = (type: number, sequence: number, payload: Uint8Array) =>
  codec.encode({ type, flags: 0, sequence, payload } as Message);

/** What a node may send on the channel after the refusal. */
const deliveries: Array<[string, Uint8Array]> = [
  ["a PING", frame(MessageType.Ping, 7, new Uint8Array([1, 2, 3]))],
  ["a GOODBYE", frame(MessageType.Goodbye, 0, new Uint8Array(0))],
  [
    "an ERROR for the whole connection",
    frame(
      MessageType.Error,
      0,
      encodeError({ code: 5, retryable: false, message: "going away" }),
    ),
  ],
  [
    "a RESPONSE nobody asked for",
    frame(MessageType.Response, 9, new Uint8Array(1)),
  ],
  ["bytes that are no frame", new Uint8Array(64).fill(0xff)],
];

/**
 * Connects through an adapter whose connect resolves with a stub channel:
 * its onData takes the receiver (the first one only when `keeps`: a
 * channel that does not let it go), its onClose takes the close receiver
 * and throws. Returns the refusal and what the channel holds.
 */
async function refusedConnect(keeps: boolean) {
  const held: {
    data?: (chunk: Uint8Array) => void;
    close?: (error?: Error) => void;
  } = {};
  const written: Uint8Array[] = [];
  const channel: ByteChannel = stubChannel({
    onData: (fn) => {
      if (!keeps || held.data === undefined) held.data = fn;
    },
    onClose: (fn) => {
      held.close ??= fn;
      throw new Error("adapter bug: no close receiver");
    },
    write: (bytes) => {
      written.push(bytes.slice());
      return true;
    },
  });
  const adapter = {
    name: "memory",
    connect: () => Promise.resolve(channel),
    listen: () => Promise.reject(new Error("not here")),
  } as unknown as RuntimeAdapter;
  const clock = new VirtualClock();
  const failed = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: 7000,
    clock,
  }).then(() => undefined, (error) => error);
  return { failed, held, written, clock };
}

for (const keeps of [false, true]) {
  const how = keeps
    ? "keeps the connection's receivers"
    : "takes the receiver it is given last";
  for (const [what, bytes] of deliveries) {
    test(`a channel refused at the first attach (its onClose throws) that ${how}, then delivers ${what}: ignored, nothing written, nothing thrown`, async () => {
      const watch = watchEscapes();
      const { failed, held, written, clock } = await refusedConnect(keeps);
      assert.ok(failed instanceof ConnectionError, String(failed));
      assert.match(failed.message, /refused its receivers/);
      assert.ok(held.data !== undefined, "the channel took a receiver");
      const before = written.length;
      let thrown: unknown = undefined;
      try {
        held.data(bytes);
        held.data(bytes);
        // Then it closes, to the close receiver it took.
        held.close?.(new Error("reset"));
      } catch (error) {
        thrown = error;
      }
      await clock.advance(0);
      await tickEnds();
      // Before: a TypeError (the writer undefined) thrown to the channel.
      assert.equal(thrown, undefined, String(thrown));
      assert.equal(written.length, before, "nothing answered");
      assert.deepEqual(await watch.stop(), []);
    });
  }
}
