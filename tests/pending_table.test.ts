import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { PendingTable } from "../src/connection/pending_table.ts";
import { rejection } from "../src/connection/resolve_only.ts";

interface Entry {
  sequence: number;
}

test("the table agrees with a Map under any mix of adds and removals", () => {
  // Each step either sends the next sequence number or settles one of
  // those in flight (picked by index), so long-pending entries, ring
  // wrap-around, growth and the return to the first size all occur.
  const step = fc.oneof(
    { arbitrary: fc.constant({ add: true, pick: 0 }), weight: 3 },
    {
      arbitrary: fc.nat({ max: 1_000 }).map((pick) => ({ add: false, pick })),
      weight: 2,
    },
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 600 }), (steps) => {
      const table = new PendingTable<Entry>();
      const model = new Map<number, Entry>();
      let next = 1;
      let peak = 0;
      for (const { add, pick } of steps) {
        if (add || model.size === 0) {
          const entry = { sequence: next++ };
          table.add(entry);
          model.set(entry.sequence, entry);
        } else {
          const entries = [...model.values()];
          const entry = entries[pick % entries.length];
          assert.equal(table.delete(entry), true);
          assert.equal(table.delete(entry), false, "removed twice");
          model.delete(entry.sequence);
        }
        assert.equal(table.size, model.size);
        peak = Math.max(peak, model.size);
      }
      for (let s = 0; s <= next; s++) assert.equal(table.get(s), model.get(s));
      assert.deepEqual(
        table.values().map((e) => e.sequence),
        [...model.keys()].sort((a, b) => a - b),
      );
      // The ring follows the most ever in flight, not the sequence spread.
      assert.ok(table.capacity <= Math.max(16, 4 * peak));
    }),
    { numRuns: 200 },
  );
});

test("one long-pending entry does not make the ring grow with the sequence", () => {
  const table = new PendingTable<Entry>();
  const old = { sequence: 1 };
  table.add(old);
  // 100,000 short requests, four in flight at a time, go by the old one.
  const window: Entry[] = [];
  for (let s = 2; s < 100_002; s++) {
    const entry = { sequence: s };
    table.add(entry);
    window.push(entry);
    if (window.length > 4) table.delete(window.shift()!);
  }
  assert.equal(table.capacity, 16);
  assert.equal(table.get(1), old);
  assert.equal(table.get(17), undefined);
  assert.equal(table.size, 5);
});

test("a grown ring shrinks after a quieter period, not after every burst", () => {
  const table = new PendingTable<Entry>();
  let next = 1;
  const burst = (count: number) => {
    const entries = Array.from({ length: count }, () => ({
      sequence: next++,
    }));
    for (const e of entries) table.add(e);
    for (const e of entries) table.delete(e);
  };
  burst(10_000);
  const grown = table.capacity;
  assert.ok(grown >= 10_000, `capacity ${grown}`);
  // The same load again and again: the ring keeps its size.
  for (let i = 0; i < 5; i++) burst(10_000);
  assert.equal(table.capacity, grown);
  // One ping's worth of traffic: back to the first size.
  burst(1);
  assert.equal(table.capacity, 16);
  // A period of 100 leaves a ring that fits 100, not the burst's.
  burst(10_000);
  burst(100);
  assert.ok(
    table.capacity >= 200 && table.capacity <= 256,
    `${table.capacity}`,
  );
  assert.equal(table.size, 0);
  assert.equal(table.get(5), undefined);
});

test("a sequence from the wire that matches nothing finds nothing", () => {
  const table = new PendingTable<Entry>();
  table.add({ sequence: 3 });
  // Same low bits as 3, or beyond 32 bits: the full number is compared.
  for (const s of [19, 35, 2 ** 32 + 3, 2 ** 53 - 1, 0]) {
    assert.equal(table.get(s), undefined, `sequence ${s}`);
  }
});

test("rejection() fails the promise it resolves, with the error itself", async () => {
  const error = new Error("no reply");
  const failed = new Promise<number>((resolve) => resolve(rejection(error)));
  await assert.rejects(failed, (e) => e === error);
  // Settled once: a later resolve does not change the outcome.
  let resolveLater!: (v: number | PromiseLike<number>) => void;
  const once = new Promise<number>((resolve) => {
    resolveLater = resolve;
    resolve(rejection(error));
  });
  resolveLater(1);
  await assert.rejects(once, (e) => e === error);
});
