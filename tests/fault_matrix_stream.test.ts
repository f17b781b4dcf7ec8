// The fault matrix, part 2: faults on an open connection, at the byte and
// frame level. Each test is one row and checks that every request settles
// once, in time and typed; that nothing escapes to the process; that
// retries happen only where safe; that the client recovers when the fault
// clears; and that nothing leaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { systemClock } from "../src/clock.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionLostError,
  type NodewireError,
  ProtocolError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { countChannels, CountingClock } from "./support/counting.ts";
import { eventually, Tracker, watchEscapes } from "./support/fault_harness.ts";
import { startScene } from "./support/fault_scene.ts";
import { assertClean, nodeOf, rowHealth, send } from "./helpers.ts";

const code = (t: { error: unknown }) => (t.error as NodewireError).code;

/** Idempotent for i % 4 in {0, 1}: with two nodes in strict turn, each gets both kinds. */
const mixed = (i: number) => i % 4 < 2;

test("row: a node silent after connect (half-open) — timeouts, idempotent retried elsewhere, node taken out, back when it answers", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 2,
    config: {
      requestTimeoutMs: 500,
      poolConfig: { minConnections: 1, maxConnections: 1 },
      retryConfig: { initialBackoffMs: 50 },
      healthConfig: rowHealth,
    },
  });
  await s.proxies[0].setFaults({ stall: true });
  const first = Array.from(
    { length: 20 },
    (_, i) => send(s, `silent-${i}`, { idempotent: mixed(i) }),
  );
  await s.run(Promise.all(first.map((t) => t.done)));
  const failed = first.filter((t) => !t.ok);
  assert.equal(failed.length, 5, "the non-idempotent half of n0's share");
  for (const t of failed) {
    assert.equal(code(t), "REQUEST_TIMEOUT");
    assert.equal(t.settledAt! - t.startedAt, 500, "exactly at its deadline");
  }
  assert.ok(first.filter((_, i) => mixed(i)).every((t) => t.ok));
  assert.equal(s.retries.length, 5, "only the idempotent ones were retried");
  assert.ok(
    s.retries.every((r) =>
      code({ error: r.detail.error }) === "REQUEST_TIMEOUT"
    ),
  );
  assert.ok(first.filter((t) => t.ok).every((t) => nodeOf(t) === "n1"));

  await s.pass(2500);
  assert.equal(
    s.client.stats().nodes[0].healthy,
    false,
    "found by the health loop",
  );
  const during = Array.from({ length: 6 }, (_, i) => send(s, `during-${i}`));
  await s.run(Promise.all(during.map((t) => t.done)));
  assert.ok(during.every((t) => t.ok && t.settledAt === t.startedAt));

  await s.proxies[0].clearFaults();
  await s.pass(2000);
  assert.equal(s.client.stats().nodes[0].healthy, true);
  const after = Array.from({ length: 6 }, (_, i) => send(s, `after-${i}`));
  await s.run(Promise.all(after.map((t) => t.done)));
  assert.ok(after.every((t) => t.ok));
  assert.ok(after.some((t) => nodeOf(t) === "n0"), "back in rotation");
  s.tracker.assertSettled(500 + 50 + 500);
  assertClean(await s.finish());
});

test("row: the node closes mid-frame — CONNECTION_LOST after send, retried only when idempotent; recovers", async () => {
  const s = await startScene({
    mode: "loopback",
    nodes: 2,
    config: {
      poolConfig: { minConnections: 1, maxConnections: 2 },
      retryConfig: { initialBackoffMs: 5 },
      // Keep n0 in rotation so the row sees every request it gets.
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
      // Requests take no node out here.
      outlierEjection: false,
    },
  });
  await s.proxies[0].setFaults({ closeMidFrame: true });
  const batch = Array.from(
    { length: 8 },
    (_, i) => send(s, `cut-${i}`, { idempotent: mixed(i) }),
  );
  await s.run(Promise.all(batch.map((t) => t.done)));
  const failed = batch.filter((t) => !t.ok);
  assert.equal(failed.length, 2, "n0's two non-idempotent requests");
  for (const t of failed) {
    assert.ok(t.error instanceof ConnectionLostError);
    assert.equal(t.error.sent, true, "it may have run: not retried");
  }
  assert.ok(batch.filter((_, i) => mixed(i)).every((t) => t.ok));
  assert.equal(s.retries.length, 2, "the idempotent ones, once each");
  assert.equal(s.nodes[0].stats.requests, 4, "n0 ran each of its four once");
  assert.equal(
    s.nodes[1].stats.requests,
    6,
    "n1 ran its four and the two retries",
  );
  assert.ok(s.proxies[0].stats.closes >= 1);

  await s.proxies[0].clearFaults();
  await s.pass(1500);
  const after = Array.from({ length: 8 }, (_, i) => send(s, `after-${i}`));
  await s.run(Promise.all(after.map((t) => t.done)));
  assert.ok(after.every((t) => t.ok));
  assert.ok(after.some((t) => nodeOf(t) === "n0"), "n0 serves again");
  s.tracker.assertSettled(2000);
  assertClean(await s.finish());
});

