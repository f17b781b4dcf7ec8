// A /core caller's sink that is no sink (undefined, a number, a function,
// an object without the method a reply is handed to): refused at the call
// with an InvalidArgumentError naming it, nothing sent. Before, the request
// went out and its reply threw a raw TypeError, reported as uncaught (or
// the refusal of a bad payload threw one at the call).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { BatchReplySink, ReplySink } from "../src/connection/types.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { replies } from "./support/reply_chunk.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { connectionOver, tickEnds } from "./support/stub_connection.ts";

/** A connection over a channel that counts its writes. */
function counted() {
  let deliver!: (chunk: Uint8Array) => void;
  const scene = { writes: 0 };
  const channel = stubChannel({
    onData: (fn) => void (deliver = fn),
    write: () => (scene.writes++, true),
  });
  const clock = new VirtualClock();
  const connection = connectionOver(channel, clock);
  return { connection, scene, deliver: (c: Uint8Array) => deliver(c), clock };
}

const NOT_SINKS: [string, unknown][] = [
  ["undefined", undefined],
  ["null", null],
  ["a number", 7],
  ["a function", () => {}],
  ["an object with other method names", {
    onResponse: () => {},
    onError: () => {},
  }],
];

/** Fails unless `error` refuses the sink by name, as `method`'s. */
function assertRefused(error: unknown, method: string): void {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.argument, "sink");
  assert.match(error.message, new RegExp(`${method}.*onReply`));
}

for (const [what, sink] of NOT_SINKS) {
  test(`submitRequest with ${what} for a sink throws an InvalidArgumentError at the call, and sends nothing`, async () => {
    const { connection, scene, deliver, clock } = counted();
    for (const payload of [ops.echo("x"), "no payload"]) {
      assert.throws(
        () =>
          connection.submitRequest(
            payload as Uint8Array,
            undefined,
            sink as ReplySink,
          ),
        (error) => (assertRefused(error, "submitRequest"), true),
      );
    }
    await tickEnds();
    // Before: the request went out (and its reply threw, as uncaught).
    assert.equal(scene.writes, 0);
    assert.equal(connection.inFlight, 0);
    deliver(replies([1]));
    assert.equal(connection.stats.sent, 0);
    connection.destroy();
    assert.equal(clock.pendingTimers, 0);
  });

  test(`submitBatch with ${what} for a sink returns an InvalidArgumentError, and sends nothing`, async () => {
    const { connection, scene } = counted();
    const target = typeof sink === "object" && sink !== null
      ? { first: 0, ...sink }
      : sink;
    const refused = connection.submitBatch(
      [ops.echo("a"), ops.echo("b")],
      0,
      2,
      {},
      target as BatchReplySink,
    );
    assert.ok(refused instanceof InvalidArgumentError, String(refused));
    assert.equal(refused.argument, "sink");
    await tickEnds();
    assert.equal(scene.writes, 0);
    assert.equal(connection.inFlight, 0);
    connection.destroy();
  });
}

test("a batch sink without onError is refused too (a run's item may fail alone, through it)", async () => {
  const { connection, scene } = counted();
  const sink = { first: 0, onReply: () => {} };
  const refused = connection.submitBatch(
    [ops.echo("a")],
    0,
    1,
    {},
    sink as unknown as BatchReplySink,
  );
  assert.ok(refused instanceof InvalidArgumentError, String(refused));
  assert.match(refused.message, /onError/);
  await tickEnds();
  assert.equal(scene.writes, 0);
  connection.destroy();
});

test("a good sink still takes its reply, and a good batch sink its replies", async () => {
  const { connection, deliver } = counted();
  const got: unknown[] = [];
  connection.submitRequest(ops.echo("x"), undefined, {
    onReply: (payload) => got.push(payload.length),
    onError: (error) => got.push(error),
  });
  const sink: BatchReplySink = {
    first: 0,
    onReply: (_payload, sequence) => got.push(`item ${sequence}`),
    onError: (error) => got.push(error),
  };
  assert.equal(
    connection.submitBatch([ops.echo("a")], 0, 1, {}, sink),
    undefined,
  );
  await tickEnds();
  deliver(replies([1, 2]));
  assert.deepEqual(got, [1, "item 2"]);
  connection.destroy();
});

test("submitRequest with a sink whose onReply cannot be read (a revoked proxy, a getter that throws) throws an InvalidArgumentError at the call, as submitBatch returns one, and sends nothing", async () => {
  const { connection, scene, clock } = counted();
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const throwing = Object.defineProperty({ onError: () => {} }, "onReply", {
    get() {
      throw new Error("onReply getter trap");
    },
  });
  for (const sink of [proxy, throwing]) {
    // Before: the revoked proxy's raw TypeError, the getter's own Error.
    assert.throws(
      () =>
        connection.submitRequest(
          ops.echo("x"),
          undefined,
          sink as ReplySink,
        ),
      (error) => {
        assertRefused(error, "submitRequest");
        assert.match((error as Error).message, /could not be read/);
        return true;
      },
    );
  }
  await tickEnds();
  assert.equal(scene.writes, 0);
  assert.equal(connection.inFlight, 0);
  connection.destroy();
  assert.equal(clock.pendingTimers, 0);
});

test("submitRequest with a sink that has onReply but no onError throws an InvalidArgumentError naming onError at the call, and sends nothing", async () => {
  const { connection, scene, clock } = counted();
  const sink = { onReply: () => {} } as unknown as ReplySink;
  for (const payload of [ops.echo("x"), "no payload"]) {
    // Before: the request went out, and its failure (here the destroy
    // below) threw a raw TypeError as uncaught; a bad payload's refusal
    // threw one at the call.
    assert.throws(
      () => connection.submitRequest(payload as Uint8Array, undefined, sink),
      (error) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, "sink");
        assert.match(error.message, /submitRequest.*onError/);
        return true;
      },
    );
  }
  await tickEnds();
  assert.equal(scene.writes, 0);
  assert.equal(connection.inFlight, 0);
  connection.destroy();
  assert.equal(clock.pendingTimers, 0);
});
