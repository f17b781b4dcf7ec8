// An open channel on the memory network keeps the process running, as an
// open socket does: a program awaiting a late reply from a test node on
// that network (a SLEEP on the system clock, whose timer, like the
// request's deadline, is unreferenced) ended on Node inside the await
// (exit code 13, the reply never read). And once every channel is closed,
// nothing is held: the process ends by itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnScript } from "./support/exit/spawn.ts";

test("a program awaiting a late reply on the memory network reads it, then exits by itself", async () => {
  const child = spawnScript("tests/support/exit/memory_await.ts", []);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  // Bounded: a child held for good is killed and the test fails.
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [code, signal] = await new Promise<[number | null, unknown]>(
    (resolve) => child.on("close", (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  assert.equal(signal, null, `the child was killed (held): ${stderr}`);
  assert.equal(code, 0, `exit code ${code}: ${stderr}`);
  const lines = stdout.trim().split("\n");
  assert.deepEqual(JSON.parse(lines[lines.length - 1]), {
    reply: "late",
    openChannels: 0,
  });
});
