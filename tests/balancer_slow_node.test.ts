// A slow node must not capture the default client (issue #12, defect 8):
// three nodes on the memory network with a virtual clock, the third behind
// a proxy that answers every request 20 ms late, and 32 callers each
// sending its next request as soon as the last is answered. Round-robin
// keeps giving the slow node every third request, so every caller soon
// waits on it; the default balancing sends it few.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { LoadBalancing } from "../src/config/shapes.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { type Scene, startScene } from "./support/fault_scene.ts";
import { assertClean } from "./helpers.ts";

const CALLERS = 32;
const PER_CALLER = 30;

/**
 * Runs the callers to completion on a scene whose third node is 20 ms
 * late, and returns how many requests each node answered and the most
 * callers the slow node held at once.
 */
async function run(
  loadBalancing: LoadBalancing | undefined,
): Promise<{ answered: Map<string, number>; mostHeld: number; s: Scene }> {
  const s = await startScene({
    mode: "virtual",
    nodes: 3,
    config: {
      ...(loadBalancing === undefined ? {} : { loadBalancing }),
      poolConfig: { minConnections: 1 },
    },
  });
  await s.proxies[2].setFaults({ latencyMs: 10 }); // 10 ms each way
  const slowNode = s.client.manager.nodes[2];
  const answered = new Map<string, number>();
  let mostHeld = 0;
  const caller = async () => {
    for (let i = 0; i < PER_CALLER; i++) {
      const reply = s.client.request(ops.echo("x"));
      mostHeld = Math.max(mostHeld, slowNode.inFlight);
      const { nodeId } = decodeReply(await reply);
      answered.set(nodeId, (answered.get(nodeId) ?? 0) + 1);
    }
  };
  await s.run(Promise.all(Array.from({ length: CALLERS }, caller)));
  return { answered, mostHeld, s };
}

test("a node 20 ms late gets few requests under the default balancing, and holds at most a third or so of the callers", async () => {
  const { answered, mostHeld, s } = await run(undefined);
  const total = CALLERS * PER_CALLER;
  const slow = answered.get("n2") ?? 0;
  assert.equal(
    (answered.get("n0") ?? 0) + (answered.get("n1") ?? 0) + slow,
    total,
  );
  // While the slow node holds its callers, its in-flight count is above
  // the others' and it is passed over; the others go round fast.
  assert.ok(slow < total * 0.1, `the slow node answered ${slow} of ${total}`);
  assert.ok(mostHeld <= CALLERS / 2, `${mostHeld} callers held at once`);
  assertClean(await s.finish());
});

test("round-robin, by contrast, gives the slow node its full turn, and soon every caller waits on it", async () => {
  const { answered, mostHeld, s } = await run("round-robin");
  const total = CALLERS * PER_CALLER;
  assert.equal(answered.get("n2"), total / 3);
  assert.ok(mostHeld >= CALLERS * 0.75, `${mostHeld} callers held at once`);
  assertClean(await s.finish());
});
