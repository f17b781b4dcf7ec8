// A tick's frames go to the channel in parts (frame_writer.ts), so the
// channel's write now runs from inside push(), in the middle of a caller's
// loop: a batch run, many request() calls in one tick, held frames written
// after a drain. Whatever the write does there (throw, congest, hand back
// replies or a close at once, as a custom channel may), every request
// settles once, with the right `sent`, and nothing is written once the
// connection has ended.
import { test } from "node:test";
import assert from "node:assert/strict";
import { replies } from "./support/reply_chunk.ts";
import { stubChannel } from "./support/stub_channel.ts";
import type { Connection } from "../src/connection/connection.ts";
import {
  MIN_PART_FRAMES,
  RUN_WRITE_FRAMES,
} from "../src/connection/write_parts.ts";
import type { BatchReplySink } from "../src/connection/types.ts";
import {
  AbortedError,
  ConnectionLostError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { connectionOver, tickEnds } from "./support/stub_connection.ts";

/**
 * A channel that decodes what it is given (the sequence numbers of each
 * write), notes what came after it was closed or destroyed, and lets a
 * scene decide what a write does (`onWrite`: its answer, or a throw).
 */
function scriptedChannel() {
  const codec = new MessageCodec(1 << 24);
  const scene = {
    writes: [] as number[][],
    afterEnd: [] as number[],
    ended: false,
    onWrite: undefined as ((sequences: number[]) => boolean) | undefined,
    deliver: (_chunk: Uint8Array): void => {},
    close: (_error?: Error): void => {},
  };
  const channel = stubChannel({
    onData: (fn) => void (scene.deliver = fn),
    onClose: (fn) => void (scene.close = fn),
    write(bytes) {
      const sequences: number[] = [];
      codec.decode(bytes.slice(), (m) => {
        if (m.type === MessageType.Request) sequences.push(m.sequence);
      });
      if (scene.ended) scene.afterEnd.push(...sequences);
      scene.writes.push(sequences);
      return scene.onWrite?.(sequences) ?? true;
    },
    close: () => void (scene.ended = true),
    destroy: () => void (scene.ended = true),
  });
  return { channel, scene };
}

/** A batch sink that records every outcome by sequence number. */
function recordingBatchSink(onReply?: () => void) {
  const told = new Map<number, unknown[]>();
  const sink: BatchReplySink = {
    first: 0,
    onReply(payload, sequence) {
      told.set(sequence!, [...told.get(sequence!) ?? [], payload]);
      onReply?.();
    },
    onError(error, sequence) {
      told.set(sequence!, [...told.get(sequence!) ?? [], error]);
    },
  };
  return { sink, told };
}

// A run too small to be held whole (RUN_WRITE_FRAMES), after LEAD single
// requests of the same tick: the tick's first part (at MIN_PART_FRAMES
// frames) goes from inside the run, 4 frames before its end. Not enough
// for a second part (at twice that), nor to fill the writer's first slab
// (1 KiB), whose write would go in the middle too.
const RUN = RUN_WRITE_FRAMES - 1;
const LEAD = MIN_PART_FRAMES + 4 - RUN;
assert.ok(LEAD >= 1 && LEAD + RUN < 2 * MIN_PART_FRAMES);
const runPayloads = (count = RUN) =>
  Array.from({ length: count }, (_, i) => ops.echo(`item ${i}`));

// Single requests in one tick: a part at MIN_PART_FRAMES, a few after it.
const SINGLES = MIN_PART_FRAMES + 4;

/** LEAD single requests in this tick, each outcome caught. */
const lead = (connection: Connection) =>
  Array.from(
    { length: LEAD },
    () => connection.sendRequest(ops.echo("lead")).catch((e) => e),
  );

/**
 * A connection on `channel` whose first tick is over with one request in
 * flight: the next tick's first part goes at MIN_PART_FRAMES frames.
 */
async function warmConnection(
  channel: ReturnType<typeof scriptedChannel>["channel"],
) {
  const clock = new VirtualClock();
  const connection = connectionOver(channel, clock);
  const warm = connection.sendRequest(ops.echo("warm")).catch((e) => e);
  await tickEnds();
  return { clock, connection, warm };
}

type Scene = ReturnType<typeof scriptedChannel>["scene"];

/** What a write that ends the connection does. */
const endings: [string, (scene: Scene) => boolean][] = [
  [
    "throws",
    () => {
      throw new Error("test: the socket is gone");
    },
  ],
  [
    "hands the close over at once and says it took the bytes",
    (scene) => {
      scene.ended = true;
      scene.close(new Error("test: reset by peer"));
      return true;
    },
  ],
];

// A run with a part inside it, and one held whole (its one write is
// where it ends): the first write of each is the one that ends it.
const shapes = [
  { name: "part", leads: LEAD, run: RUN, firstWrite: MIN_PART_FRAMES },
  {
    name: "write, the run held whole,",
    leads: 0,
    run: RUN_WRITE_FRAMES + 4,
    firstWrite: RUN_WRITE_FRAMES + 4,
  },
];

for (const [how, ending] of endings) {
  for (const shape of shapes) {
    test(`a batch run whose ${shape.name} write ${how} ends the connection: every request settles once, those after the write as not sent, and none is written after the end`, async () => {
      const { channel, scene } = scriptedChannel();
      const { connection, warm } = await warmConnection(channel);
      const first = scene.writes.length;
      let parts = 0;
      scene.onWrite = (sequences) => {
        parts++;
        return parts === 1 && sequences.length > 0 ? ending(scene) : true;
      };
      const leads = shape.leads > 0 ? lead(connection) : [];
      const { sink, told } = recordingBatchSink();
      assert.equal(
        connection.submitBatch(runPayloads(shape.run), 0, shape.run, {}, sink),
        undefined,
      );
      await tickEnds();
      assert.equal(connection.isOpen, false);
      const inPart = scene.writes[first];
      assert.equal(inPart.length, shape.firstWrite, `the first: ${inPart}`);
      assert.deepEqual(
        scene.afterEnd,
        [],
        "frames written after the connection ended",
      );
      assert.equal(told.size, shape.run, "every request of the run told");
      for (const [sequence, outcomes] of told) {
        assert.equal(outcomes.length, 1, `request ${sequence}: ${outcomes}`);
        const [error] = outcomes;
        assert.ok(error instanceof ConnectionLostError, String(error));
        assert.equal(
          error.sent,
          inPart.includes(sequence),
          `request ${sequence} sent: ${error.sent}`,
        );
      }
      for (const error of await Promise.all(leads)) {
        assert.ok(error instanceof ConnectionLostError, String(error));
        assert.equal(error.sent, true, "the leads went in the first write");
      }
      assert.equal(connection.inFlight, 0);
      assert.ok(await warm instanceof ConnectionLostError);
    });
  }
}

test("a batch run whose part's write hands back a reply at once, whose sink then destroys the connection: the rest of the run is never written", async () => {
  const { channel, scene } = scriptedChannel();
  const { connection, warm } = await warmConnection(channel);
  const first = scene.writes.length;
  scene.onWrite = (sequences) => {
    scene.deliver(replies(sequences));
    return true;
  };
  let destroyed = false;
  const { sink, told } = recordingBatchSink(() => {
    if (destroyed) return;
    destroyed = true;
    connection.destroy(new Error("test: the caller gave up"));
  });
  const leads = lead(connection);
  assert.equal(
    connection.submitBatch(runPayloads(), 0, RUN, {}, sink),
    undefined,
  );
  await tickEnds();
  assert.equal(connection.isOpen, false);
  const inPart = scene.writes[first];
  assert.equal(inPart.length, MIN_PART_FRAMES, `the first part: ${inPart}`);
  assert.deepEqual(
    scene.afterEnd,
    [],
    "frames written after the connection ended",
  );
  assert.equal(told.size, RUN);
  for (const [sequence, outcomes] of told) {
    assert.equal(outcomes.length, 1, `request ${sequence}: ${outcomes}`);
    if (sequence === inPart[LEAD]) {
      assert.ok(outcomes[0] instanceof Uint8Array, String(outcomes[0]));
      continue;
    }
    const [error] = outcomes;
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.equal(error.sent, inPart.includes(sequence), `request ${sequence}`);
  }
  // The part's write handed back the leads' replies before the run's.
  for (const reply of await Promise.all(leads)) {
    assert.ok(reply instanceof Uint8Array, String(reply));
  }
  // No reply was ever handed back to the first tick's request.
  assert.ok(await warm instanceof ConnectionLostError);
});

test("a request sent from a batch sink while a part's write hands its replies back at once is counted: stats.sent lost it", async () => {
  const { channel, scene } = scriptedChannel();
  scene.onWrite = (sequences) => {
    scene.deliver(replies(sequences));
    return true;
  };
  const { connection, warm } = await warmConnection(channel);
  const first = scene.writes.length;
  let more: Promise<unknown> | undefined;
  const { sink, told } = recordingBatchSink(() => {
    more ??= connection.sendRequest(ops.echo("more"));
  });
  const leads = lead(connection);
  assert.equal(
    connection.submitBatch(runPayloads(), 0, RUN, {}, sink),
    undefined,
  );
  assert.ok(more !== undefined, "sent from inside a part, while the run was");
  await tickEnds();
  assert.ok(await warm instanceof Uint8Array);
  assert.ok(await more instanceof Uint8Array);
  assert.equal(told.size, RUN);
  assert.deepEqual(
    scene.writes.slice(first).map((w) => w.length),
    [MIN_PART_FRAMES, LEAD + RUN - MIN_PART_FRAMES + 1],
    "the part, then the rest of the run and the request sent inside it",
  );
  for (const reply of await Promise.all(leads)) {
    assert.ok(reply instanceof Uint8Array, String(reply));
  }
  const written = scene.writes.flat();
  assert.equal(written.length, 1 + LEAD + RUN + 1);
  assert.equal(connection.stats.received, written.length);
  assert.equal(connection.stats.sent, written.length, "requests written");
  connection.destroy();
});

/** `count` requests on `connection` in this tick, each outcome recorded. */
function sendMany(
  connection: Connection,
  count: number,
  options?: { signal?: AbortSignal; timeoutMs?: number },
) {
  return Array.from(
    { length: count },
    () =>
      connection.sendRequest(ops.echo("x"), options).then(
        (reply) => reply,
        (error: unknown) => error,
      ),
  );
}

test("a channel that congests at a tick's first part gets none of the tick's other frames until it drains, then all of them, in order, once", async () => {
  const { channel, scene } = scriptedChannel();
  let drain = () => {};
  channel.drained = () => new Promise<void>((resolve) => (drain = resolve));
  const { connection, warm } = await warmConnection(channel);
  const before = scene.writes.length;
  scene.onWrite = () => scene.writes.length > before + 1;
  const outcomes = sendMany(connection, 2 * SINGLES);
  await tickEnds();
  assert.deepEqual(
    scene.writes.slice(before).map((w) => w.length),
    [MIN_PART_FRAMES],
  );
  drain();
  await tickEnds();
  const written = scene.writes.flat();
  assert.deepEqual(
    written,
    Array.from({ length: 2 * SINGLES + 1 }, (_, i) => i + 1),
  );
  scene.deliver(replies(written));
  for (const outcome of [warm, ...outcomes]) {
    assert.ok(await outcome instanceof Uint8Array, String(await outcome));
  }
  assert.equal(connection.stats.sent, 2 * SINGLES + 1);
  connection.destroy();
});

test("requests held by a congested part that time out are not sent, those in the part are, and the held ones are never written after the drain", async () => {
  const { channel, scene } = scriptedChannel();
  let drain = () => {};
  channel.drained = () => new Promise<void>((resolve) => (drain = resolve));
  const { clock, connection, warm } = await warmConnection(channel);
  const before = scene.writes.length;
  scene.onWrite = () => scene.writes.length > before + 1;
  const outcomes = sendMany(connection, SINGLES, { timeoutMs: 50 });
  await tickEnds();
  const inPart = scene.writes[before];
  assert.equal(inPart.length, MIN_PART_FRAMES);
  await clock.advance(50);
  for (const [i, outcome] of outcomes.entries()) {
    const error = await outcome;
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(error.sent, inPart.includes(i + 2), `request ${i + 2}`);
  }
  drain();
  await tickEnds();
  assert.deepEqual(scene.writes.slice(before), [inPart], "held frames written");
  connection.destroy();
  await warm;
});

test("requests aborted in the tick they were sent: those a part took went out, the others are never written", async () => {
  const { channel, scene } = scriptedChannel();
  const { connection, warm } = await warmConnection(channel);
  const before = scene.writes.length;
  const controller = new AbortController();
  // Sequence numbers 2 to SINGLES + 1; a part went at MIN_PART_FRAMES frames
  // (the next goes at twice that, among the kept ones).
  const aborted = sendMany(connection, SINGLES, { signal: controller.signal });
  controller.abort(new Error("test: enough"));
  const kept = sendMany(connection, SINGLES);
  await tickEnds();
  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);
  assert.deepEqual(
    scene.writes.slice(before).flat(),
    [...range(2, MIN_PART_FRAMES + 1), ...range(SINGLES + 2, 2 * SINGLES + 1)],
  );
  for (const outcome of aborted) {
    const error = await outcome;
    assert.ok(error instanceof AbortedError, String(error));
  }
  scene.deliver(replies(scene.writes.flat()));
  for (const outcome of [warm, ...kept]) {
    assert.ok(await outcome instanceof Uint8Array, String(await outcome));
  }
  assert.equal(
    connection.stats.dropped,
    MIN_PART_FRAMES,
    "late replies to aborted requests",
  );
  connection.destroy();
});

