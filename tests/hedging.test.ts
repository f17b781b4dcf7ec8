// Hedged requests: an idempotent request with no reply after the hedge
// delay goes to a second node too, the first reply wins and the other
// attempt is cancelled; never for a request that is not idempotent; hedges
// draw on the retry budget. Virtual clock, in-memory network: the slow node
// sits behind a fault proxy that delays its replies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError } from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import type { VirtualClock } from "../testing/virtual_clock.ts";
import { twoNodeScene } from "./support/hedge_scene.ts";

/** Settles `promise` and reports when, on the virtual clock. */
function timed<T>(
  clock: VirtualClock,
  promise: Promise<T>,
): Promise<{ value: T; at: number }> {
  return promise.then((value) => ({ value, at: clock.now() }));
}

test("a hedge goes to another node after the delay and the first reply wins", async () => {
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock }) => {
      const start = clock.now();
      const reply = timed(
        clock,
        client.request(ops.echo("fast"), { idempotent: true }),
      );
      await clock.advance(10);
      const { value, at } = await reply;
      assert.equal(replyText(value), "fast");
      assert.ok(at - start < 100, `answered after ${at - start} ms`);
      const stats = client.stats();
      assert.equal(stats.hedges, 1);
      assert.equal(stats.succeeded, 1);
      assert.equal(stats.inFlight, 0);
      // The losing attempt is left to finish: the slow node still carries it,
      // and the balancer sees that load.
      assert.deepEqual(stats.nodes.map((n) => n.inFlight), [1, 0]);
      await clock.advance(250); // the slow node's late reply is dropped
      assert.equal(client.stats().succeeded, 1);
      assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
    },
  );
});

test("one timer serves every request that may be hedged, not one each", async () => {
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock }) => {
      const before = clock.pendingTimers;
      const calls = Array.from(
        { length: 100 },
        (_, i) => client.request(ops.echo(`r${i}`), { idempotent: true }),
      );
      await clock.advance(0);
      // The hedging timer, plus at most the connections' own deadline timers
      // and the proxy's delay timers.
      assert.ok(
        clock.pendingTimers - before <= 4,
        `${clock.pendingTimers - before} timers for 100 requests`,
      );
      await clock.advance(250);
      await Promise.all(calls);
      assert.ok(client.stats().hedges > 0);
    },
  );
});

test("a request that is not idempotent is never hedged", async () => {
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock }) => {
      const start = clock.now();
      const reply = timed(clock, client.request(ops.echo("slow")));
      await clock.advance(250);
      const { at } = await reply;
      assert.ok(at - start >= 100);
      assert.equal(client.stats().hedges, 0);
      // Not even when asked for.
      const asked = timed(
        clock,
        client.request(ops.echo("x"), { hedge: true }),
      );
      await clock.advance(0);
      await clock.advance(250);
      await asked;
      assert.equal(client.stats().hedges, 0);
    },
  );
});

test("hedge: false opts a request out; without client hedging, hedge: true opts in", async () => {
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock }) => {
      const reply = client.request(ops.echo(), {
        idempotent: true,
        hedge: false,
      });
      await clock.advance(250);
      await reply;
      assert.equal(client.stats().hedges, 0);
    },
  );
  await twoNodeScene({}, async ({ client, clock }) => {
    // Off by default.
    const plain = client.request(ops.echo(), { idempotent: true });
    await clock.advance(250);
    await plain;
    assert.equal(client.stats().hedges, 0);
    // Asked for, with the default policy: the node's p95, which needs a
    // few reply times first. Twenty rounds teach both nodes.
    for (let i = 0; i < 40; i++) {
      const r = client.request(ops.echo(), { idempotent: true, hedge: true });
      await clock.advance(250);
      await r;
    }
    assert.ok(client.stats().hedges > 0, "hedged once the p95 is known");
    // Opting one request in leaves the client's default as it was: a plain
    // idempotent request is still not hedged, alone or in a batch.
    const before = client.stats().hedges;
    for (let i = 0; i < 10; i++) {
      const r = client.request(ops.echo(), { idempotent: true });
      await clock.advance(250);
      await r;
    }
    const batch = client.requestMany([ops.echo(), ops.echo()], {
      idempotent: true,
    });
    await clock.advance(250);
    await batch;
    assert.equal(client.stats().hedges, before, "no hedge without opting in");
  });
});

