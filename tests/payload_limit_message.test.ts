// The refusal of a payload over the frame limit reads like the client's
// other argument errors: it names the method called, and it says whose
// limit it is, the client's own maxFrameSize or the node's lower one, since
// only the first is the caller's to raise. On the virtual clock over the
// in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
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
