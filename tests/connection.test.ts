import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  type HeldFrame,
  isHeld,
  type Pending,
} from "../src/connection/in_flight.ts";
import {
  AbortedError,
  ConnectionClosedError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  InvalidArgumentError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import {
  encodeError,
  encodeJson,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

const text = new TextDecoder();

/**
 * Runs `fn` against a reference node. With a virtual clock, both sides use
 * the in-memory network, so message delivery is as deterministic as time;
 * without one, a real loopback socket on the runtime's native adapter.
 */
async function withNode(
  fn: (node: TestNode, adapter: RuntimeAdapter) => Promise<void>,
  options: { clock?: VirtualClock } = {},
) {
  const adapter = options.clock ? createMemoryNetwork() : await getAdapter();
  const node = await startTestNode({
    nodeId: "n1",
    clock: options.clock,
    runtime: adapter,
  });
  try {
    await fn(node, adapter);
  } finally {
    await node.close();
  }
}

function connect(
  node: TestNode,
  adapter: RuntimeAdapter,
  extra: Partial<Parameters<typeof Connection.connect>[0]> = {},
) {
  return Connection.connect({
    adapter,
    hostname: node.hostname,
    port: node.port,
    ...extra,
  });
}

/** A listener whose connections are handled by `serve`, for hostile peers. */
async function withFakeNode(
  serve: (channel: ByteChannel) => void,
  fn: (port: number, adapter: RuntimeAdapter) => Promise<void>,
) {
  const adapter = await getAdapter();
  const channels: ByteChannel[] = [];
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (c) => {
      channels.push(c);
      serve(c);
    },
  );
  try {
    await fn(listener.port, adapter);
  } finally {
    for (const c of channels) c.destroy();
    await listener.close();
  }
}

/** Serves HELLO_OK, then hands every later message to `onMessage`. */
function helloThen(
  onMessage: (channel: ByteChannel, type: number, sequence: number) => void,
) {
  return (channel: ByteChannel) => {
    const codec = new MessageCodec();
    let greeted = false;
    channel.onClose(() => {});
    channel.onData((chunk) =>
      codec.decode(chunk, (m) => {
        if (!greeted) {
          greeted = true;
          channel.write(codec.encode({
            type: MessageType.HelloOk,
            flags: 0,
            sequence: m.sequence,
            payload: encodeJson({
              nodeId: "fake",
              maxFrameSize: 1 << 20,
              auth: "none",
            }),
          }));
          return;
        }
        onMessage(channel, m.type, m.sequence);
      })
    );
  };
}

test("connect completes the hello handshake and learns the node id", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    assert.equal(c.nodeId, "n1");
    assert.equal(c.isOpen, true);
    assert.equal(c.address, node.address);
    await c.close();
  });
});

test("connection ids increase monotonically", async () => {
  await withNode(async (node, adapter) => {
    const a = await connect(node, adapter);
    const b = await connect(node, adapter);
    assert.ok(b.id > a.id);
    await Promise.all([a.close(), b.close()]);
  });
});

test("a request round-trips and the reply names the node", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    const reply = decodeReply(await c.sendRequest(ops.echo("hello")));
    assert.equal(reply.nodeId, "n1");
    assert.equal(text.decode(reply.data), "hello");
    assert.ok((await c.ping()) >= 0);
    await c.close();
  });
});

test("many requests in flight on one connection are each matched to their own reply", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    const n = 2000;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) => c.sendRequest(ops.echo(`r${i}`))),
    );
    replies.forEach((r, i) => assert.equal(replyText(r), `r${i}`));
    assert.equal(c.inFlight, 0);
    assert.equal(c.stats.received, n);
    await c.close();
  });
});

test("replies arriving out of order still reach the right request", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock });
    const order: number[] = [];
    const delays = [30, 10, 20, 0];
    const all = delays.map((ms, i) =>
      c.sendRequest(ops.sleep(ms, `d${i}`)).then((r) => {
        order.push(i);
        assert.equal(replyText(r), `d${i}`);
      })
    );
    for (let t = 0; t < 4; t++) await clock.advance(10);
    await Promise.all(all);
    assert.deepEqual(order, [3, 1, 2, 0]);
    await c.close();
  }, { clock });
});

