// The adversarial review of Connection's public API: bad payloads and
// options given straight to a connection, a ReplySink that throws, and a
// broken or hostile peer (one that never reads, pings while it reads
// nothing, says GOODBYE over and over). Each fixed defect has a test here
// that failed before its fix; the last tests check behaviour that held.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Connection } from "../src/connection/connection.ts";
import { submitRun } from "../src/connection/batch.ts";
import { ConnectionCore } from "../src/connection/core.ts";
import { ConnectionLifecycle } from "../src/connection/lifecycle.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import {
  ConnectionLostError,
  InvalidArgumentError,
  ProtocolError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { childReport, spawnScript } from "./support/exit/spawn.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { stubChannel } from "./support/stub_channel.ts";

const codec = new MessageCodec();
const ENDPOINT = { hostname: "fake", port: 1 };

/**
 * A channel the test drives: it keeps every write as given (a view, not a
 * copy, as the runtimes' write queues do), feeds the connection with
 * `deliver`, and reports congestion from the first write on while
 * `congest` is set, until `drain()`.
 */
function scriptedChannel(congest = false) {
  const written: Uint8Array[] = [];
  let onData!: (chunk: Uint8Array) => void;
  let congested = false;
  let drained: (() => void) | undefined;
  const channel = stubChannel({
    onData: (fn) => (onData = fn),
    write(bytes) {
      written.push(bytes);
      if (congest) congested = true;
      return !congested;
    },
    drained: () =>
      congested
        ? new Promise((resolve) => (drained = resolve))
        : Promise.resolve(),
  });
  return {
    channel,
    written,
    deliver: (message: Message) => onData(codec.encode(message)),
    deliverBytes: (bytes: Uint8Array) => onData(bytes),
    /** The frames written so far, decoded (copied at decode time). */
    frames(): Message[] {
      const out: Message[] = [];
      const reader = new MessageCodec();
      for (const bytes of written) {
        reader.decode(bytes.slice(), (m) => out.push(m));
      }
      return out;
    },
    drain() {
      congest = congested = false;
      drained?.();
    },
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

// ------------------------------------------------------------ sinks that throw

test("a ReplySink that throws harms nothing else: the connection stays open, the other requests settle, the timer goes on, and the throw is reported to the process", async () => {
  // In a child process: `bun test` fails the running test on any
  // uncaught error, whatever handler is installed (see the child).
  const report = await childReport(
    fileURLToPath(new URL("./support/throwing_sink.ts", import.meta.url)),
  );
  assert.deepEqual(report, {
    // Before: the connection was destroyed as a protocol violation, and
    // the other request failed with ConnectionLostError.
    reply: { other: "reply", open: true },
    // Before: the throw escaped the timer callback, the other requests
    // never timed out, and the timer was not armed again.
    timeout: {
      advanced: "ok",
      others: ["RequestTimeoutError", "RequestTimeoutError"],
      inFlight: 0,
      timerArmed: false,
    },
    // Before: destroy() threw the sink's error and the other request
    // never settled.
    end: { destroyed: "ok", other: "ConnectionLostError" },
    route: {
      aborted: "AbortedError",
      timedOut: "RequestTimeoutError",
      sent: true,
      open: true,
    },
    // Before: destroy() threw the route's error, the request never
    // settled (the deadline timer was stopped already), nor did closed.
    routeClose: {
      destroyed: "ok",
      request: "ConnectionLostError",
      closed: "ConnectionClosedError",
      open: false,
    },
    // Before: destroy() threw a TypeError (null.has), and the request
    // never settled.
    routeCloseNull: {
      destroyed: "ok",
      request: "ConnectionLostError",
      sent: true,
    },
    // Before: submitBatch threw at the first refusal (the second was
    // never reported, the run not counted as sent), and cancelBatch
    // threw at the first item, leaving the others in flight, their
    // frames to be written.
    batch: {
      submitted: "ok",
      refused: [1, 3],
      sent: 3,
      cancelled: "ok",
      cancelledItems: [2, 4, 5],
      inFlight: 0,
    },
    reported: [
      "batch: onError bug 1",
      "batch: onError bug 2",
      "batch: onError bug 3",
      "batch: onError bug 4",
      "batch: onError bug 5",
      "end: onError bug",
      "reply: onReply bug",
      "route: withdraw bug",
      "route: withdraw bug",
      "routeClose: close bug",
      "timeout: onError bug",
    ],
  });
});

test("a request whose sink destroys the connection as it times out leaves no deadline timer armed for the requests the destroy failed", async () => {
  const clock = new VirtualClock();
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, { clock });
  const outcomes: string[] = [];
  c.submitRequest(new Uint8Array([1]), { timeoutMs: 100 }, {
    onReply: () => outcomes.push("reply"),
    onError: (error) => {
      outcomes.push(error.constructor.name);
      c.destroy();
    },
  });
  c.submitRequest(new Uint8Array([2]), { timeoutMs: 200 }, {
    onReply: () => outcomes.push("reply"),
    onError: (error) => outcomes.push(error.constructor.name),
  });
  await clock.advance(100);
  assert.deepEqual(outcomes, ["RequestTimeoutError", "ConnectionLostError"]);
  assert.equal(c.isOpen, false);
  // Before: the firing armed the timer again for the second request's
  // deadline, after the destroy had stopped it.
  assert.equal(c.timerArmed, false);
  assert.equal(clock.pendingTimers, 0);
});

test("a second startTls while the first is under way is refused with ProtocolError: the plaintext stream is upgraded once, and no secure channel is left open", async () => {
  const clock = new VirtualClock();
  const secure: { channel: ByteChannel; destroyed: boolean }[] = [];
  const upgrades: Array<() => void> = [];
  const plain = stubChannel({
    onData: () => {},
    startTls: () =>
      new Promise<ByteChannel>((resolve) => {
        const entry = {
          channel: stubChannel({
            onData: () => {},
            destroy: () => void (entry.destroyed = true),
            close: () => void (entry.destroyed = true),
          }),
          destroyed: false,
        };
        secure.push(entry);
        upgrades.push(() => resolve(entry.channel));
      }),
  });
  const c = new Connection(plain, ENDPOINT, { clock });
  const first = c.startTls({ serverName: "n1" });
  const second = c.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  for (const upgrade of upgrades) upgrade();
  await first;
  const refused = await second;
  // Before: both switched, the second secure channel took the first's
  // place, and the first stayed open with nobody to close it.
  assert.ok(refused instanceof ProtocolError, String(refused));
  assert.match(refused.message, /TLS switch is under way/);
  assert.equal(secure.length, 1, "the plaintext stream is upgraded once");
  assert.equal(c.encrypted, true);
  c.destroy();
  assert.deepEqual(secure.map((s) => s.destroyed), [true]);
  assert.equal(clock.pendingTimers, 0);
});

test("a frame that breaks the protocol, kept behind a pauseReading receive, ends the connection on resumeReading() as it would have on arrival: resumeReading does not throw, and every request fails at once", async () => {
  const clock = new VirtualClock();
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock,
    requestTimeoutMs: 1000,
  });
  const ping = c.ping().then(() => "pong", (e: Error) => e);
  const request = c.sendRequest(new Uint8Array([1])).then(
    () => "reply",
    (e: Error) => e,
  );
  await tick();
  const taken = c.receiveMessage({ pauseReading: true });
  // One chunk: the message taken, then, behind the pause point, a
  // RESPONSE to the ping (the wrong kind of reply) and the request's.
  const bytes = (message: Message) => codec.encode(message);
  const chunk = [
    bytes({
      type: MessageType.NegotiateOk,
      flags: 0,
      sequence: 7,
      payload: new Uint8Array(0),
    }),
    bytes({
      type: MessageType.Response,
      flags: 0,
      sequence: 1,
      payload: new Uint8Array(0),
    }),
    bytes({
      type: MessageType.Response,
      flags: 0,
      sequence: 2,
      payload: new Uint8Array([9]),
    }),
  ];
  const all = new Uint8Array(chunk.reduce((n, b) => n + b.length, 0));
  chunk.reduce((at, b) => (all.set(b, at), at + b.length), 0);
  scripted.deliverBytes(all);
  assert.equal((await taken).type, MessageType.NegotiateOk);
  // Before: resumeReading() threw the ProtocolError, the connection
  // stayed open, and the request waited out its timeout, its reply lost.
  c.resumeReading();
  assert.equal(c.isOpen, false);
  const [p, r] = await Promise.all([ping, request]);
  for (const error of [p, r]) {
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.match(
      error.message,
      /protocol violation: sequence 1 answered with type 0x/,
    );
  }
  assert.equal(clock.pendingTimers, 0);
});

