// A health check whose connection's ping failed with what is no SDK error
// (a custom connection's own Error, thrown or rejected) named it the
// clock's ConfigError: every non-SDK throw during a check was taken for
// the clock's, so the node's failure was not counted against it and its
// result blamed a clock that worked. Now only a failure of the clock
// itself, named where it is read (the check's own readings, the SDK
// connection's ping, the SDK pool's checkout), is the clock's ConfigError;
// anything else the ping fails with counts against the node as a failed
// check, the error kept as it was thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Clock } from "../src/clock.ts";
import type { HealthConfig } from "../src/config/shapes.ts";
import { HealthLoop } from "../src/cluster/health_loop.ts";
import { NodeHealth } from "../src/cluster/health.ts";
import type { ManagedNode } from "../src/cluster/node.ts";
import { ConfigError } from "../src/errors.ts";
import { breakableClock, fakePoolOn } from "./support/breakable_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { ADDRESS } from "./support/pool_scene.ts";
import { tickEnds } from "./support/stub_connection.ts";

const CONFIG: HealthConfig = {
  intervalMs: 0,
  timeoutMs: 100,
  unhealthyThreshold: 2,
  healthyThreshold: 1,
  maxConcurrentChecks: 1,
};

/** A connection whose ping fails as `how` says, with `error`. */
class FailingPing extends FakeConnection {
  constructor(readonly how: "throws" | "rejects", readonly error: Error) {
    super();
  }
  ping(): Promise<number> {
    if (this.how === "throws") throw this.error;
    return Promise.reject(this.error);
  }
}

/** One node over a pool of `connection` on `clock`, checked by a loop. */
function checkedNode(clock: Clock, connection: FakeConnection) {
  const pool = fakePoolOn(
    clock,
    { minConnections: 0, maxConnections: 1 },
    () => Promise.resolve(connection),
  );
  const node = {
    address: ADDRESS,
    nodeId: undefined,
    pool,
    health: new NodeHealth(ADDRESS, CONFIG),
  } as unknown as ManagedNode;
  const changes: string[] = [];
  const loop = new HealthLoop(
    {
      nodes: [node],
      isClosed: () => false,
      onHealthChanged: (_node, reason) => changes.push(reason),
    },
    CONFIG,
    clock,
  );
  return { node, pool, loop, changes };
}

/** A sweep's results, moving `virtual` on until it is done. */
async function sweepOn(
  loop: HealthLoop,
  virtual: ReturnType<typeof breakableClock>["virtual"],
) {
  let outcome: unknown = "pending";
  loop.sweep().then((r) => (outcome = r), (e) => (outcome = e));
  for (let i = 0; i < 20 && outcome === "pending"; i++) {
    await virtual.advance(10);
    await tickEnds();
  }
  assert.ok(Array.isArray(outcome), String(outcome));
  return outcome as Awaited<ReturnType<HealthLoop["sweep"]>>;
}

for (const how of ["throws", "rejects"] as const) {
  test(`a custom connection whose ping ${how} a plain Error: the check fails for the node with that Error, not the clock's ConfigError, and counts toward taking it out`, async () => {
    const { virtual, clock, state } = breakableClock();
    const own = new Error("the wire fell out");
    const { node, pool, loop, changes } = checkedNode(
      clock,
      new FailingPing(how, own),
    );
    try {
      const [first] = await sweepOn(loop, virtual);
      assert.equal(first.ok, false);
      // Before: a ConfigError naming `clock`, with `own` as its cause.
      assert.equal(first.error, own, String(first.error));
      assert.ok(!(first.error instanceof ConfigError));
      assert.equal(node.health.consecutiveFailures, 1, "counted");
      assert.equal(first.healthy, true, "one failure of two");
      const [second] = await sweepOn(loop, virtual);
      assert.equal(second.error, own);
      assert.equal(second.healthy, false, "two failures take it out");
      assert.equal(changes.length, 1);
      assert.match(changes[0], /2 health checks failed: the wire fell out/);
      assert.equal(state.thrown, 0, "the clock never threw");
    } finally {
      await pool.close();
    }
  });
}

test("a clock whose now() throws as the check reads it is still named: the clock's ConfigError, the node not counted", async () => {
  const { virtual, clock, state, broke } = breakableClock();
  const connection = new FakeConnection() as FakeConnection & {
    ping(): Promise<number>;
  };
  connection.ping = () => Promise.resolve(1);
  const { node, pool, loop } = checkedNode(clock, connection);
  try {
    state.reads = 0;
    state.breaks = 1;
    const [result] = await sweepOn(loop, virtual);
    assert.ok(state.thrown > 0, "the clock threw");
    assert.ok(result.error instanceof ConfigError, String(result.error));
    assert.equal(result.error.field, "clock");
    assert.equal(result.error.cause, broke);
    assert.equal(node.health.consecutiveFailures, 0, "not the node's doing");
  } finally {
    state.reads = Infinity;
    await pool.close();
  }
});
