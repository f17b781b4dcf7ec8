// An adversarial review of the entry points the earlier reviews left out:
// ./protocol (encoders and decoders fed any bytes), ./testing (the node,
// the fault proxy and the virtual clock users run in their own tests),
// ./cli, ./otel and the typed event target. What a careless caller or a
// broken peer sends gets a typed error naming what was wrong, never a
// TypeError from inside, a hang, a silent default or a huge allocation.
// Tests named "held: ..." pin behaviours that were already right.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { main } from "../cli.ts";
import {
  allowedProtocols,
  DatagramPacker,
  decodeDatagram,
  decodeDatagramFrames,
  decodeError,
  decodeHello,
  decodeHelloOk,
  decodeJson,
  decodeNegotiate,
  decodeNegotiateOk,
  DEFAULT_MAX_FRAME_SIZE,
  HEADER_SIZE,
  isKnownMessageType,
  MAX_DATAGRAM_SIZE,
  MAX_FRAME_SIZE_LIMIT,
  MessageCodec,
  MessageType,
  parseUdpToken,
  writeHeader,
} from "../protocol.ts";
import { Client } from "../src/client/client.ts";
import {
  AuthenticationError,
  ClientClosedError,
  ConfigError,
  InvalidArgumentError,
  ProtocolError,
} from "../src/errors.ts";
import { channels } from "../src/diagnostics/channels.ts";
import { TypedEventTarget } from "../src/events.ts";
import {
  type BatchObservableResult,
  instrumentClient,
  type Meter,
  type OtelOptions,
} from "../otel.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ProtocolType } from "../src/protocol_type.ts";
import {
  CredentialStore,
  decodeReply,
  encodeReply,
  ops,
  type ProxyFaults,
  ScramServer,
  startFaultProxy,
  startTestNode,
  VirtualClock,
} from "../testing/mod.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process, capturing what it printed. */
async function cli(args: unknown, options?: unknown): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => stdout.push(a.join(" "));
  console.error = (...a: unknown[]) => stderr.push(a.join(" "));
  try {
    const code = await main(args as string[], options as never);
    return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * `run`, given a signal that stops it after `ms` if it still runs then: a
 * command that should have been refused at once but serves instead ends
 * the test as a failure, not as a hang.
 */
async function stoppedAfter<T>(
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    return await run(stop.signal);
  } finally {
    clearTimeout(timer);
  }
}

test("the CLI runs no command named after an Object.prototype member: toString and constructor are unknown commands (exit 2), not a node served on port 7000", async () => {
  for (
    const args of [
      ["toString"],
      ["constructor", "--json"],
      ["hasOwnProperty"],
      ["help", "toString"],
      ["valueOf", "--port", "0"],
    ]
  ) {
    const r = await stoppedAfter(2000, (signal) => cli(args, { signal }));
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /(unknown command|no command) "[a-zA-Z]+"/);
    assert.doesNotMatch(r.stdout, /listening|cluster of|"url"/);
  }
});

test("the CLI's options are its own names: --toString or --constructor is an unknown option, exit 2", async () => {
  for (const option of ["--toString", "--constructor", "--valueOf=1"]) {
    const r = await cli(["ping", "127.0.0.1:1", option]);
    assert.equal(r.code, 2, `${option}: ${r.stderr}`);
    assert.match(r.stderr, /unknown option "--[a-zA-Z]+" for "ping"/);
  }
});