test("a secure channel delivered after its connection was destroyed is destroyed, and startTls fails with the connection's ConnectionLostError even when that channel's destroy throws", async () => {
  let upgrade!: (secure: ByteChannel) => void;
  const plain = stubChannel({
    onData: () => {},
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  const c = new Connection(plain, ENDPOINT, { clock: new VirtualClock() });
  const switched = c.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  let destroyed = 0;
  const secure = stubChannel({
    onData: () => {},
    destroy: () => {
      destroyed++;
      throw new Error("secure destroy bug");
    },
  });
  c.destroy();
  upgrade(secure);
  const error = await switched;
  // Before: startTls failed with the channel's own Error.
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.equal(destroyed, 1);
});

test("a request sent while the stream switches to TLS waits for the secure channel: none of its bytes go out in plaintext", async () => {
  const plainFrames: number[] = [];
  const secureFrames: number[] = [];
  const record = (into: number[]) => (bytes: Uint8Array) => {
    new MessageCodec().decode(bytes.slice(), (m) => into.push(m.type));
    return true;
  };
  let upgrade!: (secure: ByteChannel) => void;
  const plain = stubChannel({
    onData: () => {},
    write: record(plainFrames),
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  let deliver!: (chunk: Uint8Array) => void;
  const secure = stubChannel({
    onData: (fn) => (deliver = fn),
    write: record(secureFrames),
  });
  const c = new Connection(plain, ENDPOINT, { clock: new VirtualClock() });
  const switched = c.startTls({ serverName: "n1" });
  const reply = c.sendRequest(new Uint8Array([1, 2, 3]));
  await tick();
  // Before: the REQUEST went out on the plaintext stream mid-switch.
  assert.deepEqual(plainFrames, [], "nothing in plaintext");
  upgrade(secure);
  await switched;
  await tick();
  assert.deepEqual(secureFrames, [MessageType.Request]);
  deliver(codec.encode({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array([7]),
  }));
  assert.deepEqual([...await reply], [7]);
  c.destroy();
});

// ----------------------------------------------------- a peer that never reads

test("requests that time out while held back by a peer that reads nothing let go of their frames, and those still alive are written in order once it reads", async () => {
  const clock = new VirtualClock();
  const scripted = scriptedChannel(true);
  const owner = {
    ...ENDPOINT,
    address: "fake:1",
    stats: { sent: 0, received: 0, dropped: 0, timedOut: 0 },
    destroy() {},
  };
  const core = new ConnectionCore(owner, clock, 1 << 20, () => {});
  core.attach(scripted.channel, () => {});
  const outcomes = new Map<number, string>();
  const sink: BatchReplySink = {
    first: 0,
    onReply: (_payload, sequence) => outcomes.set(sequence!, "reply"),
    onError: (error, sequence) =>
      outcomes.set(sequence!, error.constructor.name),
  };
  const target = { core, route: undefined, sendLimit: 1 << 20 };
  const payload = new Uint8Array(1024);
  // The first is written and congests the socket; the rest are held, one
  // in ten with a longer timeout.
  let sequence = 1;
  const send = (timeoutMs: number) =>
    submitRun(target, sequence++, [payload], 0, 1, timeoutMs, false, sink);
  send(1000);
  await Promise.resolve();
  for (let i = 1; i <= 10_000; i++) send(i % 10 === 0 ? 1000 : 100);
  assert.equal(core.queued.length, 10_000);
  await clock.advance(100);
  assert.equal(outcomes.size, 9000);
  // Before: all 10,000 frames stayed held, with their payloads, for as
  // long as the peer read nothing.
  assert.ok(
    core.queued.length <= 2 * 1000,
    `${core.queued.length} frames still held for 1000 requests in flight`,
  );
  scripted.written.length = 0;
  scripted.drain();
  await tick();
  assert.deepEqual(
    scripted.frames().map((m) => m.sequence),
    Array.from({ length: 1000 }, (_, i) => 11 + 10 * i),
    "only the live ones, in order",
  );
  await clock.advance(900);
  assert.equal(outcomes.size, 10_001);
  assert.equal(core.queued.length, 0);
  assert.ok(
    [...outcomes.values()].every((o) => o === "RequestTimeoutError"),
  );
});

test("a connection closed while a node reads nothing lets its process exit on its own: a graceful close waited for it to read, for good", async () => {
  // The node: answers HELLO, then reads nothing more.
  const adapter = await getAdapter();
  const channels: ByteChannel[] = [];
  const listener = await adapter.listen(
    { hostname: "127.0.0.1", port: 0 },
    (channel) => {
      channels.push(channel);
      channel.onClose(() => {});
      let greeted = false;
      channel.onData((chunk) => {
        if (greeted) return;
        codec.decode(chunk, (m) => {
          if (greeted) return;
          greeted = true;
          channel.write(codec.encode({
            type: MessageType.HelloOk,
            flags: 0,
            sequence: m.sequence,
            payload: new TextEncoder().encode(JSON.stringify({
              nodeId: "deaf",
              maxFrameSize: 1 << 20,
              auth: "none",
            })),
          }));
          channel.pause?.();
        });
      });
    },
  );
  try {
    const child = spawnScript(
      fileURLToPath(
        new URL("./support/congested_close.ts", import.meta.url),
      ),
      [String(listener.port)],
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => stdout += chunk);
    child.stderr!.on("data", (chunk) => stderr += chunk);
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // It must exit within 10 s of closing; 60 s for the whole scene.
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const marked = new Promise<void>((resolve) =>
      child.stdout!.on("data", () => {
        if (stdout.includes("closed")) resolve();
      })
    );
    await Promise.race([marked, exited]);
    clearTimeout(killer);
    const late = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const code = await exited;
    clearTimeout(late);
    assert.equal(code, 0, `exit ${code}: ${stdout} ${stderr}`);
    assert.match(stdout, /closed congested/, "the scene congested the socket");
  } finally {
    for (const channel of channels) channel.destroy();
    await listener.close();
  }
});

test("a peer that reads nothing gets no PONG for its PINGs: each would wait in memory for it", async () => {
  const scripted = scriptedChannel(true);
  const c = new Connection(scripted.channel, ENDPOINT);
  c.sendRequest(new Uint8Array([1])).catch(() => {});
  await Promise.resolve();
  const before = scripted.written.length;
  const ping = {
    type: MessageType.Ping,
    flags: 0,
    sequence: 7,
    payload: new Uint8Array(10_000),
  };
  for (let i = 0; i < 100; i++) scripted.deliver(ping);
  await tick();
  // Before: 100 PONGs of 10 KB each were handed to the congested socket.
  assert.equal(scripted.written.length, before);
  // Once it reads again, a PING is answered as before.
  scripted.drain();
  await tick();
  const count = scripted.written.length;
  scripted.deliver(ping);
  await tick();
  assert.equal(scripted.written.length, count + 1);
  c.destroy();
});

test("a node that says GOODBYE over and over while a request is in flight adds one wait for idle, not one per GOODBYE", () => {
  let waits = 0;
  const core = {
    table: { size: 1 },
    whenIdle: () => {
      waits++;
      return new Promise<void>(() => {});
    },
  };
  let state: "open" | "closing" | "closed" = "open";
  const lifecycle = new ConnectionLifecycle(ENDPOINT, core as never, {
    get: () => state,
    set: (next) => (state = next),
  });
  for (let i = 0; i < 10_000; i++) lifecycle.onGoodbye();
  assert.equal(state, "closing");
  // Before: 10,000 promises and closures, kept until the request settled.
  assert.equal(waits, 1);
});

// ----------------------------------------------------------------- payloads

test("a large payload over a resizable buffer that shrinks or grows after the call is sent as it was: the stream stays in step for the requests behind it", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT);
  const size = 20_000; // above the size a payload is written uncopied
  const rab = new ArrayBuffer(size, { maxByteLength: 2 * size });
  const fixed = new Uint8Array(rab, 0, size).fill(7);
  c.sendRequest(fixed).catch(() => {});
  rab.resize(100); // `fixed` is now out of bounds: length 0
  const grow = new ArrayBuffer(size, { maxByteLength: 2 * size });
  const tracking = new Uint8Array(grow).fill(8); // follows the length
  c.sendRequest(tracking).catch(() => {});
  grow.resize(2 * size);
  c.sendRequest(new Uint8Array([9])).catch(() => {});
  await tick();
  const frames = scripted.frames();
  // Before: the first frame's header said 20,000 bytes and none followed,
  // so the next frames were read as its payload.
  assert.deepEqual(
    frames.map((m) => [m.sequence, m.payload.length, m.payload[0]]),
    [[1, size, 7], [2, size, 8], [3, 1, 9]],
  );
  c.destroy();
});

test("a growable SharedArrayBuffer view that grows after the call is sent as it was", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT);
  const size = 20_000;
  const sab = new SharedArrayBuffer(size, { maxByteLength: 2 * size });
  const view = new Uint8Array(sab).fill(5);
  c.sendRequest(view).catch(() => {});
  sab.grow(2 * size);
  c.sendRequest(new Uint8Array([6])).catch(() => {});
  await tick();
  assert.deepEqual(
    scripted.frames().map((m) => [m.sequence, m.payload.length]),
    [[1, size], [2, 1]],
  );
  c.destroy();
});

