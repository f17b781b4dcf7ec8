// With no healthy node, withConnection fails at once with
// NoHealthyNodesError, as a request does (README: "With no healthy node the
// client fails at once"): its checkout, "retried like a request", backed
// off maxRetries times instead (100 + 200 + 400 ms by default) and then
// failed with RetriesExhaustedError. Virtual clock, in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NoHealthyNodesError } from "../src/errors.ts";
import { guardedScene as scene, settle } from "./support/fault_checks.ts";

test("withConnection with no healthy node fails at once with NoHealthyNodesError, not after the retries' backoff", async () => {
  await scene(2, {}, async ({ client, nodes, clock }) => {
    for (const node of nodes) {
      client.manager.markNodeUnhealthy(node.address, "maintenance");
    }
    let outcome: unknown = "pending";
    let lent = false;
    const call = client.withConnection(() => {
      lent = true;
      return Promise.resolve();
    }).then(() => "lent", (error) => error);
    call.then((value) => outcome = value);
    // The network and the promises run; the clock stands still.
    await settle(clock);
    assert.ok(
      outcome instanceof NoHealthyNodesError,
      `expected NoHealthyNodesError at once, got ${String(outcome)}`,
    );
    assert.deepEqual(
      [...outcome.addresses],
      nodes.map((node) => node.address),
    );
    assert.equal(lent, false);
  });
});
