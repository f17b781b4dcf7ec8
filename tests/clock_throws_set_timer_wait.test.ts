// A custom clock whose setTimeout() throws as a wait on it is armed
// (src/clock.ts's wait, which names nothing: it sits below the config):
// the public sleep() and executeWithRetry()'s backoff rejected with the
// clock's raw Error, and a client request's retry backoff took the throw
// for a wake and retried at once, with no backoff. Each now names the
// clock: the ConfigError naming setTimeout(), the throw as cause.
import { test } from "node:test";
import assert from "node:assert/strict";
import { executeWithRetry } from "../src/client/retry.ts";
import { sleep } from "../src/client/sleep.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { ops } from "../testing/ops.ts";
import {
  assertSetFailed,
  breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";

test("sleep() on a clock whose setTimeout() throws rejects with the ConfigError naming it; an abort still rejects with its reason", async () => {
  const { clock, brokeSet, state } = breakableClock();
  const watch = watchEscapes();
  state.sets = 0;
  // Before: rejected with the clock's raw Error.
  const error = await sleep(clock, 5).then(() => "slept", (e: unknown) => e);
  assertSetFailed(error, brokeSet, "sleep()");
  const controller = new AbortController();
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(
    await sleep(clock, 5, controller.signal).then(() => "slept", (e) => e),
    reason,
  );
  assert.deepEqual(await watch.stop(), []);
});

test("executeWithRetry() whose backoff cannot be armed rejects with the ConfigError naming setTimeout(), and tries no more", async () => {
  const { clock, brokeSet, state } = breakableClock();
  const watch = watchEscapes();
  state.sets = 0;
  let attempts = 0;
  // Before: rejected with the clock's raw Error.
  const error = await executeWithRetry(
    () => {
      attempts++;
      return Promise.reject(new Error("try again"));
    },
    {
      maxRetries: 3,
      initialBackoffMs: 10,
      maxBackoffMs: 100,
      backoffMultiplier: 2,
      jitter: false,
    },
    { clock, isRetryable: () => true },
  ).then(() => "done", (e: unknown) => e);
  assertSetFailed(error, brokeSet, "executeWithRetry()");
  assert.equal(attempts, 1);
  assert.deepEqual(await watch.stop(), []);
});

test("a client request whose retry backoff cannot be armed rejects with the ConfigError naming setTimeout(), not retried at once", async () => {
  const s = await clientOnBreakableClock({
    config: {
      retryConfig: { maxRetries: 1, initialBackoffMs: 66, jitter: false },
    },
  });
  const { client, state, brokeSet, nodes } = s;
  let escaped: unknown[] = [];
  try {
    state.setMs = 66;
    state.sets = 0;
    state.setBreaks = 1;
    const before = nodes[0].stats.requests;
    // Before: the throw taken for a wake, retried at once (no backoff),
    // and the request failed with RetriesExhaustedError.
    const error = await client.request(
      ops.fail(RemoteErrorCode.Overloaded, true, "busy"),
      { idempotent: true },
    ).then(() => "answered", (e: unknown) => e);
    assert.equal(state.setsThrown, 1, "the backoff was armed");
    assertSetFailed(error, brokeSet, "the request");
    assert.equal(nodes[0].stats.requests - before, 1, "not retried");
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});