// ------------------------------------------------------------------ options

test("sendRequest and submitRequest refuse options that are no object, whose reading throws, a null timeoutMs or an idempotent that is no boolean, with InvalidArgumentError and nothing recorded", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT);
  const cases: [unknown, string][] = [
    [null, "options"],
    [5, "options"],
    ["fast", "options"],
    [
      {
        get timeoutMs(): number {
          throw new Error("getter bug");
        },
      },
      "options",
    ],
    [{ timeoutMs: null }, "options.timeoutMs"],
    [{ idempotent: "false" }, "options.idempotent"],
    [{ idempotent: 1 }, "options.idempotent"],
  ];
  for (const [options, argument] of cases) {
    await assert.rejects(
      c.sendRequest(new Uint8Array([1]), options as never),
      (error: unknown) =>
        error instanceof InvalidArgumentError && error.argument === argument,
      argument,
    );
    let told: unknown;
    try {
      c.submitRequest(new Uint8Array([1]), options as never, {
        onReply: () => assert.fail("replied"),
        onError: (error) => (told = error),
      });
    } catch (error) {
      assert.fail(`submitRequest threw ${error}`);
    }
    assert.ok(told instanceof InvalidArgumentError, String(told));
  }
  assert.equal(c.inFlight, 0);
  assert.equal(c.stats.sent, 0);
  await tick();
  assert.equal(scripted.written.length, 0);
  // A ping reads the same options, and an idempotent request is flagged.
  await assert.rejects(
    c.ping({ idempotent: "yes" } as never),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT" &&
      e.argument === "options.idempotent" &&
      /expected true or false, got "yes"/.test(e.message),
  );
  c.sendRequest(new Uint8Array([1]), { idempotent: true }).catch(() => {});
  await tick();
  assert.deepEqual(scripted.frames().map((m) => m.flags), [1]);
  c.destroy();
});

