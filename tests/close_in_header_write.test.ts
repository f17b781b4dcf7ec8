// A payload of 16 KiB or more is written after its header as a chunk of its
// own (frame_writer.ts). A custom channel may hand a reply back from inside
// the header's write; a sink that then closes the connection gracefully
// (nothing left in flight) must not cut the stream between the header and
// its payload, nor lose the GOODBYE: the node gets the whole frame, then
// GOODBYE, then the close.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { BatchReplySink, ReplySink } from "../src/connection/types.ts";
import { DIRECT_PAYLOAD_BYTES } from "../src/connection/frame_writer.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError } from "../src/protocol/messages.ts";
import { replies } from "./support/reply_chunk.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { connectionOver, tickEnds } from "./support/stub_connection.ts";

/**
 * A channel that reads what is written as the node would (one stream, a
 * frame split over writes put back together) and, when a write ends with
 * the header of request `refuse` (its payload not yet written), answers
 * it at once with an ERROR, as a node that judges a request by its header
 * may.
 */
function refusingChannel() {
  const node = new MessageCodec(1 << 24);
  const reply = new MessageCodec();
  const scene = {
    events: [] as string[],
    refuse: -1,
    deliver: (_chunk: Uint8Array): void => {},
  };
  const channel = stubChannel({
    onData: (fn) => void (scene.deliver = fn),
    write(bytes) {
      if (scene.events.at(-1) === "close") {
        scene.events.push("write after close");
      }
      node.decode(bytes.slice(), (m) => {
        const name = m.type === MessageType.Goodbye
          ? "GOODBYE"
          : `${
            m.type === MessageType.Request ? "REQUEST" : m.type
          } ${m.sequence} (${m.payload.length} bytes)`;
        scene.events.push(name);
      });
      if (scene.refuse > 0 && endsWithHeaderOf(bytes, scene.refuse)) {
        const sequence = scene.refuse;
        scene.refuse = -1;
        scene.deliver(reply.encode({
          type: MessageType.Error,
          flags: 0,
          sequence,
          payload: encodeError({
            code: 1,
            message: "refused by its header",
            retryable: false,
          }),
        }));
      }
      return true;
    },
    close: () => void scene.events.push("close"),
    destroy: () => void scene.events.push("destroy"),
  });
  return { channel, scene };
}

/** Whether `bytes` end with the header of REQUEST `sequence`. */
function endsWithHeaderOf(bytes: Uint8Array, sequence: number): boolean {
  if (bytes.length < 16) return false;
  const header = new DataView(
    bytes.buffer,
    bytes.byteOffset + bytes.length - 16,
  );
  return header.getUint8(1) === MessageType.Request &&
    header.getUint32(8) === sequence && header.getUint32(12) > 0;
}

const LARGE = DIRECT_PAYLOAD_BYTES * 2;

for (const kind of ["request", "batch"] as const) {
  test(`a ${kind} sink that closes the connection from inside a large payload's header write: the payload follows its header, then GOODBYE, then the close`, async () => {
    const { channel, scene } = refusingChannel();
    const connection = connectionOver(channel);
    let closing: Promise<void> | undefined;
    const told: string[] = [];
    const onError = (error: Error) => {
      told.push(error.message);
      closing = connection.close();
    };
    scene.refuse = 1;
    if (kind === "request") {
      const sink: ReplySink = { onReply: () => told.push("reply"), onError };
      connection.submitRequest(new Uint8Array(LARGE), undefined, sink);
    } else {
      const sink: BatchReplySink = {
        first: 0,
        onReply: () => told.push("reply"),
        onError,
      };
      const refused = connection.submitBatch(
        [new Uint8Array(LARGE)],
        0,
        1,
        {},
        sink,
      );
      assert.equal(refused, undefined);
    }
    await tickEnds();
    assert.equal(told.length, 1);
    assert.match(told[0], /refused by its header/);
    assert.ok(closing !== undefined, "the sink closed the connection");
    await closing;
    // Before: the stream was cut after the header (its payload never
    // written), the GOODBYE dropped, and the channel closed.
    assert.deepEqual(scene.events, [
      `REQUEST 1 (${LARGE} bytes)`,
      "GOODBYE",
      "close",
    ]);
    assert.equal(connection.isOpen, false);
    assert.equal(await connection.closed, undefined, "a graceful close");
  });
}

test("a batch sink that closes from inside a large payload's header write, the run going on after it: the run's next requests go out and are answered, then GOODBYE, then the close", async () => {
  const { channel, scene } = refusingChannel();
  const connection = connectionOver(channel);
  let closing: Promise<void> | undefined;
  const told: string[] = [];
  const sink: BatchReplySink = {
    first: 0,
    onReply: (_payload, sequence) => told.push(`reply ${sequence}`),
    onError: (_error, sequence) => {
      told.push(`error ${sequence}`);
      closing ??= connection.close();
    },
  };
  scene.refuse = 1;
  const payloads = [new Uint8Array(LARGE), new Uint8Array([1, 2])];
  assert.equal(connection.submitBatch(payloads, 0, 2, {}, sink), undefined);
  await tickEnds();
  assert.deepEqual(told, ["error 1"]);
  assert.deepEqual(scene.events, [
    `REQUEST 1 (${LARGE} bytes)`,
    "REQUEST 2 (2 bytes)",
  ]);
  scene.deliver(replies([2]));
  await closing;
  assert.deepEqual(told, ["error 1", "reply 2"]);
  assert.deepEqual(scene.events.slice(2), ["GOODBYE", "close"]);
  assert.equal(await connection.closed, undefined, "a graceful close");
});
