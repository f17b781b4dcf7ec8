// A reference node stopped gracefully says GOODBYE and then answers what
// the client sent before it read the GOODBYE: closing the stream at once
// lost such a request on its way, and the client could not tell whether it
// ran. A raw client on the memory network, on a virtual clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { NodeSession, type SessionHost } from "../testing/node_session.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { waitFor } from "./support/udp_scene.ts";

interface RawSession {
  channel: ByteChannel;
  received: Message[];
  closed(): boolean;
  send(type: number, sequence: number, payload: Uint8Array): void;
}

async function greeted(
  node: TestNode,
  network: ReturnType<typeof createMemoryNetwork>,
): Promise<RawSession> {
  const channel = await network.connect({
    hostname: "127.0.0.1",
    port: node.port,
  });
  const codec = new MessageCodec();
  const received: Message[] = [];
  let closed = false;
  channel.onData((chunk) => codec.decode(chunk, (m) => void received.push(m)));
  channel.onClose(() => closed = true);
  const session: RawSession = {
    channel,
    received,
    closed: () => closed,
    send: (type, sequence, payload) =>
      void channel.write(codec.encode({ type, flags: 0, sequence, payload })),
  };
  session.send(
    MessageType.Hello,
    1,
    encodeJson({ version: 1, client: "raw", maxFrameSize: 1 << 20 }),
  );
  await waitFor(() => received.length === 1, "HELLO_OK");
  assert.equal(received[0].type, MessageType.HelloOk);
  return session;
}

/** The text an ECHO or SLEEP reply carries. */
function echoed(reply: Message): string {
  return replyText(reply.payload);
}

test("a node stopped gracefully answers a request sent before the client read its GOODBYE, and closes the stream once the client has (or a second later)", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  try {
    const a = await greeted(node, network);
    const b = await greeted(node, network);
    await node.stop({ graceful: true });
    // Both were idle: before, their streams closed with the GOODBYE.
    a.send(MessageType.Request, 2, ops.echo("on its way"));
    b.send(MessageType.Request, 2, ops.echo("also on its way"));
    await waitFor(
      () => a.received.length >= 3 || a.closed(),
      "a's reply or its stream's close",
    );
    assert.deepEqual(
      a.received.slice(1).map((m) => m.type),
      [MessageType.Goodbye, MessageType.Response],
    );
    assert.equal(echoed(a.received[2]), "on its way");
    assert.equal(a.closed(), false);
    // The client closes once its replies came: the node's side follows.
    a.channel.close();
    await waitFor(() => node.stats.open === 1, "a's session to end");
    // b ignores the GOODBYE: its stream stays open for the window only.
    await waitFor(() => b.received.length >= 3, "b's reply");
    assert.equal(echoed(b.received[2]), "also on its way");
    await clock.advance(999);
    assert.equal(b.closed(), false);
    await clock.advance(1);
    await waitFor(() => b.closed(), "b's stream to close after the window");
    assert.equal(node.stats.open, 0);
    assert.equal(clock.pendingTimers, 0);
  } finally {
    await node.close();
  }
});

test("a node stopped gracefully still finishes work that outlasts the GOODBYE window before it closes the stream", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  try {
    const s = await greeted(node, network);
    s.send(MessageType.Request, 2, ops.sleep(5_000, "slow"));
    await waitFor(() => clock.pendingTimers === 1, "the SLEEP to start");
    await node.stop({ graceful: true });
    await clock.advance(1_000);
    assert.equal(s.closed(), false, "closed with a SLEEP in flight");
    await clock.advance(4_000);
    await waitFor(() => s.closed(), "the stream to close after the SLEEP");
    assert.deepEqual(
      s.received.slice(1).map((m) => m.type),
      [MessageType.Goodbye, MessageType.Response],
    );
    assert.equal(echoed(s.received[2]), "slow");
  } finally {
    await node.close();
  }
});

test("a node stopped gracefully again, one stop after another or two at once, sends a session still open no second GOODBYE", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  try {
    const s = await greeted(node, network);
    // In flight: the stream stays open through every stop below.
    s.send(MessageType.Request, 2, ops.sleep(5_000, "slow"));
    await waitFor(() => clock.pendingTimers === 1, "the SLEEP to start");
    await node.stop({ graceful: true });
    await node.stop({ graceful: true });
    await Promise.all([
      node.stop({ graceful: true }),
      node.stop({ graceful: true }),
    ]);
    await clock.advance(5_000);
    await waitFor(() => s.closed(), "the stream to close after the SLEEP");
    assert.deepEqual(
      s.received.slice(1).map((m) => m.type),
      [MessageType.Goodbye, MessageType.Response],
    );
  } finally {
    await node.close();
  }
});

test("after a graceful stop's window, a last reply that went by datagram gets the stream one more window before it closes (the reply may still be on its way)", async () => {
  const clock = new VirtualClock();
  let closes = 0;
  const channel = stubChannel({ onData: () => {}, close: () => void closes++ });
  const host = {
    clock,
    maxFrameSize: 1 << 20,
    drop: () => {},
  } as unknown as SessionHost;
  const session = new NodeSession(host, channel);
  session.inFlight = 1; // a SLEEP that came by datagram
  session.sayGoodbye(1_000);
  await clock.advance(1_000);
  assert.equal(closes, 0, "closed with a SLEEP in flight");
  session.inFlight = 0;
  session.closeIfDrained(true);
  assert.equal(closes, 0, "closed before the datagram reply could arrive");
  await clock.advance(999);
  assert.equal(closes, 0);
  await clock.advance(1);
  assert.equal(closes, 1, "a client that ignores GOODBYE is closed after all");
  assert.equal(clock.pendingTimers, 0);
});

test("a session dropped after a graceful stop's window, whose last SLEEP then ends with a reply by datagram, arms no further window: a timer outlived the session and closed its channel again a second later", async () => {
  const clock = new VirtualClock();
  let closes = 0;
  const channel = stubChannel({ onData: () => {}, close: () => void closes++ });
  const host = {
    clock,
    maxFrameSize: 1 << 20,
    drop: () => {},
  } as unknown as SessionHost;
  const session = new NodeSession(host, channel);
  session.inFlight = 1; // a SLEEP that came by datagram
  session.sayGoodbye(1_000);
  await clock.advance(1_000);
  assert.equal(closes, 0, "closed with a SLEEP in flight");
  // The client closes its stream; the SLEEP goes on and then ends.
  session.drop();
  session.inFlight = 0;
  session.closeIfDrained(true);
  assert.equal(clock.pendingTimers, 0, "a window armed for a dropped session");
  await clock.advance(1_000);
  assert.equal(closes, 0, "the dropped session's channel closed again");
});
