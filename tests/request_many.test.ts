// Client.requestMany (issue #15, point 3): many requests, one call, one
// promise, one typed result per request in order; each item retried on its
// own by the rules of Client.request; bad arguments refused at the door.
// Every test runs on the virtual clock over the in-memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { type BatchResult, CHUNK_ITEMS } from "../src/client/batch.ts";
import { MAX_BATCH_ITEMS } from "../src/client/arguments.ts";
import {
  AbortedError,
  ClientClosedError,
  ConnectionLostError,
  InvalidArgumentError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";
import { errorOf, settle, textOf } from "./support/fault_checks.ts";

test("results come back in order, each with its own reply or typed error", async () => {
  await scene(3, {}, async ({ client }) => {
    const payloads = Array.from(
      { length: 700 },
      (_, i) =>
        i % 5 === 2 ? ops.fail(3, false, `missing ${i}`) : ops.echo(`v${i}`),
    );
    const results = await client.requestMany(payloads);
    assert.equal(results.length, payloads.length);
    results.forEach((result, i) => {
      if (i % 5 === 2) {
        const error = errorOf(result);
        assert.ok(error instanceof RemoteError, String(error));
        assert.equal(error.remoteCode, 3);
        assert.match(error.message, new RegExp(`missing ${i}\\b`));
      } else {
        assert.equal(textOf(result), `v${i}`);
      }
    });
    const stats = client.stats();
    assert.equal(stats.succeeded, 560);
    assert.equal(stats.failed, 140);
    assert.equal(stats.retries, 0);
    assert.equal(stats.inFlight, 0);
  });
});

for (const loadBalancing of ["round-robin", "peak-ewma"] as const) {
  test(`a batch books its replies as single requests would (${loadBalancing})`, async () => {
    await scene(2, { loadBalancing }, async ({ client }) => {
      const payloads = Array.from(
        { length: 600 },
        (_, i) => i % 7 === 3 ? ops.fail(3, false, "no") : ops.echo(`v${i}`),
      );
      const before = client.manager.nodes.map((n) => n.health.requestSuccesses);
      const results = await client.requestMany(payloads);
      const failed = results.filter((r) => !r.ok).length;
      assert.equal(failed, 86);
      const stats = client.stats();
      assert.equal(stats.succeeded, 514);
      assert.equal(stats.failed, 86);
      assert.equal(stats.inFlight, 0);
      for (const node of stats.nodes) assert.equal(node.inFlight, 0);
      // Each node's health heard of every answer it gave (a RemoteError is
      // an answer too), whether booked per chunk or, when timed, per reply.
      const answered = client.manager.nodes.reduce(
        (sum, n, i) => sum + n.health.requestSuccesses - before[i],
        0,
      );
      assert.equal(answered, 600);
    });
  });
}

test("a large batch is spread over the nodes chunk by chunk", async () => {
  await scene(3, {}, async ({ client, nodes }) => {
    const count = 10 * CHUNK_ITEMS;
    const payloads = Array.from({ length: count }, () => ops.echo("x"));
    const results = await client.requestMany(payloads);
    const byNode = new Map<string, number>();
    for (const r of results) {
      assert.ok(r.ok);
      const id = decodeReply(r.value).nodeId;
      byNode.set(id, (byNode.get(id) ?? 0) + 1);
    }
    assert.equal(byNode.size, 3);
    for (const node of nodes) assert.ok(node.stats.requests >= CHUNK_ITEMS);
  });
});

test("an empty array resolves to no results, sending nothing", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    assert.deepEqual(await client.requestMany([]), []);
    assert.equal(nodes[0].stats.requests, 0);
  });
});

