// The booking methods of ConnectionManager (recordRequestSuccess,
// recordRequestFailure, recordLatency), public on /core for a caller that
// routes its own requests: what is no node, no count or no time is
// refused with an InvalidArgumentError naming it (before: a TypeError
// from inside, or a NaN added to the node's counts for good), and a node
// removed from the manager books nothing. Virtual clock over the memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { ManagedNode } from "../src/cluster/node.ts";
import { InvalidArgumentError, RequestTimeoutError } from "../src/errors.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";

/** What a node's health has booked, to see that a refusal booked nothing. */
const booked = (node: ManagedNode) =>
  `${node.health.requestSuccesses}/${node.health.requestFailures}`;

test("each booking method refuses what is no node, no count or no time with an InvalidArgumentError naming it, booking nothing", async () => {
  await scene(2, { loadBalancing: "peak-ewma" }, ({ client }) => {
    const manager = client.manager;
    const node = manager.nodes[0];
    const before = booked(node);
    const calls: [string, () => void][] = [];
    for (const junk of [undefined, null, 5, "127.0.0.1:7000", true]) {
      const bad = junk as unknown as ManagedNode;
      calls.push(
        ["node", () => manager.recordRequestSuccess(bad)],
        ["node", () => manager.recordRequestFailure(bad, new Error("x"))],
        ["node", () => manager.recordLatency(bad, 0, 1)],
      );
    }
    for (const count of [NaN, -1, 1.5, Infinity, "2", null, 2 ** 53]) {
      calls.push([
        "count",
        () => manager.recordRequestSuccess(node, count as number),
      ]);
    }
    for (const time of ["5", null, {}, 5n]) {
      calls.push(
        ["started", () => manager.recordLatency(node, time as number, 1)],
        ["now", () => manager.recordLatency(node, 0, time as number)],
      );
    }
    for (const [argument, call] of calls) {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, argument);
        assert.match(error.message, /ConnectionManager\.record/);
        return true;
      });
    }
    assert.equal(booked(node), before);
  });
});

test("a node removed from the manager books nothing; a member books what it is told", async () => {
  await scene(3, {}, async ({ client, clock }) => {
    const manager = client.manager;
    const [kept, , gone] = manager.nodes;
    const removal = client.removeNode(gone.address);
    await clock.advance(1);
    await removal;
    const goneBefore = booked(gone);
    manager.recordRequestSuccess(gone, 3);
    const timeout = new RequestTimeoutError(gone.address, 10, {
      retryable: true,
    });
    manager.recordRequestFailure(gone, timeout);
    assert.equal(booked(gone), goneBefore);
    const keptBefore = kept.health.requestSuccesses;
    manager.recordRequestSuccess(kept, 3);
    manager.recordRequestSuccess(kept);
    manager.recordRequestSuccess(kept, 0);
    assert.equal(kept.health.requestSuccesses, keptBefore + 4);
  });
});

test("property: whatever a careless caller passes, a booking method books or throws an InvalidArgumentError, never anything else", async () => {
  await scene(1, { loadBalancing: "peak-ewma" }, ({ client }) => {
    const manager = client.manager;
    const node = manager.nodes[0];
    const anyNode = fc.oneof(fc.constant(node), fc.anything());
    fc.assert(
      fc.property(
        anyNode,
        fc.anything(),
        fc.anything(),
        fc.anything(),
        (n, a, b, c) => {
          const before = booked(node);
          for (
            const call of [
              () => manager.recordRequestSuccess(n as ManagedNode, a as number),
              () => manager.recordRequestFailure(n as ManagedNode, a),
              () =>
                manager.recordLatency(
                  n as ManagedNode,
                  a as number,
                  b as number,
                  c,
                ),
            ]
          ) {
            try {
              call();
            } catch (error) {
              if (!(error instanceof InvalidArgumentError)) throw error;
            }
          }
          // A valid count is an integer of 0 or more: anything booked is.
          const after = booked(node).split("/").map(Number);
          assert.ok(after.every((x) => Number.isInteger(x) && x >= 0));
          assert.ok(after[0] >= Number(before.split("/")[0]));
        },
      ),
      { numRuns: 300 },
    );
  });
});
