// A connection coalesces the frames of one tick and hands them to the
// socket in a microtask. A request whose frame was still waiting for that
// flush when it failed never left the client: its error must say
// `sent: false`, so that even a request that is not idempotent may be
// retried, and its frame must never be written afterwards. A frame already
// handed to the socket keeps `sent: true`.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Clock, TimerHandle } from "../src/clock.ts";
import { Connection } from "../src/connection/connection.ts";
import { DIRECT_PAYLOAD_BYTES } from "../src/connection/frame_writer.ts";
import {
  AbortedError,
  ConnectionLostError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, RemoteErrorCode } from "../src/protocol/messages.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";
import { drive } from "./support/fault_harness.ts";
import { memoryScene } from "./support/memory_scene.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();

/**
 * A channel under the test's control: it records every frame written (by
 * type and sequence), and the test delivers bytes or a close to the
 * connection whenever it likes, synchronously.
 */
function scriptedChannel() {
  const frames: Array<[type: number, sequence: number]> = [];
  let onData: (chunk: Uint8Array) => void = () => {};
  let onClose: (error?: Error) => void = () => {};
  const decoder = new MessageCodec(1 << 24);
  const channel = stubChannel({
    onData: (fn) => (onData = fn),
    onClose: (fn) => (onClose = fn),
    write(bytes) {
      decoder.decode(bytes.slice(), (m) => frames.push([m.type, m.sequence]));
      return true;
    },
  });
  return {
    channel,
    /** Sequence numbers of the REQUEST and PING frames written so far. */
    written: () =>
      frames
        .filter(([type]) =>
          type === MessageType.Request || type === MessageType.Ping
        )
        .map(([, sequence]) => sequence),
    /** The node sends `type` with `sequence` and `payload`. */
    deliver(
      type: number,
      sequence: number,
      payload: Uint8Array = new Uint8Array(0),
    ) {
      onData(codec.encode({ type, flags: 0, sequence, payload }));
    },
    /** Raw bytes from the node. */
    deliverBytes: (bytes: Uint8Array) => onData(bytes),
    /** The socket closes under the connection, with `error` if it broke. */
    close: (error?: Error) => onClose(error),
  };
}

type Fake = ReturnType<typeof scriptedChannel>;

/** A macrotask: every microtask (a scheduled flush) has run by then. */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

const failure = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail("expected the request to fail"),
    (e: unknown) => e,
  );

/** Every way a connection can end in the same run as a submit. */
const endings: Array<[string, (c: Connection, fake: Fake) => void]> = [
  ["destroy(error)", (c) => c.destroy(new Error("test: gone"))],
  ["destroy() without an error", (c) => c.destroy()],
  [
    "the channel erroring",
    (_c, fake) => fake.close(new Error("read ECONNRESET")),
  ],
  ["the peer closing", (_c, fake) => fake.close()],
  [
    "close() cut short by the peer closing",
    (c, fake) => {
      c.close();
      fake.close();
    },
  ],
  [
    "the node's GOODBYE, then its close",
    (_c, fake) => {
      fake.deliver(MessageType.Goodbye, 0);
      fake.close();
    },
  ],
  [
    "a protocol violation by the node",
    (_c, fake) => fake.deliverBytes(new Uint8Array(16).fill(0xee)),
  ],
  [
    "the node's ERROR for the whole connection",
    (_c, fake) =>
      fake.deliver(
        MessageType.Error,
        0,
        encodeError({
          code: RemoteErrorCode.Unavailable,
          message: "going away",
          retryable: true,
        }),
      ),
  ],
];