test("receiveMessage refuses bad options with InvalidArgumentError before it arms a timer; timeoutMs Infinity means no limit", async () => {
  const clock = new VirtualClock();
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, { clock });
  const cases: [unknown, string][] = [
    [null, "options"],
    [{ timeoutMs: Number.NaN }, "options.timeoutMs"],
    [{ timeoutMs: 0 }, "options.timeoutMs"],
    [{ timeoutMs: -1 }, "options.timeoutMs"],
    [{ timeoutMs: 2 ** 31 }, "options.timeoutMs"],
    [{ signal: {} }, "options.signal"],
    [{ pauseReading: "yes" }, "options.pauseReading"],
    [{ timeout: 5 }, "options.timeout"],
  ];
  for (const [options, argument] of cases) {
    let outcome: Promise<unknown>;
    try {
      outcome = c.receiveMessage(options as never);
    } catch (error) {
      assert.fail(`${argument}: threw ${error}`);
    }
    // Before: NaN, -1 and 2^31 timed out at once, as RequestTimeoutError.
    await assert.rejects(outcome, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, argument);
      return true;
    });
    assert.equal(clock.pendingTimers, 0, argument);
  }
  const waiting = c.receiveMessage({ timeoutMs: Infinity });
  assert.equal(clock.pendingTimers, 0);
  scripted.deliver({
    type: MessageType.Goodbye,
    flags: 0,
    sequence: 0,
    payload: new Uint8Array(0),
  });
  c.destroy();
  await assert.rejects(
    waiting,
    (e: unknown) =>
      e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
      /lost: closed by the node \(it said GOODBYE\)$/.test(e.message),
  );
});

