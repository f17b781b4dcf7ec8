// connectNodes marks every node by how its first connection went. A mark
// that throws (its health change met a custom clock whose now() throws,
// which the health watch turns into a ConfigError) stopped the marking:
// the nodes after it stayed as they were, one that had answered left out
// of rotation, one that had not left in it. Now every node is marked, and
// the first mark's error is thrown after.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connectNodes } from "../src/cluster/first_connect.ts";
import type { ManagedNode } from "../src/cluster/node.ts";
import { ConfigError } from "../src/errors.ts";

/** A node whose first checkout answers, or fails with `refused`. */
function fakeNode(address: string, answers: boolean): ManagedNode {
  const pool = {
    acquireShared: () =>
      answers ? Promise.resolve({}) : Promise.reject(new Error("refused")),
  };
  return { address, pool } as unknown as ManagedNode;
}

for (const failing of ["first", "every"] as const) {
  test(`connectNodes whose ${failing} mark throws: every node is marked all the same, and the first mark's error is thrown`, async () => {
    const nodes = [
      fakeNode("a:1", true),
      fakeNode("b:1", false),
      fakeNode("c:1", true),
    ];
    const marked: string[] = [];
    const errors: ConfigError[] = [];
    const mark = (how: string) => (address: string): boolean => {
      marked.push(`${how} ${address}`);
      if (failing === "every" || marked.length === 1) {
        const error = new ConfigError("clock", undefined, "broke");
        errors.push(error);
        throw error;
      }
      return true;
    };
    const marks = {
      markNodeHealthy: mark("healthy"),
      markNodeUnhealthy: mark("unhealthy"),
    };
    await assert.rejects(
      connectNodes(nodes, 1000, undefined, marks),
      (error) => error === errors[0],
    );
    // Before: only ["healthy a:1"].
    assert.deepEqual(marked, ["healthy a:1", "unhealthy b:1", "healthy c:1"]);
  });
}
