// A request has exactly one outcome, also when the route it takes instead
// of the stream (a RequestRoute: the UDP transport's, or a /core caller's
// own) fails while sending it: its `send` throws, or it ends the connection
// from inside `send`, as the UDP route does when its socket cannot send.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import type {
  BatchReplySink,
  ReplySink,
  RequestRoute,
} from "../src/connection/types.ts";
import { DIRECT_PAYLOAD_BYTES } from "../src/connection/frame_writer.ts";
import { ConnectionLostError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const TIMEOUT_MS = 100;

/** A connection over a channel that goes nowhere, on a virtual clock. */
function routed(send: RequestRoute["send"]) {
  const clock = new VirtualClock();
  const connection = new Connection(
    stubChannel({ onData: () => {} }),
    { hostname: "fake", port: 1 },
    { clock, requestTimeoutMs: TIMEOUT_MS },
  );
  connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send,
    close: () => {},
  });
  return { clock, connection };
}

/** Every outcome a sink was told, in order. */
function recordingSink(): ReplySink & { told: unknown[] } {
  const told: unknown[] = [];
  return {
    told,
    onReply: (payload) => void told.push(payload),
    onError: (error) => void told.push(error),
  };
}

const broken = new Error("test: the route's socket is gone");

test("a route whose send throws fails the request once, with a ConnectionLostError that carries what it threw, and ends the connection: the caller was thrown at and its sink later told of a timeout", async () => {
  const { clock, connection } = routed(() => {
    throw broken;
  });
  const sink = recordingSink();
  // Not thrown at the caller: the sink is the request's one outcome.
  connection.submitRequest(ops.echo("a"), undefined, sink);
  await clock.advance(TIMEOUT_MS * 2);
  assert.equal(sink.told.length, 1, `told ${sink.told.length} outcomes`);
  const [error] = sink.told;
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.match(error.message, /request route failed to send/);
  assert.equal(connection.isOpen, false);
  assert.equal(connection.stats.timedOut, 0, "no timeout counted after it");
  assert.equal(connection.inFlight, 0);
});

test("sendRequest over a route whose send throws rejects with the connection's loss, not the raw throw, and no timeout follows", async () => {
  const { clock, connection } = routed(() => {
    throw broken;
  });
  const outcome = connection.sendRequest(ops.echo("a")).then(
    () => assert.fail("expected a failure"),
    (error: unknown) => error,
  );
  await clock.advance(TIMEOUT_MS * 2);
  const error = await outcome;
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.equal(error.cause, broken);
  assert.match(error.message, /request route failed to send/);
  assert.equal(connection.stats.timedOut, 0);
});

for (
  const [how, send] of [
    [
      "throws",
      () => {
        throw broken;
      },
    ],
    [
      "ends the connection from inside send (as the UDP route does when its socket cannot send)",
      undefined,
    ],
  ] as const
) {
  test(`a batch run over a route that ${how} fails every request of the run once: none is thrown at the caller, none is left in a closed connection's table for ever`, async () => {
    const held: { connection?: Connection } = {};
    const scene = routed(
      send ??
        (() => held.connection!.destroy(new Error("test: its socket broke"))),
    );
    const connection = held.connection = scene.connection;
    const told = new Map<number, unknown[]>();
    const sink: BatchReplySink = {
      first: 0,
      onReply: (payload, sequence) =>
        told.set(sequence!, [...told.get(sequence!) ?? [], payload]),
      onError: (error, sequence) =>
        told.set(sequence!, [...told.get(sequence!) ?? [], error]),
    };
    const payloads = [ops.echo("a"), ops.echo("b"), ops.echo("c")];
    const refused = connection.submitBatch(payloads, 0, 3, {}, sink);
    assert.equal(refused, undefined);
    await scene.clock.advance(TIMEOUT_MS * 2);
    assert.deepEqual(
      [...told.keys()].sort(),
      [sink.first, sink.first + 1, sink.first + 2],
      "every request of the run had its outcome",
    );
    for (const outcomes of told.values()) {
      assert.equal(outcomes.length, 1);
      assert.ok(outcomes[0] instanceof ConnectionLostError, String(outcomes));
    }
    assert.equal(connection.inFlight, 0);
    assert.equal(connection.isOpen, false);
  });
}

test("a batch run on a channel whose write throws midway (a custom adapter's) fails every request of the run once: the rest of the run was left in a closed connection's table for ever", async () => {
  const clock = new VirtualClock();
  let writes = 0;
  const connection = new Connection(
    stubChannel({
      onData: () => {},
      write() {
        // Payloads of 16 KiB or more are written as they are sent: the
        // second request's write fails inside the run.
        if (++writes > 2) throw new Error("test: the socket is gone");
        return true;
      },
    }),
    { hostname: "fake", port: 1 },
    { clock, requestTimeoutMs: TIMEOUT_MS },
  );
  const told = new Map<number, unknown[]>();
  const sink: BatchReplySink = {
    first: 0,
    onReply: (payload, sequence) =>
      told.set(sequence!, [...told.get(sequence!) ?? [], payload]),
    onError: (error, sequence) =>
      told.set(sequence!, [...told.get(sequence!) ?? [], error]),
  };
  const big = () => new Uint8Array(DIRECT_PAYLOAD_BYTES);
  const refused = connection.submitBatch([big(), big(), big()], 0, 3, {}, sink);
  assert.equal(refused, undefined);
  await clock.advance(TIMEOUT_MS * 2);
  assert.equal(told.size, 3, "every request of the run had its outcome");
  for (const outcomes of told.values()) {
    assert.equal(outcomes.length, 1);
    assert.ok(outcomes[0] instanceof ConnectionLostError, String(outcomes));
  }
  assert.equal(connection.inFlight, 0);
  assert.equal(connection.isOpen, false);
});