test("retry: false is exactly one attempt: never hedged, even when asked", async () => {
  // Each in a scene of its own, so that its first attempt goes to the slow
  // node, where an attempt that may be hedged is (see the first test).
  for (const hedge of [undefined, true]) {
    await twoNodeScene(
      { hedging: { delayMs: 10 } },
      async ({ client, clock }) => {
        const reply = client.request(ops.echo("once"), {
          idempotent: true,
          retry: false,
          ...(hedge === undefined ? {} : { hedge }),
        });
        await clock.advance(250);
        assert.equal(replyText(await reply), "once");
        assert.equal(client.stats().hedges, 0, `hedge: ${hedge}`);
      },
    );
  }
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock }) => {
      const batch = client.requestMany([ops.echo("a"), ops.echo("b")], {
        idempotent: true,
        retry: false,
      });
      await clock.advance(250);
      assert.deepEqual(
        (await batch).map((r) => r.ok && replyText(r.value)),
        ["a", "b"],
      );
      assert.equal(client.stats().hedges, 0, "in a batch");
    },
  );
});

test("the hedge delay follows the slow node's own percentile", async () => {
  await twoNodeScene(
    { hedging: { percentile: 50 } },
    async ({ client, clock, slow }) => {
      // Teach both nodes: 16+ replies each (round-robin alternates). The slow
      // one answers in 200 ms, the fast one at once.
      for (let i = 0; i < 40; i++) {
        const r = client.request(ops.echo(), { idempotent: true });
        await clock.advance(250);
        await r;
      }
      // Now the slow node becomes ten times slower. A request sent to it is
      // hedged after its own p50 (200 ms): not after the fast node's (1 ms),
      // and not left to wait 2 s.
      await slow.setFaults({ latencyMs: 1000 });
      const took: number[] = [];
      for (let i = 0; i < 4; i++) {
        const start = clock.now();
        const r = timed(
          clock,
          client.request(ops.echo(), { idempotent: true }),
        );
        await clock.advance(2500);
        took.push((await r).at - start);
      }
      assert.ok(took.some((t) => t >= 190 && t <= 260), took.join(", "));
      assert.ok(took.every((t) => t < 1000), took.join(", "));
    },
  );
});

test("hedges draw on the retry budget: none when it is empty", async () => {
  await twoNodeScene({
    hedging: { delayMs: 10 },
    retryBudget: { ratio: 0, minPerSecond: 0 },
  }, async ({ client, clock }) => {
    const reply = timed(
      clock,
      client.request(ops.echo("main"), { idempotent: true }),
    );
    await clock.advance(250);
    const { value } = await reply;
    assert.equal(replyText(value), "main");
    assert.equal(client.stats().hedges, 0);
  });
});

test("aborting a hedged request cancels every attempt with the caller's reason", async () => {
  await twoNodeScene(
    { hedging: { delayMs: 10 } },
    async ({ client, clock, slow }) => {
      await slow.setFaults({ latencyMs: 100 });
      const controller = new AbortController();
      // Both nodes slow now: the second sleeps in the op itself.
      const reply = client.request(ops.sleep(100), {
        idempotent: true,
        signal: controller.signal,
      }).catch((e) => e);
      await clock.advance(10);
      assert.equal(client.stats().hedges, 1);
      controller.abort("enough");
      const error = await reply;
      assert.equal(error.code, "ABORTED");
      assert.equal(error.cause, "enough");
      assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0, 0]);
      await clock.advance(200);
    },
  );
});

test("hedging settings are validated", () => {
  assert.equal(resolveConfig({ hosts: ["a"] }).hedging, undefined);
  assert.equal(
    resolveConfig({ hosts: ["a"], hedging: false }).hedging,
    undefined,
  );
  assert.deepEqual(resolveConfig({ hosts: ["a"], hedging: true }).hedging, {
    delayMs: undefined,
    percentile: 95,
    maxHedges: 1,
  });
  for (
    const [field, value] of [
      ["delayMs", 0],
      ["delayMs", NaN],
      ["percentile", 100],
      ["percentile", 10],
      ["maxHedges", 0],
      ["maxHedges", 1.5],
    ] as const
  ) {
    assert.throws(
      () =>
        resolveConfig({ hosts: ["a"], hedging: { [field]: value } as never }),
      (e: unknown) =>
        e instanceof ConfigError && e.field === `hedging.${field}`,
      `${field}: ${value}`,
    );
  }
  assert.throws(
    () => resolveConfig({ hosts: ["a"], hedging: "yes" as never }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "CONFIG_INVALID" &&
      e.field === "hedging" &&
      /invalid hedging: expected an object, got "yes"/.test(e.message),
  );
});
