// A batch run of RUN_WRITE_FRAMES frames or more (Connection.submitBatch,
// and so each chunk of Client.requestMany) goes to the channel in one
// write as soon as it is encoded: no part inside it, and no wait for the
// tick's end. A smaller run keeps the tick's rules, so that many callers'
// small runs still share a write. Every frame goes out once and in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { connectionOver, tickEnds } from "./support/stub_connection.ts";
import { replies } from "./support/reply_chunk.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import {
  MIN_PART_FRAMES,
  RUN_WRITE_FRAMES,
} from "../src/connection/write_parts.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";

/** A channel that records the request sequence numbers of each write. */
function recorder() {
  const writes: number[][] = [];
  let deliver: (chunk: Uint8Array) => void = () => {};
  const codec = new MessageCodec(1 << 24);
  const channel = stubChannel({
    onData: (fn) => void (deliver = fn),
    write(bytes) {
      const sequences: number[] = [];
      codec.decode(bytes.slice(), (m) => {
        if (m.type === MessageType.Request) sequences.push(m.sequence);
      });
      writes.push(sequences);
      return true;
    },
    releasesWrites: true,
  });
  return { channel, writes, answer: (s: number[]) => deliver(replies(s)) };
}

const small = new Uint8Array([1, 2, 3]);
const sizes = (writes: number[][]) => writes.map((w) => w.length);

/** Grows the writer's slab past what a test's tick holds, then forgets it. */
async function warmUp(writer: FrameWriter, writes: number[][]) {
  for (let i = 0; i < 5; i++) {
    writer.push(MessageType.Request, 0, 1_000_000 + i, new Uint8Array(16_000));
  }
  await tickEnds();
  writes.length = 0;
}

/** Pushes `count` frames from `first` as one batch run does. */
function pushRun(writer: FrameWriter, first: number, count: number) {
  const partAt = writer.holdParts();
  for (let i = 0; i < count; i++) {
    writer.push(MessageType.Request, 0, first + i, small);
  }
  writer.sendRun(partAt);
}

test("a held run goes in one write as it ends, past the part it would have made, and the tick's parts count afresh after it", async () => {
  const { channel, writes } = recorder();
  const half = MIN_PART_FRAMES + 4;
  const writer = new FrameWriter(channel, undefined, undefined, () => 2 * half);
  await warmUp(writer, writes);
  const partAt = writer.holdParts();
  for (let i = 1; i <= 3 * half; i++) {
    writer.push(MessageType.Request, 0, i, small);
  }
  assert.deepEqual(writes, [], "no part while the run is held");
  writer.sendRun(partAt);
  assert.deepEqual(sizes(writes), [3 * half], "the whole run, at once");
  // Frames pushed after it in the same tick: a part again at `half` of
  // them, not at once for the tick's count so far.
  for (let i = 1; i < half; i++) {
    writer.push(MessageType.Request, 0, 1000 + i, small);
  }
  assert.equal(writes.length, 1, "fewer than a part: no write yet");
  writer.push(MessageType.Request, 0, 1000 + half, small);
  assert.deepEqual(sizes(writes), [3 * half, half], "a part, at half");
  writer.push(MessageType.Request, 0, 2000, small);
  await tickEnds();
  assert.deepEqual(sizes(writes), [3 * half, half, 1], "the rest at the end");
});

test("a connection writes a run of RUN_WRITE_FRAMES before submitBatch returns, and a smaller one at the tick's end, shared", async () => {
  const { channel, writes, answer } = recorder();
  const connection = connectionOver(channel);
  const settled: number[] = [];
  const sink = (): BatchReplySink => ({
    first: 0,
    onReply: (_payload, sequence) => void settled.push(sequence!),
    onError: (error) => assert.fail(error),
  });
  const payloads = Array.from(
    { length: RUN_WRITE_FRAMES },
    (_, i) => ops.echo(`${i}`),
  );
  const whole = sink();
  assert.equal(
    connection.submitBatch(payloads, 0, RUN_WRITE_FRAMES, {}, whole),
    undefined,
  );
  assert.deepEqual(sizes(writes), [RUN_WRITE_FRAMES], "written at once");
  const a = sink();
  const b = sink();
  const few = RUN_WRITE_FRAMES - 1;
  assert.equal(connection.submitBatch(payloads, 0, few, {}, a), undefined);
  assert.equal(connection.submitBatch(payloads, 1, few + 1, {}, b), undefined);
  assert.equal(writes.length, 1, "smaller runs wait for the tick's end");
  await tickEnds();
  assert.deepEqual(sizes(writes), [RUN_WRITE_FRAMES, 2 * few], "one write");
  answer(writes.flat());
  assert.equal(settled.length, RUN_WRITE_FRAMES + 2 * few, "every reply");
  assert.equal(connection.inFlight, 0);
  connection.destroy();
});

test("runs and single frames in any mix, with any count in flight: every frame goes out once, in order, and no write ends inside a run held whole", async () => {
  const step = fc.oneof(
    fc.record({ run: fc.integer({ min: 0, max: 3 * RUN_WRITE_FRAMES }) }),
    fc.record({ singles: fc.integer({ min: 1, max: 80 }) }),
    fc.constant({ tick: true }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { maxLength: 24 }),
      fc.integer({ min: 0, max: 300 }),
      async (steps, inFlight) => {
        const { channel, writes } = recorder();
        const writer = new FrameWriter(
          channel,
          undefined,
          undefined,
          () => inFlight,
        );
        await warmUp(writer, writes);
        let next = 1;
        // [first, last] of each run held whole.
        const held: [number, number][] = [];
        for (const s of steps) {
          if ("tick" in s) await tickEnds();
          else if ("run" in s) {
            if (s.run >= RUN_WRITE_FRAMES) {
              held.push([next, next + s.run - 1]);
              pushRun(writer, next, s.run);
              // Written by now, up to its last frame.
              assert.ok(writes.flat().includes(next + s.run - 1));
            } else {
              for (let i = 0; i < s.run; i++) {
                writer.push(MessageType.Request, 0, next + i, small);
              }
            }
            next += s.run;
          } else {
            for (let i = 0; i < s.singles; i++) {
              writer.push(MessageType.Request, 0, next + i, small);
            }
            next += s.singles;
          }
        }
        await tickEnds();
        const all = writes.flat();
        assert.deepEqual(
          all,
          Array.from({ length: next - 1 }, (_, i) => i + 1),
        );
        // A write's last frame is never inside a held run (before its end).
        for (const w of writes) {
          if (w.length === 0) continue;
          const last = w[w.length - 1];
          for (const [first, end] of held) {
            assert.ok(
              !(last >= first && last < end),
              `a write ended at ${last}, inside the run ${first}..${end}`,
            );
          }
        }
      },
    ),
    { numRuns: 150 },
  );
});