test("row: reset mid-request — in flight: lost after send; cut mid-frame on the way in: never ran; retried only when idempotent", async () => {
  const s = await startScene({
    mode: "loopback",
    nodes: 2,
    config: {
      poolConfig: { minConnections: 1, maxConnections: 1 },
      retryConfig: { initialBackoffMs: 5 },
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
      // Requests take no node out here.
      outlierEjection: false,
    },
  });
  // The node holds the requests; the connection is reset under them.
  const sentBefore = s.proxies[0].stats.bytesToNode;
  const held = Array.from(
    { length: 8 },
    (_, i) => send(s, `held-${i}`, { idempotent: mixed(i), sleepMs: 300 }),
  );
  // n0's four request frames (16-byte header, 11-byte payload) are through.
  assert.ok(
    await eventually(() =>
      s.proxies[0].stats.bytesToNode - sentBefore >= 4 * 27
    ),
  );
  await s.pass(50);
  s.proxies[0].resetConnections();
  await Promise.all(held.map((t) => t.done));
  const failed = held.filter((t) => !t.ok);
  assert.equal(failed.length, 2);
  for (const t of failed) {
    assert.ok(t.error instanceof ConnectionLostError && t.error.sent);
  }
  assert.equal(s.retries.length, 2);
  assert.ok(held.filter((t) => t.ok).every((t) => nodeOf(t) === "n1"));

  // Reset after the first 18 bytes: the request frame is cut in its
  // payload, so the node never runs it, but the client cannot know that.
  await s.pass(500);
  const ranBefore = s.nodes[0].stats.requests;
  await s.proxies[0].setFaults({ resetAfterBytes: HEADER_SIZE + 2 });
  s.retries.length = 0;
  const cut = Array.from(
    { length: 8 },
    (_, i) => send(s, `cut-${i}`, { idempotent: mixed(i) }),
  );
  await Promise.all(cut.map((t) => t.done));
  assert.equal(cut.filter((t) => !t.ok).length, 2);
  assert.ok(
    cut.filter((t) => !t.ok).every((t) =>
      t.error instanceof ConnectionLostError && t.error.sent
    ),
  );
  assert.equal(s.retries.length, 2);
  await s.pass(400);
  assert.equal(
    s.nodes[0].stats.requests,
    ranBefore,
    "n0 never ran a cut request",
  );

  await s.proxies[0].clearFaults();
  await s.pass(1500);
  const after = Array.from({ length: 8 }, (_, i) => send(s, `after-${i}`));
  await Promise.all(after.map((t) => t.done));
  assert.ok(after.every((t) => t.ok));
  assert.ok(after.some((t) => nodeOf(t) === "n0"));
  s.tracker.assertSettled(2000);
  assertClean(await s.finish());
});

test("row: frames arriving one byte at a time — every reply whole and matched (memory network)", async () => {
  const s = await startScene({ mode: "virtual", nodes: 1, noClient: true });
  await s.proxies[0].setFaults({ chunkSize: 1 });
  s.client = await s.connect();
  s.adapter.chunks.length = 0;
  const batch = Array.from({ length: 30 }, (_, i) => send(s, `byte-${i}`));
  await s.run(Promise.all(batch.map((t) => t.done)));
  assert.ok(batch.every((t) => t.ok));
  assert.ok(s.adapter.chunks.length > 30 * HEADER_SIZE);
  assert.ok(s.adapter.chunks.every((n) => n === 1), "every chunk one byte");
  await s.proxies[0].clearFaults();
  const after = send(s, "whole again");
  await s.run(after.done);
  assert.ok(after.ok);
  s.tracker.assertSettled(0);
  assertClean(await s.finish());
});

test("row: frames arriving one byte at a time on loopback sockets — every reply whole and matched", async () => {
  const s = await startScene({ mode: "loopback", nodes: 1, noClient: true });
  await s.proxies[0].setFaults({ chunkSize: 1, chunkIntervalMs: 1 });
  s.client = await s.connect();
  s.adapter.chunks.length = 0;
  const batch = Array.from({ length: 5 }, (_, i) => send(s, `byte-${i}`));
  await Promise.all(batch.map((t) => t.done));
  assert.ok(batch.every((t) => t.ok));
  const bytes = s.adapter.chunks.reduce((a, b) => a + b, 0);
  assert.ok(
    s.adapter.chunks.length >= bytes / 4,
    `${bytes} bytes came in ${s.adapter.chunks.length} chunks`,
  );
  await s.proxies[0].clearFaults();
  const after = send(s, "whole again");
  await after.done;
  assert.ok(after.ok);
  s.tracker.assertSettled(5000);
  assertClean(await s.finish());
});

