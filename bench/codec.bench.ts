/**
 * MessageCodec throughput: encoding and decoding REQUEST/RESPONSE frames
 * with 16 B and 1 KiB payloads, in messages/s and MB/s (10^6 bytes of whole
 * frames, header included). A plain script, the same file on all runtimes:
 *
 *   deno run -A bench/codec.bench.ts
 *   bun bench/codec.bench.ts
 *   node --import tsx bench/codec.bench.ts
 *
 * BENCH_QUICK=1 makes it a smoke run of a few seconds. The last line of
 * output is one JSON object with every figure.
 *
 * @module
 */

import { MessageCodec } from "../src/protocol/codec.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import {
  fixed,
  int,
  median,
  now,
  printTable,
  QUICK,
  runtimeLabel,
  runtimeName,
  yieldToEventLoop,
} from "./harness.ts";

const PAYLOAD_SIZES = [16, 1024];
const WARMUP_ROUNDS = QUICK ? 1 : 3;
const ROUNDS = QUICK ? 3 : 9;
/** A case stops adding rounds after this long (but runs at least 3). */
const CASE_BUDGET_MS = QUICK ? 500 : 8_000;
/** Stream length per round: enough work that timer noise is below 1%. */
const ROUND_BYTES = QUICK ? 1 << 20 : 32 << 20;
const MAX_MESSAGES = QUICK ? 20_000 : 500_000;

interface CaseResult {
  operation: string;
  payloadBytes: number;
  messagesPerRound: number;
  rounds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
}

/**
 * Runs `round` (which processes `messages` frames and returns a checksum)
 * through warm-up and measured rounds; reports the median round.
 */
async function measure(
  operation: string,
  payloadBytes: number,
  messages: number,
  round: () => number,
): Promise<CaseResult> {
  let sink = 0;
  for (let i = 0; i < WARMUP_ROUNDS; i++) sink += round();
  const rates: number[] = [];
  const started = now();
  while (
    rates.length < ROUNDS &&
    (rates.length < 3 || now() - started < CASE_BUDGET_MS)
  ) {
    // Let queued microtasks (FrameWriter flushes) and GC-friendly idle time
    // happen outside the timed section.
    await yieldToEventLoop();
    const t0 = now();
    sink += round();
    const seconds = (now() - t0) / 1000;
    rates.push(messages / seconds);
  }
  if (sink === -1) console.log("unreachable"); // keeps the work observable
  const rate = median(rates);
  return {
    operation,
    payloadBytes,
    messagesPerRound: messages,
    rounds: rates.length,
    messagesPerSecond: rate,
    megabytesPerSecond: rate * (HEADER_SIZE + payloadBytes) / 1e6,
  };
}

/** A channel that accepts everything and keeps nothing. */
function nullChannel(): ByteChannel {
  return {
    onData() {},
    onClose() {},
    write: () => true,
    drained: () => Promise.resolve(),
    close() {},
    destroy() {},
    bufferedAmount: 0,
    remoteAddress: undefined,
  };
}

/** `count` RESPONSE frames back to back, as a node would send them. */
function buildStream(payloadBytes: number, count: number): Uint8Array {
  const codec = new MessageCodec();
  const frame = HEADER_SIZE + payloadBytes;
  const stream = new Uint8Array(frame * count);
  const payload = new Uint8Array(payloadBytes).fill(0x5a);
  for (let i = 0; i < count; i++) {
    stream.set(
      codec.encode({
        type: MessageType.Response,
        flags: 0,
        sequence: i + 1,
        payload,
      }),
      i * frame,
    );
  }
  return stream;
}

function split(stream: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < stream.byteLength; at += size) {
    chunks.push(stream.subarray(at, Math.min(stream.byteLength, at + size)));
  }
  return chunks;
}

const results: CaseResult[] = [];

for (const payloadBytes of PAYLOAD_SIZES) {
  const frame = HEADER_SIZE + payloadBytes;
  const messages = Math.min(
    MAX_MESSAGES,
    Math.max(1000, Math.floor(ROUND_BYTES / frame)),
  );
  const payload = new Uint8Array(payloadBytes).fill(0xa5);

  // What codec.encode costs: a fresh buffer per frame.
  const encoder = new MessageCodec();
  results.push(
    await measure("encode (codec.encode)", payloadBytes, messages, () => {
      let sum = 0;
      for (let i = 1; i <= messages; i++) {
        const out = encoder.encode({
          type: MessageType.Request,
          flags: 0,
          sequence: i,
          payload,
        });
        sum += out[15];
      }
      return sum;
    }),
  );

  // What Connection actually does: frames written into a shared slab.
  results.push(
    await measure("encode (FrameWriter)", payloadBytes, messages, () => {
      const writer = new FrameWriter(nullChannel());
      for (let i = 1; i <= messages; i++) {
        writer.push(MessageType.Request, 0, i, payload);
      }
      writer.flush();
      return writer.pendingBytes;
    }),
  );

  const stream = buildStream(payloadBytes, messages);
  const feeds: [string, Uint8Array[]][] = [
    ["decode 64 KiB chunks", split(stream, 64 * 1024)],
    ["decode frame by frame", split(stream, frame)],
  ];
  for (const [operation, chunks] of feeds) {
    results.push(
      await measure(operation, payloadBytes, messages, () => {
        const decoder = new MessageCodec();
        let count = 0;
        let sum = 0;
        const onMessage = (m: { sequence: number; payload: Uint8Array }) => {
          count++;
          sum += m.payload.byteLength;
        };
        for (let i = 0; i < chunks.length; i++) {
          decoder.decode(chunks[i], onMessage);
        }
        if (count !== messages) {
          throw new Error(`decoded ${count} frames, expected ${messages}`);
        }
        return sum;
      }),
    );
  }
}

console.log(
  `MessageCodec on ${runtimeLabel()}${
    QUICK ? " (BENCH_QUICK: smoke run, figures not meaningful)" : ""
  }; median of ${ROUNDS} rounds after ${WARMUP_ROUNDS} warm-up`,
);
printTable(
  ["operation", "payload", "msgs/round", "rounds", "msgs/s", "MB/s"],
  results.map((r) => [
    r.operation,
    `${r.payloadBytes} B`,
    int(r.messagesPerRound),
    String(r.rounds),
    int(r.messagesPerSecond),
    fixed(r.megabytesPerSecond, 0),
  ]),
);
console.log(JSON.stringify({
  bench: "codec",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  results: results.map((r) => ({
    ...r,
    messagesPerSecond: Math.round(r.messagesPerSecond),
    megabytesPerSecond: Number(r.megabytesPerSecond.toFixed(1)),
  })),
}));
