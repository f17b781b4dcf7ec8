// An open channel on the memory network keeps the process running, as an
// open socket does: a program awaiting a late reply from a test node on
// that network (a SLEEP on the system clock, whose timer, like the
// request's deadline, is unreferenced) ended on Node inside the await
// (exit code 13, the reply never read). And once every channel is closed,
// nothing is held: the process ends by itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { childReport } from "./support/exit/spawn.ts";

test("a program awaiting a late reply on the memory network reads it, then exits by itself", async () => {
  // Bounded: a child held for good is killed at 20 s and the test fails.
  const report = await childReport(
    "tests/support/exit/memory_await.ts",
    20_000,
  );
  assert.deepEqual(report, { reply: "late", openChannels: 0 });
});