test("sendMessage refuses an unknown message type, unknown flags and a sequence that is no integer in 0 to 2^53 - 1, and writes nothing", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT);
  const payload = new Uint8Array([1]);
  const cases: [() => unknown, string][] = [
    [() => c.sendMessage(300, payload), "type"],
    [() => c.sendMessage(Number.NaN, payload), "type"],
    [() => c.sendMessage("1" as never, payload), "type"],
    [
      () => c.sendMessage(MessageType.Request, payload, null as never),
      "options",
    ],
    [
      () => c.sendMessage(MessageType.Request, payload, { sequence: -1 }),
      "options.sequence",
    ],
    [
      () => c.sendMessage(MessageType.Request, payload, { sequence: 0.5 }),
      "options.sequence",
    ],
    [
      () => c.sendMessage(MessageType.Request, payload, { sequence: 2 ** 53 }),
      "options.sequence",
    ],
    [
      () => c.sendMessage(MessageType.Request, payload, { flags: 2 }),
      "options.flags",
    ],
    [
      () => c.sendMessage(MessageType.Request, payload, { flag: 1 } as never),
      "options.flag",
    ],
  ];
  for (const [call, argument] of cases) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, argument);
      return true;
    });
  }
  await tick();
  assert.equal(scripted.written.length, 0);
  assert.equal(
    c.sendMessage(MessageType.Request, payload, { flags: 1, sequence: 9 }),
    9,
  );
  await tick();
  assert.deepEqual(
    scripted.frames().map((m) => [m.type, m.flags, m.sequence]),
    [[MessageType.Request, 1, 9]],
  );
  c.destroy();
});

test("Connection.connect refuses options missing, of the wrong type or unknown with InvalidArgumentError, before it connects or arms a timer", async () => {
  const clock = new VirtualClock();
  let connects = 0;
  const adapter = {
    name: "memory",
    connect: () => {
      connects++;
      return new Promise<never>(() => {});
    },
    listen: () => Promise.reject(new Error("unused")),
  } as unknown as RuntimeAdapter;
  const base = { adapter, hostname: "127.0.0.1", port: 7000, clock };
  const cases: [unknown, string][] = [
    [undefined, "options"],
    [null, "options"],
    [{ ...base, adapter: undefined }, "options.adapter"],
    [{ ...base, adapter: {} }, "options.adapter"],
    [{ ...base, hostname: "" }, "options.hostname"],
    [{ ...base, port: 0 }, "options.port"],
    [{ ...base, port: 70_000 }, "options.port"],
    [{ ...base, port: "7000" }, "options.port"],
    [{ ...base, timeoutMs: Number.NaN }, "options.timeoutMs"],
    [{ ...base, timeoutMs: 0 }, "options.timeoutMs"],
    [{ ...base, timeoutMs: -1 }, "options.timeoutMs"],
    [{ ...base, timeoutMs: 2 ** 31 }, "options.timeoutMs"],
    [{ ...base, requestTimeoutMs: null }, "options.requestTimeoutMs"],
    [{ ...base, maxFrameSize: 10 }, "options.maxFrameSize"],
    [{ ...base, clock: {} }, "options.clock"],
    [{ ...base, signal: { aborted: false } }, "options.signal"],
    [{ ...base, handshake: "scram" }, "options.handshake"],
    [{ ...base, clientName: 5 }, "options.clientName"],
    // The config's rule: it travels in HELLO and lands in the node's logs.
    [{ ...base, clientName: "x".repeat(256) }, "options.clientName"],
    [{ ...base, clientName: "app\r\nforged" }, "options.clientName"],
    [{ ...base, id: -1 }, "options.id"],
    [{ ...base, tls: true }, "options.tls"],
    [{ ...base, timeout: 100 }, "options.timeout"],
    [
      {
        ...base,
        get port(): number {
          throw new Error("getter bug");
        },
      },
      "options.port",
    ],
  ];
  for (const [options, argument] of cases) {
    let outcome: Promise<unknown>;
    try {
      outcome = Connection.connect(options as never);
    } catch (error) {
      assert.fail(`${argument}: threw ${error}`);
    }
    await assert.rejects(outcome, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, argument);
      assert.match(error.message, /^Connection\.connect\(\): /);
      return true;
    }, argument);
  }
  // Before: a bad timeoutMs connected and timed out at once, a bad
  // signal threw with the connect timer armed.
  assert.equal(connects, 0);
  assert.equal(clock.pendingTimers, 0);
});