test("main refuses args that are not an array of strings, and options it does not know, with exit code 2 naming them: it never rejects", async () => {
  for (const args of [null, "ping", [5], ["ping", {}], undefined]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${String(args)}: ${r.stderr}`);
    assert.match(r.stderr, /main: invalid args: expected an array of strings/);
  }
  const json = await cli(["--help", "--json"], { sigal: 1 });
  assert.equal(json.code, 2);
  assert.deepEqual(JSON.parse(json.stdout).error.code, "INVALID_ARGUMENT");
  assert.match(json.stderr, /invalid options\.sigal: unknown option/);
  const none = await cli(["--help"], null);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /invalid options: expected an object/);
});

test("a long-running command given a signal that is not an AbortSignal is refused before it installs anything: exit 2, not a process kept alive by its SIGTERM handler", async () => {
  for (const signal of ["x", { aborted: false }]) {
    const r = await stoppedAfter(
      2000,
      () => cli(["node", "--port", "0", "--json"], { signal }),
    );
    assert.equal(r.code, 2, `${JSON.stringify(signal)}: ${r.stderr}`);
    assert.match(r.stderr, /invalid options\.signal: expected an AbortSignal/);
    assert.equal(JSON.parse(r.stdout).ok, false);
  }
});

// ---- ./protocol ----------------------------------------------------------

const NOT_INTEGERS = [NaN, -1, 1.5, "16", Infinity, null, undefined, {}];

test("a MessageCodec's maxFrameSize is an integer from 0 to 1 GiB: anything else is an InvalidArgumentError, since NaN let any header allocate up to 4 GiB", () => {
  for (const bad of [NaN, -1, 1.5, "16", 2 ** 40, MAX_FRAME_SIZE_LIMIT + 1]) {
    assert.throws(
      () => new MessageCodec(bad as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "maxFrameSize" &&
        /MessageCodec: invalid maxFrameSize: expected an integer from 0 to 1073741824/
          .test(e.message),
      String(bad),
    );
  }
  assert.equal(new MessageCodec(0).maxFrameSize, 0);
  assert.equal(new MessageCodec().maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
});

test("held: whatever bytes arrive, a codec holds at most one header and maxFrameSize payload bytes, and throws nothing but ProtocolError", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 4096 }),
      fc.array(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          // A plausible header with any length, the hostile part.
          fc.tuple(fc.constantFrom(0x10, 0x20, 0x21), fc.nat()).map(
            ([type, length]) => {
              const h = new Uint8Array(HEADER_SIZE);
              h.set([1, type]);
              new DataView(h.buffer).setUint32(12, length);
              return h;
            },
          ),
        ),
        { maxLength: 20 },
      ),
      (max, chunks) => {
        const codec = new MessageCodec(max);
        for (const chunk of chunks) {
          try {
            codec.decodeFrames(chunk, (_t, _f, _s, payload) => {
              assert.ok(payload.byteLength <= max);
            });
          } catch (error) {
            assert.ok(error instanceof ProtocolError, String(error));
            return;
          }
          assert.ok(codec.bufferedBytes <= HEADER_SIZE + max);
        }
      },
    ),
  );
});

test("writeHeader refuses a length that would wrap, flags or a type that are not integers, and a header that does not fit: never a header that lies", () => {
  const at =
    (length: unknown, flags: unknown = 0, type: unknown = 0x20) => () =>
      writeHeader(
        new Uint8Array(HEADER_SIZE),
        0,
        type as number,
        flags as number,
        1,
        length as number,
      );
  for (const length of [-1, NaN, 2 ** 32, 2 ** 33, 1.5, "3"]) {
    assert.throws(at(length), /payload length .* is out of range/, `${length}`);
  }
  for (const flags of [NaN, 1.5, "1", 2 ** 32 + 1, -1]) {
    assert.throws(at(0, flags), /reserved flag bits/, `flags ${flags}`);
  }
  for (const type of [16.5, "16", NaN, -240, 0x110]) {
    assert.throws(at(0, 0, type), /unknown message type/, `type ${type}`);
  }
  for (
    const [target, offset] of [
      [new Uint8Array(16), 1],
      [new Uint8Array(32), -1],
      [new Uint8Array(32), "2"],
      [[], 0],
      [null, 0],
    ] as const
  ) {
    assert.throws(
      () => writeHeader(target as Uint8Array, offset as number, 0x20, 0, 1, 0),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "offset",
    );
  }
  const header = new Uint8Array(HEADER_SIZE + 2);
  writeHeader(header, 2, 0x20, 1, 7, 2 ** 32 - 1);
  assert.deepEqual([...header.subarray(14)], [255, 255, 255, 255]);
});

test("property: writeHeader either throws a typed error or writes a header that reads back as exactly the fields given", () => {
  const odd = fc.constantFrom(...NOT_INTEGERS, 2 ** 32, -0, 0x1_0001);
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom(0x10, 0x20, 0x21, 0x31), fc.integer(), odd),
      fc.oneof(fc.constantFrom(0, 1), fc.integer(), odd),
      fc.oneof(fc.integer({ min: 0, max: 2 ** 53 - 1 }), odd),
      fc.oneof(fc.nat({ max: 64 }), fc.integer(), fc.double(), odd),
      (type, flags, sequence, length) => {
        const bytes = new Uint8Array(HEADER_SIZE);
        try {
          writeHeader(
            bytes,
            0,
            type as number,
            flags as number,
            sequence as number,
            length as number,
          );
        } catch (error) {
          assert.ok(
            error instanceof ProtocolError ||
              error instanceof InvalidArgumentError,
            String(error),
          );
          return;
        }
        const view = new DataView(bytes.buffer);
        assert.deepEqual(
          [
            bytes[1],
            view.getUint16(2),
            view.getUint32(4) * 2 ** 32 + view.getUint32(8),
            view.getUint32(12),
          ],
          [type, flags, sequence, length].map((v) => (v as number) + 0),
        );
      },
    ),
  );
});

test('isKnownMessageType is true only for a byte that is a type: not 16.5, "16", NaN or 272', () => {
  for (const value of [16.5, "16", NaN, -240, 272, Infinity, null]) {
    assert.equal(isKnownMessageType(value as number), false, String(value));
  }
  assert.equal(isKnownMessageType(MessageType.Request), true);
});

test("decode and decodeFrames refuse a chunk that is not a Uint8Array with an InvalidArgumentError (a plain array was read as bytes), and the codec stays usable", () => {
  const codec = new MessageCodec();
  const ping = codec.encode({
    type: MessageType.Ping,
    flags: 0,
    sequence: 3,
    payload: new Uint8Array(0),
  });
  const calls: [unknown, unknown, string][] = [
    [null, () => {}, "chunk"],
    [[1, 16, 0, 0], () => {}, "chunk"],
    ["0123456789abcdef", () => {}, "chunk"],
  ];
  for (const [chunk, fn, argument] of calls) {
    for (const method of ["decode", "decodeFrames"] as const) {
      assert.throws(
        () => codec[method](chunk as Uint8Array, fn as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === argument,
        `${method}(${String(chunk)})`,
      );
    }
  }
  const seen: number[] = [];
  codec.decode(ping, (m) => seen.push(m.sequence));
  assert.deepEqual(seen, [3]);
});

test("held: arbitrary bytes given to every decoder of ./protocol raise nothing but ProtocolError", () => {
  const decoders: ((bytes: Uint8Array) => unknown)[] = [
    decodeHello,
    decodeHelloOk,
    decodeNegotiate,
    decodeNegotiateOk,
    decodeError,
    decodeDatagram,
    decodeDatagramFrames,
    (b) => decodeJson(b, "X"),
    (b) => parseUdpToken(new TextDecoder().decode(b)),
    (b) => new MessageCodec(1024).decode(b, () => {}),
  ];
  const json = fc.jsonValue().map((v) =>
    new TextEncoder().encode(JSON.stringify(v))
  );
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 200 }), json),
      (bytes) => {
        for (const decode of decoders) {
          try {
            decode(bytes);
          } catch (error) {
            assert.ok(error instanceof ProtocolError, String(error));
          }
        }
      },
    ),
  );
});

// ---- ./testing: the virtual clock ----------------------------------------

test("a VirtualClock timer that throws no longer takes the timers due at the same instant down with it: they fire, then advance rejects with the error", async () => {
  const clock = new VirtualClock();
  const fired: string[] = [];
  clock.setTimeout(() => fired.push("a"), 5);
  clock.setTimeout(() => {
    throw new Error("boom");
  }, 5);
  clock.setTimeout(() => fired.push("b"), 5);
  clock.setTimeout(() => fired.push("later"), 8);
  await assert.rejects(clock.advance(10), /boom/);
  assert.deepEqual(fired, ["a", "b"]);
  assert.equal(clock.now(), 5, "the clock stops where the error was");
  assert.equal(clock.pendingTimers, 1, "the later timer is still pending");
  await clock.advance(5);
  assert.deepEqual(fired, ["a", "b", "later"]);
});

test('a VirtualClock refuses time that is not a finite number, and advance refuses to go backwards: never a clock at NaN, at "010" or in the past', async () => {
  for (const start of [NaN, Infinity, "5", null]) {
    assert.throws(
      () => new VirtualClock(start as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "start",
    );
  }
  const clock = new VirtualClock(100);
  for (const ms of [-5, NaN, Infinity, "10", undefined]) {
    await assert.rejects(
      clock.advance(ms as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        /invalid ms: expected a finite number ≥ 0/
          .test(e.message),
      String(ms),
    );
    assert.equal(clock.now(), 100);
  }
  for (
    const [fn, ms, argument] of [
      [() => {}, NaN, "ms"],
      [() => {}, Infinity, "ms"],
      [() => {}, "5", "ms"],
      [null, 5, "fn"],
      ["fn", 5, "fn"],
    ] as const
  ) {
    assert.throws(
      () => clock.setTimeout(fn as () => void, ms as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument,
    );
  }
  assert.equal(clock.pendingTimers, 0);
  assert.equal(clock.nextTimerAt(), undefined);
  let fired = 0;
  clock.setTimeout(() => fired++, -20);
  await clock.advance(0);
  assert.equal(fired, 1, "a negative delay fires now, as a real timer's");
});

// ---- ./testing: the fault proxy, the node, the ops, the credential store --

/** A ConfigError (sync or rejected) whose field is `field`. */
function configError(field: string, secret?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.field, field, e.message);
    if (secret !== undefined) assert.ok(!e.message.includes(secret));
    return true;
  };
}

test('the fault proxy refuses fault values no timer can take (NaN, Infinity, -1, "20") and counts that are not integers, at start and in setFaults: NaN latency re-armed a timer forever and delivered nothing', async () => {
  const network = createMemoryNetwork();
  const target = { hostname: "node", port: 7000 };
  const bad: [keyof ProxyFaults, unknown][] = [
    ["latencyMs", NaN],
    ["latencyMs", "20"],
    ["jitterMs", Infinity],
    ["chunkIntervalMs", -1],
    ["latencyMs", 2 ** 31],
    ["chunkSize", 0.5],
    ["resetAfterBytes", NaN],
    ["dataLimit", -1],
    ["stall", "no"],
    ["down", 1],
  ];
  for (const [key, value] of bad) {
    await assert.rejects(
      startFaultProxy({ target, runtime: network, faults: { [key]: value } }),
      configError(`startFaultProxy options.faults.${key}`),
      `${key}: ${String(value)}`,
    );
  }
  const proxy = await startFaultProxy({ target, runtime: network });
  try {
    for (const [key, value] of bad) {
      await assert.rejects(
        proxy.setFaults({ [key]: value }),
        configError(`setFaults faults.${key}`),
      );
    }
    assert.deepEqual(proxy.faults, {}, "nothing was applied");
    await proxy.setFaults({ latencyMs: 0, jitterMs: 5, chunkSize: 1 });
    await proxy.setFaults({ latencyMs: undefined });
  } finally {
    await proxy.close();
  }
});

test("startFaultProxy needs its options and a target of { hostname, port }, and inject takes bytes and a side: ConfigErrors and InvalidArgumentErrors, not TypeErrors from inside", async () => {
  const network = createMemoryNetwork();
  for (
    const [options, field] of [
      [undefined, "startFaultProxy options"],
      [{}, "startFaultProxy options.target"],
      [{ target: null }, "startFaultProxy options.target"],
      [
        { target: { hostname: "n", port: "x" } },
        "startFaultProxy options.target",
      ],
      [{ target: { hostname: "", port: 1 } }, "startFaultProxy options.target"],
      [
        { target: { hostname: "n", port: 1 }, port: -1 },
        "startFaultProxy options.port",
      ],
      [
        { target: { hostname: "n", port: 1 }, clock: {} },
        "startFaultProxy options.clock",
      ],
      [
        { target: { hostname: "n", port: 1 }, runtime: {} },
        "startFaultProxy options.runtime",
      ],
      [
        { target: { hostname: "n", port: 1 }, random: 0.5 },
        "startFaultProxy options.random",
      ],
    ] as const
  ) {
    await assert.rejects(
      startFaultProxy(options as never),
      configError(field),
      JSON.stringify(options),
    );
  }
  const proxy = await startFaultProxy({
    target: { hostname: "n", port: 1 },
    runtime: network,
  });
  try {
    assert.throws(
      () => proxy.inject("garbage" as never),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "bytes",
    );
    assert.throws(
      () => proxy.inject(new Uint8Array(1), "nodes" as never),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === "to",
    );
  } finally {
    await proxy.close();
  }
});

test("startTestNode refuses option values of the wrong kind with a ConfigError naming the option, before it listens; a password is never shown", async () => {
  const network = createMemoryNetwork();
  const bad: [Record<string, unknown>, string][] = [
    [{ nodeId: "x".repeat(256) }, "nodeId"],
    [{ nodeId: "é".repeat(128) }, "nodeId"],
    [{ nodeId: "n\u001b1" }, "nodeId"],
    [{ nodeId: "" }, "nodeId"],
    [{ nodeId: 5 }, "nodeId"],
    [{ maxFrameSize: NaN }, "maxFrameSize"],
    [{ maxFrameSize: -1 }, "maxFrameSize"],
    [{ port: "0" }, "port"],
    [{ port: 70000 }, "port"],
    [{ hostname: 5 }, "hostname"],
    [{ protocols: "tcp" }, "protocols"],
    [{ protocols: ["quic"] }, "protocols"],
    [{ clock: {} }, "clock"],
    [{ runtime: {} }, "runtime"],
    [{ udpBatch: "no" }, "udpBatch"],
    [{ udpDropEvery: -1 }, "udpDropEvery"],
    [{ udpMaxDatagramSize: 5 }, "udpMaxDatagramSize"],
    [{ credentials: "hunter2" }, "credentials"],
    [{ credentials: { app: 123456 } }, "credentials"],
    [{ credentials: null }, "credentials"],
  ];
  for (const [options, key] of bad) {
    await assert.rejects(
      startTestNode({ runtime: network, ...options }),
      configError(`startTestNode options.${key}`),
      JSON.stringify(options),
    );
  }
  for (
    const [tls, key] of [[{ cert: 5, key: "k" }, "cert"], [{
      cert: "c",
      key: "hunter2",
      direct: "yes",
    }, "direct"], [{ cert: "c", key: 7 }, "key"]] as const
  ) {
    await assert.rejects(
      startTestNode({ runtime: network, tls: tls as never }),
      configError(`startTestNode options.tls.${key}`, "hunter2"),
    );
  }
  await assert.rejects(
    startTestNode({ runtime: network, credentials: "hunter2" as never }),
    configError("startTestNode options.credentials", "hunter2"),
  );
  const node = await startTestNode({
    runtime: network,
    nodeId: "é".repeat(127),
  });
  try {
    await assert.rejects(
      node.stop({ graceful: "no" as never }),
      configError("stop options.graceful"),
    );
    assert.equal(node.running, true);
  } finally {
    await node.close();
  }
});

/** A memory network that counts its listens: a refused node made none. */
function countingListens() {
  const network = createMemoryNetwork();
  let listens = 0;
  const runtime = {
    ...network,
    listen: (...args: Parameters<typeof network.listen>) => {
      listens++;
      return network.listen(...args);
    },
  };
  return { runtime, listens: () => listens };
}

test("startTestNode refuses protocols: [], a node that would serve no protocol, with a ConfigError naming the option, before it listens", async () => {
  const { runtime, listens } = countingListens();
  await assert.rejects(
    startTestNode({ runtime, protocols: [] }),
    (e: unknown) => {
      configError("startTestNode options.protocols")(e);
      assert.match(
        (e as Error).message,
        /^invalid startTestNode options\.protocols: expected a non-empty array of "tls", "tcp" and "udp", got an array of 0$/,
      );
      return true;
    },
  );
  assert.equal(listens(), 0);
});

test("startTestNode refuses a repeated protocol, as a client's config does, with a ConfigError naming the option and the repeat, before it listens", async () => {
  // The client's own rule, which the kit follows.
  assert.throws(
    () =>
      resolveConfig({ hosts: ["127.0.0.1:7000"], protocols: ["tcp", "tcp"] }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        'invalid protocols[1]: duplicate protocol, got "tcp"',
      );
      return true;
    },
  );
  const { runtime, listens } = countingListens();
  const repeats: [ProtocolType[], string][] = [
    [["tcp", "tcp"], '"tcp" at [1], got an array of 2'],
    [["udp", "tcp", "udp"], '"udp" at [2], got an array of 3'],
  ];
  for (const [protocols, repeat] of repeats) {
    await assert.rejects(
      startTestNode({ runtime, protocols }),
      (e: unknown) => {
        configError("startTestNode options.protocols")(e);
        assert.equal(
          (e as Error).message,
          `invalid startTestNode options.protocols: duplicate protocol ${repeat}`,
        );
        return true;
      },
    );
  }
  assert.equal(listens(), 0);
});

test("held: a node id of 255 UTF-8 bytes reaches the client whole, in HELLO_OK and in every reply", async () => {
  const network = createMemoryNetwork();
  const nodeId = "é".repeat(127) + "x";
  const node = await startTestNode({ runtime: network, nodeId });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
  });
  try {
    const reply = decodeReply(await client.request(ops.echo("hi")));
    assert.equal(reply.nodeId, nodeId);
    assert.equal(new TextDecoder().decode(reply.data), "hi");
  } finally {
    await client.disconnect();
    await node.close();
  }
});

/** Each builder call throws an InvalidArgumentError naming its argument. */
function refusedAll(bad: [() => unknown, string][]): void {
  for (const [build, argument] of bad) {
    assert.throws(
      build,
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument,
      argument,
    );
  }
}

test("the ops builders and encodeReply refuse what their one-, two- and four-byte fields cannot hold: no 49-day SLEEP from -1, no wrapped code, key or node id", () => {
  const bad: [() => unknown, string][] = [
    [() => ops.sleep(-1), "ms"],
    [() => ops.sleep(NaN), "ms"],
    [() => ops.sleep(2 ** 32), "ms"],
    [() => ops.sleep("5" as never), "ms"],
    [() => ops.fail(70000, false), "code"],
    [() => ops.fail(-1, false), "code"],
    [() => ops.put("k".repeat(65536), "v"), "key's length"],
    [() => encodeReply("x".repeat(256), new Uint8Array(0)), "nodeId's length"],
  ];
  refusedAll(bad);
  assert.equal(ops.sleep(2 ** 32 - 1).byteLength, 5);
  assert.equal(ops.put("k".repeat(65535), "v").byteLength, 3 + 65535 + 1);
  assert.equal(
    decodeReply(encodeReply("x".repeat(255), new Uint8Array([7]))).nodeId
      .length,
    255,
  );
});

test('docs/TESTING.md: the ops builders and encodeReply refuse a value of the wrong kind with InvalidArgumentError, never coercing it (a number key became "5") or failing with a RangeError from inside', () => {
  const bad: [() => unknown, string][] = [
    [() => ops.echo(5 as never), "data"],
    [() => ops.echo(new ArrayBuffer(2) as never), "data"],
    [() => ops.get(5 as never), "key"],
    [() => ops.get(undefined as never), "key"],
    [() => ops.delete({} as never), "key"],
    [() => ops.put(5 as never, "v"), "key"],
    [() => ops.put("k", 5 as never), "value"],
    [() => ops.put("k", [1, 2] as never), "value"],
    [() => ops.sleep(10, 5 as never), "data"],
    [() => ops.fail(4, "yes" as never), "retryable"],
    [() => ops.fail(4, 1 as never), "retryable"],
    [() => ops.fail(4, true, 5 as never), "message"],
    [() => encodeReply(5 as never, new Uint8Array(0)), "nodeId"],
    [() => encodeReply("n1", "hi" as never), "data"],
  ];
  refusedAll(bad);
  // What they take still builds the same bytes.
  assert.deepEqual([...ops.echo("hi")], [1, 0x68, 0x69]);
  assert.deepEqual([...ops.echo(new Uint8Array([7]))], [1, 7]);
  assert.deepEqual([...ops.get("k")], [2, 0x6b]);
  assert.deepEqual([...ops.put("k", "v")], [3, 0, 1, 0x6b, 0x76]);
  assert.deepEqual([...ops.delete("k")], [4, 0x6b]);
  assert.deepEqual([...ops.sleep(1, "x")], [5, 0, 0, 0, 1, 0x78]);
  assert.deepEqual([...ops.fail(4, true, "b")], [6, 0, 4, 1, 0x62]);
  assert.equal(
    decodeReply(encodeReply("n1", new Uint8Array([9]))).nodeId,
    "n1",
  );
});

test("a CredentialStore refuses users that are not names to passwords, iterations no client would take and a salt that is not bytes, never showing a password", async () => {
  await assert.rejects(
    CredentialStore.create("hunter2" as never),
    configError("CredentialStore users", "hunter2"),
  );
  await assert.rejects(
    CredentialStore.create({ app: 123456 } as never),
    configError("CredentialStore users", "123456"),
  );
  for (const iterations of [NaN, "4096", 0, 1e9]) {
    assert.throws(
      () => new CredentialStore({ iterations: iterations as number }),
      configError("CredentialStore options.iterations"),
    );
  }
  const store = new CredentialStore();
  await assert.rejects(
    store.add("app", "pw", { salt: "abc" as never }),
    configError("CredentialStore.add options.salt"),
  );
  await assert.rejects(
    store.add("app", "pw", { iterations: -1 }),
    configError("CredentialStore.add options.iterations"),
  );
  assert.equal(store.size, 0);
});

// ---- ./otel --------------------------------------------------------------

/** A meter that keeps what it records, and its batch callbacks. */
function recordingMeter() {
  const recorded: [string, unknown][] = [];
  const callbacks = new Set<(r: BatchObservableResult) => void>();
  const meter: Meter = {
    createHistogram: (name) => ({
      record: (_v, a) => recorded.push([name, a?.[POOL_NAME]]),
    }),
    createCounter: (name) => ({
      add: (_v, a) => recorded.push([name, a?.[POOL_NAME]]),
    }),
    createObservableUpDownCounter: (name) => ({ name }),
    addBatchObservableCallback: (cb) => void callbacks.add(cb),
    removeBatchObservableCallback: (cb) => void callbacks.delete(cb),
  };
  /** The pools each metric was recorded or observed for. */
  const pools = (name: string) => {
    const seen = recorded.filter(([n]) => n === name).map(([, p]) => p);
    for (const cb of callbacks) {
      cb({
        observe: (o, _v, a) => {
          if ((o as { name: string }).name === name) seen.push(a?.[POOL_NAME]);
        },
      });
    }
    return [...new Set(seen)].sort();
  };
  return { meter, callbacks, pools };
}

const POOL_NAME = "db.client.connection.pool.name";

test("a node added after instrumentClient (client.addNode) has its pool metrics too: before, every metric of its pool was dropped", async () => {
  const network = createMemoryNetwork();
  const a = await startTestNode({ runtime: network, nodeId: "a" });
  const b = await startTestNode({ runtime: network, nodeId: "b" });
  const client = await Client.connect({
    hosts: [a.address],
    runtime: network,
    healthConfig: { intervalMs: 0 },
  });
  const { meter, pools } = recordingMeter();
  const otel = instrumentClient(client, {
    meterProvider: { getMeter: () => meter },
    poolName: (address) => `p/${address}`,
  });
  try {
    await client.addNode(b.address);
    for (let i = 0; i < 8; i++) await client.request(ops.echo("x"));
    const both = [`p/${a.address}`, `p/${b.address}`].sort();
    assert.deepEqual(pools("db.client.connection.count"), both);
    assert.deepEqual(pools("db.client.connection.max"), both);
    assert.deepEqual(pools("db.client.connection.create_time"), both);
    assert.deepEqual(pools("db.client.connection.use_time"), both);
  } finally {
    otel.close();
    await client.disconnect();
    await a.close();
    await b.close();
  }
});

test("instrumentClient with a provider that throws, or gives no tracer or meter, fails with nothing left behind: no listener on the client, no batch callback, no channel subscription", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
  });
  const { meter, callbacks } = recordingMeter();
  const meterProvider = { getMeter: () => meter };
  try {
    const bad: [OtelOptions, RegExp][] = [
      [
        {
          meterProvider,
          tracerProvider: {
            getTracer: () => {
              throw new Error("no tracer today");
            },
          },
        },
        /no tracer today/,
      ],
      [
        { meterProvider, tracerProvider: { getTracer: () => null as never } },
        /instrumentClient: invalid provider\.tracer: expected an object with startSpan, got null/,
      ],
      [
        { meterProvider: { getMeter: () => ({}) as never } },
        /instrumentClient: invalid provider\.meter: expected an object with createHistogram/,
      ],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => instrumentClient(client, options), message);
      assert.equal(callbacks.size, 0, "no batch callback left");
      assert.equal(client.hasListeners("checkedIn"), false);
      assert.equal(channels.requestStart.hasSubscribers, false);
    }
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("held: instrumentClient's options are checked by name before any provider is called, and it refuses a closed client", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
  });
  let calls = 0;
  const meterProvider = { getMeter: () => (calls++, recordingMeter().meter) };
  try {
    for (
      const [options, named] of [
        [
          { meterProvider, poolName: "x" },
          /options\.poolName: expected a function/,
        ],
        [
          { meterProvider, dbSystemName: 5 },
          /options\.dbSystemName: expected a non-empty string, got 5/,
        ],
        [
          { meterProvider, meterprovider: meterProvider },
          /options\.meterprovider: unknown option \(did you mean "meterProvider"\?\)/,
        ],
        [null, /invalid options: expected an object of options, got null/],
        [
          Object.freeze({}),
          /invalid options: a meterProvider, a tracerProvider or both/,
        ],
      ] as const
    ) {
      assert.throws(
        () => instrumentClient(client, options as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT" &&
          /^instrumentClient: /.test(e.message) && named.test(e.message),
      );
    }
    assert.throws(
      () => instrumentClient({} as never, { meterProvider }),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "client",
    );
    assert.equal(calls, 0);
  } finally {
    await client.disconnect();
    await node.close();
  }
  assert.throws(
    () => instrumentClient(client, { meterProvider }),
    (e: unknown) =>
      e instanceof ClientClosedError && e.code === "CLIENT_CLOSED" &&
      /the client is closed/.test(e.message),
  );
});

// ---- the typed event target (./core) -------------------------------------

test("TypedEventTarget: a signal that is not an AbortSignal throws before anything is registered, as EventTarget's does; before, the listener stayed and ran", () => {
  for (const signal of ["x", {}, { aborted: false }, null]) {
    const target = new TypedEventTarget<{ ping: Event }>();
    let calls = 0;
    assert.throws(
      () =>
        target.addEventListener("ping", () => calls++, {
          signal: signal as never,
        }),
      (e: unknown) =>
        e instanceof TypeError &&
        /options\.signal must be an AbortSignal/.test(e.message),
    );
    target.dispatchEvent(new Event("ping"));
    assert.equal(calls, 0, String(signal));
    assert.equal(target.hasListeners("ping"), false);
  }
});

test('TypedEventTarget converts options and the name as EventTarget does: once: "yes" runs once, capture: 1 is removed with capture true, null options are none, a name object is its string', () => {
  const target = new TypedEventTarget<{ ping: Event }>();
  const native = new EventTarget();
  const counts = [0, 0];
  for (const [i, t] of [target, native].entries()) {
    t.addEventListener("ping", () => counts[i]++, { once: "yes" } as never);
    t.dispatchEvent(new Event("ping"));
    t.dispatchEvent(new Event("ping"));
  }
  assert.deepEqual(counts, [1, 1], "once as EventTarget reads it");
  assert.equal(target.hasListeners("ping"), false);

  let captured = 0;
  const listener = () => captured++;
  target.addEventListener("ping", listener, { capture: 1 } as never);
  target.removeEventListener("ping", listener, true);
  target.dispatchEvent(new Event("ping"));
  assert.equal(captured, 0);
  assert.equal(target.hasListeners("ping"), false);

  target.addEventListener("ping", listener, null as never);
  target.dispatchEvent(new Event("ping"));
  assert.equal(captured, 1);
  target.removeEventListener("ping", listener);

  const name = { toString: () => "ping" };
  target.addEventListener(name as never, listener);
  assert.equal(target.hasListeners("ping"), true, "counted under its string");
  target.removeEventListener(name as never, listener);
  assert.equal(target.hasListeners("ping"), false);
  assert.throws(
    () => target.addEventListener(Symbol("ping") as never, listener),
    (e: unknown) => e instanceof TypeError && /symbol/i.test(e.message),
  );
});

test('a DatagramPacker refuses a limit no datagram can have before it allocates: 1e12 tried to allocate a terabyte, "1200" was taken; a token of another size or an emit that is no function are refused too', () => {
  const token = new Uint8Array(16);
  const bad: [unknown, unknown, unknown, string][] = [
    [token, 1e12, () => {}, "limit"],
    [token, Infinity, () => {}, "limit"],
    [token, NaN, () => {}, "limit"],
    [token, "1200", () => {}, "limit"],
    [token, 31, () => {}, "limit"],
    [token, MAX_DATAGRAM_SIZE + 1, () => {}, "limit"],
    [new Uint8Array(3), 1200, () => {}, "token"],
    [null, 1200, () => {}, "token"],
    [token, 1200, null, "emit"],
  ];
  for (const [t, limit, emit, argument] of bad) {
    assert.throws(
      () => new DatagramPacker(t as Uint8Array, limit as number, emit as never),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument &&
        /^DatagramPacker: /.test(e.message),
      `${argument}: ${String(limit)}`,
    );
  }
  const sent: number[] = [];
  const packer = new DatagramPacker(
    token,
    MAX_DATAGRAM_SIZE,
    (d) => sent.push(d.byteLength),
  );
  packer.push(MessageType.Ping, 0, 1, new Uint8Array(0));
  packer.flush();
  assert.deepEqual(sent, [32]);
});

test('allowedProtocols refuses a TLS policy it does not know: "requir" was taken as "prefer", which offers plain TCP beside TLS', () => {
  for (const policy of ["requir", "REQUIRE", undefined, null, true]) {
    assert.throws(
      () => allowedProtocols(policy as never, ["tls", "tcp"]),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "tlsPolicy",
      String(policy),
    );
  }
  assert.deepEqual(allowedProtocols("require", ["tcp", "tls"]), ["tls"]);
  assert.deepEqual(allowedProtocols("prefer", ["tcp", "tls"]), ["tls", "tcp"]);
  assert.deepEqual(allowedProtocols("disable", ["tcp", "tls"]), ["tcp"]);
});

// ---- held ----------------------------------------------------------------

test("held: a password in NODEWIRE_URL never appears in what the CLI prints, whether the URL is malformed, names an unknown parameter, or the connect fails", async () => {
  const env =
    (globalThis as { process: { env: Record<string, string | undefined> } })
      .process.env;
  const saved = env.NODEWIRE_URL;
  try {
    for (
      const url of [
        "nodewire://app:hunter2@127.0.0.1:1/?timeoutMs=100",
        "nodewire://app:hun%ZZter2@127.0.0.1:1",
        "nodewire://app:hunter2@127.0.0.1:99999",
        "nodewire://app:hunter2@127.0.0.1:1/?pooolMax=3",
      ]
    ) {
      env.NODEWIRE_URL = url;
      for (const command of ["ping", "health"]) {
        const r = await cli([command, "--json", "--timeout", "200"]);
        assert.notEqual(r.code, 0, url);
        const printed = `${r.stdout}\n${r.stderr}`;
        assert.ok(!/hunter2|hun%ZZter2/.test(printed), `${url}: ${printed}`);
        assert.equal(JSON.parse(r.stdout).ok, false);
      }
    }
  } finally {
    if (saved === undefined) delete env.NODEWIRE_URL;
    else env.NODEWIRE_URL = saved;
  }
});

test("held: whatever a broken client sends, the test kit's SCRAM server fails with AuthenticationError only, and never authenticates", async () => {
  const store = await CredentialStore.create({ app: "pencil" });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.string(),
        fc.constantFrom("n,,n=app,r=abc", "n,,n=nobody,r=x", "y,,n=app,r=,"),
      ),
      fc.string(),
      async (first, final) => {
        const server = new ScramServer(store);
        try {
          await server.serverFirstMessage(first);
          await server.serverFinalMessage(final);
        } catch (error) {
          assert.ok(error instanceof AuthenticationError, String(error));
        }
        assert.equal(server.authenticated, false);
      },
    ),
    { numRuns: 60 },
  );
});
