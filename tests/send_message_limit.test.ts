// Connection.sendMessage refuses a payload over its send limit, the lower
// of the connection's own maxFrameSize and the node's frame limit; the
// message names which one, as a request's refusal (payloadTooLarge) does,
// since only the first is the caller's to raise. Over the in-memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { ProtocolError } from "../src/errors.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";

async function refusal(own: number, node: number, size: number) {
  const network = createMemoryNetwork();
  const server = await startTestNode({ runtime: network, maxFrameSize: node });
  const connection = await Connection.connect({
    adapter: network,
    hostname: "127.0.0.1",
    port: server.port,
    maxFrameSize: own,
  });
  try {
    connection.sendMessage(MessageType.Ping, new Uint8Array(size));
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await connection.close();
    await server.close();
  }
}

test("sendMessage over the connection's own maxFrameSize says so, not that the node's limit was exceeded", async () => {
  const error = await refusal(2048, 8192, 3000);
  assert.ok(error instanceof ProtocolError, String(error));
  assert.match(error.message, /3000 bytes/);
  assert.match(error.message, /maxFrameSize/);
  assert.match(error.message, /2048/);
  assert.doesNotMatch(error.message, /node/);
});

test("sendMessage over the node's frame limit, below the connection's maxFrameSize, names the node's limit and the connection's", async () => {
  const error = await refusal(8192, 2048, 3000);
  assert.ok(error instanceof ProtocolError, String(error));
  assert.match(error.message, /3000 bytes/);
  assert.match(error.message, /the node's frame limit of 2048/);
  assert.match(error.message, /below maxFrameSize 8192/);
});
