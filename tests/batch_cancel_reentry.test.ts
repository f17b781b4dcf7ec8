// cancelBatch called from a batch sink's callback while the run is still
// being sent: a custom channel hands a reply back from inside the write of
// the run's first part, and the sink cancels the run there. The requests
// the run adds after the cancel are cancelled too (with the cancel's
// error, once the run is sent); before, they went out and settled later
// by reply, as if the run had never been cancelled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MIN_PART_FRAMES } from "../src/connection/write_parts.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";
import { replies } from "./support/reply_chunk.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { connectionOver, tickEnds } from "./support/stub_connection.ts";

// A part (at MIN_PART_FRAMES frames) and a few more; not enough to fill
// the writer's first slab (1 KiB), whose write would go midway too.
const RUN = MIN_PART_FRAMES + 4;

test("cancelBatch from a sink's callback in the middle of the run also cancels the requests the run adds after it: none settles later by reply", async () => {
  const writes: number[][] = [];
  let deliver!: (chunk: Uint8Array) => void;
  // The node answers the run's first part from inside its write, and
  // nothing else until the test says so.
  let answerNext = false;
  const channel = stubChannel({
    onData: (fn) => void (deliver = fn),
    write(bytes) {
      const sequences: number[] = [];
      new MessageCodec(1 << 24).decode(bytes.slice(), (m) => {
        if (m.type === MessageType.Request) sequences.push(m.sequence);
      });
      writes.push(sequences);
      if (answerNext && sequences.length > 0) {
        answerNext = false;
        deliver(replies(sequences));
      }
      return true;
    },
  });
  const connection = connectionOver(channel);
  // One tick with a request in flight: the next tick's first part goes
  // at MIN_PART_FRAMES frames, from inside the run.
  const warm = connection.sendRequest(ops.echo("warm")).catch((e) => e);
  await tickEnds();
  const cancel = new Error("test: the caller gave up on the batch");
  const told = new Map<number, unknown[]>();
  const note = (sequence: number, outcome: unknown) =>
    told.set(sequence, [...told.get(sequence) ?? [], outcome]);
  let cancelled = false;
  let submitting = false;
  let cancelledInRun = false;
  const sink: BatchReplySink = {
    first: 0,
    onReply(payload, sequence) {
      note(sequence!, payload);
      if (cancelled) return;
      cancelled = true;
      cancelledInRun = submitting;
      connection.cancelBatch(sink, RUN, cancel);
    },
    onError: (error, sequence) => note(sequence!, error),
  };
  answerNext = true;
  const payloads = Array.from({ length: RUN }, (_, i) => ops.echo(`${i}`));
  submitting = true;
  assert.equal(connection.submitBatch(payloads, 0, RUN, {}, sink), undefined);
  submitting = false;
  await tickEnds();
  assert.ok(cancelled, "the sink cancelled");
  assert.ok(cancelledInRun, "the sink cancelled from inside the first part");
  // Whatever was written, the node answers now: late replies, dropped.
  const written = writes.flat().filter((s) => s >= sink.first);
  deliver(replies(written));
  await tickEnds();
  assert.equal(told.size, RUN, "every item had its outcome");
  const first = sink.first;
  for (const [sequence, outcomes] of told) {
    assert.equal(outcomes.length, 1, `item ${sequence}: ${outcomes}`);
    if (sequence === first) {
      assert.ok(outcomes[0] instanceof Uint8Array, "answered before cancel");
    } else {
      // Before: the items sent after the cancel settled by reply.
      assert.equal(outcomes[0], cancel, `item ${sequence}: ${outcomes[0]}`);
    }
  }
  assert.equal(connection.inFlight, 1, "only the warm-up request is left");
  connection.destroy();
  await warm;
});
