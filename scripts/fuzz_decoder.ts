/**
 * Fuzzes the frame decoder (MessageCodec) with random, valid and mutated
 * frames, split into chunks at random places, and checks each outcome
 * against a small reference decoder written from docs/PROTOCOL.md.
 *
 * A finding is: an exception that is not a ProtocolError, a result that
 * differs from the reference (other messages, other error, error at
 * another point), a broken invariant (buffered bytes over the limit, an
 * error that does not stick), or a single decode call slower than 100 ms.
 * A hang never lets the script finish; run it under `timeout`.
 *
 * Usage (any runtime):
 *   deno run scripts/fuzz_decoder.ts [--frames N] [--seed S] [--max-frame-size B]
 *   bun scripts/fuzz_decoder.ts ...
 *   node --import tsx scripts/fuzz_decoder.ts ...
 *
 * Exits 1 when it found anything.
 *
 * @module
 */

import { ProtocolError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import {
  HEADER_SIZE,
  isKnownMessageType,
  KNOWN_FLAGS,
  MessageType,
  PROTOCOL_VERSION,
} from "../src/protocol/frame.ts";
import { detectRuntime } from "../src/runtime/detect.ts";
import { concatBytes } from "../testing/bytes.ts";

const g = globalThis as {
  Deno?: { args: string[]; exit(code: number): never };
  process?: { argv: string[]; exit(code: number): never };
};
const argv = g.Deno?.args ?? g.process?.argv.slice(2) ?? [];
function arg(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}
const TARGET_FRAMES = arg("frames", 1_000_000);
const SEED = arg("seed", 20_260_101);
const MAX = arg("max-frame-size", 64 * 1024);

// ------------------------------------------------------------------ random

let state = SEED >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)];

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(256);
  return out;
}

// Payload bytes come from a pool: the decoder never looks inside a
// payload, and drawing megabytes byte by byte would be most of the run.
const POOL = randomBytes(MAX * 2);

const TYPES = Object.values(MessageType);

function payloadSize(): number {
  const r = random();
  if (r < 0.7) return int(33);
  if (r < 0.95) return 33 + int(1000);
  return int(MAX + 1);
}

function sequence(): number {
  const r = random();
  if (r < 0.3) return int(1000);
  if (r < 0.9) return int(2 ** 21) * 2 ** 32 + int(2 ** 32);
  return pick([0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]);
}

/** Encodes valid frames by hand (not through the codec under test). */
function validFrames(count: number): { bytes: Uint8Array; starts: number[] } {
  const parts: Uint8Array[] = [];
  const starts: number[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const length = payloadSize();
    const frame = new Uint8Array(HEADER_SIZE + length);
    const view = new DataView(frame.buffer);
    const seq = sequence();
    frame[0] = PROTOCOL_VERSION;
    frame[1] = pick(TYPES);
    view.setUint16(2, random() < 0.5 ? 0 : KNOWN_FLAGS);
    view.setUint32(4, Math.floor(seq / 2 ** 32));
    view.setUint32(8, seq >>> 0);
    view.setUint32(12, length);
    const from = int(POOL.byteLength - length);
    frame.set(POOL.subarray(from, from + length), HEADER_SIZE);
    parts.push(frame);
    starts.push(at);
    at += frame.byteLength;
  }
  return { bytes: concatBytes(parts), starts };
}

const MUTATIONS = [
  "flip bit",
  "set byte",
  "truncate",
  "append",
  "length",
  "version",
  "type",
  "flags",
  "sequence",
  "insert",
] as const;