test("destroy() with a reason that is no Error settles closed with an Error saying it, as its type promises", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT);
  const pending = c.sendRequest(new Uint8Array([1]));
  c.destroy("shutting down" as never);
  const reason = await c.closed;
  // Before: the string itself.
  assert.ok(reason instanceof Error, String(reason));
  assert.equal(reason.message, "shutting down");
  await assert.rejects(
    pending,
    (e: unknown) => e instanceof ConnectionLostError && e.cause === reason,
  );
});

test("destroy() with a reason whose text cannot be made (no prototype, a revoked proxy) still ends the connection, with an Error saying what it was", async () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  for (const reason of [Object.create(null), revoked.proxy]) {
    const scripted = scriptedChannel();
    const c = new Connection(scripted.channel, ENDPOINT);
    const pending = c.sendRequest(new Uint8Array([1]));
    // Before: destroy() threw a raw TypeError (String() of the reason),
    // and the connection stayed open with its request in flight.
    c.destroy(reason as never);
    assert.equal(c.isOpen, false);
    const closed = await c.closed;
    assert.ok(closed instanceof Error, String(closed));
    assert.match(closed.message, /object/);
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof ConnectionLostError && e.cause === closed,
    );
  }
});

test("submitBatch given payloads that cannot be read (a revoked proxy, a length getter that throws) returns an InvalidArgumentError naming them, and sends nothing", () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const revoked = Proxy.revocable([], {});
  revoked.revoke();
  const lying = new Proxy([new Uint8Array(1)], {
    get: (target, key) => {
      if (key === "length") throw new Error("length bug");
      return Reflect.get(target, key);
    },
  });
  const sink: BatchReplySink = { first: 0, onReply() {}, onError() {} };
  for (const payloads of [revoked.proxy, lying]) {
    let outcome: unknown;
    try {
      outcome = c.submitBatch(payloads as never, 0, 1, {}, sink);
    } catch (error) {
      // Before: the raw TypeError of Array.isArray, or the getter's own.
      outcome = error;
    }
    assert.ok(outcome instanceof InvalidArgumentError, String(outcome));
    assert.equal(outcome.argument, "payloads");
    assert.match(outcome.message, /could not be read/);
  }
  assert.equal(c.inFlight, 0);
  assert.equal(c.stats.sent, 0);
  c.destroy();
});

test("routeRequests refuses what is no RequestRoute with an InvalidArgumentError naming what is wrong, and the connection goes on over its stream", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const methods = {
    tooLarge: (length: number) => new RangeError(`${length} bytes`),
    send() {},
    close() {},
  };
  const bad: [unknown, RegExp][] = [
    [null, /route: .*it is no object/],
    [revoked.proxy, /route: .*could not be read/],
    [{ ...methods, send: 1, maxPayload: 10 }, /route: .*no send\(\) method/],
    [{ ...methods, maxPayload: "10" }, /route\.maxPayload: .*integer/],
    [{ ...methods }, /route\.maxPayload: .*integer/],
    [{ ...methods, maxPayload: 10, withdraw: 1 }, /route\.withdraw: /],
  ];
  for (const [route, message] of bad) {
    // Before: taken as it was; every request after it then failed with a
    // raw TypeError (route.maxPayload of null), or went by no route at all.
    assert.throws(
      () => c.routeRequests(route as never),
      (e: unknown) =>
        e instanceof InvalidArgumentError && message.test(e.message),
    );
  }
  const reply = c.sendRequest(new Uint8Array([1]));
  await tick();
  scripted.deliver({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array([5]),
  });
  assert.deepEqual([...await reply], [5]);
  c.destroy();
});