test("a timed-out request fails and its late reply is dropped, not handed on", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock, requestTimeoutMs: 50 });
    const slow = c.sendRequest(ops.sleep(100, "late"));
    const failed = assert.rejects(slow, (e: unknown) => {
      assert.ok(e instanceof RequestTimeoutError);
      assert.equal(e.timeoutMs, 50);
      // Sent and not idempotent: retrying it is not known to be safe.
      assert.equal(e.sent, true);
      assert.equal(e.retryable, false);
      return true;
    });
    await clock.advance(50);
    await failed;
    const next = c.sendRequest(ops.sleep(60, "mine"), { timeoutMs: 1000 });
    await clock.advance(50); // the late reply to the first request arrives now
    assert.equal(c.stats.dropped, 1);
    await clock.advance(10);
    assert.equal(replyText(await next), "mine");
    await c.close();
  }, { clock });
});

test("deadlines use one timer per connection, not one per request", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock, requestTimeoutMs: 1000 });
    const before = clock.pendingTimers;
    const all = Array.from(
      { length: 5000 },
      () => c.sendRequest(ops.sleep(10)).catch((e) => e),
    );
    // Only the connection's one deadline timer; the node's sleep timers come
    // later, once the requests reach it.
    assert.equal(clock.pendingTimers - before, 1);
    assert.equal(c.timerArmed, true);
    await clock.advance(10);
    const results = await Promise.all(all);
    assert.ok(results.every((r) => r instanceof Uint8Array));
    await c.close();
  }, { clock });
});

test("an aborted request rejects with AbortedError and its reply is dropped", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock });
    const controller = new AbortController();
    const p = c.sendRequest(ops.sleep(20), { signal: controller.signal });
    // Once written: a request aborted before its flush is never written
    // (tests/connection_unflushed.test.ts), so no reply would come.
    await Promise.resolve();
    controller.abort("user");
    await assert.rejects(
      p,
      (e: unknown) =>
        e instanceof AbortedError && e.code === "ABORTED" &&
        /request aborted/.test(e.message),
    );
    await clock.advance(20);
    assert.equal(c.stats.dropped, 1);
    const already = new AbortController();
    already.abort();
    await assert.rejects(
      c.sendRequest(ops.echo(), { signal: already.signal }),
      (e: unknown) =>
        e instanceof AbortedError && e.code === "ABORTED" &&
        /request aborted before it was sent/.test(e.message),
    );
    await c.close();
  }, { clock });
});

test("a node error becomes a RemoteError with its code and retryable flag", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    await assert.rejects(
      c.sendRequest(ops.fail(RemoteErrorCode.Overloaded, true, "busy")),
      (e: unknown) => {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.remoteCode, 4);
        assert.equal(e.retryable, true);
        assert.equal(e.nodeId, "n1");
        assert.match(e.message, /busy/);
        return true;
      },
    );
    await assert.rejects(
      c.sendRequest(ops.get("missing")),
      (e: unknown) =>
        e instanceof RemoteError && e.remoteCode === RemoteErrorCode.NotFound &&
        !e.retryable,
    );
    await c.close();
  });
});

test("when the node goes away every pending request fails exactly once, retryable only when idempotent", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock });
    let settled = 0;
    const all = Array.from(
      { length: 50 },
      (_, i) =>
        c.sendRequest(ops.sleep(1000), { idempotent: i % 2 === 0 }).then(
          () => assert.fail("should not succeed"),
          (e) => {
            settled++;
            return e;
          },
        ),
    );
    await clock.advance(1);
    await node.stop();
    const errors = await Promise.all(all);
    assert.equal(settled, 50);
    errors.forEach((e, i) => {
      assert.ok(e instanceof ConnectionLostError, String(e));
      assert.equal(e.retryable, i % 2 === 0, `request ${i}`);
      assert.equal(e.sent, true);
      assert.match(e.message, /^connection to \S+ lost: /);
      assert.doesNotMatch(e.message, /lost: .*lost: /);
    });
    const closedWith = await c.closed;
    assert.ok(closedWith instanceof ConnectionLostError);
    assert.equal(c.isOpen, false);
    await assert.rejects(
      c.sendRequest(ops.echo()),
      (e: unknown) =>
        e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
        /^connection to \S+ lost: reset by peer/.test(e.message),
    );
  }, { clock });
});

