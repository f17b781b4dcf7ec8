// The request path's helpers were reshaped so that V8 inlines their
// common case (a tiny fast path, the rest apart): each new shape must
// answer exactly as the one it replaced.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  writeHeaderInto,
  writeHeaderUnchecked,
} from "../src/protocol/header_bytes.ts";
import { Candidates } from "../src/cluster/candidates.ts";
import { HealthyNodeSet } from "../src/cluster/healthy_set.ts";
import { LeastInFlightBalancer } from "../src/cluster/least_in_flight.ts";
import { TickClock } from "../src/tick_clock.ts";

test("writeHeaderInto writes the bytes writeHeaderUnchecked writes, and no others", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 64 }),
      fc.nat({ max: 255 }),
      fc.nat({ max: 0xffff }),
      fc.maxSafeNat(),
      fc.nat({ max: 0xffff_ffff }),
      (offset, type, flags, sequence, length) => {
        const bytes = () => new Uint8Array(offset + 16 + 8).fill(0xa5);
        const expected = bytes();
        writeHeaderUnchecked(expected, offset, type, flags, sequence, length);
        const got = bytes();
        writeHeaderInto(
          new DataView(got.buffer),
          offset,
          type,
          flags,
          sequence,
          length,
        );
        assert.deepEqual(got, expected);
      },
    ),
  );
});

/** A random source that replays `values` in a loop. */
function replay(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

test("drawnFromOne leaves the state a draw from one node leaves", () => {
  const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
  fc.assert(
    fc.property(
      fc.array(unit, { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 6 }),
      fc.integer({ min: 2, max: 6 }),
      (randoms, before, after) => {
        const drawn = new Candidates(replay(randoms), 5);
        const shortcut = new Candidates(replay(randoms), 5);
        for (const size of before) {
          drawn.draw(size, -1);
          shortcut.draw(size, -1);
        }
        drawn.draw(1, -1);
        shortcut.drawnFromOne();
        assert.deepEqual(
          [shortcut.first, shortcut.second],
          [drawn.first, drawn.second],
        );
        // What comes after, once there are more nodes again, is the same.
        for (let i = 0; i < 4; i++) {
          drawn.draw(after, -1);
          shortcut.draw(after, -1);
          assert.deepEqual(
            [shortcut.first, shortcut.second],
            [drawn.first, drawn.second],
          );
        }
      },
    ),
  );
});

test("LeastInFlightBalancer with one node picks it, excluded or not, asking nothing", () => {
  const asked: string[] = [];
  const balancer = new LeastInFlightBalancer(new HealthyNodeSet(["a"]), {
    inFlight: () => {
      asked.push("inFlight");
      return 0;
    },
    random: () => {
      asked.push("random");
      return 0.5;
    },
  });
  asked.length = 0; // the constructor draws where to start
  assert.equal(balancer.pick(), "a");
  assert.equal(balancer.pick("a"), "a");
  assert.equal(balancer.pick("z"), "a");
  assert.deepEqual(asked, []);
  // Empty, it has nothing to pick.
  balancer.nodes.delete("a");
  assert.equal(balancer.pick(), undefined);
});

test("TickClock reads its clock once a tick, and names a clock that throws each time", async () => {
  let reads = 0;
  let fail = false;
  const clock = {
    now: () => {
      reads++;
      if (fail) throw new Error("clock broke");
      return reads * 10;
    },
    setTimeout: () => 0,
    clearTimeout: () => {},
  };
  const tick = new TickClock(clock, (thrown) => new Error(`named: ${thrown}`));
  assert.equal(tick.now(), 10);
  assert.equal(tick.now(), 10);
  assert.equal(reads, 1);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(tick.now(), 20, "a new tick reads again");
  await Promise.resolve();
  await Promise.resolve();
  fail = true;
  assert.throws(() => tick.now(), /named: Error: clock broke/);
  // Nothing was read, so nothing is kept: the next call asks again.
  assert.throws(() => tick.now(), /named: Error: clock broke/);
  assert.equal(reads, 4);
  fail = false;
  assert.equal(tick.now(), 50);
});
