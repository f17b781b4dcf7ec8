import { test } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../src/clock.ts";
import { ConnectionLostError, ConnectionRefusedError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type {
  ByteChannel,
  Listener,
  RuntimeAdapter,
} from "../src/runtime/types.ts";
import { eventually } from "./support/fault_harness.ts";
import { startFaultProxy } from "../testing/proxy.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { concatBytes } from "../testing/bytes.ts";

const text = (bytes: Uint8Array[]) =>
  new TextDecoder().decode(concatBytes(bytes));
const bytes = (s: string) => new TextEncoder().encode(s);

/** One end as the test sees it: what arrived, and how it closed. */
interface End {
  channel: ByteChannel;
  chunks: Uint8Array[];
  closed: boolean;
  error: Error | undefined;
}

function watch(channel: ByteChannel): End {
  const end: End = { channel, chunks: [], closed: false, error: undefined };
  channel.onData((chunk) => end.chunks.push(chunk.slice()));
  channel.onClose((error) => {
    end.closed = true;
    end.error = error;
  });
  return end;
}

/** A server that records what it gets and, when `echo`, sends it back. */
async function server(adapter: RuntimeAdapter, echo = true) {
  const ends: End[] = [];
  const listener: Listener = await adapter.listen(
    { port: 0 },
    (channel) => {
      const end = watch(channel);
      ends.push(end);
      if (echo) {
        channel.onData((chunk) => {
          end.chunks.push(chunk.slice());
          channel.write(chunk.slice());
        });
      }
    },
  );
  return {
    listener,
    ends,
    target: { hostname: "127.0.0.1", port: listener.port },
  };
}

async function virtualSetup(faults = {}) {
  const clock = new VirtualClock();
  const network = createMemoryNetwork();
  const srv = await server(network);
  const proxy = await startFaultProxy({
    target: srv.target,
    runtime: network,
    clock,
    faults,
  });
  const client = watch(
    await network.connect({ hostname: "127.0.0.1", port: proxy.port }),
  );
  await clock.advance(0);
  return { clock, network, srv, proxy, client };
}

async function teardown(
  s: Awaited<ReturnType<typeof virtualSetup>>,
): Promise<void> {
  s.client.channel.destroy();
  await s.proxy.close();
  await s.srv.listener.close();
  for (const end of s.srv.ends) end.channel.destroy();
  await s.clock.advance(0);
  assert.equal(s.network.openChannels, 0, "no channel left open");
  assert.equal(s.clock.pendingTimers, 0, "no timer left pending");
}

for (const kind of ["memory", "native"] as const) {
  test(`the proxy forwards both ways without faults (${kind})`, async () => {
    const adapter = kind === "memory"
      ? createMemoryNetwork()
      : await getAdapter();
    const srv = await server(adapter);
    const proxy = await startFaultProxy({
      target: srv.target,
      runtime: adapter,
    });
    const client = watch(
      await adapter.connect({ hostname: "127.0.0.1", port: proxy.port }),
    );
    client.channel.write(bytes("hello through the proxy"));
    assert.ok(await eventually(() => text(client.chunks).length === 23));
    assert.equal(text(client.chunks), "hello through the proxy");
    assert.equal(proxy.stats.accepted, 1);
    assert.equal(proxy.stats.bytesToNode, 23);
    assert.equal(proxy.stats.bytesToClient, 23);
    client.channel.close();
    assert.ok(await eventually(() => proxy.stats.open === 0), "session ended");
    await proxy.close();
    await srv.listener.close();
  });
}

test("latency with jitter delays every chunk on the clock and keeps the order", async () => {
  const draws = [0.9, 0.1, 0.5, 0.0, 0.7, 0.3];
  let i = 0;
  const clock = new VirtualClock();
  const network = createMemoryNetwork();
  const srv = await server(network);
  const proxy = await startFaultProxy({
    target: srv.target,
    runtime: network,
    clock,
    random: () => draws[i++ % draws.length],
    faults: { latencyMs: 100, jitterMs: 50 },
  });
  const client = watch(
    await network.connect({ hostname: "127.0.0.1", port: proxy.port }),
  );
  await clock.advance(0);
  for (const part of ["a", "b", "c"]) {
    client.channel.write(bytes(part));
    await clock.advance(0);
  }
  await clock.advance(199);
  assert.equal(text(client.chunks), "", "nothing back before 2 x latency");
  await clock.advance(101);
  assert.equal(
    text(client.chunks),
    "abc",
    "all back by 2 x (latency + jitter), in order",
  );
  await teardown({ clock, network, srv, proxy, client });
});

test("chunkSize 1 delivers byte by byte; chunkIntervalMs spaces the pieces", async () => {
  const s = await virtualSetup({ chunkSize: 1 });
  s.client.channel.write(bytes("hello"));
  await s.clock.advance(0);
  assert.deepEqual(s.client.chunks.map((c) => c.byteLength), [1, 1, 1, 1, 1]);
  assert.equal(text(s.client.chunks), "hello");
  await s.proxy.setFaults({ chunkSize: 2, chunkIntervalMs: 10 });
  s.client.chunks.length = 0;
  s.srv.ends[0].channel.write(bytes("abcde"));
  await s.clock.advance(0);
  assert.deepEqual(s.client.chunks.map((c) => c.byteLength), [2]);
  await s.clock.advance(10);
  assert.deepEqual(s.client.chunks.map((c) => c.byteLength), [2, 2]);
  await s.clock.advance(10);
  assert.equal(text(s.client.chunks), "abcde");
  await teardown(s);
});

test("a stall holds every byte both ways, new connections too, until it clears", async () => {
  const s = await virtualSetup();
  await s.proxy.setFaults({ stall: true });
  s.client.channel.write(bytes("ping?"));
  const late = watch(
    await s.network.connect({ hostname: "127.0.0.1", port: s.proxy.port }),
  );
  late.channel.write(bytes("late"));
  await s.clock.advance(60_000);
  assert.equal(text(s.srv.ends[0].chunks), "", "the node saw nothing");
  assert.equal(text(s.client.chunks), "");
  await s.proxy.setFaults({ stall: false });
  await s.clock.advance(0);
  assert.equal(
    text(s.client.chunks),
    "ping?",
    "held bytes flow again, in order",
  );
  assert.equal(text(late.chunks), "late");
  late.channel.destroy();
  await teardown(s);
});

test("resetAfterBytes lets that many bytes through, then resets both sides", async () => {
  const srvNoEcho = async () => {
    const clock = new VirtualClock();
    const network = createMemoryNetwork();
    const srv = await server(network, false);
    const proxy = await startFaultProxy({
      target: srv.target,
      runtime: network,
      clock,
    });
    const client = watch(
      await network.connect({ hostname: "127.0.0.1", port: proxy.port }),
    );
    await clock.advance(0);
    return { clock, network, srv, proxy, client };
  };
  const s = await srvNoEcho();
  await s.proxy.setFaults({ resetAfterBytes: 3 });
  s.client.channel.write(bytes("hello"));
  await s.clock.advance(0);
  assert.equal(text(s.srv.ends[0].chunks), "hel");
  assert.ok(s.client.closed && s.srv.ends[0].closed);
  assert.ok(
    s.client.error instanceof ConnectionLostError,
    "a reset, not a clean close",
  );
  assert.ok(s.srv.ends[0].error instanceof ConnectionLostError);
  assert.equal(s.proxy.stats.resets, 1);
  await teardown(s);
});

test("closeMidFrame cuts the next frame from the node in half and closes cleanly", async () => {
  const s = await virtualSetup();
  await s.proxy.setFaults({ closeMidFrame: true });
  const frame = new MessageCodec().encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 7,
    payload: new Uint8Array(10),
  });
  s.srv.ends[0].channel.write(frame);
  await s.clock.advance(0);
  assert.equal(
    concatBytes(s.client.chunks).byteLength,
    16 + 5,
    "header and half the payload",
  );
  assert.ok(s.client.closed);
  assert.equal(s.client.error, undefined, "closed cleanly (FIN), mid-frame");
  assert.equal(s.proxy.stats.closes, 1);
  await teardown(s);
});