test("a protocol violation by the node fails pending requests and closes", async () => {
  await withFakeNode(
    helloThen((channel) => channel.write(new Uint8Array(16).fill(0xee))),
    async (port, adapter) => {
      const c = await Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port,
      });
      await assert.rejects(c.sendRequest(ops.echo()), (e: unknown) => {
        assert.ok(e instanceof ConnectionLostError);
        assert.ok(e.cause instanceof ProtocolError);
        assert.match(
          e.message,
          /protocol violation: unsupported protocol version 238/,
        );
        return true;
      });
      assert.ok(await c.closed);
    },
  );
});

test("a reply of the wrong type for its sequence is a protocol violation", async () => {
  await withFakeNode(
    helloThen((channel, _type, sequence) =>
      channel.write(new MessageCodec().encode({
        type: MessageType.Pong,
        flags: 0,
        sequence,
        payload: new Uint8Array(0),
      }))
    ),
    async (port, adapter) => {
      const c = await Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port,
      });
      await assert.rejects(
        c.sendRequest(ops.echo()),
        /answered with type 0x11/,
      );
    },
  );
});

test("a peer that never answers hello times out the connect", async () => {
  const clock = new VirtualClock();
  await withFakeNode(
    (channel) => channel.onClose(() => {}),
    async (port, adapter) => {
      const attempt = Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port,
        clock,
        timeoutMs: 300,
      });
      const check = assert.rejects(attempt, (e: unknown) => {
        assert.ok(e instanceof ConnectTimeoutError);
        assert.equal(e.timeoutMs, 300);
        return true;
      });
      await clock.advance(299);
      let done = false;
      check.then(() => (done = true));
      await clock.advance(0);
      assert.equal(done, false);
      await clock.advance(1);
      await check;
    },
  );
});

test("connecting to a closed port is refused", async () => {
  const adapter = await getAdapter();
  const node = await startTestNode();
  const port = node.port;
  await node.close();
  await assert.rejects(
    Connection.connect({ adapter, hostname: "127.0.0.1", port }),
    (e: unknown) =>
      e instanceof ConnectionRefusedError &&
      e.code === "CONNECTION_REFUSED" &&
      e.message.includes(`127.0.0.1:${port}`) && /refused/.test(e.message),
  );
});

test("close() lets requests in flight finish, then refuses new ones", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock });
    const inFlight = c.sendRequest(ops.sleep(20, "finished"));
    await clock.advance(1);
    const closing = c.close();
    assert.equal(c.isOpen, false);
    await assert.rejects(
      c.sendRequest(ops.echo()),
      (e: unknown) =>
        e instanceof ConnectionClosedError &&
        e.code === "CONNECTION_CLOSED" &&
        /^connection to \S+ is closed/.test(e.message),
    );
    await clock.advance(20);
    assert.equal(replyText(await inFlight), "finished");
    await closing;
    assert.equal(await c.closed, undefined);
    assert.equal(c.timerArmed, false);
    await c.close(); // twice is fine
  }, { clock });
});

test("a draining node's GOODBYE stops new work and lets in-flight finish", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { clock });
    const inFlight = c.sendRequest(ops.sleep(20, "done"));
    await clock.advance(1);
    await node.stop({ graceful: true });
    await clock.advance(1);
    assert.equal(c.isOpen, false);
    await clock.advance(20);
    assert.equal(replyText(await inFlight), "done");
    assert.equal(await c.closed, undefined);
  }, { clock });
});

