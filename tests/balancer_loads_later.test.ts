// A hand-built LeastInFlightBalancer or PeakEwmaBalancer (/core) keeps the
// caller's `loads` and reads them on every pick: the caller keeps them up
// to date, so anything may be written there after construction, where
// only the construction checked them. A load that cannot be compared or
// priced (a Symbol, a BigInt for peak-ewma, an object whose valueOf
// throws, an index read that throws) made the pick throw a raw TypeError
// or the caller's own error. Now the pick throws an InvalidArgumentError
// naming the load (options.loads[slot]); a load that compares wrongly
// (NaN, negative, missing) still only misranks, as documented: a check
// for it would cost every pick.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  HealthyNodeSet,
  LeastInFlightBalancer,
  PeakEwmaBalancer,
} from "../src/cluster/balancer.ts";
import { PeakEwma } from "../src/cluster/peak_ewma.ts";
import { InvalidArgumentError } from "../src/errors.ts";

const NODES = "abcdef";
const throwing = {
  valueOf(): number {
    throw new Error("valueOf threw");
  },
};

/** A balancer of `kind` over the first `n` nodes, reading `loads`. */
function build(
  kind: "least-in-flight" | "peak-ewma",
  n: number,
  loads: ArrayLike<number>,
  slow: number[] = [],
) {
  const nodes = new HealthyNodeSet([...NODES.slice(0, n)], {
    slotOf: (node: string) => NODES.indexOf(node),
  });
  if (kind === "least-in-flight") {
    return new LeastInFlightBalancer(nodes, { inFlight: () => 0, loads });
  }
  const latency = new PeakEwma(NODES.length);
  // Some nodes timed, so both of pickCost's branches are weighed.
  for (const slot of slow) latency.observe(slot, 5 + slot, 0);
  return new PeakEwmaBalancer(nodes, {
    latency,
    loads,
    clock: { now: () => 0 },
  });
}

/** Whether `value` is a count of requests, as the construction checks. */
const isCount = (value: unknown) =>
  typeof value === "number" && Number.isInteger(value) && value >= 0;

test("a load that cannot be compared, written after construction: pick throws an InvalidArgumentError naming it, not a raw TypeError", () => {
  const cases: [string, unknown][] = [
    ["a Symbol", Symbol("load")],
    ["an object whose valueOf throws", throwing],
    ["a BigInt", 3n],
  ];
  for (const kind of ["least-in-flight", "peak-ewma"] as const) {
    for (const [what, value] of cases) {
      const loads: unknown[] = [0, 0];
      const balancer = build(kind, 2, loads as ArrayLike<number>, [0, 1]);
      assert.ok(["a", "b"].includes(balancer.pick()!));
      loads[1] = value;
      let outcome: unknown;
      try {
        outcome = balancer.pick();
      } catch (error) {
        outcome = error;
      }
      // A BigInt compares with a number: least-in-flight picks by it.
      if (kind === "least-in-flight" && typeof value === "bigint") {
        assert.ok(["a", "b"].includes(outcome as string), `${kind}, ${what}`);
        continue;
      }
      // Before: a raw TypeError (or the valueOf's own Error).
      assert.ok(
        outcome instanceof InvalidArgumentError,
        `${kind}, ${what}: ${String(outcome)}`,
      );
      assert.equal(outcome.argument, "options.loads[1]", `${kind}, ${what}`);
      assert.match(outcome.message, /Balancer\.pick: /, `${kind}, ${what}`);
    }
  }
});

test("loads whose index read throws after construction: pick throws an InvalidArgumentError naming the loads, what was thrown as cause", () => {
  for (const kind of ["least-in-flight", "peak-ewma"] as const) {
    const broke = new Error("index read broke");
    let broken = false;
    // Throws once, then reads well: the check after the throw passes.
    const loads = new Proxy([0, 0], {
      get(target, key, receiver) {
        if (broken && key === "0") {
          broken = false;
          throw broke;
        }
        return Reflect.get(target, key, receiver);
      },
    }) as ArrayLike<number>;
    const balancer = build(kind, 2, loads);
    broken = true;
    assert.throws(() => balancer.pick(), (e: unknown) => {
      // Before: the proxy's own Error, raw.
      assert.ok(e instanceof InvalidArgumentError, `${kind}: ${e}`);
      assert.equal(e.argument, "options.loads", kind);
      assert.equal(e.cause, broke, kind);
      assert.match(e.message, /index read broke/, kind);
      return true;
    }, kind);
  }
});

test("whatever is written into the loads after construction, or however the set grows, a pick returns a member of the set (another than the excluded one when there is one) or throws an InvalidArgumentError naming the loads", () => {
  const load = fc.oneof(
    fc.integer({ min: -3, max: 5 }),
    fc.constantFrom(NaN, Infinity, -0, 0.5, undefined, null, "2", throwing),
    fc.constant(Symbol("load")),
    fc.bigInt({ min: -3n, max: 3n }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom("least-in-flight" as const, "peak-ewma" as const),
      fc.integer({ min: 2, max: 4 }),
      fc.array(fc.tuple(fc.nat(NODES.length - 1), load), { maxLength: 6 }),
      fc.subarray([0, 1, 2, 3]),
      fc.boolean(),
      fc.array(fc.option(fc.nat(5)), { minLength: 1, maxLength: 6 }),
      (kind, n, writes, slow, grow, excludes) => {
        const loads: unknown[] = Array.from({ length: n }, () => 0);
        const balancer = build(kind, n, loads as ArrayLike<number>, slow);
        for (const [slot, value] of writes) loads[slot] = value;
        // A node whose slot the loads may not cover.
        if (grow) balancer.nodes.add(NODES[n]);
        const members = balancer.nodes.toArray();
        for (const x of excludes) {
          const exclude = x === null ? undefined : NODES[x];
          let picked: unknown;
          try {
            picked = balancer.pick(exclude);
          } catch (error) {
            assert.ok(error instanceof InvalidArgumentError, String(error));
            assert.match(error.argument!, /^options\.loads(\[\d\])?$/);
            // Only a load that is no count can make a pick throw.
            assert.ok(
              members.some((m) => !isCount(loads[NODES.indexOf(m)])),
              String(error),
            );
            continue;
          }
          assert.ok(members.includes(picked as string), String(picked));
          if (exclude !== undefined && members.length > 1) {
            assert.notEqual(picked, exclude);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
