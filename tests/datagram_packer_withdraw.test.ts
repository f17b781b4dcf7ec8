// DatagramPacker.withdraw: a frame taken back before its datagram goes
// out is never sent, and the datagram keeps the others, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  DATAGRAM_OVERHEAD,
  decodeDatagramFrames,
} from "../src/protocol/datagram.ts";
import { DatagramPacker } from "../src/protocol/datagram_packer.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { InvalidArgumentError } from "../src/errors.ts";

const TOKEN = new Uint8Array(16).fill(5);

/** The sequence numbers in each datagram handed out. */
function packer(limit = 1200) {
  const sent: Uint8Array[] = [];
  const p = new DatagramPacker(TOKEN, limit, (d) => sent.push(d.slice()));
  const sequences = () =>
    sent.map((d) => decodeDatagramFrames(d).messages.map((m) => m.sequence));
  return { p, sent, sequences };
}

function push(p: DatagramPacker, sequence: number, bytes = 3) {
  p.push(
    MessageType.Request,
    0,
    sequence,
    new Uint8Array(bytes).fill(sequence),
  );
}

test("withdraw takes a frame out of the datagram being built: first, middle or last; the rest go out in order, whole", () => {
  for (const taken of [1, 2, 3]) {
    const { p, sent, sequences } = packer();
    for (let s = 1; s <= 3; s++) push(p, s, s * 2);
    assert.equal(p.withdraw(taken), true);
    assert.equal(p.pending, 2);
    p.flush();
    assert.deepEqual(sequences(), [[1, 2, 3].filter((s) => s !== taken)]);
    const [frames] = sent.map((d) => decodeDatagramFrames(d).messages);
    for (const m of frames) {
      assert.deepEqual(
        m.payload,
        new Uint8Array(m.sequence * 2).fill(m.sequence),
      );
    }
  }
});

test("withdraw is false for a frame never pushed or already handed out, and changes nothing then", () => {
  const { p, sequences } = packer();
  push(p, 1);
  p.flush();
  push(p, 2);
  assert.equal(p.withdraw(1), false, "its datagram went out");
  assert.equal(p.withdraw(9), false, "never pushed");
  assert.equal(p.pending, 1);
  p.flush();
  assert.equal(p.withdraw(2), false, "nothing being built");
  assert.deepEqual(sequences(), [[1], [2]]);
});

test('withdraw refuses what is no sequence number (a string, a fraction, NaN, -1, 2^53) with InvalidArgumentError naming it, as push does: withdraw("1") answered false with frame 1 still there, so the caller took it for sent already, and it went out', () => {
  const { p, sequences } = packer();
  push(p, 1);
  for (const bad of ["1", 1.5, NaN, -1, 2 ** 53, undefined]) {
    assert.throws(
      () => p.withdraw(bad as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "sequence" &&
        e.message.startsWith("DatagramPacker.withdraw: "),
      String(bad),
    );
  }
  assert.equal(p.pending, 1, "frame 1 is still there");
  assert.equal(p.withdraw(1), true);
  p.flush();
  assert.deepEqual(sequences(), []);
});

test("a datagram whose every frame was taken back is never sent, and the next one starts with the token again", () => {
  const { p, sent, sequences } = packer();
  push(p, 1);
  push(p, 2);
  assert.equal(p.withdraw(2), true);
  assert.equal(p.withdraw(1), true);
  assert.equal(p.pending, 0);
  p.flush();
  assert.equal(sent.length, 0, "an empty datagram is not sent");
  push(p, 3);
  p.flush();
  assert.deepEqual(sequences(), [[3]]);
  assert.deepEqual(sent[0].subarray(0, 16), TOKEN);
  assert.equal(sent[0].length, DATAGRAM_OVERHEAD + 3);
});

test("property: after pushes, withdrawals and flushes, the datagrams carry exactly the frames not taken back, in order, each within the limit, and bytes handed out never change", () => {
  const step = fc.oneof(
    {
      arbitrary: fc.record({ push: fc.integer({ min: 0, max: 90 }) }),
      weight: 5,
    },
    { arbitrary: fc.record({ withdraw: fc.nat() }), weight: 2 },
    { arbitrary: fc.record({ flush: fc.constant(true) }), weight: 1 },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 64, max: 600 }),
      fc.array(step, { minLength: 1, maxLength: 150 }),
      (limit, steps) => {
        const handed: { view: Uint8Array; copy: Uint8Array }[] = [];
        const p = new DatagramPacker(
          TOKEN,
          limit,
          (view) => handed.push({ view, copy: view.slice() }),
        );
        // What the packer should hold: the frames of the datagram being
        // built (a model of where it cuts), and every frame still wanted.
        let building: number[] = [];
        let bytes = 0;
        const wanted: number[] = [];
        let next = 1;
        for (const s of steps) {
          if ("push" in s) {
            const need = 16 + s.push;
            if (DATAGRAM_OVERHEAD + s.push > limit) continue;
            if (building.length > 0 && bytes + need > limit) {
              building = [];
            }
            if (building.length === 0) bytes = 16;
            push(p, next, s.push);
            building.push(next);
            wanted.push(next);
            bytes += need;
            next++;
          } else if ("withdraw" in s) {
            const sequence = next === 1 ? 1 : 1 + (s.withdraw % (next - 1));
            const at = building.indexOf(sequence);
            assert.equal(p.withdraw(sequence), at >= 0, `withdraw ${sequence}`);
            if (at >= 0) {
              building.splice(at, 1);
              wanted.splice(wanted.indexOf(sequence), 1);
              bytes = 16 + building.reduce((n, q) => n + 16 + sizeOf(q), 0);
            }
          } else {
            p.flush();
            building = [];
          }
          assert.equal(p.pending, building.length);
        }
        p.flush();
        const decoded = handed.flatMap(({ view, copy }) => {
          assert.deepEqual(view, copy, "bytes handed out were written again");
          assert.ok(view.length <= limit);
          const { messages } = decodeDatagramFrames(view);
          assert.ok(messages.length > 0, "no empty datagram");
          for (const m of messages) {
            assert.deepEqual(
              m.payload,
              new Uint8Array(sizeOf(m.sequence)).fill(m.sequence),
            );
          }
          return messages.map((m) => m.sequence);
        });
        assert.deepEqual(decoded, wanted);

        function sizeOf(sequence: number): number {
          let n = 0;
          for (const s of steps) {
            if (!("push" in s) || DATAGRAM_OVERHEAD + s.push > limit) continue;
            if (++n === sequence) return s.push;
          }
          throw new Error(`no frame ${sequence}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});