for (const [how, end] of endings) {
  test(`${how} in the same run as a submit: unflushed requests fail as never sent, written ones as sent, and nothing is written after`, async () => {
    const fake = scriptedChannel();
    const c = new Connection(fake.channel, { hostname: "fake", port: 1 });
    // Written in an earlier tick: handed to the socket.
    const written = failure(c.sendRequest(ops.echo("early")));
    const writtenSafe = failure(
      c.sendRequest(ops.echo("early, idempotent"), { idempotent: true }),
    );
    await turn();
    assert.deepEqual(fake.written(), [1, 2]);
    // Encoded in this run, not flushed yet: never handed to the socket.
    const plain = failure(c.sendRequest(ops.echo("late")));
    const safe = failure(
      c.sendRequest(ops.echo("late, idempotent"), { idempotent: true }),
    );
    const ping = failure(c.ping());
    end(c, fake);
    const [w, ws, p, s, g] = await Promise.all([
      written,
      writtenSafe,
      plain,
      safe,
      ping,
    ]);
    for (const e of [w, ws, p, s, g]) {
      assert.ok(e instanceof ConnectionLostError, String(e));
    }
    const lost = [w, ws, p, s, g] as ConnectionLostError[];
    assert.deepEqual(
      lost.map((e) => [e.sent, e.retryable]),
      [[true, false], [true, true], [false, true], [false, true], [
        false,
        true,
      ]],
      "sent only what reached the socket; retryable unless sent and not idempotent",
    );
    await turn();
    assert.deepEqual(
      fake.written(),
      [1, 2],
      "a frame reported as never sent is never written",
    );
  });
}

test("a large payload is handed to the socket at once, with everything encoded before it: those count as sent when the connection ends in the same run", async () => {
  const fake = scriptedChannel();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 });
  const before = failure(c.sendRequest(ops.echo("small")));
  const large = failure(
    c.sendRequest(ops.echo(new Uint8Array(DIRECT_PAYLOAD_BYTES))),
  );
  const after = failure(c.sendRequest(ops.echo("small again")));
  c.destroy(new Error("test: gone"));
  const errors = await Promise.all([before, large, after]);
  assert.deepEqual(
    errors.map((e) => e instanceof ConnectionLostError && e.sent),
    [true, true, false],
  );
  await turn();
  assert.deepEqual(fake.written(), [1, 2]);
});

test("a run of a batch ended in the same tick fails as never sent, one by one", async () => {
  const fake = scriptedChannel();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 });
  const outcomes: Array<[number, unknown]> = [];
  const sink = {
    first: 0,
    onReply: () => assert.fail("no reply expected"),
    onError: (error: Error, sequence?: number) =>
      outcomes.push([sequence!, error]),
  };
  assert.equal(
    c.submitBatch(
      [ops.echo("a"), ops.echo("b"), ops.echo("c")],
      0,
      3,
      {},
      sink,
    ),
    undefined,
  );
  fake.close(new Error("read ECONNRESET"));
  await turn();
  assert.deepEqual(
    outcomes.map(([sequence, e]) => [
      sequence,
      e instanceof ConnectionLostError && e.sent,
      e instanceof ConnectionLostError && e.retryable,
    ]),
    [[1, false, true], [2, false, true], [3, false, true]],
  );
  assert.deepEqual(fake.written(), []);
});

/** A clock whose timers the test fires itself, synchronously. */
function manualClock() {
  let now = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  let nextId = 1;
  const clock: Clock = {
    now: () => now,
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle: TimerHandle): void {
      timers.delete(handle as number);
    },
  };
  return {
    clock,
    /** Moves time to `to` and fires what is due, in this very run. */
    advanceTo(to: number) {
      now = to;
      for (const [id, timer] of [...timers]) {
        if (timer.at <= now) {
          timers.delete(id);
          timer.fn();
        }
      }
    },
  };
}

test("a request that times out before its frame was flushed fails as never sent, and its frame is not written", async () => {
  const fake = scriptedChannel();
  const time = manualClock();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 }, {
    clock: time.clock,
    requestTimeoutMs: 100,
  });
  const early = failure(c.sendRequest(ops.echo("early")));
  await turn();
  const late = failure(c.sendRequest(ops.echo("late")));
  const kept = c.sendRequest(ops.echo("kept"), { timeoutMs: 1000 });
  time.advanceTo(100);
  const [e, l] = await Promise.all([early, late]);
  assert.ok(e instanceof RequestTimeoutError && e.sent && !e.retryable);
  assert.ok(
    l instanceof RequestTimeoutError && !l.sent && l.retryable,
    String(l),
  );
  await turn();
  assert.deepEqual(fake.written(), [1, 3], "the late frame was taken back");
  c.destroy();
  await assert.rejects(
    kept,
    (e: unknown) =>
      e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
      e.message === "connection to fake:1 lost: destroyed by this client",
  );
});

