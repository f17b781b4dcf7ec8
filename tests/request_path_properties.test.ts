// Property tests of the request path and the parts split from it
// (request_retry.ts, request_hedging.ts, waits.ts, request_diagnostics.ts):
// generated scenes of one to three test nodes, some behind a slow fault
// proxy, each balancer, hedging on or off, retries and a tight retry
// budget, a few concurrent `request` and `requestMany` calls of echoes,
// sleeps and node failures, a caller's abort and a `disconnect()` at drawn
// times, all on a virtual clock over the memory network. Whatever the
// scene: every call settles once, in bounded virtual time, with a reply or
// an SDK error with a code; nothing stays counted in flight; the counters
// add up; every published start has one outcome, and every request one
// outcome that settles it; nothing escapes to the process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import type { RequestMessage } from "../src/diagnostics/channels.ts";
import { NodewireError } from "../src/errors.ts";
import type { BatchResult } from "../src/client/batch.ts";
import { ops, replyText } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";
import { fc } from "./support/fc.ts";

/** What one payload asks of its node. */
type Work =
  | { kind: "echo" }
  | { kind: "sleep"; ms: number }
  | { kind: "fail"; code: number; retryable: boolean };

/** One call of the scene: a `request`, or a `requestMany` of its works. */
interface CallPlan {
  many: boolean;
  works: Work[];
  /** When it is made, in virtual ms. */
  at: number;
  idempotent: boolean;
  /**
   * When its signal aborts, in ms after it was made (none: no signal; -1:
   * aborted before the call).
   */
  abortAfter: number | undefined;
  /** Its own `timeoutMs` per attempt (none: the config's). */
  timeoutMs: number | undefined;
  /** Its `hedge` option: true opts in, false out (none: the client's way). */
  hedge: boolean | undefined;
}

/** A generated scene. */
interface Scene {
  nodes: number;
  /** The latency of the proxy in front of each of the first nodes. */
  latencies: number[];
  /**
   * Per proxy, the bytes after which it resets each connection (none:
   * never), so that attempts lose their connection and wait for another.
   */
  resets: (number | undefined)[];
  loadBalancing: "round-robin" | "least-in-flight" | "peak-ewma";
  hedgeDelayMs: number | undefined;
  maxHedges: number;
  maxRetries: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  budget: boolean;
  /** Whether a diagnostics_channel subscriber listens. */
  observed: boolean;
  calls: CallPlan[];
  disconnectAt: number | undefined;
  disconnectTimeoutMs: number;
}

/** Each attempt's limit, and the virtual ms moved per step. */
const ATTEMPT_MS = 100;
const STEP_MS = 5;

const work: fc.Arbitrary<Work> = fc.oneof(
  fc.constant<Work>({ kind: "echo" }),
  fc.integer({ min: 0, max: 150 }).map((ms): Work => ({ kind: "sleep", ms })),
  fc.record({
    kind: fc.constant("fail" as const),
    code: fc.constantFrom(1, 3, 4, 5),
    retryable: fc.boolean(),
  }),
);

function callPlan(abort: boolean): fc.Arbitrary<CallPlan> {
  return fc.record({
    many: fc.boolean(),
    works: fc.array(work, { minLength: 1, maxLength: 4 }),
    at: fc.integer({ min: 0, max: 40 }),
    idempotent: fc.boolean(),
    abortAfter: abort
      ? fc.option(fc.integer({ min: -1, max: 200 }), { nil: undefined })
      : fc.constant(undefined),
    timeoutMs: fc.option(fc.integer({ min: 1, max: ATTEMPT_MS }), {
      nil: undefined,
    }),
    hedge: fc.option(fc.boolean(), { nil: undefined }),
  });
}