test("a payload over the frame limit fails locally without being sent", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter, { maxFrameSize: 2048 });
    await assert.rejects(
      c.sendRequest(new Uint8Array(4096)),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "payload" &&
        /at most 2048 bytes .*got 4096/.test(e.message),
    );
    assert.equal(c.stats.sent, 0);
    assert.equal(
      replyText(await c.sendRequest(ops.echo("still fine"))),
      "still fine",
    );
    await c.close();
  });
});

/** Whether `bytes` owns its buffer (a copy) rather than viewing a chunk. */
const ownsBuffer = (bytes: Uint8Array) =>
  bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;

test("replies are views, except small ones where the channel asks for copies (Bun)", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    const copyBelow = adapter.name === "bun" ? 48 : 0;
    const small = await c.sendRequest(ops.echo("x"));
    const large = await c.sendRequest(ops.echo("x".repeat(200)));
    assert.ok(small.byteLength < 48 && large.byteLength >= 48);
    assert.equal(ownsBuffer(small), small.byteLength < copyBelow);
    assert.equal(ownsBuffer(large), false);
    assert.equal(replyText(small), "x");
    await c.close();
  });
});

test("a channel's copyBelow reaches the decoder: shorter replies are copies", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, memory) => {
    const adapter: RuntimeAdapter = {
      ...memory,
      name: memory.name,
      connect: async (options) =>
        Object.assign(await memory.connect(options), { copyBelow: 1000 }),
    };
    const c = await connect(node, adapter, { clock });
    const reply = await c.sendRequest(ops.echo("x".repeat(100)));
    assert.equal(ownsBuffer(reply), true);
    assert.equal(replyText(reply), "x".repeat(100));
    await c.close();
  }, { clock });
});

test("a channel with a bad copyBelow fails the connect with InvalidArgumentError, and is destroyed", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, memory) => {
    const opened: ByteChannel[] = [];
    for (const copyBelow of [-1, NaN, "48", 1e9]) {
      const adapter: RuntimeAdapter = {
        ...memory,
        name: memory.name,
        connect: async (options) => {
          const channel = await memory.connect(options);
          opened.push(channel);
          return Object.assign(channel, { copyBelow });
        },
      };
      await assert.rejects(
        connect(node, adapter, { clock }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === "copyBelow",
        String(copyBelow),
      );
    }
    assert.equal(opened.length, 4);
    for (const channel of opened) {
      assert.equal(channel.write(new Uint8Array(1)), false, "destroyed");
    }
  }, { clock });
});

/**
 * Hostile custom-adapter channels: what each does to `copyBelow`, and
 * whether its `destroy` throws too. `raw` is the memory channel behind it.
 */
