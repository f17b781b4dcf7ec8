// Many requests in flight on one connection may share one AbortSignal (a
// caller's deadline for a whole piece of work). The connection listens to
// each signal once, however many requests share it, and a request aborted
// before the flush has its frame taken back: the flush writes the others
// intact and in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import { AbortedError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** A channel that decodes what is written: REQUEST sequence and payload. */
function recordingChannel() {
  const frames: Array<{ sequence: number; payload: string }> = [];
  const decoder = new MessageCodec(1 << 24);
  const channel = stubChannel({
    onData: () => {},
    write(bytes) {
      decoder.decode(bytes.slice(), (m) => {
        if (m.type === MessageType.Request) {
          frames.push({
            sequence: m.sequence,
            payload: new TextDecoder().decode(m.payload.subarray(1)),
          });
        }
      });
      return true;
    },
  });
  return { channel, frames };
}

/** A signal that counts the listeners added to it and removed from it. */
function countedSignal() {
  const controller = new AbortController();
  const signal = controller.signal;
  const counts = { added: 0, removed: 0 };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  Object.assign(signal, {
    addEventListener(...args: Parameters<AbortSignal["addEventListener"]>) {
      counts.added++;
      add(...args);
    },
    removeEventListener(
      ...args: Parameters<AbortSignal["removeEventListener"]>
    ) {
      counts.removed++;
      remove(...args);
    },
  });
  return { controller, signal, counts };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a thousand requests sharing a signal: one listener on it, removed once they all settled", async () => {
  const { channel } = recordingChannel();
  const c = new Connection(channel, { hostname: "fake", port: 1 });
  const { signal, counts } = countedSignal();
  const settled = Array.from(
    { length: 1000 },
    (_, i) => c.sendRequest(ops.echo(`r${i}`), { signal }).catch((e) => e),
  );
  assert.equal(counts.added, 1);
  await turn();
  assert.equal(c.inFlight, 1000);
  c.destroy();
  await Promise.all(settled);
  assert.equal(counts.removed, 1, "removed with the last request");
});

test("a thousand requests aborted by their shared signal in the tick they were sent: none written, each rejected, the signal listened to once", async () => {
  const { channel, frames } = recordingChannel();
  const c = new Connection(channel, { hostname: "fake", port: 1 });
  const { controller, signal, counts } = countedSignal();
  const kept = c.sendRequest(ops.echo("kept"));
  const aborted = Array.from(
    { length: 1000 },
    (_, i) => c.sendRequest(ops.echo(`a${i}`), { signal }).catch((e) => e),
  );
  const last = c.sendRequest(ops.echo("last"));
  // The slab grows as it fills, and hands what it holds to the socket
  // first: those frames left before the abort.
  const early = frames.length;
  assert.ok(early < 900, `${early} written before the flush`);
  controller.abort("enough");
  for (const error of await Promise.all(aborted)) {
    assert.ok(error instanceof AbortedError, String(error));
    assert.equal(error.cause, "enough");
  }
  await turn();
  assert.deepEqual(frames.slice(early).filter((f) => f.sequence !== 1), [
    { sequence: 1002, payload: "last" },
  ]);
  assert.equal(frames.filter((f) => f.payload === "kept").length, 1);
  assert.equal(counts.added, 1);
  assert.equal(counts.removed, 0, "it fired: nothing to remove");
  assert.equal(c.inFlight, 2);
  c.destroy();
  await Promise.all([kept, last].map((p) => p.catch(() => {})));
});

test("property: whichever requests of a tick are aborted, by which of two signals and in which order, the flush writes exactly the others, intact and in order", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          signal: fc.constantFrom(0, 1, 2), // 0: none
          text: fc.string({ maxLength: 40 }),
        }),
        { minLength: 1, maxLength: 60 },
      ),
      fc.subarray([1, 2]),
      fc.boolean(),
      async (requests, abortOrder, flushBetween) => {
        const { channel, frames } = recordingChannel();
        const c = new Connection(channel, { hostname: "fake", port: 1 });
        const controllers = [
          undefined,
          new AbortController(),
          new AbortController(),
        ];
        const outcomes = requests.map(({ signal, text }) =>
          c.sendRequest(ops.echo(text), {
            signal: controllers[signal]?.signal,
          }).catch((e) => e)
        );
        const early = frames.length; // written as the slab grew
        for (const s of abortOrder) {
          controllers[s]!.abort();
          if (flushBetween) await Promise.resolve();
        }
        await turn();
        const aborted = (i: number) =>
          abortOrder.includes(requests[i].signal as 1 | 2);
        const expected = requests
          .map(({ text }, i) => ({ sequence: i + 1, payload: text }))
          .filter((_, i) => !aborted(i));
        // A signal aborted after the flush (flushBetween, the second one)
        // finds its frames written already: they stay.
        const written = frames.map((f) => f.sequence);
        const late = frames.slice(early).map((f) => f.sequence);
        for (const e of expected) {
          assert.ok(written.includes(e.sequence), `#${e.sequence} written`);
        }
        const firstAborted = abortOrder[0];
        for (let i = 0; i < requests.length; i++) {
          if (requests[i].signal === firstAborted) {
            assert.ok(!late.includes(i + 1), `#${i + 1} taken back`);
          }
        }
        // Intact and in order: every written frame is the request it says.
        const bySequence = new Map(
          requests.map(({ text }, i) => [i + 1, text]),
        );
        for (const f of frames) {
          assert.equal(f.payload, bySequence.get(f.sequence));
        }
        assert.deepEqual(written, [...written].sort((a, b) => a - b));
        c.destroy();
        const results = await Promise.all(outcomes);
        results.forEach((r, i) => {
          if (aborted(i)) assert.ok(r instanceof AbortedError, String(r));
          else assert.ok(!(r instanceof AbortedError), String(r));
        });
      },
    ),
    { numRuns: 200 },
  );
});
