import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

test("timers fire in deadline order, ties in creation order, cancelled never", async () => {
  const op = fc.oneof(
    fc.record({ set: fc.nat({ max: 50 }) }),
    fc.record({ clear: fc.nat({ max: 100 }) }),
    fc.record({ advance: fc.nat({ max: 30 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 120 }), async (ops) => {
      const clock = new VirtualClock();
      const fired: Array<{ id: number; at: number }> = [];
      // The model: every timer with its deadline, and which are cancelled.
      const timers: Array<{ handle: number; at: number; cancelled: boolean }> =
        [];
      for (const o of ops) {
        if ("set" in o) {
          const id = timers.length;
          const at = clock.now() + o.set;
          const handle = clock.setTimeout(
            () => fired.push({ id, at: clock.now() }),
            o.set,
          ) as number;
          timers.push({ handle, at, cancelled: false });
        } else if ("clear" in o) {
          const t = timers[o.clear % Math.max(1, timers.length)];
          if (t !== undefined && !fired.some((f) => timers[f.id] === t)) {
            clock.clearTimeout(t.handle);
            t.cancelled = true;
          }
        } else {
          await clock.advance(o.advance);
        }
      }
      await clock.advance(100);
      const expected = timers
        .map((t, id) => ({ id, at: t.at, cancelled: t.cancelled }))
        .filter((t) => !t.cancelled)
        .sort((a, b) => a.at - b.at || a.id - b.id)
        .map(({ id, at }) => ({ id, at }));
      assert.deepEqual(fired, expected);
      assert.equal(clock.pendingTimers, 0);
      assert.equal(clock.nextTimerAt(), undefined);
    }),
    { numRuns: 100 },
  );
});

test("ten thousand timers armed and cancelled leave only the live one", async () => {
  const clock = new VirtualClock();
  const handles = Array.from(
    { length: 10_000 },
    (_, i) => clock.setTimeout(() => assert.fail("cancelled"), 1_000 + i),
  );
  let fired = 0;
  clock.setTimeout(() => fired++, 5_000);
  for (const h of handles) clock.clearTimeout(h);
  assert.equal(clock.pendingTimers, 1);
  assert.equal(clock.nextTimerAt(), 5_000);
  await clock.advance(20_000);
  assert.equal(fired, 1);
  assert.equal(clock.pendingTimers, 0);
});