test("bad arguments reject with InvalidArgumentError before anything is sent", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    const good = ops.echo("ok");
    const holey = [good, good];
    delete holey[1];
    const cases: [unknown, unknown, RegExp][] = [
      [good, undefined, /payloads.*expected an array/],
      ["text", undefined, /payloads.*expected an array/],
      [undefined, undefined, /payloads.*expected an array/],
      [holey, undefined, /payloads\[1\].*hole/],
      [[good, "text"], undefined, /payloads\[1\].*Uint8Array/],
      [[good, new Uint16Array(2)], undefined, /payloads\[1\]/],
      [[good, null], undefined, /payloads\[1\]/],
      [new Array(MAX_BATCH_ITEMS + 1).fill(good), undefined, /at most/],
      [new Array(1_000_000).fill(good), undefined, /at most/],
      [[good], { timeoutMs: -1 }, /timeoutMs/],
      [[good], { idempotant: true }, /idempotant/],
      [[good], { signal: "no" }, /signal/],
      [[good], null, /options/],
    ];
    for (const [payloads, options, message] of cases) {
      await assert.rejects(
        // deno-lint-ignore no-explicit-any
        client.requestMany(payloads as any, options as any),
        (error: unknown) => {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.match(error.message, message);
          assert.match(error.message, /Client\.requestMany/);
          return true;
        },
      );
    }
    assert.equal(nodes[0].stats.requests, 0);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("the caller's array is read once: changing it after the call changes nothing", async () => {
  await scene(1, {}, async ({ client }) => {
    const payloads = [ops.echo("a"), ops.echo("b")];
    const pending = client.requestMany(payloads);
    payloads[0] = ops.echo("changed");
    payloads.length = 1;
    const results = await pending;
    assert.deepEqual(results.map(textOf), ["a", "b"]);
  });
});

test("retryable failures are retried one by one, on another node", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
    // Half the batch fails at once, far over any budget's share.
    retryBudget: false,
  }, async ({ client, nodes, clock }) => {
    // Two chunks: one on each node.
    const payloads = Array.from(
      { length: 2 * CHUNK_ITEMS },
      (_, i) => ops.sleep(50, `${i}`),
    );
    const pending = client.requestMany(payloads, { idempotent: true });
    await settle(clock);
    // n0 crashes with half the batch on it.
    await nodes[0].stop();
    for (let i = 0; i < 10; i++) await clock.advance(50);
    const results = await pending;
    results.forEach((result, i) => {
      assert.equal(textOf(result), `${i}`);
      assert.equal(result.ok && decodeReply(result.value).nodeId, "n1");
    });
    assert.ok(client.stats().retries >= 1);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("the retry budget applies to a batch's items as to single requests", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
  }, async ({ client, nodes, clock }) => {
    let refused = 0;
    client.addEventListener("retryBudgetExhausted", () => refused++);
    const payloads = Array.from(
      { length: 2 * CHUNK_ITEMS },
      (_, i) => ops.sleep(50, `${i}`),
    );
    const pending = client.requestMany(payloads, { idempotent: true });
    await settle(clock);
    await nodes[0].stop();
    for (let i = 0; i < 10; i++) await clock.advance(50);
    const results = await pending;
    const lost = results.filter((r) =>
      !r.ok && r.error instanceof ConnectionLostError
    ).length;
    const retries = client.stats().retries;
    assert.ok(retries > 0 && retries < CHUNK_ITEMS, `${retries} retries`);
    assert.equal(lost, CHUNK_ITEMS - retries);
    assert.equal(refused, lost);
  });
});

test("a chunk whose node cannot be reached goes elsewhere item by item (never sent: retried)", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
    retryBudget: false,
  }, async ({ client, nodes, clock }) => {
    await nodes[0].stop();
    await settle(clock);
    const pending = client.requestMany(
      Array.from({ length: 2 * CHUNK_ITEMS }, (_, i) => ops.echo(`${i}`)),
    );
    for (let i = 0; i < 20; i++) await clock.advance(10);
    const results = await pending;
    results.forEach((r, i) => {
      assert.equal(textOf(r), `${i}`);
      assert.equal(r.ok && decodeReply(r.value).nodeId, "n1");
    });
    assert.equal(client.stats().inFlight, 0);
  });
});

test("items that are not idempotent are not retried once sent", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 10, jitter: false },
  }, async ({ client, nodes, clock }) => {
    // Two chunks: one on each node.
    const payloads = Array.from(
      { length: 2 * CHUNK_ITEMS },
      (_, i) => ops.sleep(50, `${i}`),
    );
    const pending = client.requestMany(payloads);
    await settle(clock);
    await nodes[0].stop();
    for (let i = 0; i < 10; i++) await clock.advance(50);
    const results = await pending;
    let lost = 0;
    for (const result of results) {
      if (result.ok) {
        assert.equal(decodeReply(result.value).nodeId, "n1");
        continue;
      }
      const error = result.error;
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.equal(error.sent, true);
      assert.equal(error.retryable, false);
      lost++;
    }
    assert.equal(lost, CHUNK_ITEMS);
    assert.equal(client.stats().retries, 0);
  });
});