test("cancelBatch refuses a count that is no integer of 0 or more, or an error that is no Error, with InvalidArgumentError, cancelling nothing", () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const outcomes: string[] = [];
  const sink: BatchReplySink = {
    first: 0,
    onReply: () => outcomes.push("reply"),
    onError: (error) => outcomes.push(error.message),
  };
  c.submitBatch([new Uint8Array([1]), new Uint8Array([2])], 0, 2, {}, sink);
  const error = new Error("test: cancelled");
  // Before: NaN, -1 and 1.5 cancelled nothing, silently; Infinity looped
  // for ever (last, so that a check gone missing fails the test first).
  for (const count of [Number.NaN, -1, 1.5, "2", Infinity]) {
    assert.throws(
      () => c.cancelBatch(sink, count as never, error),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "count",
    );
  }
  assert.throws(
    () => c.cancelBatch(sink, 2, "no error" as never),
    (e: unknown) => e instanceof InvalidArgumentError && e.argument === "error",
  );
  assert.equal(c.inFlight, 2);
  // A count beyond the sequences handed out cancels what there is, at once.
  c.cancelBatch(sink, Number.MAX_SAFE_INTEGER, error);
  assert.deepEqual(outcomes, ["test: cancelled", "test: cancelled"]);
  assert.equal(c.inFlight, 0);
  c.destroy();
});

// ------------------------------------------------------------- what held

test("a request on a connection that ended says how it ended: closed by this client, destroyed by it, or closed by the node's GOODBYE, the address said once", async () => {
  const ended = async (
    end: (c: Connection, s: ReturnType<typeof scriptedChannel>) => unknown,
  ) => {
    const scripted = scriptedChannel();
    const c = new Connection(scripted.channel, ENDPOINT, {
      clock: new VirtualClock(),
    });
    await end(c, scripted);
    assert.equal(c.isOpen, false);
    const error = await c.sendRequest(new Uint8Array([1])).catch((e) => e);
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.equal(error.sent, false);
    return error.message;
  };
  assert.equal(
    await ended((c) => c.close()),
    "connection to fake:1 lost: closed by this client",
  );
  assert.equal(
    await ended((c) => c.destroy()),
    "connection to fake:1 lost: destroyed by this client",
  );
  assert.equal(
    await ended((c) => c.destroy(new Error("test: gone"))),
    "connection to fake:1 lost: destroyed by this client",
  );
  assert.equal(
    await ended((_, scripted) =>
      scripted.deliver({
        type: MessageType.Goodbye,
        flags: 0,
        sequence: 0,
        payload: new Uint8Array(0),
      })
    ),
    "connection to fake:1 lost: closed by the node (it said GOODBYE)",
  );
});

test("held: replies with unknown or duplicate sequences are dropped, a reply of the wrong type or a frame over maxFrameSize ends the connection with typed errors", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, { maxFrameSize: 1024 });
  const first = c.sendRequest(new Uint8Array([1]));
  const second = c.sendRequest(new Uint8Array([2]));
  await tick();
  const reply = (type: number, sequence: number, length = 1) =>
    scripted.deliver({
      type,
      flags: 0,
      sequence,
      payload: new Uint8Array(length),
    });
  reply(MessageType.Response, 99);
  reply(MessageType.Response, 1);
  reply(MessageType.Response, 1);
  assert.ok(await first);
  assert.equal(c.stats.dropped, 2);
  assert.ok(c.isOpen);
  reply(MessageType.Response, 2, 2048);
  await assert.rejects(
    second,
    (e: unknown) =>
      e instanceof ConnectionLostError && /protocol/.test(e.message),
  );
  assert.equal(c.isOpen, false);
  await c.closed;

  const other = scriptedChannel();
  const d = new Connection(other.channel, ENDPOINT);
  const pinged = d.ping();
  await tick();
  other.deliver({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  });
  await assert.rejects(
    pinged,
    (e: unknown) =>
      e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
      /protocol violation: sequence 1 answered with type 0x21/.test(e.message),
  );
});

test("held: a node's GOODBYE lets what is in flight finish, then closes; whatever it sends after is dropped or refused", async () => {
  const clock = new VirtualClock();
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock,
    requestTimeoutMs: 100,
  });
  const inFlight = c.sendRequest(new Uint8Array([1]));
  await tick();
  const goodbye = {
    type: MessageType.Goodbye,
    flags: 0,
    sequence: 0,
    payload: new Uint8Array(0),
  };
  scripted.deliver(goodbye);
  assert.equal(c.isOpen, false);
  await assert.rejects(
    c.sendRequest(new Uint8Array([2])),
    (e: unknown) =>
      e instanceof Error && e.constructor.name === "ConnectionClosedError",
  );
  scripted.deliver(goodbye);
  scripted.deliver({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array([1]),
  });
  assert.ok(await inFlight);
  assert.equal(await c.closed, undefined);
  scripted.deliver({
    type: MessageType.Response,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array([1]),
  });
  scripted.deliver(goodbye);
  assert.equal(c.timerArmed, false);
  await clock.advance(1000);
  assert.ok(c.stats.dropped >= 1);
  await assert.rejects(
    c.sendRequest(new Uint8Array([3])),
    (e: unknown) =>
      e instanceof ConnectionLostError && e.code === "CONNECTION_LOST" &&
      /lost: closed by the node \(it said GOODBYE\)$/.test(e.message),
  );
  await assert.rejects(
    c.sendRequest(new Uint8Array([3]), { timeoutMs: 1 }),
    (e: unknown) => !(e instanceof RequestTimeoutError),
  );
});

