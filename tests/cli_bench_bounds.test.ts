// bench against a node that puts a new id in every reply: the counts per
// id stay bounded, and the summary table renders however many rows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { renderTable } from "../src/cli/format.ts";
import { MAX_NODE_IDS, runLoad } from "../src/cli/load.ts";
import type { Client } from "../src/client/client.ts";

const encoder = new TextEncoder();

/** A client whose every reply names a node id never seen before. */
function hostileClient(): Client {
  let n = 0;
  return {
    request: () => {
      const id = encoder.encode(`id-${n++}`);
      return Promise.resolve(Uint8Array.of(id.length, ...id));
    },
  } as unknown as Client;
}

test("answers from more node ids than MAX_NODE_IDS are counted together, not kept apart", async () => {
  const result = await runLoad(hostileClient(), {
    concurrency: 4,
    durationMs: 600_000,
    maxRequests: 1000,
    payload: new Uint8Array(1),
  });
  assert.equal(result.ok, 1000);
  assert.equal(result.perNode.size, MAX_NODE_IDS);
  assert.equal(result.otherIds, 1000 - MAX_NODE_IDS);
  assert.equal(result.perNode.get("id-0"), 1);
});

test("a table of 200 000 rows renders (no spread into Math.max)", () => {
  const rows = Array.from(
    { length: 200_000 },
    (_, i): [string, number] => [`node id-${i}`, i],
  );
  const table = renderTable(["measure", "value"], rows);
  assert.equal(table.split("\n").length, 200_002);
  assert.match(table, /^node id-199999 {2}199999$/m);
});