function mutate(
  input: { bytes: Uint8Array; starts: number[] },
): Uint8Array {
  let bytes: Uint8Array = input.bytes.slice();
  const header = pick(input.starts);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    const kind = pick(MUTATIONS);
    if (bytes.byteLength === 0) break;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const h = header + HEADER_SIZE <= bytes.byteLength ? header : -1;
    switch (kind) {
      case "flip bit": {
        const i = int(bytes.byteLength);
        bytes[i] ^= 1 << int(8);
        break;
      }
      case "set byte":
        bytes[int(bytes.byteLength)] = int(256);
        break;
      case "truncate":
        bytes = bytes.slice(0, int(bytes.byteLength));
        break;
      case "append":
        bytes = concatBytes([bytes, randomBytes(1 + int(32))]);
        break;
      case "insert": {
        const at = int(bytes.byteLength);
        bytes = concatBytes([
          bytes.subarray(0, at),
          randomBytes(1 + int(8)),
          bytes.subarray(at),
        ]);
        break;
      }
      case "length":
        if (h >= 0) {
          view.setUint32(
            h + 12,
            pick([0, 1, MAX, MAX + 1, 2 ** 32 - 1, int(2 ** 32), int(64)]),
          );
        }
        break;
      case "version":
        if (h >= 0) bytes[h] = int(256);
        break;
      case "type":
        if (h >= 0) bytes[h + 1] = int(256);
        break;
      case "flags":
        if (h >= 0) view.setUint16(h + 2, int(65536));
        break;
      case "sequence":
        if (h >= 0) {
          view.setUint32(h + 4, pick([0x1f_ffff, 0x20_0000, int(2 ** 32)]));
        }
        break;
    }
  }
  return bytes;
}

// --------------------------------------------------------------- reference

type Category =
  | "version"
  | "type"
  | "flags"
  | "sequence"
  | "length"
  | "end in header"
  | "end in payload";

interface Expected {
  messages: Array<
    {
      type: number;
      flags: number;
      sequence: number;
      start: number;
      length: number;
    }
  >;
  error: Category | undefined;
  /** The error comes from `end()`, not `decode()`. */
  atEnd: boolean;
}

/** Decodes the whole input at once, straight from the documented layout. */
function reference(bytes: Uint8Array): Expected {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const messages: Expected["messages"] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    if (bytes.byteLength - at < HEADER_SIZE) {
      return { messages, error: "end in header", atEnd: true };
    }
    if (bytes[at] !== PROTOCOL_VERSION) return fail(messages, "version");
    const type = bytes[at + 1];
    if (!isKnownMessageType(type)) return fail(messages, "type");
    const flags = view.getUint16(at + 2);
    if ((flags & ~KNOWN_FLAGS) !== 0) return fail(messages, "flags");
    const hi = view.getUint32(at + 4);
    if (hi > 0x1f_ffff) return fail(messages, "sequence");
    const length = view.getUint32(at + 12);
    if (length > MAX) return fail(messages, "length");
    if (bytes.byteLength - at - HEADER_SIZE < length) {
      return { messages, error: "end in payload", atEnd: true };
    }
    messages.push({
      type,
      flags,
      sequence: hi * 2 ** 32 + view.getUint32(at + 8),
      start: at + HEADER_SIZE,
      length,
    });
    at += HEADER_SIZE + length;
  }
  return { messages, error: undefined, atEnd: false };
}

function fail(messages: Expected["messages"], error: Category): Expected {
  return { messages, error, atEnd: false };
}

function categorise(error: ProtocolError): Category | string {
  const m = error.message;
  if (/unsupported protocol version/.test(m)) return "version";
  if (/unknown message type/.test(m)) return "type";
  if (/reserved flag/.test(m)) return "flags";
  if (/sequence number above/.test(m)) return "sequence";
  if (/exceeds the maximum/.test(m)) return "length";
  if (/ended inside a frame header/.test(m)) return "end in header";
  if (/ended inside a frame payload/.test(m)) return "end in payload";
  return `other: ${m.replace(/\d+/g, "N")}`;
}

// -------------------------------------------------------------------- run

/** Cuts `bytes` into chunks: whole, a few random cuts, or byte by byte. */
function chunks(bytes: Uint8Array): Uint8Array[] {
  const r = random();
  if (r < 0.3 || bytes.byteLength < 2) return [bytes];
  if (r < 0.35 && bytes.byteLength <= 256) {
    return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  }
  const cuts = new Set<number>();
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) cuts.add(1 + int(bytes.byteLength - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const cut of sorted) {
    out.push(bytes.subarray(from, cut));
    from = cut;
  }
  out.push(bytes.subarray(from));
  return out;
}

const outcomes = new Map<string, number>();
const findings: string[] = [];
const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
let slowestCallMs = 0;
let decodeMs = 0;
let messagesDecoded = 0;
let bytesFed = 0;