test("a reply split over two chunks, the second handed over from inside a part's write that the first chunk's sink caused, is read as one: its end was read as a header of its own, and the reply was lost (or the connection torn down for a protocol violation)", async () => {
  const { channel, scene } = scriptedChannel();
  const { clock, connection, warm } = await warmConnection(channel);
  const told: string[] = [];
  // A sink that sends MIN_PART_FRAMES requests at once: a part, written
  // from inside the reading of the first chunk.
  connection.submitRequest(ops.echo("a"), undefined, {
    onReply() {
      told.push("reply");
      for (let i = 0; i < MIN_PART_FRAMES; i++) {
        connection.sendRequest(ops.echo("x")).catch(() => {});
      }
    },
    onError: (error) => void told.push(String(error)),
  });
  const late = connection.sendRequest(ops.echo("b")).catch((error) => error);
  await tickEnds();
  // Replies to requests 2 and 3; the second's last ten bytes come later,
  // from inside the part's write.
  const stream = replies([2, 3]);
  let inRead = false;
  let wroteInRead = false;
  scene.onWrite = () => {
    if (inRead) wroteInRead = true;
    scene.deliver(stream.subarray(stream.length - 10));
    return true;
  };
  inRead = true;
  scene.deliver(stream.subarray(0, stream.length - 10));
  inRead = false;
  assert.ok(wroteInRead, "the sink's requests went in a part, in the read");
  await tickEnds();
  // Unanswered, it would time out.
  await clock.advance(1000);
  const reply = await late;
  assert.ok(reply instanceof Uint8Array, `the split reply: ${reply}`);
  assert.deepEqual(told, ["reply"]);
  assert.equal(connection.isOpen, true);
  connection.destroy();
  await warm.catch(() => {});
});