/** Scenes; `abort` and `disconnect` say whether those may be drawn. */
function scenes(
  options: {
    abort: boolean;
    disconnect: boolean;
    observed?: boolean;
  },
): fc.Arbitrary<Scene> {
  return fc.integer({ min: 1, max: 3 }).chain((nodes) =>
    fc.record({
      nodes: fc.constant(nodes),
      latencies: fc.array(fc.integer({ min: 0, max: 40 }), {
        maxLength: nodes,
      }),
      resets: fc.array(
        fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 2 },
          { arbitrary: fc.integer({ min: 100, max: 3000 }), weight: 1 },
        ),
        { minLength: nodes, maxLength: nodes },
      ),
      loadBalancing: fc.constantFrom(
        "round-robin" as const,
        "least-in-flight" as const,
        "peak-ewma" as const,
      ),
      hedgeDelayMs: fc.option(fc.integer({ min: 1, max: 40 }), {
        nil: undefined,
      }),
      maxHedges: fc.integer({ min: 1, max: 2 }),
      maxRetries: fc.integer({ min: 0, max: 3 }),
      initialBackoffMs: fc.integer({ min: 0, max: 20 }),
      maxBackoffMs: fc.integer({ min: 20, max: 40 }),
      budget: fc.boolean(),
      observed: options.observed === undefined
        ? fc.boolean()
        : fc.constant(options.observed),
      calls: fc.array(callPlan(options.abort), { minLength: 1, maxLength: 5 }),
      disconnectAt: options.disconnect
        ? fc.option(fc.integer({ min: 0, max: 250 }), { nil: undefined })
        : fc.constant(undefined),
      disconnectTimeoutMs: fc.integer({ min: 0, max: 150 }),
    })
  );
}

function payloadOf(w: Work, tag: string): Uint8Array {
  switch (w.kind) {
    case "echo":
      return ops.echo(tag);
    case "sleep":
      return ops.sleep(w.ms, tag);
    case "fail":
      return ops.fail(w.code, w.retryable, tag);
  }
}

/** Counts, per published message, its starts and outcomes. */
function countPublications() {
  const seen = new Map<
    RequestMessage,
    { starts: number; outcomes: number }
  >();
  const entry = (m: RequestMessage) => {
    let e = seen.get(m);
    if (e === undefined) seen.set(m, e = { starts: 0, outcomes: 0 });
    return e;
  };
  const onStart = (m: unknown) => entry(m as RequestMessage).starts++;
  const onOutcome = (m: unknown) => entry(m as RequestMessage).outcomes++;
  subscribe("nodewire:request:start", onStart);
  subscribe("nodewire:request:end", onOutcome);
  subscribe("nodewire:request:error", onOutcome);
  return {
    seen,
    stop() {
      unsubscribe("nodewire:request:start", onStart);
      unsubscribe("nodewire:request:end", onOutcome);
      unsubscribe("nodewire:request:error", onOutcome);
    },
  };
}

/** One call's outcome as the test saw it. */
interface Outcome {
  plan: CallPlan;
  /** What each payload's reply carries, if it has one. */
  tags: string[];
  /** Made before `disconnect()`: counted by the client's stats. */
  counted: boolean;
  /** Virtual ms it was made at, and settled at. */
  madeAt: number;
  settledAt: number | undefined;
  settles: number;
  value: unknown;
  /** For requestMany: the results filled when it settled (holes left out). */
  filled: number;
  ok: boolean;
}

/** The latest virtual time by which a call made at `madeAt` must settle. */
function deadlineOf(scene: Scene, madeAt: number): number {
  const attempts = scene.maxRetries + 1;
  // Each attempt (its pool wait and reply) is bounded by ATTEMPT_MS, a
  // hedge sent after its delay has as long, the connection's deadline
  // scan may be a step late, and a backoff is at most maxBackoffMs: a
  // request can take no longer than this.
  // A call that opts in to hedging on a client that does not hedge waits
  // for a percentile of reply times, which are under ATTEMPT_MS.
  const hedgeMs = scene.hedgeDelayMs !== undefined
    ? scene.maxHedges * scene.hedgeDelayMs
    : scene.calls.some((c) => c.hedge === true)
    ? ATTEMPT_MS
    : 0;
  let bound = madeAt + attempts * (hedgeMs + ATTEMPT_MS + 2 * STEP_MS) +
    scene.maxRetries * (scene.maxBackoffMs + STEP_MS) + 4 * STEP_MS;
  if (scene.disconnectAt !== undefined) {
    bound = Math.min(
      bound,
      Math.max(madeAt, scene.disconnectAt) + scene.disconnectTimeoutMs +
        4 * STEP_MS,
    );
  }
  return bound;
}

/** Whether `error` is an SDK error with a code. */
function typed(error: unknown): boolean {
  return error instanceof NodewireError && typeof error.code === "string" &&
    error.code.length > 0;
}

