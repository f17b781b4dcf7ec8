// A child process of request_faults.test.ts: a client whose `retry` and
// `retryBudgetExhausted` listeners throw, in a process that handles
// uncaught errors the way its runtime offers (an application's own
// handler). Its own process because `bun test` fails the running test on
// any uncaught error, whatever handler is installed. Prints one JSON line:
// how the request ended, the counts, what the later listeners saw, and
// what was reported to the process, then exits on its own.
import { NodewireError } from "../../src/errors.ts";
import { ops } from "../../testing/ops.ts";
import { memoryScene } from "./memory_scene.ts";
import { recordUncaught } from "./uncaught.ts";

const reported = recordUncaught();

const result: Record<string, unknown> = {};
await memoryScene(1, {
  retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
  // One retry a window: the first is allowed, the second refused.
  retryBudget: { ratio: 0.1, minPerSecond: 1, windowMs: 1000 },
}, async ({ client, clock }) => {
  const later = { retry: 0, retryBudgetExhausted: 0 };
  client.addEventListener("retry", () => {
    throw new Error("retry listener bug");
  });
  client.addEventListener("retry", () => later.retry++);
  client.addEventListener("retryBudgetExhausted", () => {
    throw new Error("budget listener bug");
  });
  client.addEventListener(
    "retryBudgetExhausted",
    () => later.retryBudgetExhausted++,
  );
  const call = client.request(ops.fail(100, true)).then(
    () => "replied",
    (error: unknown) =>
      error instanceof NodewireError ? error.code : String(error),
  );
  for (let i = 0; i < 10; i++) await clock.advance(10);
  result.outcome = await call;
  const stats = client.stats();
  result.retries = stats.retries;
  result.failed = stats.failed;
  result.inFlight = stats.inFlight;
  result.nodesInFlight = stats.nodes.map((n) => n.inFlight);
  result.later = later;
  // The client still works.
  result.next = await client.request(ops.echo("ok")).then(
    (reply) => reply.length > 0,
    (error: unknown) => String(error),
  );
});
// Node reports on the next tick: let it.
await new Promise((resolve) => setTimeout(resolve, 10));
result.reported = reported;
console.log(JSON.stringify(result));