function finding(what: string, input: Uint8Array): void {
  if (findings.length < 20) {
    const hex = Array.from(
      input.subarray(0, 48),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    findings.push(`${what} (input ${input.byteLength} bytes: ${hex}...)`);
  } else if (findings.length === 20) findings.push("... more");
}

function check(input: Uint8Array, kind: string): void {
  const expected = reference(input);
  const codec = new MessageCodec(MAX);
  let index = 0;
  let mismatch: string | undefined;
  const onMessage = (
    m: { type: number; flags: number; sequence: number; payload: Uint8Array },
  ) => {
    messagesDecoded++;
    const want = expected.messages[index++];
    if (mismatch) return;
    if (want === undefined) {
      mismatch = "a message the reference does not have";
      return;
    }
    if (
      m.type !== want.type || m.flags !== want.flags ||
      m.sequence !== want.sequence || m.payload.byteLength !== want.length
    ) {
      mismatch = `header differs at message ${index - 1}`;
      return;
    }
    for (let i = 0; i < want.length; i++) {
      if (m.payload[i] !== input[want.start + i]) {
        mismatch = `payload differs at message ${index - 1}`;
        return;
      }
    }
  };
  let thrown: unknown;
  let atEnd = false;
  try {
    for (const chunk of chunks(input)) {
      bytesFed += chunk.byteLength;
      const start = performance.now();
      codec.decode(chunk, onMessage);
      const took = performance.now() - start;
      decodeMs += took;
      if (took > slowestCallMs) slowestCallMs = took;
      if (took > 100) finding(`slow decode call: ${took.toFixed(0)} ms`, input);
      if (codec.bufferedBytes > HEADER_SIZE + MAX) {
        finding(`buffered ${codec.bufferedBytes} bytes, over the limit`, input);
      }
    }
    atEnd = true;
    codec.end();
  } catch (error) {
    thrown = error;
  }
  if (thrown !== undefined && !(thrown instanceof ProtocolError)) {
    count(`${kind}: CRASH ${String(thrown)}`);
    finding(`not a ProtocolError: ${String(thrown)}`, input);
    return;
  }
  const got = thrown instanceof ProtocolError ? categorise(thrown) : undefined;
  count(`${kind}: ${got ?? "ok"}`);
  if (mismatch) finding(mismatch, input);
  else if (index !== expected.messages.length) {
    finding(
      `${index} messages, the reference has ${expected.messages.length}`,
      input,
    );
  } else if (got !== expected.error) {
    finding(
      `outcome ${got ?? "ok"}, the reference says ${expected.error ?? "ok"}`,
      input,
    );
  } else if (thrown && atEnd !== expected.atEnd) {
    finding(
      `error ${atEnd ? "at end()" : "in decode()"}, expected otherwise`,
      input,
    );
  }
  if (thrown instanceof ProtocolError) {
    // A failed stream stays failed, with the same error.
    try {
      codec.decode(
        new Uint8Array([1]),
        () => finding("decoded after failure", input),
      );
      finding("decode after a failure did not throw", input);
    } catch (again) {
      if (again !== thrown) finding("a different error after failure", input);
    }
  }
}

const started = performance.now();
let frames = 0;
let cases = 0;
while (frames < TARGET_FRAMES) {
  const r = random();
  cases++;
  if (r < 0.35) {
    const n = 1 + int(8);
    check(validFrames(n).bytes, "valid");
    frames += n;
  } else if (r < 0.85) {
    const n = 1 + int(4);
    check(mutate(validFrames(n)), "mutated");
    frames += n;
  } else {
    check(randomBytes(int(80)), "random");
    frames += 1;
  }
}
const seconds = (performance.now() - started) / 1000;

console.log(
  `fuzz_decoder on ${detectRuntime()}: ${frames} frames in ${cases} cases, ` +
    `${
      (bytesFed / 1048576).toFixed(1)
    } MiB, ${messagesDecoded} messages decoded, ` +
    `${seconds.toFixed(1)} s, ${Math.round(frames / seconds)} frames/s ` +
    `(${Math.round(frames / (decodeMs / 1000))} frames/s inside decode()), ` +
    `slowest decode call ${
      slowestCallMs.toFixed(2)
    } ms (seed ${SEED}, max frame ${MAX})`,
);
for (const [key, n] of [...outcomes].sort()) {
  console.log(`  ${key.padEnd(30)} ${n}`);
}
if (findings.length > 0) {
  console.log(`FINDINGS (${findings.length}):`);
  for (const f of findings) console.log(`  ${f}`);
  (g.Deno ?? g.process)?.exit(1);
} else {
  console.log("findings: none");
}
