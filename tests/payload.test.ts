// A payload must be a Uint8Array (issue 12, defect 1). Anything else is an
// InvalidArgumentError before any state changes, at Client.request and at
// the /core Connection: a string once left the connection's write offset at
// NaN, so the connection still reported open while every later request on
// it timed out; a Uint16Array was sent as the wrong bytes and "succeeded".
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Client } from "../src/client/client.ts";
import { Connection } from "../src/connection/connection.ts";
import { InvalidArgumentError, NodewireError } from "../src/errors.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { within } from "./support/within.ts";

const echo = ops.echo("hi");

/** Wrong payloads, each with what it is. */
function wrongPayloads(): [string, unknown][] {
  return [
    ["a string", "hello"],
    ["an empty string", ""],
    ["a number", 42],
    ["an array", [1, 104, 105]],
    ["an ArrayBuffer", echo.slice().buffer],
    ["a DataView", new DataView(echo.slice().buffer)],
    ["a Uint16Array", new Uint16Array([0x6801, 0x0069])],
    ["an Int8Array", new Int8Array(echo)],
    ["a Uint8ClampedArray", new Uint8ClampedArray(echo)],
    ["null", null],
    ["undefined", undefined],
    ["an object", { byteLength: 3 }],
    ["an object with the prototype", Object.create(Uint8Array.prototype)],
    ["a proxy of a Uint8Array", new Proxy(echo.slice(), {})],
  ];
}

function isPayloadError(method: string | undefined) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.argument, "payload");
    assert.equal(error.retryable, false);
    assert.match(error.message, /expected a Uint8Array/);
    if (method) assert.match(error.message, new RegExp(`^${method}: `));
    return true;
  };
}

for (const [what, payload] of wrongPayloads()) {
  test(`Client.request refuses ${what} as a payload, and the shared connection keeps working`, async () => {
    const node = await startTestNode();
    // One connection, so a broken one would be the one every request uses.
    const client = await Client.connect({
      hosts: [node.address],
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 1, maxConnections: 1 },
      requestTimeoutMs: 5000,
    });
    try {
      assert.equal(replyText(await client.request(echo)), "hi");
      const [connection] = client.manager.nodes[0].pool.connections();
      const sent = connection.stats.sent;
      const before = client.stats();
      await assert.rejects(
        within(1000, "request", client.request(payload as Uint8Array)),
        isPayloadError("Client.request"),
      );
      const after = client.stats();
      // Refused at the door: no attempt, no count, no node touched, no
      // byte written.
      assert.equal(after.inFlight, 0);
      assert.equal(after.failed, before.failed);
      assert.equal(after.nodes[0].inFlight, 0);
      assert.equal(after.nodes[0].healthy, true);
      assert.equal(connection.stats.sent, sent);
      // The next requests on the same connection are answered at once.
      for (let i = 0; i < 3; i++) {
        assert.equal(
          replyText(
            await within(1000, "request", client.request(ops.echo(what))),
          ),
          what,
        );
      }
      assert.equal(connection.stats.sent, sent + 3);
    } finally {
      await client.disconnect();
      await node.close();
    }
  });
}

test("a Node Buffer and a subarray view are Uint8Arrays and are sent as their own bytes", async () => {
  const node = await startTestNode();
  const client = await Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0 },
  });
  try {
    const buffer = Buffer.from(ops.echo("buffer"));
    assert.equal(replyText(await client.request(buffer)), "buffer");
    const framed = new Uint8Array([9, 9, ...ops.echo("view"), 9]);
    assert.equal(
      replyText(await client.request(framed.subarray(2, framed.length - 1))),
      "view",
    );
  } finally {
    await client.disconnect();
    await node.close();
  }
});

for (const [what, payload] of wrongPayloads()) {
  test(`Connection.sendRequest and submitRequest refuse ${what} before anything is queued`, async () => {
    const node = await startTestNode();
    const connection = await Connection.connect({
      adapter: await getAdapter(),
      hostname: node.hostname,
      port: node.port,
      requestTimeoutMs: 5000,
    });
    try {
      await assert.rejects(
        within(
          1000,
          "sendRequest",
          connection.sendRequest(payload as Uint8Array),
        ),
        isPayloadError(undefined),
      );
      // The error goes to the sink, here at once; nothing is pending.
      const outcomes: unknown[] = [];
      connection.submitRequest(payload as Uint8Array, undefined, {
        onReply: (reply) => outcomes.push(reply),
        onError: (error) => outcomes.push(error),
      });
      assert.equal(outcomes.length, 1);
      isPayloadError(undefined)(outcomes[0]);
      assert.throws(
        () => connection.sendMessage(0x10, payload as Uint8Array),
        isPayloadError(undefined),
      );
      assert.equal(connection.stats.sent, 0);
      assert.equal(connection.inFlight, 0);
      assert.equal(connection.bufferedAmount, 0);
      assert.equal(connection.isOpen, true);
      assert.equal(
        replyText(
          await within(
            1000,
            "sendRequest",
            connection.sendRequest(ops.echo(what)),
          ),
        ),
        what,
      );
    } finally {
      await connection.close();
      await node.close();
    }
  });
}

test("a payload error is never retried and never counted against the node", async () => {
  const node = await startTestNode();
  const client = await Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0, unhealthyThreshold: 1 },
  });
  try {
    let retries = 0;
    client.addEventListener("retry", () => retries++);
    const error = await client.request("x" as never, { idempotent: true })
      .catch((e) => e);
    assert.ok(error instanceof NodewireError);
    assert.equal(retries, 0);
    assert.equal(client.stats().nodes[0].healthy, true);
    assert.equal(client.stats().nodes[0].consecutiveFailures, 0);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a Connection refuses a bad timeoutMs or signal given straight to it, before recording anything", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const connection = await Connection.connect({
    adapter: network,
    hostname: node.hostname,
    port: node.port,
  });
  try {
    for (
      const options of [
        { timeoutMs: NaN },
        { timeoutMs: -1 },
        { timeoutMs: 3e9 },
        { timeoutMs: "100" },
        { signal: {} },
        { signal: "abort" },
      ]
    ) {
      await assert.rejects(
        connection.sendRequest(ops.echo(), options as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.argument.startsWith("options."),
        JSON.stringify(options),
      );
    }
    assert.equal(connection.inFlight, 0);
    assert.equal(connection.stats.sent, 0);
    assert.ok(await connection.sendRequest(ops.echo()));
  } finally {
    await connection.close();
    await node.close();
  }
});
