// ConnectionManager.connect() (/core) opens a first connection to every
// node at once; a node whose pool checkout threw at the call (a custom
// pool, or a clock that throws in its checkout) ended the map there: the
// connect rejected with that raw error at once, and the other nodes'
// waits were let go, so one that failed later was an unhandled rejection.
// Now a throw counts as that node's failure, like a rejection: the
// connect settles once every node has, with every failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionManager } from "../src/cluster/manager.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConnectFailedError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

test("a node whose first checkout throws at the call counts as failed, and the other nodes' waits are still awaited (no unhandled rejection)", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  // Down: its port was listened on once, and no longer is.
  const gone = await startTestNode({ runtime: network, clock });
  const down = gone.address;
  await gone.close();
  const up = await startTestNode({ runtime: network, clock });
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: [down, up.address],
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 0 },
    }),
    network,
  );
  const thrown = new Error("checkout threw");
  manager.nodes[1].pool.acquireShared = () => {
    throw thrown;
  };
  try {
    let outcome: unknown = "pending";
    manager.connect().then(() => (outcome = "connected"), (e) => (outcome = e));
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await clock.advance(100);
    }
    await tickEnds();
    // Before: the connect failed with the raw error at once, and the down
    // node's refused connect was an unhandled rejection.
    assert.deepEqual(unhandled, []);
    assert.ok(outcome instanceof ConnectFailedError, String(outcome));
    assert.deepEqual(outcome.failures.map((f) => f.address), [
      down,
      up.address,
    ]);
    assert.match(outcome.failures[0].error.message, /refused/);
    assert.equal(outcome.failures[1].error, thrown);
    assert.equal(manager.nodes[1].health.isHealthy, false);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await manager.close();
    await up.close();
  }
  assert.equal(network.openChannels, 0);
});