test("closeMidFrame finds the frame boundary even when frames arrive split", async () => {
  const s = await virtualSetup();
  const codec = new MessageCodec();
  const first = codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(6),
  });
  // Half of a frame is already through when the fault is switched on.
  s.srv.ends[0].channel.write(first.subarray(0, 10));
  await s.clock.advance(0);
  await s.proxy.setFaults({ closeMidFrame: true });
  const second = codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 2,
    payload: new Uint8Array(40),
  });
  s.srv.ends[0].channel.write(concatBytes([first.subarray(10), second]));
  await s.clock.advance(0);
  assert.equal(
    concatBytes(s.client.chunks).byteLength,
    first.byteLength + 16 + 20,
    "the frame in progress is whole; the next one is cut in its middle",
  );
  assert.ok(s.client.closed);
  await teardown(s);
});

test("dataLimit closes cleanly once the connection carried that many bytes", async () => {
  const s = await virtualSetup();
  await s.proxy.setFaults({ dataLimit: 4 });
  s.client.channel.write(bytes("hello"));
  await s.clock.advance(0);
  assert.equal(text(s.srv.ends[0].chunks), "hell");
  assert.equal(text(s.client.chunks), "", "the echo had no budget left");
  assert.ok(s.client.closed && s.client.error === undefined);
  await teardown(s);
});