test("submitBatch given a sink whose first cannot be set (frozen, a getter without a setter, a setter that throws or keeps nothing) returns an InvalidArgumentError naming the sink, and sends nothing: a raw TypeError was thrown", () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const base = { onReply() {}, onError() {} };
  const sinks: [string, unknown][] = [
    ["frozen", Object.freeze({ ...base, first: 0 })],
    ["getter only", {
      ...base,
      get first() {
        return 0;
      },
    }],
    ["throwing setter", {
      ...base,
      get first() {
        return 0;
      },
      set first(_: number) {
        throw new Error("setter bug");
      },
    }],
    ["setter keeping nothing", {
      ...base,
      get first() {
        return 0;
      },
      set first(_: number) {
        // keeps nothing
      },
    }],
    ["null", null],
    ["a number", 7],
  ];
  for (const [what, sink] of sinks) {
    let outcome: unknown;
    try {
      outcome = c.submitBatch(
        [new Uint8Array([1])],
        0,
        1,
        {},
        sink as BatchReplySink,
      );
    } catch (error) {
      outcome = error;
    }
    assert.ok(outcome instanceof InvalidArgumentError, `${what}: ${outcome}`);
    assert.equal(outcome.argument, "sink", what);
    assert.match(outcome.message, /first/, what);
  }
  assert.equal(c.inFlight, 0);
  assert.equal(c.stats.sent, 0);
  // A good sink after them gets the first sequence: none was used up.
  const good: BatchReplySink = { ...base, first: 0 };
  assert.equal(c.submitBatch([new Uint8Array([1])], 0, 1, {}, good), undefined);
  assert.equal(good.first, 1);
  c.destroy();
});

test("cancelBatch refuses a sink that is no object, or whose first cannot be read, with InvalidArgumentError naming the sink, cancelling nothing: null threw a raw TypeError, and a throwing getter its own error", () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const outcomes: string[] = [];
  const sink: BatchReplySink = {
    first: 0,
    onReply: () => outcomes.push("reply"),
    onError: (error) => outcomes.push(error.message),
  };
  c.submitBatch([new Uint8Array([1])], 0, 1, {}, sink);
  const unreadable = {
    onReply() {},
    onError() {},
    get first(): number {
      throw new Error("first getter bug");
    },
  };
  for (const bad of [null, undefined, 5, "sink", unreadable]) {
    assert.throws(
      () => c.cancelBatch(bad as never, 1, new Error("test: cancelled")),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "sink",
      String(bad),
    );
  }
  assert.equal(c.inFlight, 1, "nothing cancelled");
  assert.deepEqual(outcomes, []);
  c.destroy();
});

test("submitBatch whose sink's first setter submits another run (re-enters the connection) hands out no sequence number twice (both runs took the same numbers), and one whose setter closes the connection is refused", async () => {
  const scripted = scriptedChannel();
  const c = new Connection(scripted.channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  const base = { onReply() {}, onError() {} };
  const inner: BatchReplySink = { ...base, first: 0 };
  let value = 0;
  let entered = false;
  const outer: BatchReplySink = {
    ...base,
    get first() {
      return value;
    },
    set first(first: number) {
      value = first;
      if (entered) return;
      entered = true;
      // A careless sink starting its next run from inside the write.
      c.submitBatch(
        [new Uint8Array([2]), new Uint8Array([3])],
        0,
        2,
        {},
        inner,
      );
    },
  };
  let outcome: unknown;
  try {
    outcome = c.submitBatch([new Uint8Array([1])], 0, 1, {}, outer);
  } catch (error) {
    outcome = error;
  }
  await tick();
  const sequences = scripted.frames().map((m) => m.sequence);
  assert.deepEqual(
    sequences.length,
    new Set(sequences).size,
    `sequences sent: ${sequences}`,
  );
  if (outcome === undefined) {
    // Sent: under numbers of its own, none the inner run holds.
    assert.notEqual(outer.first, inner.first);
  } else {
    // Refused: typed, naming the sink, and nothing of it sent.
    assert.ok(outcome instanceof InvalidArgumentError, String(outcome));
    assert.equal(outcome.argument, "sink");
    assert.deepEqual(sequences, [1, 2]);
  }
  assert.equal(c.inFlight, sequences.length);
  c.destroy();

  // A setter that closes the connection: the run is refused with the
  // closed connection's error, as it would be a moment later, not sent.
  const d = new Connection(scriptedChannel().channel, ENDPOINT, {
    clock: new VirtualClock(),
  });
  let errors = 0;
  const closing = {
    onReply() {},
    onError() {
      errors++;
    },
    get first() {
      return value;
    },
    set first(first: number) {
      value = first;
      d.destroy();
    },
  };
  const refusal = d.submitBatch([new Uint8Array([1])], 0, 1, {}, closing);
  assert.ok(refusal instanceof Error, String(refusal));
  assert.equal(errors, 0);
  assert.equal(d.stats.sent, 0);
});