test("row: several frames in one chunk — all replies matched (memory network and loopback)", async () => {
  for (const mode of ["virtual", "loopback"] as const) {
    const s = await startScene({
      mode,
      nodes: 1,
      config: { poolConfig: { minConnections: 1, maxConnections: 1 } },
    });
    await s.proxies[0].setFaults({ latencyMs: 20 });
    s.adapter.chunks.length = 0;
    const batch = Array.from({ length: 50 }, (_, i) => send(s, `many-${i}`));
    await s.run(Promise.all(batch.map((t) => t.done)));
    assert.ok(batch.every((t) => t.ok), mode);
    const replySize = HEADER_SIZE + 1 + 2 + "many-0".length;
    assert.ok(
      Math.max(...s.adapter.chunks) >= 25 * replySize,
      `${mode}: a chunk carried many frames (${s.adapter.chunks})`,
    );
    assert.ok(
      s.adapter.chunks.length < 50,
      `${mode}: fewer chunks than frames`,
    );
    s.tracker.assertSettled(5000);
    assertClean(await s.finish());
  }
});

function header(
  fields: { version?: number; type?: number; flags?: number; length: number },
): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  h[0] = fields.version ?? 1;
  h[1] = fields.type ?? MessageType.Response;
  h[3] = fields.flags ?? 0;
  h[11] = 99; // a sequence nobody waits for
  new DataView(h.buffer).setUint32(12, fields.length);
  return h;
}

const GARBAGE: Array<[string, Uint8Array]> = [
  ["a 1 GiB length", header({ length: 1 << 30 })],
  ["one byte over maxFrameSize", header({ length: 4097 })],
  ["a bad version", header({ version: 7, length: 0 })],
  ["an unknown type", header({ type: 0x7f, length: 0 })],
  ["reserved flags", header({ flags: 0x80, length: 0 })],
  [
    "random bytes",
    new Uint8Array([
      0xde,
      0xad,
      0xbe,
      0xef,
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
      10,
      11,
      12,
    ]),
  ],
];

test("row: oversized or garbage frames from the node — the connection is dropped at once, requests fail typed, idempotent retried", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    config: {
      maxFrameSize: 4096,
      poolConfig: { minConnections: 1, maxConnections: 1 },
      retryConfig: { initialBackoffMs: 10 },
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
      // Requests take no node out here.
      outlierEjection: false,
    },
  });
  for (const [name, bytes] of GARBAGE) {
    const pool = s.client.manager.nodes[0].pool;
    const plain = send(s, `${name} plain`, { sleepMs: 1000 });
    const safe = send(s, `${name} safe`, { sleepMs: 1000, idempotent: true });
    await s.pass(100);
    const [victim] = pool.connections();
    const retriesBefore = s.retries.length;
    s.proxies[0].inject(bytes);
    await s.pass(0);
    assert.equal(plain.settledCount, 1, `${name}: failed at once`);
    assert.equal(plain.settledAt! - plain.startedAt, 100);
    assert.ok(plain.error instanceof ConnectionLostError, name);
    assert.ok(
      plain.error.cause instanceof ProtocolError,
      `${name}: ${plain.error.cause}`,
    );
    assert.ok(!pool.connections().includes(victim), `${name}: evicted`);
    await s.run(safe.done);
    assert.ok(safe.ok, `${name}: the idempotent one was retried and succeeded`);
    assert.equal(s.retries.length - retriesBefore, 1, `${name}: one retry`);
  }
  const after = send(s, "after garbage");
  await s.run(after.done);
  assert.ok(after.ok);
  s.tracker.assertSettled(1000 + 10 + 1000);
  assertClean(await s.finish());
});

test("row: any bytes that break the frame header — every request settles typed within its deadline (property)", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    config: {
      maxFrameSize: 4096,
      requestTimeoutMs: 2000,
      poolConfig: { minConnections: 1, maxConnections: 1 },
      retryConfig: { initialBackoffMs: 10 },
      healthConfig: { intervalMs: 0, unhealthyThreshold: 1000 },
      // Requests take no node out here.
      outlierEjection: false,
    },
  });
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      // A first byte that is not version 1: the header is broken for sure.
      fc.integer({ min: 0, max: 255 }).filter((b) => b !== 1),
      fc.uint8Array({ minLength: 0, maxLength: 40 }),
      fc.boolean(),
      async (first, rest, idempotent) => {
        run++;
        const request = send(s, `p${run}`, { sleepMs: 50, idempotent });
        await s.pass(10);
        s.proxies[0].inject(new Uint8Array([first, ...rest]));
        await s.run(request.done);
        assert.equal(request.settledCount, 1);
        if (idempotent) assert.ok(request.ok);
        else {
          assert.ok(request.error instanceof ConnectionLostError);
          assert.ok(request.error.cause instanceof ProtocolError);
        }
      },
    ),
    { numRuns: 40 },
  );
  const after = send(s, "after");
  await s.run(after.done);
  assert.ok(after.ok);
  s.tracker.assertSettled(2000);
  assertClean(await s.finish());
});