const hostileChannels: Array<{
  what: string;
  wrap: (raw: ByteChannel) => ByteChannel;
  /** What the error's message must say. */
  message: RegExp;
}> = [
  {
    what: "a copyBelow getter that throws",
    wrap: (raw) =>
      Object.defineProperty(raw, "copyBelow", {
        get() {
          throw new Error("adapter bug");
        },
      }),
    message: /runtime adapter's channel: invalid copyBelow: could not be read/,
  },
  {
    what: "a copyBelow getter that throws a string",
    wrap: (raw) =>
      Object.defineProperty(raw, "copyBelow", {
        get() {
          throw "adapter bug";
        },
      }),
    message: /could not be read/,
  },
  {
    what: "a Proxy whose copyBelow and destroy throw",
    wrap: (raw) =>
      new Proxy(raw, {
        get(target, key) {
          if (key === "copyBelow" || key === "destroy") {
            throw new TypeError(`no ${String(key)}`);
          }
          const value = Reflect.get(target, key);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
    message: /could not be read/,
  },
  {
    what: "a string copyBelow and a destroy that throws",
    wrap: (raw) =>
      Object.assign(raw, {
        copyBelow: "48",
        destroy: () => {
          throw new Error("cannot destroy");
        },
      }),
    message:
      /runtime adapter's channel: invalid copyBelow: expected an integer from 0 to 1024, got "48"/,
  },
];

for (const { what, wrap, message } of hostileChannels) {
  test(`a channel with ${what} fails the connect with InvalidArgumentError naming the channel, leaking nothing`, async () => {
    const clock = new VirtualClock();
    await withNode(async (node, memory) => {
      const raws: ByteChannel[] = [];
      const adapter: RuntimeAdapter = {
        ...memory,
        name: memory.name,
        connect: async (options) => {
          const raw = await memory.connect(options);
          raws.push(raw);
          return wrap(raw);
        },
      };
      await assert.rejects(
        connect(node, adapter, { clock }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === "copyBelow" &&
          message.test(e.message),
      );
      assert.equal(raws.length, 1);
      assert.equal(clock.pendingTimers, 0, "the connect timer is cleared");
    }, { clock });
  });
}

test("a copyBelow that changes between reads is read once", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, memory) => {
    let reads = 0;
    const adapter: RuntimeAdapter = {
      ...memory,
      name: memory.name,
      connect: async (options) =>
        Object.defineProperty(await memory.connect(options), "copyBelow", {
          get: () => reads++ === 0 ? 1000 : Number.NaN,
        }),
    };
    const c = await connect(node, adapter, { clock });
    const reply = await c.sendRequest(ops.echo("x".repeat(100)));
    assert.equal(ownsBuffer(reply), true, "the first reading holds");
    assert.equal(reads, 1);
    await c.close();
  }, { clock });
});

for (
  const [what, copyBelow] of [["NaN", Number.NaN], [
    "a throwing getter",
    undefined,
  ]] as const
) {
  test(`a TLS channel with ${what} for copyBelow fails startTls with InvalidArgumentError and is destroyed`, async () => {
    const clock = new VirtualClock();
    await withNode(async (node, memory) => {
      let secureDestroyed = 0;
      const adapter: RuntimeAdapter = {
        ...memory,
        name: memory.name,
        connect: async (options) => {
          const plain = await memory.connect(options);
          return Object.assign(plain, {
            startTls: () => {
              const secure = {
                ...plain,
                destroy: () => {
                  secureDestroyed++;
                  throw new Error("destroy throws too");
                },
              } as ByteChannel;
              Object.defineProperty(secure, "copyBelow", {
                get: () => {
                  if (copyBelow === undefined) throw new RangeError("bad");
                  return copyBelow;
                },
              });
              return Promise.resolve(secure);
            },
          });
        },
      };
      const c = await connect(node, adapter, { clock });
      await assert.rejects(
        c.startTls({ serverName: "n1" }),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === "copyBelow" &&
          /runtime adapter's channel/.test(e.message),
      );
      assert.equal(secureDestroyed, 1);
      // As the TLS transport does after any failed switch.
      c.destroy();
      await c.closed;
      assert.equal(c.isOpen, false);
      assert.equal(clock.pendingTimers, 0);
    }, { clock });
  });
}

test("a large payload crosses intact in both directions", async () => {
  await withNode(async (node, adapter) => {
    const c = await connect(node, adapter);
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const reply = decodeReply(await c.sendRequest(ops.echo(big)));
    assert.equal(reply.data.byteLength, big.byteLength);
    assert.deepEqual(reply.data.subarray(0, 1000), big.subarray(0, 1000));
    assert.equal(reply.data[big.byteLength - 1], big[big.byteLength - 1]);
    await c.close();
  });
});

test("an ERROR answering the hello fails the connect at once, not at its timeout", async () => {
  const clock = new VirtualClock();
  await withFakeNode((channel) => {
    const codec = new MessageCodec();
    channel.onClose(() => {});
    channel.onData((chunk) =>
      codec.decode(chunk, (m) =>
        channel.write(codec.encode({
          type: MessageType.Error,
          flags: 0,
          sequence: m.sequence,
          payload: encodeError({
            code: RemoteErrorCode.Unavailable,
            retryable: true,
            message: "starting up",
          }),
        })))
    );
  }, async (port, adapter) => {
    const attempt = Connection.connect({
      adapter,
      hostname: "127.0.0.1",
      port,
      clock,
      timeoutMs: 5000,
    });
    // No virtual time passes: the answer alone must settle it.
    await assert.rejects(attempt, (e: unknown) => {
      assert.ok(e instanceof RemoteError, String(e));
      assert.equal(e.remoteCode, RemoteErrorCode.Unavailable);
      assert.match(e.message, /starting up/);
      return true;
    });
    assert.equal(clock.now(), 0);
  });
});

/**
 * A channel under the test's control: it records every write, and reports
 * congestion from the first write on until `drain()` is called.
 */
function congestedChannel() {
  const written: Uint8Array[] = [];
  let congested = false;
  let onDrained: (() => void) | undefined;
  const channel: ByteChannel = {
    onData: () => {},
    onClose: () => {},
    write(bytes) {
      written.push(bytes.slice());
      congested = true;
      return false;
    },
    drained: () =>
      congested ? new Promise((resolve) => (onDrained = resolve)) : (
        Promise.resolve()
      ),
    close: () => {},
    destroy: () => {},
    bufferedAmount: 0,
    remoteAddress: undefined,
  };
  return {
    channel,
    written,
    drain() {
      congested = false;
      onDrained?.();
    },
  };
}

test("frames held back by congestion keep their order and flags, and count as never sent", async () => {
  const fake = congestedChannel();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 });
  const codec = new MessageCodec();
  const sent = () => {
    const frames: Array<{ sequence: number; flags: number }> = [];
    for (const bytes of fake.written) {
      codec.decode(bytes, (m) => frames.push(m));
    }
    fake.written.length = 0;
    return frames.map((m) => [m.sequence, m.flags]);
  };
  const outcome = (p: Promise<unknown>) =>
    p.then(() => "reply", (e: ConnectionLostError) => e);
  // Written at once; the write reports congestion.
  const first = outcome(c.sendRequest(ops.echo()));
  await Promise.resolve();
  assert.deepEqual(sent(), [[1, 0]]);
  // Held back: one plain, one idempotent, one aborted while held.
  const abort = new AbortController();
  const second = outcome(c.sendRequest(ops.echo()));
  const third = outcome(c.sendRequest(ops.echo(), { idempotent: true }));
  const aborted = outcome(c.sendRequest(ops.echo(), { signal: abort.signal }));
  abort.abort();
  assert.ok((await aborted) instanceof AbortedError);
  await Promise.resolve();
  assert.deepEqual(sent(), [], "nothing more is written while congested");
  fake.drain();
  await new Promise((resolve) => setTimeout(resolve, 0));
  // In order, the idempotent flag kept, the aborted one never written.
  assert.deepEqual(sent(), [[2, 0], [3, 1]]);
  // Now held again: one more waits for the next drain.
  const fifth = outcome(c.sendRequest(ops.echo()));
  c.destroy(new Error("test: gone"));
  const errors = await Promise.all([first, second, third, fifth]);
  assert.deepEqual(
    errors.map((e) => e instanceof ConnectionLostError && e.sent),
    [true, true, true, false],
    "only the frame still held back is known never to have left",
  );
});

