// The limit bench's ratios (bench/harness.ts pairedRatio): round by round
// when both contenders kept their rounds, else of their medians.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pairedRatio } from "../bench/harness.ts";
import { fc } from "./support/fc.ts";

test("pairedRatio: the median of the ratios round by round", () => {
  // The machine halves its speed for the last two rounds: each contender's
  // median (80 and 100) then comes from rounds at different speeds, and
  // their ratio (0.8) is not what any round read. Round by round: 0.8,
  // 0.85, 0.95, 0.9, 0.9.
  const a = { reqPerSecond: 80, roundRates: [80, 85, 95, 45, 45] };
  const b = { reqPerSecond: 100, roundRates: [100, 100, 100, 50, 50] };
  assert.equal(pairedRatio(a, b), 0.9);
  assert.equal(a.reqPerSecond / b.reqPerSecond, 0.8);
});

test("pairedRatio: of the medians when rounds are missing or do not pair", () => {
  const a = { reqPerSecond: 75 };
  const b = { reqPerSecond: 100, roundRates: [100, 100, 100] };
  assert.equal(pairedRatio(a, b), 0.75);
  assert.equal(
    pairedRatio({ reqPerSecond: 75, roundRates: [75, 75] }, b),
    0.75,
  );
  // A round of the baseline with no requests cannot be divided by.
  assert.equal(
    pairedRatio(
      { reqPerSecond: 60, roundRates: [60, 60, 60] },
      { reqPerSecond: 100, roundRates: [100, 0, 100] },
    ),
    0.6,
  );
});

test("pairedRatio: a contender at k times its baseline each round reads k", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 10_000_000 }), {
        minLength: 1,
        maxLength: 15,
      }),
      fc.integer({ min: 1, max: 400 }),
      (rates, percent) => {
        const k = percent / 100;
        const b = { reqPerSecond: rates[0], roundRates: rates };
        const a = { reqPerSecond: 0, roundRates: rates.map((r) => r * k) };
        assert.ok(Math.abs(pairedRatio(a, b) - k) < 1e-9);
      },
    ),
  );
});