test("row: unknown, duplicate and late sequence numbers — dropped, never handed to another request", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    config: {
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0 },
    },
  });
  const pool = s.client.manager.nodes[0].pool;
  const [conn] = pool.connections();

  // Late: the reply comes after the request gave up, while another waits.
  const late = send(s, "late", { sleepMs: 300, timeoutMs: 100 });
  await s.pass(200);
  assert.ok(late.error instanceof RequestTimeoutError);
  const next = send(s, "next", { sleepMs: 200 });
  await s.pass(100); // the late reply arrives now
  assert.equal(conn.stats.dropped, 1, "the late reply was dropped");
  assert.equal(next.settledCount, 0, "and not given to the request waiting");
  await s.pass(100);
  assert.ok(next.ok, "which got its own");

  // Unknown: a reply to a sequence number never used.
  const unknown = new MessageCodec().encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 2 ** 40,
    payload: new Uint8Array([1, 120, 120]),
  });
  const waiting = send(s, "waiting", { sleepMs: 100 });
  await s.pass(10);
  s.proxies[0].inject(unknown);
  await s.pass(0);
  assert.equal(conn.stats.dropped, 2);
  assert.equal(waiting.settledCount, 0);
  await s.pass(100);
  assert.ok(waiting.ok);

  // Duplicate: the node answers everything twice.
  await s.proxies[0].setFaults({ duplicateFrames: true });
  const twice = Array.from({ length: 5 }, (_, i) => send(s, `twice-${i}`));
  await s.run(Promise.all(twice.map((t) => t.done)));
  assert.ok(twice.every((t) => t.ok && t.settledCount === 1));
  assert.equal(conn.stats.dropped, 2 + 5, "each second answer dropped");
  assert.ok(conn.isOpen, "none of this is a reason to drop the connection");
  assert.equal(s.retries.length, 0);
  await s.proxies[0].clearFaults();
  const after = send(s, "after");
  await s.run(after.done);
  assert.ok(after.ok);
  assert.deepEqual(
    pool.connections(),
    [conn],
    "the same connection throughout",
  );
  assertClean(await s.finish());
});

test("row: a slow reader — the send buffer stays bounded while the node reads nothing, and drains when it reads", async () => {
  const watch = watchEscapes();
  const base = await getAdapter();
  const adapter = countChannels(base);
  const clock = new CountingClock(systemClock);
  let server: ByteChannel | undefined;
  const listener = await base.listen({ port: 0 }, (channel) => {
    // No onData: the node reads nothing, so the kernel's buffers fill.
    server = channel;
    channel.onClose(() => {});
  });
  const endpoint = { hostname: "127.0.0.1", port: listener.port };
  const channel = await adapter.connect(endpoint);
  const conn = new Connection(channel, endpoint, {
    clock,
    requestTimeoutMs: 20_000,
  });
  const tracker = new Tracker(clock);
  const payload = new Uint8Array(64 * 1024);
  let peak = 0;
  const total = 320; // 20 MiB
  for (let i = 0; i < total; i++) {
    payload[0] = i & 0xff;
    tracker.track(`big ${i}`, conn.sendRequest(payload.slice()));
    if (i % 8 === 7) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      peak = Math.max(peak, conn.bufferedAmount);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  peak = Math.max(peak, conn.bufferedAmount);
  assert.ok(
    peak <= 3 * 1024 * 1024,
    `buffered at most ${(peak / 1048576).toFixed(2)} MiB of ${
      total * 64 / 1024
    } MiB asked`,
  );
  assert.equal(tracker.all.filter((t) => t.settledCount > 0).length, 0);

  // The node starts reading and answers everything.
  const codec = new MessageCodec(1 << 20);
  const writer = new FrameWriter(server!);
  server!.onData((chunk) =>
    codec.decode(chunk, (m) => {
      if (m.type === MessageType.Request) {
        writer.push(MessageType.Response, 0, m.sequence, new Uint8Array(0));
      }
    })
  );
  await tracker.settled();
  assert.equal(
    tracker.successes.length,
    total,
    "every queued request went out and was answered",
  );
  tracker.assertSettled(20_000);
  await conn.close();
  server!.destroy();
  await listener.close();
  assert.ok(await eventually(() => adapter.openChannels === 0));
  assert.equal(clock.liveTimers, 0);
  assert.deepEqual(await watch.stop(), []);
});
