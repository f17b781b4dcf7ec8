// DatagramPacker.push from inside the packer's own emit (a sender that
// queues its next frame as a datagram goes out): every datagram still
// keeps to the limit, and no frame is lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { decodeDatagramFrames } from "../src/protocol/datagram.ts";
import { DatagramPacker } from "../src/protocol/datagram_packer.ts";
import { MessageType } from "../src/protocol/frame.ts";

const TOKEN = new Uint8Array(16).fill(5);

function frame(p: DatagramPacker, sequence: number, bytes: number) {
  p.push(MessageType.Request, 0, sequence, new Uint8Array(bytes));
}

test("a frame pushed from inside emit, during the flush a push caused, does not make a datagram over the limit", () => {
  const sent: Uint8Array[] = [];
  let reentered = false;
  const p = new DatagramPacker(TOKEN, 100, (d) => {
    sent.push(d.slice());
    if (!reentered) {
      reentered = true;
      frame(p, 9, 40);
    }
  });
  frame(p, 1, 40); // 16 + 16 + 40 = 72 bytes
  frame(p, 2, 40); // would make 128: the first datagram goes out
  p.flush();
  for (const d of sent) assert.ok(d.byteLength <= 100, `${d.byteLength} bytes`);
  const sequences = sent.flatMap((d) =>
    decodeDatagramFrames(d).messages.map((m) => m.sequence)
  );
  assert.deepEqual([...sequences].sort(), [1, 2, 9]);
});

test("whatever an emit pushes back, each datagram keeps to the limit and every frame goes out once", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 32, max: 300 }),
      fc.array(fc.nat(120), { minLength: 1, maxLength: 20 }),
      fc.array(fc.nat(120), { maxLength: 20 }),
      (limit, sizes, echoes) => {
        const fit = (n: number) => n % (limit - 32 + 1);
        const sent: Uint8Array[] = [];
        let sequence = 0;
        let left = echoes.length;
        const p = new DatagramPacker(TOKEN, limit, (d) => {
          sent.push(d.slice());
          // Bounded: each emit pushes back at most one frame, echoes.length in all.
          if (left > 0) frame(p, ++sequence, fit(echoes[--left]));
        });
        for (const size of sizes) frame(p, ++sequence, fit(size));
        for (let i = 0; i <= echoes.length && p.pending > 0; i++) p.flush();
        for (const d of sent) assert.ok(d.byteLength <= limit);
        const seen = sent.flatMap((d) =>
          decodeDatagramFrames(d).messages.map((m) => m.sequence)
        );
        assert.equal(seen.length, new Set(seen).size, "each frame once");
        assert.equal(seen.length + p.pending, sequence, "none lost");
      },
    ),
  );
});
