// The reference node's UDP side as a user configures it (the review of
// testing/udp_service.ts): the smallest datagrams it takes. Loopback UDP.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RemoteError } from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { MIN_DATAGRAM_SIZE } from "../src/protocol/datagram.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { connectUdp } from "./support/udp_scene.ts";

test("a node whose datagrams are the smallest allowed answers a reply too large for them with an ERROR 8 that fits them, batching or not: the ERROR's own text did not fit, so a batching node threw from its socket's message handler, and one that does not batch sent a datagram over its limit", async () => {
  for (const udpBatch of [true, false]) {
    const node = await startTestNode({
      nodeId: "n1",
      protocols: ["udp"],
      udpPort: 0,
      udpBatch,
      udpMaxDatagramSize: MIN_DATAGRAM_SIZE,
    });
    const connection = await connectUdp(node);
    try {
      // A reply is the id's length, the id ("n1") and the data: 32 bytes
      // fill a datagram of 64.
      assert.equal(
        replyText(await connection.sendRequest(ops.echo("x".repeat(29)))),
        "x".repeat(29),
      );
      await assert.rejects(
        // A bound on the wait: the ERROR comes at once, or never.
        connection.sendRequest(ops.echo("z".repeat(40)), { timeoutMs: 2000 }),
        (error) => {
          assert.ok(error instanceof RemoteError, String(error));
          assert.equal(error.remoteCode, RemoteErrorCode.Unsupported);
          assert.match(error.message, /use TCP/);
          return true;
        },
        `udpBatch ${udpBatch}`,
      );
      assert.equal(node.udpStats!.oversized, 1);
    } finally {
      await connection.close();
      await node.close();
    }
  }
});