test("down refuses new connections and resets open ones; clearing it binds the same port", async () => {
  const s = await virtualSetup();
  const port = s.proxy.port;
  await s.proxy.setFaults({ down: true });
  await s.clock.advance(0);
  assert.ok(s.client.closed);
  assert.ok(s.client.error instanceof ConnectionLostError);
  await assert.rejects(
    s.network.connect({ hostname: "127.0.0.1", port }),
    (e: unknown) =>
      e instanceof ConnectionRefusedError &&
      e.code === "CONNECTION_REFUSED" &&
      e.message.includes(`127.0.0.1:${port}`) && /refused/.test(e.message),
  );
  await s.proxy.clearFaults();
  assert.equal(s.proxy.port, port);
  const again = watch(
    await s.network.connect({ hostname: "127.0.0.1", port }),
  );
  again.channel.write(bytes("back"));
  await s.clock.advance(0);
  assert.equal(text(again.chunks), "back");
  again.channel.destroy();
  await teardown(s);
});

test("inject sends bytes to the client after what is already queued", async () => {
  const s = await virtualSetup({ latencyMs: 10 });
  s.srv.ends[0].channel.write(bytes("first"));
  await s.clock.advance(0);
  s.proxy.inject(bytes("+injected"));
  await s.clock.advance(10);
  assert.equal(text(s.client.chunks), "first+injected");
  await teardown(s);
});

test("several chunks due together go out as one write", async () => {
  const s = await virtualSetup({ latencyMs: 5 });
  for (const part of ["a", "b", "c", "d"]) {
    s.srv.ends[0].channel.write(bytes(part));
  }
  await s.clock.advance(5);
  assert.deepEqual(s.client.chunks.map((c) => text([c])), ["abcd"]);
  await teardown(s);
});

test("on loopback sockets: byte by byte with spacing, and down then up on the same port", async () => {
  const adapter = await getAdapter();
  const srv = await server(adapter);
  const proxy = await startFaultProxy({
    target: srv.target,
    runtime: adapter,
    clock: systemClock,
    faults: { chunkSize: 1, chunkIntervalMs: 2 },
  });
  const client = watch(
    await adapter.connect({ hostname: "127.0.0.1", port: proxy.port }),
  );
  client.channel.write(bytes("0123456789"));
  assert.ok(await eventually(() => text(client.chunks).length === 10, 5000));
  assert.equal(text(client.chunks), "0123456789");
  assert.ok(
    client.chunks.length >= 5,
    `spaced one-byte writes mostly arrive apart (${client.chunks.length} chunks)`,
  );
  const port = proxy.port;
  await proxy.setFaults({ down: true });
  assert.ok(await eventually(() => client.closed));
  await assert.rejects(
    adapter.connect({ hostname: "127.0.0.1", port }),
    (e: unknown) =>
      e instanceof ConnectionRefusedError &&
      e.code === "CONNECTION_REFUSED" &&
      e.message.includes(`127.0.0.1:${port}`) && /refused/.test(e.message),
  );
  await proxy.clearFaults();
  const again = watch(await adapter.connect({ hostname: "127.0.0.1", port }));
  again.channel.write(bytes("up"));
  assert.ok(await eventually(() => text(again.chunks) === "up"));
  again.channel.close();
  await proxy.close();
  await srv.listener.close();
  for (const end of srv.ends) end.channel.destroy();
});

test("duplicateFrames sends every complete frame from the node twice, holding partial ones", async () => {
  const s = await virtualSetup({ duplicateFrames: true });
  const codec = new MessageCodec();
  const frame = codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 3,
    payload: bytes("dup"),
  });
  s.srv.ends[0].channel.write(frame.subarray(0, 5));
  await s.clock.advance(0);
  assert.equal(
    concatBytes(s.client.chunks).byteLength,
    0,
    "half a frame is held",
  );
  s.srv.ends[0].channel.write(frame.subarray(5));
  await s.clock.advance(0);
  const got: number[] = [];
  new MessageCodec().decode(
    concatBytes(s.client.chunks),
    (m) => got.push(m.sequence),
  );
  assert.deepEqual(got, [3, 3]);
  await teardown(s);
});