test("requests held back by congestion that time out fail as never sent (retryable), the one written as sent, however many are held", async () => {
  const clock = new VirtualClock();
  const fake = congestedChannel();
  const c = new Connection(fake.channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 100,
  });
  const outcome = (p: Promise<unknown>) =>
    p.then(() => "reply", (e: RequestTimeoutError) => e);
  const first = outcome(c.sendRequest(ops.echo()));
  await Promise.resolve();
  // Thousands held: each expiry asks whether its frame is still held,
  // which a scan of the held list made quadratic.
  const held = Array.from(
    { length: 3000 },
    () => outcome(c.sendRequest(ops.echo())),
  );
  await clock.advance(100);
  const [written, ...rest] = await Promise.all([first, ...held]);
  assert.ok(written instanceof RequestTimeoutError && written.sent);
  assert.equal(written.retryable, false, "it may have been executed");
  assert.ok(
    rest.every((e) =>
      e instanceof RequestTimeoutError && !e.sent && e.retryable
    ),
  );
  c.destroy();
});

test("isHeld finds a request among held frames in sequence order exactly when it is there", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { maxLength: 200 }),
      fc.integer({ min: 0, max: 10_001 }),
      fc.option(fc.nat()),
      fc.boolean(),
      (sequences, other, pick, sameObject) => {
        sequences.sort((a, b) => a - b);
        // Mostly a number that is held, else any number.
        const probe = pick !== null && sequences.length > 0
          ? sequences[pick % sequences.length]
          : other;
        const record = (sequence: number): Pending => ({
          sequence,
          type: MessageType.Request,
          sink: { onReply() {}, onError() {} },
          abort: undefined,
          deadline: 0,
          timeoutMs: 0,
        });
        const held: HeldFrame[] = sequences.map((sequence) => ({
          pending: record(sequence),
          flags: 0,
          payload: new Uint8Array(0),
        }));
        const found = held.find((h) => h.pending.sequence === probe);
        // Either the held record itself, or another with its number (a
        // request that is not the held one must not be taken for it).
        const pending = found && sameObject ? found.pending : record(probe);
        assert.equal(
          isHeld(held, pending),
          held.some((h) => h.pending === pending),
        );
      },
    ),
  );
});