test("a request aborted before its frame was flushed is never written; the others in the same flush are", async () => {
  const fake = scriptedChannel();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 });
  const abort = new AbortController();
  const first = c.sendRequest(ops.echo("first"));
  const aborted = failure(
    c.sendRequest(ops.echo("aborted"), { signal: abort.signal }),
  );
  const third = c.sendRequest(ops.echo("third"));
  abort.abort();
  assert.ok((await aborted) instanceof AbortedError);
  await turn();
  assert.deepEqual(fake.written(), [1, 3]);
  fake.deliver(MessageType.Response, 1, ops.echo("one"));
  fake.deliver(MessageType.Response, 3, ops.echo("three"));
  await Promise.all([first, third]);
  c.destroy();
});

test("a request a route still holds when it times out or aborts is taken back from it and fails as never sent; one the route sent counts as sent", async () => {
  const fake = scriptedChannel();
  const time = manualClock();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 }, {
    clock: time.clock,
    requestTimeoutMs: 100,
  });
  // A route that holds what it is given until the test says it went out.
  const held: number[] = [];
  const withdrawn: number[] = [];
  c.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send: (_type, _flags, sequence) => void held.push(sequence),
    withdraw(sequence) {
      withdrawn.push(sequence);
      const at = held.indexOf(sequence);
      if (at >= 0) held.splice(at, 1);
      return at >= 0;
    },
    close: () => new Set(held),
  });
  const abort = new AbortController();
  const kept = failure(c.sendRequest(ops.echo("kept")));
  const out = failure(c.sendRequest(ops.echo("out")));
  const aborted = failure(
    c.sendRequest(ops.echo("aborted"), { signal: abort.signal }),
  );
  assert.deepEqual(held, [1, 2, 3]);
  abort.abort();
  assert.ok((await aborted) instanceof AbortedError);
  assert.deepEqual(held, [1, 2], "the aborted one was taken back");
  held.splice(held.indexOf(2), 1); // 2 goes out
  time.advanceTo(100);
  const [k, o] = await Promise.all([kept, out]);
  assert.ok(k instanceof RequestTimeoutError && !k.sent && k.retryable);
  assert.ok(o instanceof RequestTimeoutError && o.sent && !o.retryable);
  assert.deepEqual(held, []);
  assert.deepEqual(withdrawn.sort(), [1, 2, 3]);
  assert.deepEqual(fake.written(), [], "nothing went by the stream");
  c.destroy();
});

test("a request the client sent into a connection destroyed in the same run is retried on the other node, though not idempotent, and runs once", async () => {
  await memoryScene(2, {}, async ({ client, nodes, clock }) => {
    const retries: unknown[] = [];
    client.addEventListener("retry", (e) => retries.push(e.detail.error));
    const request = client.request(ops.echo("once"));
    const [connection] = client.manager.nodes
      .flatMap((node) => node.pool.connections())
      .filter((conn) => conn.inFlight === 1);
    assert.ok(connection, "the request went to a connection at once");
    connection.destroy(new Error("test: reset"));
    const reply = await drive(clock, request);
    assert.equal(replyText(reply), "once");
    const other = decodeReply(reply).nodeId;
    assert.equal(retries.length, 1);
    const [error] = retries;
    assert.ok(error instanceof ConnectionLostError && !error.sent);
    assert.deepEqual(
      nodes.map((node) => node.stats.requests),
      nodes.map((node) => node.nodeId === other ? 1 : 0),
      "executed once, by the other node",
    );
  });
});
