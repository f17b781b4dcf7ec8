// A withConnection whose checkout failed waits before it tries again, as
// a request waits before its retry; the client's disconnect ends that
// wait as it ends a request's, instead of waiting it out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AbortedError, ClientClosedError } from "../src/errors.ts";
import { settle } from "./support/fault_checks.ts";
import { memoryScene } from "./support/memory_scene.ts";

const BACKOFF_MS = 60_000;

const config = {
  poolConfig: { minConnections: 1, maxConnections: 1 },
  retryConfig: {
    maxRetries: 2,
    initialBackoffMs: BACKOFF_MS,
    maxBackoffMs: BACKOFF_MS,
    backoffMultiplier: 2,
    jitter: false,
  },
};

test("disconnect() while a withConnection waits to retry its checkout ends the call at once with ClientClosedError, and does not wait out the backoff", async () => {
  await memoryScene(1, config, async ({ client, clock }) => {
    // The pool's one connection is lent: the next checkout times out.
    let release!: () => void;
    const holder = client.withConnection(
      () => new Promise<void>((resolve) => (release = resolve)),
    );
    await settle(clock);
    const waiting = client.withConnection(() => Promise.resolve("lent"), {
      timeoutMs: 10,
    }).then((value) => value, (error: unknown) => error);
    await clock.advance(10);
    release();
    await holder;
    let disconnected = false;
    const closing = client.disconnect({ timeoutMs: 30_000 }).then(() => {
      disconnected = true;
    });
    await settle(clock);
    const atOnce = disconnected;
    // Before: the call slept out its backoff, the disconnect with it.
    if (!atOnce) await clock.advance(BACKOFF_MS);
    await closing;
    assert.equal(atOnce, true, "the disconnect waited for the backoff");
    const error = await waiting;
    assert.ok(error instanceof ClientClosedError, String(error));
    assert.match(error.message, /while withConnection waited to retry/);
  });
});

test("a withConnection's own signal still ends its wait between checkouts with AbortedError carrying its reason", async () => {
  await memoryScene(1, config, async ({ client, clock }) => {
    let release!: () => void;
    const holder = client.withConnection(
      () => new Promise<void>((resolve) => (release = resolve)),
    );
    await settle(clock);
    const controller = new AbortController();
    const waiting = client.withConnection(() => Promise.resolve("lent"), {
      timeoutMs: 10,
      signal: controller.signal,
    }).then((value) => value, (error: unknown) => error);
    await clock.advance(10);
    const reason = new Error("the caller gave up");
    controller.abort(reason);
    await settle(clock);
    release();
    await holder;
    const error = await waiting;
    assert.ok(error instanceof AbortedError, String(error));
    assert.equal(error.cause, reason);
  });
});
