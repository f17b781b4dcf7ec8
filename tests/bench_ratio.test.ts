// The limit bench's ratios (bench/harness.ts pairedRatio): round by round
// when both contenders kept their rounds, else of their medians.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  maxOf,
  minOf,
  newSeries,
  pairedRatio,
  printTable,
  rateFigures,
} from "../bench/harness.ts";
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

test("rateFigures and printTable take 200,000 values: spread into Math.min/Math.max, such an array overflowed the stack", () => {
  const count = 200_000;
  const series = newSeries(1, 4);
  series.rates = Array.from({ length: count }, (_, i) => 1000 + (i % 977));
  series.rates[count - 1] = 7;
  series.rates[count >> 1] = 5000;
  const figures = rateFigures(series);
  assert.equal(figures.minReqPerSecond, 7);
  assert.equal(figures.maxReqPerSecond, 5000);
  const rows = Array.from({ length: count }, (_, i) => [String(i)]);
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => void lines.push(line);
  try {
    printTable(["n"], rows);
  } finally {
    console.log = log;
  }
  assert.equal(lines.length, count + 2);
  // The widest cell ("199999") sets the column's width.
  assert.equal(lines[1], "------");
});

test("minOf and maxOf answer as Math.min and Math.max do, for none, NaN and infinities", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.double(), fc.constant(NaN))),
      (values) => {
        // As numbers: which zero a tie of 0 and -0 gives is no matter.
        const same = (a: number, b: number) => a === b || (a !== a && b !== b);
        assert.ok(same(minOf(values), Math.min(...values)), String(values));
        assert.ok(same(maxOf(values), Math.max(...values)), String(values));
      },
    ),
  );
});
