// A hand-built LeastInFlightBalancer (/core) over a set without slots asks
// the caller's `inFlight` for each of the two nodes it drew, on every
// pick. One that throws, or returns what cannot be compared (a Symbol, an
// object whose valueOf throws), made the pick throw the caller's own
// error or a raw TypeError from inside the comparison. Now the pick
// throws an InvalidArgumentError naming options.inFlight, with what was
// thrown as cause; a count that compares wrongly (NaN) still only
// misranks, as a load does: a check for it would cost every pick.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  HealthyNodeSet,
  LeastInFlightBalancer,
} from "../src/cluster/balancer.ts";
import { InvalidArgumentError } from "../src/errors.ts";

const callerError = new Error("inFlight threw");

const cases: [string, (node: string) => number][] = [
  ["throws", () => {
    throw callerError;
  }],
  ["returns a Symbol", () => Symbol("load") as unknown as number],
  ["returns an object whose valueOf throws", () =>
    ({
      valueOf(): number {
        throw new Error("valueOf threw");
      },
    }) as unknown as number],
  // Every pair drawn holds one of the others.
  ["throws for every node but one", (node) => {
    if (node !== "a") throw callerError;
    return 0;
  }],
];

for (const [what, inFlight] of cases) {
  test(`LeastInFlightBalancer without slots whose inFlight ${what}: pick() throws an InvalidArgumentError naming options.inFlight`, () => {
    const balancer = new LeastInFlightBalancer(
      new HealthyNodeSet(["a", "b", "c"]),
      { inFlight, random: () => 0.5 },
    );
    for (let i = 0; i < 3; i++) {
      assert.throws(
        () => balancer.pick(),
        (error: unknown) => {
          // Before: the caller's Error, or a TypeError.
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.equal(error.code, "INVALID_ARGUMENT");
          assert.equal(error.argument, "options.inFlight");
          assert.match(error.message, /^LeastInFlightBalancer.pick: /);
          assert.ok(error.cause !== undefined);
          return true;
        },
      );
    }
  });
}

test("LeastInFlightBalancer without slots whose inFlight is fine again: pick() picks the less loaded node", () => {
  let broken = true;
  const balancer = new LeastInFlightBalancer(
    new HealthyNodeSet(["a", "b"]),
    {
      inFlight: (node) => {
        if (broken) throw callerError;
        return node === "a" ? 5 : 1;
      },
      random: () => 0.5,
    },
  );
  assert.throws(() => balancer.pick(), InvalidArgumentError);
  broken = false;
  for (let i = 0; i < 4; i++) assert.equal(balancer.pick(), "b");
});

test("LeastInFlightBalancer's error for an inFlight returning a Symbol says what it returned", () => {
  const balancer = new LeastInFlightBalancer(
    new HealthyNodeSet(["a", "b"]),
    { inFlight: () => Symbol("load") as unknown as number },
  );
  assert.throws(
    () => balancer.pick(),
    /LeastInFlightBalancer\.pick: invalid options\.inFlight: .*cannot be compared.*got /,
  );
});