test("a node's retryable error is retried until the retries run out; a non-retryable one is final at once", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 2, initialBackoffMs: 10, jitter: false },
  }, async ({ client, clock }) => {
    // Unavailable (5), retryable: retried until the retries run out.
    const pending = client.requestMany([
      ops.fail(5, true, "busy"),
      ops.echo("fine"),
      ops.fail(3, false, "nope"),
    ], { idempotent: true });
    for (let i = 0; i < 10; i++) await clock.advance(20);
    const [busy, fine, nope] = await pending;
    const exhausted = errorOf(busy);
    assert.equal(exhausted.code, "RETRIES_EXHAUSTED");
    assert.ok(
      (exhausted as Error).cause instanceof RemoteError,
      String(exhausted),
    );
    assert.equal(textOf(fine), "fine");
    assert.ok(errorOf(nope) instanceof RemoteError);
    assert.equal(client.stats().retries, 2);
  });
});

test("timeoutMs bounds each item's attempt", async () => {
  await scene(2, {}, async ({ client, clock }) => {
    const pending = client.requestMany([
      ops.sleep(500, "slow"),
      ops.echo("quick"),
      ops.sleep(5, "in time"),
    ], { timeoutMs: 20, retry: false });
    await clock.advance(20);
    const [slow, quick, inTime] = await pending;
    const error = errorOf(slow);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(textOf(quick), "quick");
    assert.equal(textOf(inTime), "in time");
    await clock.advance(500);
  });
});

test("a signal aborts the whole batch: every unsettled item fails with AbortedError", async () => {
  await scene(3, {
    retryConfig: { maxRetries: 3, initialBackoffMs: 100, jitter: false },
  }, async ({ client, clock }) => {
    const controller = new AbortController();
    const payloads = [
      ops.echo("done first"),
      ...Array.from({ length: 600 }, () => ops.sleep(1000)),
      // Waits to be retried when the abort comes.
      ops.fail(5, true, "busy"),
    ];
    const pending = client.requestMany(payloads, {
      signal: controller.signal,
      idempotent: true,
    });
    await clock.advance(10);
    controller.abort(new Error("user gave up"));
    const results = await pending;
    assert.equal(textOf(results[0]), "done first");
    for (const result of results.slice(1)) {
      const error = errorOf(result);
      assert.ok(error instanceof AbortedError, String(error));
      assert.equal((error.cause as Error).message, "user gave up");
    }
    assert.equal(client.stats().inFlight, 0);
    // Nothing is left in flight on the connections either.
    for (const node of client.stats().nodes) assert.equal(node.inFlight, 0);
  });
});

test("an already aborted signal fails every item without sending", async () => {
  await scene(1, {}, async ({ client, nodes }) => {
    const signal = AbortSignal.abort();
    const results = await client.requestMany([ops.echo("a"), ops.echo("b")], {
      signal,
    });
    for (const r of results) assert.ok(errorOf(r) instanceof AbortedError);
    assert.equal(nodes[0].stats.requests, 0);
    assert.equal(client.stats().inFlight, 0);
  });
});

test("disconnect during a batch settles every item; the call still resolves", async () => {
  await scene(2, {}, async ({ client, clock }) => {
    const pending = client.requestMany([
      ops.echo("quick"),
      ...Array.from({ length: 20 }, () => ops.sleep(1000)),
    ]);
    await settle(clock);
    const closing = client.disconnect({ timeoutMs: 10 });
    await clock.advance(10);
    await closing;
    const results = await pending;
    assert.equal(textOf(results[0]), "quick");
    for (const result of results.slice(1)) {
      assert.ok(errorOf(result) instanceof ClientClosedError);
    }
    // After disconnect: every item fails, the call still resolves.
    const after = await client.requestMany([ops.echo("late")]);
    assert.ok(errorOf(after[0]) instanceof ClientClosedError);
  });
});

test("a payload over the node's frame limit fails alone", async () => {
  await scene(1, {}, async ({ client }) => {
    const results = await client.requestMany([
      ops.echo("small"),
      ops.echo(new Uint8Array(4096)),
      ops.echo("also small"),
    ]);
    assert.equal(textOf(results[0]), "small");
    assert.ok(errorOf(results[1]) instanceof InvalidArgumentError);
    assert.equal(textOf(results[2]), "also small");
  }, { maxFrameSize: 1024 });
});