/** Runs `scene` and asserts every property of it. */
async function run(scene: Scene): Promise<void> {
  const config: Partial<ConnectionConfig> = {
    loadBalancing: scene.loadBalancing,
    requestTimeoutMs: ATTEMPT_MS,
    retryConfig: {
      maxRetries: scene.maxRetries,
      initialBackoffMs: scene.initialBackoffMs,
      maxBackoffMs: scene.maxBackoffMs,
      backoffMultiplier: 2,
    },
    retryBudget: scene.budget
      ? { ratio: 0.1, minPerSecond: 1, windowMs: 1000 }
      : false,
    ...(scene.hedgeDelayMs === undefined ? {} : {
      hedging: {
        delayMs: scene.hedgeDelayMs,
        maxHedges: scene.maxHedges,
      },
    }),
  };
  const s = await clientOnBreakableClock({
    nodes: scene.nodes,
    proxied: scene.latencies.length,
    config,
  });
  const { client, virtual } = s;
  for (let i = 0; i < scene.latencies.length; i++) {
    await s.proxies[i].setFaults({
      latencyMs: scene.latencies[i],
      ...(scene.resets[i] === undefined
        ? {}
        : { resetAfterBytes: scene.resets[i] }),
    });
  }
  const clientId = client.manager.id;
  const published = scene.observed ? countPublications() : undefined;
  const outcomes: Outcome[] = [];
  let disconnected: Promise<void> | undefined;
  let escaped: unknown[] = [];
  const what = JSON.stringify(scene);
  try {
    // The scene's events, in time order: calls made, signals aborted, the
    // disconnect.
    const events: { at: number; fire: () => void }[] = [];
    scene.calls.forEach((plan, c) => {
      const controller = plan.abortAfter === undefined
        ? undefined
        : new AbortController();
      events.push({
        at: plan.at,
        fire: () => {
          const tags = plan.works.map((_, i) => `c${c}i${i}`);
          const outcome: Outcome = {
            plan,
            tags,
            counted: disconnected === undefined,
            madeAt: virtual.now(),
            settledAt: undefined,
            settles: 0,
            value: undefined,
            filled: 0,
            ok: false,
          };
          outcomes.push(outcome);
          const options = {
            idempotent: plan.idempotent,
            ...(controller ? { signal: controller.signal } : {}),
            ...(plan.timeoutMs === undefined
              ? {}
              : { timeoutMs: plan.timeoutMs }),
            ...(plan.hedge === undefined ? {} : { hedge: plan.hedge }),
          };
          const payloads = plan.works.map((w, i) => payloadOf(w, tags[i]));
          const settled = (ok: boolean) => (value: unknown) => {
            outcome.settles++;
            outcome.settledAt = virtual.now();
            outcome.ok = ok;
            outcome.value = value;
            // Counted now: an item settled twice ends the batch early with
            // a hole, which a later settle would fill before the checks.
            if (Array.isArray(value)) {
              outcome.filled = value.filter(() => true).length;
            }
          };
          const promise: Promise<unknown> = plan.many
            ? client.requestMany(payloads, options)
            : client.request(payloads[0], options);
          promise.then(settled(true), settled(false));
        },
      });
      if (controller !== undefined) {
        events.push({
          at: plan.at + plan.abortAfter!,
          fire: () => controller.abort(new Error("caller gave up")),
        });
      }
    });
    if (scene.disconnectAt !== undefined) {
      events.push({
        at: scene.disconnectAt,
        fire: () => {
          disconnected = client.disconnect({
            timeoutMs: scene.disconnectTimeoutMs,
          });
        },
      });
    }
    events.sort((a, b) => a.at - b.at);
    const lastDeadline = Math.max(
      ...scene.calls.map((p) => deadlineOf(scene, p.at + STEP_MS)),
    );
    // Bounded: time moves by STEP_MS until every call settled and every
    // attempt still out (a hedge's loser) ended, or well past the bound.
    const limit = lastDeadline + ATTEMPT_MS + 20 * STEP_MS;
    let next = 0;
    for (let t = 0; t <= limit; t += STEP_MS) {
      while (next < events.length && events[next].at <= virtual.now()) {
        events[next++].fire();
      }
      const quiet = next === events.length &&
        outcomes.every((o) => o.settles > 0) &&
        client.stats().inFlight === 0 &&
        client.stats().nodes.every((n) => n.inFlight === 0);
      if (quiet) break;
      await virtual.advance(STEP_MS);
      await tickEnds();
      await tickEnds();
    }
    assert.equal(next, events.length, `${what}: events left`);

    // Every call settled once, in time, with what its kind promises.
    let requests = 0;
    for (const o of outcomes) {
      const name = `${what}: call at ${o.madeAt}`;
      assert.equal(o.settles, 1, `${name}: settled ${o.settles} times`);
      assert.ok(
        o.settledAt! <= deadlineOf(scene, o.madeAt),
        `${name}: settled at ${o.settledAt}, after its bound`,
      );
      if (o.plan.many) {
        assert.ok(o.ok, `${name}: requestMany rejected with ${o.value}`);
        const results = o.value as BatchResult[];
        assert.equal(results.length, o.plan.works.length, name);
        assert.equal(o.filled, results.length, `${name}: settled with holes`);
        for (let i = 0; i < results.length; i++) {
          // A hole: an item that never settled while another settled twice.
          assert.ok(i in results, `${name}: no result for item ${i}`);
          const r = results[i];
          if (r.ok) assert.ok(r.value instanceof Uint8Array, name);
          else assert.ok(typed(r.error), `${name}: item ${i}: ${r.error}`);
          // Its own reply, never another request's.
          if (r.ok) assert.equal(replyText(r.value), o.tags[i], name);
        }
        if (o.counted) requests += results.length;
      } else {
        if (o.ok) {
          assert.ok(o.value instanceof Uint8Array, name);
          assert.equal(replyText(o.value as Uint8Array), o.tags[0], name);
        } else assert.ok(typed(o.value), `${name}: ${o.value}`);
        if (o.counted) requests++;
      }
    }

    // Nothing left counted in flight, by the client or any node.
    const stats = client.stats();
    assert.equal(stats.inFlight, 0, `${what}: client in flight`);
    assert.deepEqual(
      stats.nodes.map((n) => n.inFlight),
      stats.nodes.map(() => 0),
      `${what}: nodes still charged`,
    );

    // The counters add up: each request counted made succeeded or failed
    // once; retries within what the policy allows; hedges only when on.
    assert.equal(
      stats.succeeded + stats.failed,
      requests,
      `${what}: ${stats.succeeded} + ${stats.failed} for ${requests}`,
    );
    assert.ok(
      stats.retries <= requests * scene.maxRetries,
      `${what}: ${stats.retries} retries`,
    );
    if (
      scene.hedgeDelayMs === undefined &&
      scene.calls.every((c) => c.hedge !== true)
    ) {
      assert.equal(stats.hedges, 0, `${what}: hedged`);
    } else {
      assert.ok(
        stats.hedges <= requests * scene.maxHedges,
        `${what}: ${stats.hedges} hedges`,
      );
    }

    // Every published start has one outcome; every request counted made
    // one outcome that settles it.
    if (published !== undefined) {
      const settling = new Map<number, number>();
      for (const [m, { starts, outcomes: ends }] of published.seen) {
        if (m.clientId !== clientId) continue;
        const name = `${what}: request ${m.requestId} attempt ${m.attempt}${
          m.hedge ? " (hedge)" : ""
        }`;
        assert.equal(starts, 1, `${name}: starts`);
        assert.equal(ends, 1, `${name}: outcomes`);
        if (m.settles) {
          settling.set(m.requestId, (settling.get(m.requestId) ?? 0) + 1);
        }
      }
      for (const [id, n] of settling) {
        assert.equal(n, 1, `${what}: request ${id} settled ${n} times`);
      }
      assert.equal(settling.size, requests, `${what}: requests settled`);
    }
  } finally {
    published?.stop();
    escaped = await s.teardown();
    await disconnected;
  }
  assert.deepEqual(escaped, [], `${what}: escaped`);
}

test("every call settles once and in time, nothing stays in flight, the counters add up", async () => {
  await fc.assert(
    fc.asyncProperty(scenes({ abort: false, disconnect: false }), run),
    { numRuns: 25 },
  );
});

test("with callers' aborts at drawn times, the same holds", async () => {
  await fc.assert(
    fc.asyncProperty(scenes({ abort: true, disconnect: false }), run),
    { numRuns: 25 },
  );
});

test("with a disconnect at a drawn time, the same holds", async () => {
  await fc.assert(
    fc.asyncProperty(scenes({ abort: true, disconnect: true }), run),
    { numRuns: 25 },
  );
});

test("observed by a diagnostics subscriber, every start has one outcome and every request one that settles it", async () => {
  await fc.assert(
    fc.asyncProperty(
      scenes({ abort: true, disconnect: true, observed: true }),
      run,
    ),
    { numRuns: 25 },
  );
});