test("submitBatch refuses a range outside the payloads, a bad timeout or idempotent flag, and fails a payload that is no Uint8Array alone", async () => {
  await withNode(async (node, adapter) => {
    const conn = await connect(node, adapter);
    try {
      const outcomes: (string | Error)[] = [];
      let settled = 0;
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => (done = resolve));
      const sink = {
        first: 0,
        onReply(payload: Uint8Array, sequence?: number) {
          outcomes[sequence! - sink.first] = replyText(payload);
          if (++settled === 3) done();
        },
        onError(error: Error, sequence?: number) {
          outcomes[sequence! - sink.first] = error;
          if (++settled === 3) done();
        },
      };
      const payloads = [ops.echo("a"), ops.echo("b"), ops.echo("c")];
      for (
        const [from, to] of [[-1, 2], [2, 1], [0, 4], [0.5, 2], [NaN, 1]]
      ) {
        const refused = conn.submitBatch(payloads, from, to, {}, sink);
        assert.ok(refused instanceof InvalidArgumentError, `${from}, ${to}`);
      }
      for (const timeoutMs of [0, -1, NaN, 3e9]) {
        const refused = conn.submitBatch(payloads, 0, 3, { timeoutMs }, sink);
        assert.ok(refused instanceof InvalidArgumentError, String(timeoutMs));
      }
      // Options that cannot be read, or read twice: returned, not thrown
      // (a getter that threw escaped as the raw error).
      let reads = 0;
      const once = {
        get timeoutMs() {
          if (++reads > 1) throw new Error("read a second time");
          return Number.NaN;
        },
      };
      const boom = new Error("boom");
      const bad: [unknown, RegExp][] = [
        [once, /options\.timeoutMs/],
        [{
          get timeoutMs(): number {
            throw boom;
          },
        }, /could not be read/],
        ["fast", /expected an object/],
        // As submitRequest refuses it: not quietly taken as not idempotent.
        [{ idempotent: "yes" }, /options\.idempotent: expected true or false/],
        [{ idempotent: 1 }, /options\.idempotent: expected true or false/],
      ];
      for (const [options, message] of bad) {
        const refused = conn.submitBatch(
          payloads,
          0,
          3,
          options as { timeoutMs?: number },
          sink,
        );
        assert.ok(refused instanceof InvalidArgumentError, String(options));
        assert.match(refused.message, message);
      }
      assert.equal(reads, 1);
      assert.equal(settled, 0, "a refused run reports nothing to the sink");
      const mixed = [
        ops.echo("a"),
        "b" as unknown as Uint8Array,
        ops.echo("c"),
      ];
      assert.equal(conn.submitBatch(mixed, 0, 3, {}, sink), undefined);
      await all;
      assert.equal(outcomes[0], "a");
      assert.ok(outcomes[1] instanceof InvalidArgumentError);
      assert.equal(outcomes[2], "c");
    } finally {
      await conn.close();
    }
  });
});