test("a lazy client connects on its first batch, the batch waiting for a connection", async () => {
  await scene(2, {
    poolConfig: { minConnections: 0, maxConnections: 2 },
  }, async ({ client }) => {
    const results = await client.requestMany(
      Array.from({ length: 300 }, (_, i) => ops.echo(`${i}`)),
    );
    results.forEach((r, i) => assert.equal(textOf(r), `${i}`));
  }, { lazy: true });
});

test("a hedged batch goes request by request, with the same results", async () => {
  await scene(3, { hedging: true }, async ({ client }) => {
    const results = await client.requestMany(
      Array.from({ length: 300 }, (_, i) => ops.echo(`${i}`)),
      { idempotent: true },
    );
    results.forEach((r, i) => assert.equal(textOf(r), `${i}`));
    assert.equal(client.stats().inFlight, 0);
  });
});

test("with a subscriber following requests, every item of a batch is observed", async () => {
  await scene(2, {}, async ({ client }) => {
    let ended = 0;
    const onEnd = () => ended++;
    subscribe("nodewire:request:end", onEnd);
    try {
      const results = await client.requestMany([
        ops.echo("a"),
        ops.fail(3, false),
        ops.echo("b"),
      ]);
      assert.deepEqual(results.map((r) => r.ok), [true, false, true]);
      assert.equal(ended, 2);
    } finally {
      unsubscribe("nodewire:request:end", onEnd);
    }
  });
});

