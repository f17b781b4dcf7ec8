// An adversarial review of the entry points the earlier reviews left out:
// ./protocol (encoders and decoders fed any bytes), ./testing (the node,
// the fault proxy and the virtual clock users run in their own tests),
// ./cli, ./otel and the typed event target. What a careless caller or a
// broken peer sends gets a typed error naming what was wrong, never a
// TypeError from inside, a hang, a silent default or a huge allocation.
// Tests named "held: ..." pin behaviours that were already right.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { main } from "../cli.ts";
import {
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
  MAX_FRAME_SIZE_LIMIT,
  MessageCodec,
  MessageType,
  parseUdpToken,
  writeHeader,
} from "../protocol.ts";
import { InvalidArgumentError, ProtocolError } from "../src/errors.ts";

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
    assert.match(r.stderr, /unknown option --[a-zA-Z]+ for "ping"/);
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
        e instanceof InvalidArgumentError &&
        /writeHeader: invalid (offset|target)/.test(e.message),
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

test("decode and decodeFrames refuse a chunk that is not a Uint8Array, or no callback, with an InvalidArgumentError, and the codec stays usable", () => {
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
    [ping, undefined, "onMessage"],
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