test("runs and single requests mixed on one connection: each run shares its deadline, aborts and cancels touch only their own, the timer ends with them", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const conn = await connect(node, adapter, { clock });
    const outcomes = new Map<string, { at: number; what: string }>();
    const record = (key: string) => (what: string) =>
      outcomes.set(key, { at: clock.now(), what });
    const kind = (e: Error) => e.constructor.name;
    const run = (name: string) => {
      const sink = {
        first: 0,
        onReply: (p: Uint8Array, s?: number) =>
          record(`${name}${s! - sink.first}`)(replyText(p)),
        onError: (e: Error, s?: number) =>
          record(`${name}${s! - sink.first}`)(kind(e)),
      };
      return sink;
    };
    const single = (name: string, p: Promise<Uint8Array>) =>
      p.then((v) => record(name)(replyText(v)), (e) => record(name)(kind(e)));
    const slow = ops.sleep(1000);
    // A run of slow items (50 ms), a fast one in the middle.
    const a = run("a");
    conn.submitBatch([slow, ops.echo("fast"), slow], 0, 3, {
      timeoutMs: 50,
    }, a);
    // A single request with an earlier deadline, one with a later one.
    single("s30", conn.sendRequest(slow, { timeoutMs: 30 }));
    const controller = new AbortController();
    single(
      "s200",
      conn.sendRequest(slow, { timeoutMs: 200, signal: controller.signal }),
    );
    await clock.advance(10);
    // A second run, later deadline, then cancelled in part by time.
    const b = run("b");
    conn.submitBatch([slow, slow], 0, 2, { timeoutMs: 100 }, b);
    await clock.advance(5);
    // A run that was entirely refused item by item: nothing to time.
    const c = run("c");
    conn.submitBatch(["x" as unknown as Uint8Array], 0, 1, {
      timeoutMs: 5,
    }, c);
    controller.abort();
    await clock.advance(0);
    conn.cancelBatch(b, 2, new AbortedError("chunk cancelled"));
    await clock.advance(300);
    assert.deepEqual(Object.fromEntries(outcomes), {
      a0: { at: 50, what: "RequestTimeoutError" },
      a1: { at: 0, what: "fast" },
      a2: { at: 50, what: "RequestTimeoutError" },
      s30: { at: 30, what: "RequestTimeoutError" },
      s200: { at: 15, what: "AbortedError" },
      b0: { at: 15, what: "AbortedError" },
      b1: { at: 15, what: "AbortedError" },
      c0: { at: 15, what: "InvalidArgumentError" },
    });
    assert.equal(conn.inFlight, 0);
    assert.equal(conn.stats.timedOut, 3);
    assert.equal(conn.timerArmed, false, "nothing left to time");
    conn.destroy();
  }, { clock });
});

test("a handshake that fails with what cannot even be tested for an Error (a revoked proxy) still has its connection destroyed, and the failure is the connect's", async () => {
  const clock = new VirtualClock();
  await withNode(async (node, adapter) => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const outcome = await connect(node, adapter, {
      clock,
      handshake: () => Promise.reject(revoked.proxy),
    }).then(() => "connected", (e: unknown) => [e]);
    assert.ok(Array.isArray(outcome) && outcome[0] === revoked.proxy);
    // Before: destroying it tested the reason with instanceof, which threw
    // inside the quiet destroy: the socket stayed open for good.
    const network = adapter as ReturnType<typeof createMemoryNetwork>;
    for (let i = 0; i < 10 && network.openChannels > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(network.openChannels, 0);
    assert.equal(clock.pendingTimers, 0);
  }, { clock });
});