test("requestMany(ps) gives what ps.map(request) gives, item by item", async () => {
  await scene(3, { retryConfig: { maxRetries: 0 } }, async ({ client }) => {
    const itemArb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((data) => ops.echo(data)),
      fc.string({ maxLength: 16 }).map((key) => ops.get(key)),
      fc.integer({ min: 1, max: 3 }).map((code) =>
        ops.fail(code, false, `code ${code}`)
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(itemArb, { maxLength: 600 }),
        async (payloads) => {
          const [batch, singles] = await Promise.all([
            client.requestMany(payloads),
            Promise.all(payloads.map((p) =>
              client.request(p).then(
                (value): BatchResult => ({ ok: true, value }),
                (error): BatchResult => ({ ok: false, error }),
              )
            )),
          ]);
          assert.equal(batch.length, singles.length);
          batch.forEach((b, i) => {
            const s = singles[i];
            assert.equal(b.ok, s.ok);
            if (b.ok && s.ok) {
              assert.deepEqual(
                [...decodeReply(b.value).data],
                [...decodeReply(s.value).data],
              );
            } else if (!b.ok && !s.ok) {
              assert.equal(b.error.constructor, s.error.constructor);
              assert.equal(b.error.code, s.error.code);
              assert.equal(
                (b.error as RemoteError).remoteCode,
                (s.error as RemoteError).remoteCode,
              );
            }
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});

test("a chunk whose node failures alternate with replies does not eject its node (no run of failures)", async () => {
  await scene(3, { retryConfig: { maxRetries: 0 } }, async ({ client }) => {
    const payloads = Array.from(
      { length: 40 },
      (_, i) => i % 2 === 1 ? ops.fail(4, true, "busy") : ops.echo(`v${i}`),
    );
    const results = await client.requestMany(payloads);
    assert.equal(results.filter((r) => r.ok).length, 20);
    // One chunk, one node: every failure came right after a reply.
    assert.equal(client.manager.healthyCount, 3);
    for (const node of client.manager.nodes) {
      assert.ok(node.health.consecutiveRequestFailures <= 1);
    }
  });
});

test("after any batch settles the counts add up: nothing in flight, succeeded + failed = items, health heard every answer", async () => {
  const itemArb = fc.oneof(
    { weight: 4, arbitrary: fc.constant("echo" as const) },
    { weight: 1, arbitrary: fc.constant("notFound" as const) },
    { weight: 1, arbitrary: fc.constant("overloaded" as const) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) }, // sleeps ms
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(itemArb, { minLength: 1, maxLength: 700 }),
      fc.constantFrom("round-robin", "least-in-flight", "peak-ewma"),
      fc.constantFrom(0, 2),
      fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
      fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
      fc.option(
        fc.record({
          at: fc.integer({ min: 0, max: 60 }),
          how: fc.constantFrom("break", "disconnect"),
        }),
        { nil: undefined },
      ),
      async (items, loadBalancing, maxRetries, timeoutMs, abortAt, fault) => {
        await scene(3, {
          loadBalancing,
          retryConfig: { maxRetries, initialBackoffMs: 1 },
          // Ejection's windows reset the request counts compared below.
          outlierEjection: false,
        }, async ({ client, clock, network }) => {
          const payloads = items.map((item) =>
            item === "echo"
              ? ops.echo("x")
              : item === "notFound"
              ? ops.fail(3, false, "no")
              : item === "overloaded"
              ? ops.fail(4, true, "busy")
              : ops.sleep(item, "late")
          );
          const nodes = client.manager.nodes;
          const successes = () =>
            nodes.reduce((sum, n) => sum + n.health.requestSuccesses, 0);
          const failures = () =>
            nodes.reduce((sum, n) => sum + n.health.requestFailures, 0);
          const before = client.stats();
          const [s0, f0] = [successes(), failures()];
          const controller = new AbortController();
          let done = false;
          const call = client.requestMany(payloads, {
            timeoutMs,
            signal: abortAt === undefined ? undefined : controller.signal,
          }).finally(() => done = true);
          for (let t = 0; t <= 200 && !done; t++) {
            if (t === abortAt) controller.abort(new Error("stop"));
            if (fault !== undefined && t === fault.at) {
              if (fault.how === "break") network.breakAll("cut");
              else void client.disconnect({ timeoutMs: 5 });
            }
            await clock.advance(1);
            for (let i = 0; i < 5; i++) await Promise.resolve();
          }
          while (!done) await clock.advance(100);
          const results = await call;
          const stats = client.stats();
          assert.equal(results.length, payloads.length);
          assert.equal(stats.inFlight, 0);
          for (const node of stats.nodes) assert.equal(node.inFlight, 0);
          const ok = results.filter((r) => r.ok).length;
          assert.equal(stats.succeeded - before.succeeded, ok);
          assert.equal(stats.failed - before.failed, payloads.length - ok);
          // (A disconnect's forced close is booked as it always was,
          // whatever the final error says.)
          if (maxRetries === 0 && fault?.how !== "disconnect") {
            // One attempt each: a reply or an ordinary RemoteError is an
            // answer; Overloaded and a lost connection are the node's fault.
            // (A retryable failure out of retries is wrapped.)
            const why = (r: BatchResult) =>
              r.ok
                ? undefined
                : r.error instanceof RetriesExhaustedError
                ? r.error.cause
                : r.error;
            const answered = results.filter((r) =>
              r.ok || (why(r) instanceof RemoteError &&
                (why(r) as RemoteError).remoteCode === 3)
            ).length;
            const nodeFaults = results.filter((r) =>
              (why(r) instanceof RemoteError &&
                (why(r) as RemoteError).remoteCode === 4) ||
              why(r) instanceof ConnectionLostError
            ).length;
            assert.equal(successes() - s0, answered);
            assert.equal(failures() - f0, nodeFaults);
          }
        });
      },
    ),
    { numRuns: 40 },
  );
});

test("replies are booked as they are read: a slow item does not hold its chunk's answered items in flight", async () => {
  await scene(
    2,
    { loadBalancing: "least-in-flight" },
    async ({ client, clock }) => {
      const payloads = Array.from(
        { length: 10 },
        (_, i) => i === 4 ? ops.sleep(1000, "slow") : ops.echo(`v${i}`),
      );
      const call = client.requestMany(payloads);
      await settle(clock);
      await clock.advance(10);
      await settle(clock);
      const during = {
        inFlight: client.stats().inFlight,
        succeeded: client.stats().succeeded,
        nodes: client.manager.nodes.map((n) => n.inFlight).sort(),
      };
      await clock.advance(1000);
      const results = await call;
      // Nine replies were in; one request was still out.
      assert.deepEqual(during, { inFlight: 1, succeeded: 9, nodes: [0, 1] });
      assert.equal(textOf(results[4]), "slow");
      assert.equal(client.stats().inFlight, 0);
    },
  );
});
