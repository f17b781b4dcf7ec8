// The refusal of a payload over the frame limit reads like the client's
// other argument errors: it names the method called, and it says whose
// limit it is, the client's own maxFrameSize or the node's lower one, since
// only the first is the caller's to raise. On the virtual clock over the
// in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError, RetriesExhaustedError } from "../src/errors.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { settle, settledWithin } from "./support/fault_checks.ts";
import { memoryScene } from "./support/memory_scene.ts";

/** What `promise` rejected with; fails the test when it fulfilled. */
async function refusal(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    () => assert.fail("expected a refusal"),
    (error: unknown) => error,
  );
  assert.ok(outcome instanceof InvalidArgumentError, String(outcome));
  assert.equal(outcome.argument, "payload");
  return outcome;
}

test("Client.request refuses a payload over its own maxFrameSize naming itself and the setting, not the node's limit", async () => {
  await memoryScene(1, { maxFrameSize: 2048 }, async ({ client }) => {
    const error = await refusal(client.request(new Uint8Array(4096)));
    assert.equal(
      error.message,
      "Client.request: invalid payload: expected at most 2048 bytes " +
        "(maxFrameSize), got 4096",
    );
  });
});

test("Client.request refuses a payload over a node's lower limit naming the node's limit and the client's maxFrameSize above it", async () => {
  await memoryScene(1, {}, async ({ client }) => {
    const error = await refusal(client.request(new Uint8Array(4096)));
    assert.equal(
      error.message,
      "Client.request: invalid payload: expected at most 1024 bytes " +
        "(the node's frame limit, below maxFrameSize 16777216), got 4096",
    );
  }, { maxFrameSize: 1024 });
});

test("Client.requestMany refuses an item over maxFrameSize naming itself; the other items are sent", async () => {
  await memoryScene(1, { maxFrameSize: 2048 }, async ({ client }) => {
    const [big, small] = await client.requestMany([
      new Uint8Array(4096),
      new Uint8Array([1]),
    ]);
    assert.ok(!big.ok && big.error instanceof InvalidArgumentError);
    assert.equal(
      big.error.message,
      "Client.requestMany: invalid payload: expected at most 2048 bytes " +
        "(maxFrameSize), got 4096",
    );
    assert.ok(small.ok, String(!small.ok && small.error));
  });
});

test("Client.requestMany names itself when its items go as requests of their own (hedging on): it named Client.request", async () => {
  await memoryScene(
    2,
    { maxFrameSize: 2048, hedging: true },
    async ({ client }) => {
      const [big] = await client.requestMany([new Uint8Array(4096)], {
        idempotent: true,
      });
      assert.ok(!big.ok && big.error instanceof InvalidArgumentError);
      assert.equal(
        big.error.message,
        "Client.requestMany: invalid payload: expected at most 2048 bytes " +
          "(maxFrameSize), got 4096",
      );
    },
  );
});

test("Client.requestMany names itself when an item's retry is refused by a node with a lower frame limit: it named Client.request", async () => {
  await memoryScene(1, {}, async ({ client, clock, network }) => {
    // n0 takes the item (16 MiB) and times it out; the retry goes to the
    // node added meanwhile, whose 1024-byte limit refuses it.
    const small = await startTestNode({
      nodeId: "small",
      runtime: network,
      clock,
      maxFrameSize: 1024,
    });
    try {
      const item = ops.sleep(60_000, new Uint8Array(2000));
      const batch = client.requestMany([item], {
        idempotent: true,
        timeoutMs: 100,
      });
      await settle(clock);
      await client.addNode(small.address);
      assert.ok(await settledWithin(clock, batch, 1_000), "the batch settled");
      const [result] = await batch;
      assert.ok(!result.ok);
      const refusal = result.error instanceof RetriesExhaustedError
        ? result.error.cause
        : result.error;
      assert.ok(refusal instanceof InvalidArgumentError, String(refusal));
      assert.equal(
        refusal.message,
        `Client.requestMany: invalid payload: expected at most 1024 bytes ` +
          `(the node's frame limit, below maxFrameSize 16777216), got ${item.length}`,
      );
    } finally {
      await small.close();
    }
  });
});
