// The reference node's side of negotiation as a hostile client drives it
// (the review of testing/node_session.ts): frames sent in plaintext behind
// a NEGOTIATE that chooses TLS, in the same write. Loopback TCP.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { pem } from "./helpers.ts";
import { waitFor } from "./support/udp_scene.ts";

test("a reference node never serves a frame that came in plaintext behind the NEGOTIATE that chose TLS: a REQUEST in the same write was answered in plaintext before the TLS handshake (a STARTTLS injection), now the client is dropped", async () => {
  const node = await startTestNode({
    protocols: ["tls"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
    // The node's TLS handshake limit never fires on its own.
    clock: new VirtualClock(),
  });
  const adapter = await getAdapter();
  const channel = await adapter.connect({
    hostname: "127.0.0.1",
    port: node.port,
  });
  const codec = new MessageCodec();
  const received: Message[] = [];
  let closed = false;
  channel.onData((chunk) => {
    // Past NEGOTIATE_OK the node may speak TLS: only frames before it count.
    try {
      codec.decode(chunk, (m) => void received.push(m));
    } catch {
      // TLS records are no frames.
    }
  });
  channel.onClose(() => closed = true);
  try {
    channel.write(codec.encode({
      type: MessageType.Hello,
      flags: 0,
      sequence: 1,
      payload: encodeJson({ version: 1, client: "c", maxFrameSize: 1 << 20 }),
    }));
    await waitFor(() => received.length === 1, "HELLO_OK");
    const negotiate = codec.encode({
      type: MessageType.Negotiate,
      flags: 0,
      sequence: 2,
      payload: encodeJson({ protocols: ["tls"] }),
    });
    const smuggled = codec.encode({
      type: MessageType.Request,
      flags: 0,
      sequence: 3,
      payload: ops.echo("in the clear"),
    });
    channel.write(new Uint8Array([...negotiate, ...smuggled]));
    await waitFor(
      () => closed || node.stats.requests > 0,
      "the node to drop the client or serve the request",
    );
    assert.equal(node.stats.requests, 0, "the smuggled REQUEST was served");
    assert.ok(!received.some((m) => m.type === MessageType.Response));
    assert.equal(node.stats.tlsHandshakes, 0);
  } finally {
    channel.destroy();
    await node.close();
  }
});
