import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { isNodeFailure, NodeHealth } from "../src/cluster/health.ts";
import { runWithConcurrency } from "../src/cluster/concurrency.ts";
import { DEFAULT_HEALTH_CONFIG } from "../src/config/defaults.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import {
  AbortedError,
  ClientClosedError,
  ConfigError,
  ConnectionClosedError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  HostNotFoundError,
  InvalidArgumentError,
  NodewireError,
  NoHealthyNodesError,
  PoolClosedError,
  PoolTimeoutError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
} from "../src/errors.ts";

const NODE = { hostname: "127.0.0.1", port: 7000 };
const down = new Error("ping failed");

function health(unhealthyThreshold = 3, healthyThreshold = 2) {
  return new NodeHealth("127.0.0.1:7000", {
    unhealthyThreshold,
    healthyThreshold,
  });
}

// --- thresholds --------------------------------------------------------------

test("a new node is healthy, unchecked and has no latency yet", () => {
  const h = health();
  assert.deepEqual(h.toJSON(), {
    address: "127.0.0.1:7000",
    isHealthy: true,
    lastCheck: undefined,
    consecutiveFailures: 0,
    consecutiveRequestFailures: 0,
    consecutiveSuccesses: 0,
    latencyMs: undefined,
    totalFailures: 0,
    totalSuccesses: 0,
    lastError: undefined,
    ejected: false,
    ejectedUntil: undefined,
    ejectionCount: 0,
  });
  const cold = new NodeHealth("b:7000", DEFAULT_HEALTH_CONFIG, {
    healthy: false,
  });
  assert.equal(cold.isHealthy, false);
});

test("a node goes unhealthy on exactly the unhealthyThreshold-th consecutive failure", () => {
  const h = health(3, 2);
  assert.equal(h.recordFailure(down, 10), false);
  assert.equal(h.recordFailure(down, 20), false);
  assert.equal(h.isHealthy, true);
  assert.equal(h.recordFailure(down, 30), true);
  assert.equal(h.isHealthy, false);
  assert.equal(h.consecutiveFailures, 3);
  assert.equal(h.lastCheck, 30);
  assert.equal(h.lastError, down);
  // Further failures change nothing but the counters.
  assert.equal(h.recordFailure(down, 40), false);
  assert.equal(h.consecutiveFailures, 4);
  assert.equal(h.totalFailures, 4);
});

test("a success in between resets the failure run", () => {
  const h = health(3, 2);
  h.recordFailure(down, 1);
  h.recordFailure(down, 2);
  h.recordSuccess(1, 3);
  assert.equal(h.consecutiveFailures, 0);
  assert.equal(h.recordFailure(down, 4), false);
  assert.equal(h.recordFailure(down, 5), false);
  assert.equal(h.isHealthy, true);
  assert.equal(h.totalFailures, 4);
});

test("an unhealthy node comes back after healthyThreshold consecutive successes", () => {
  const h = health(1, 3);
  assert.equal(h.recordFailure(down, 0), true);
  assert.equal(h.recordSuccess(5, 1), false);
  assert.equal(h.recordSuccess(5, 2), false);
  assert.equal(h.recordFailure(down, 3), false); // breaks the run
  assert.equal(h.recordSuccess(5, 4), false);
  assert.equal(h.recordSuccess(5, 5), false);
  assert.equal(h.recordSuccess(5, 6), true);
  assert.equal(h.isHealthy, true);
  assert.equal(h.consecutiveSuccesses, 3);
  assert.equal(h.totalSuccesses, 5);
});

test("thresholds of 1 flip the state on every change of outcome", () => {
  const h = health(1, 1);
  assert.equal(h.recordFailure(down, 0), true);
  assert.equal(h.recordSuccess(1, 1), true);
  assert.equal(h.recordSuccess(1, 2), false);
  assert.equal(h.recordFailure(down, 3), true);
});

test("markUnhealthy takes a node out at once and it must earn its way back", () => {
  const h = health(3, 2);
  h.recordSuccess(1, 0);
  assert.equal(h.markUnhealthy("node announced shutdown"), true);
  assert.equal(h.markUnhealthy(), false);
  assert.equal(h.isHealthy, false);
  assert.equal(h.lastError, "node announced shutdown");
  assert.equal(h.consecutiveSuccesses, 0);
  assert.equal(h.recordSuccess(1, 1), false);
  assert.equal(h.recordSuccess(1, 2), true);
});

test("markHealthy puts a node back at once and resets the failure run", () => {
  const h = health(2, 5);
  h.recordFailure(down, 0);
  h.recordFailure(down, 1);
  assert.equal(h.isHealthy, false);
  const lastCheck = h.lastCheck;
  assert.equal(h.markHealthy(), true);
  assert.equal(h.markHealthy(), false);
  assert.equal(h.isHealthy, true);
  assert.equal(h.consecutiveFailures, 0);
  assert.equal(h.lastCheck, lastCheck, "an override is not a check");
  assert.equal(h.recordFailure(down, 2), false);
  assert.equal(h.recordFailure(down, 3), true);
});

test("thresholds and latency weight are validated", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(
      () =>
        new NodeHealth("a:1", { unhealthyThreshold: bad, healthyThreshold: 1 }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.field === "healthConfig.unhealthyThreshold",
    );
    assert.throws(
      () =>
        new NodeHealth("a:1", { unhealthyThreshold: 1, healthyThreshold: bad }),
      (e: unknown) =>
        e instanceof ConfigError && e.code === "CONFIG_INVALID" &&
        e.field === "healthConfig.healthyThreshold" &&
        /invalid healthConfig\.healthyThreshold: expected an integer ≥ 1/
          .test(e.message) &&
        e.message.endsWith(`got ${bad}`),
    );
  }
  for (const bad of [0, -0.1, 1.1, NaN]) {
    assert.throws(
      () =>
        new NodeHealth("a:1", DEFAULT_HEALTH_CONFIG, { latencyWeight: bad }),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.argument === "options.latencyWeight" &&
        /invalid options\.latencyWeight: expected a finite number > 0 and ≤ 1/
          .test(e.message) &&
        e.message.endsWith(`got ${bad}`),
    );
  }
});

test("the state follows the threshold rules for any sequence of outcomes", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      fc.array(fc.constantFrom("ok", "fail", "down", "up"), { maxLength: 200 }),
      (unhealthyAfter, healthyAfter, startHealthy, events) => {
        const h = new NodeHealth("a:1", {
          unhealthyThreshold: unhealthyAfter,
          healthyThreshold: healthyAfter,
        }, { healthy: startHealthy });
        // An independent model of the rules.
        let healthy = startHealthy;
        let failures = 0;
        let successes = 0;
        let totalFailures = 0;
        let time = 0;
        for (const event of events) {
          const before = healthy;
          let changed: boolean;
          time += 1;
          if (event === "ok") {
            successes++;
            failures = 0;
            if (!healthy && successes >= healthyAfter) healthy = true;
            changed = h.recordSuccess(1, time);
          } else if (event === "fail") {
            failures++;
            totalFailures++;
            successes = 0;
            if (healthy && failures >= unhealthyAfter) healthy = false;
            changed = h.recordFailure(down, time);
          } else if (event === "down") {
            successes = 0;
            healthy = false;
            changed = h.markUnhealthy("forced");
          } else {
            failures = 0;
            healthy = true;
            changed = h.markHealthy();
          }
          assert.equal(changed, before !== healthy, `${event} at ${time}`);
          assert.equal(h.isHealthy, healthy);
          assert.equal(h.consecutiveFailures, failures);
          assert.equal(h.consecutiveSuccesses, successes);
          assert.equal(h.totalFailures, totalFailures);
        }
      },
    ),
  );
});

// --- latency -------------------------------------------------------------------

test("latency is an exponentially weighted moving average of the samples", () => {
  const h = new NodeHealth("a:1", DEFAULT_HEALTH_CONFIG, {
    latencyWeight: 0.5,
  });
  h.recordSuccess(10, 0);
  assert.equal(h.latencyMs, 10);
  h.recordSuccess(20, 1);
  assert.equal(h.latencyMs, 15);
  h.recordSuccess(5, 2);
  assert.equal(h.latencyMs, 10);
  // Failures carry no latency and leave the average alone.
  h.recordFailure(down, 3);
  assert.equal(h.latencyMs, 10);
});

test("the default latency weight is 0.2", () => {
  const h = health();
  h.recordSuccess(100, 0);
  h.recordSuccess(200, 1);
  assert.ok(Math.abs(h.latencyMs! - 120) < 1e-9);
});

test("a latency sample that is not a finite non-negative number is left out", () => {
  const h = health();
  for (const bad of [NaN, Infinity, -1]) {
    h.recordSuccess(bad, 0);
    assert.equal(h.latencyMs, undefined);
  }
  assert.equal(h.totalSuccesses, 3);
  h.recordSuccess(4, 1);
  h.recordSuccess(NaN, 2);
  assert.equal(h.latencyMs, 4);
});

test("the latency average stays within the range of the samples and follows a constant", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), {
        minLength: 1,
        maxLength: 100,
      }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      (weight, samples, steady) => {
        const h = new NodeHealth("a:1", DEFAULT_HEALTH_CONFIG, {
          latencyWeight: weight,
        });
        let expected: number | undefined;
        for (const sample of samples) {
          h.recordSuccess(sample, 0);
          expected = expected === undefined
            ? sample
            : expected + weight * (sample - expected);
          assert.ok(
            Math.abs(h.latencyMs! - expected) <= 1e-6 * Math.max(1, expected),
          );
        }
        const lo = Math.min(...samples);
        const hi = Math.max(...samples);
        const slack = 1e-9 * Math.max(1, hi);
        assert.ok(h.latencyMs! >= lo - slack && h.latencyMs! <= hi + slack);
        // Enough identical samples pull the average to that value.
        for (let i = 0; i < 5000; i++) h.recordSuccess(steady, 0);
        assert.ok(
          Math.abs(h.latencyMs! - steady) <= 1e-3 * Math.max(1, steady),
        );
      },
    ),
  );
});

// --- passive signals -------------------------------------------------------------

test("failures that say something about the node count against it; others do not", () => {
  const counts = [
    new ConnectionRefusedError(NODE),
    new ConnectTimeoutError(NODE, 100),
    new HostNotFoundError(NODE),
    new ConnectionLostError(NODE, "reset"),
    new ProtocolError("garbage"),
    // The node said it cannot serve now.
    new RemoteError(RemoteErrorCode.Overloaded, "shedding load", true),
    new RemoteError(RemoteErrorCode.Unavailable, "draining", true),
  ];
  const doesNot = [
    // The caller's deadline: its own choice, not the node's fault.
    new RequestTimeoutError("a:1", 100),
    new RequestTimeoutError("a:1", 100, { retryable: true }),
    new RemoteError(3, "not found", false),
    new RemoteError(RemoteErrorCode.Internal, "bug in the node", false),
    new NodewireError("AUTH_FAILED", "denied"),
    new AbortedError("aborted"),
    new ClientClosedError(),
    new ConfigError("hosts", [], "x"),
    new PoolTimeoutError("a:1", 1, { open: 1, inUse: 1, waiting: 1 }),
    new PoolClosedError("a:1", "cleared"),
    new NoHealthyNodesError(["a:1"]),
    new RetriesExhaustedError(2, new ConnectionRefusedError(NODE)),
    new ConnectionClosedError(NODE),
    new Error("bug"),
    "string",
    undefined,
  ];
  for (const error of counts) {
    assert.equal(isNodeFailure(error), true, String(error));
  }
  for (const error of doesNot) {
    assert.equal(isNodeFailure(error), false, String(error));
  }
});

// --- runWithConcurrency ---------------------------------------------------------

test("runWithConcurrency never runs more than its limit at once, and uses all of it", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.array(fc.boolean(), { maxLength: 40 }),
      fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(Infinity)),
      async (s, outcomes, limit) => {
        let active = 0;
        let maxActive = 0;
        const started: number[] = [];
        const run = runWithConcurrency(outcomes, limit, async (ok, i) => {
          started.push(i);
          active++;
          maxActive = Math.max(maxActive, active);
          assert.ok(active <= limit, `${active} running, limit ${limit}`);
          try {
            await s.schedule(Promise.resolve(), `job ${i}`);
            if (!ok) throw new Error(`job ${i} failed`);
            return i * 10;
          } finally {
            active--;
          }
        });
        const results = await s.waitFor(run);
        assert.equal(maxActive, Math.min(limit, outcomes.length));
        assert.equal(active, 0);
        // Items start in input order, each exactly once.
        assert.deepEqual(started, outcomes.map((_, i) => i));
        // Results come back in input order, whatever order the jobs ended in.
        assert.equal(results.length, outcomes.length);
        results.forEach((result, i) => {
          if (outcomes[i]) {
            assert.deepEqual(result, { status: "fulfilled", value: i * 10 });
          } else {
            assert.equal(result.status, "rejected");
            assert.equal(
              (result as PromiseRejectedResult).reason.message,
              `job ${i} failed`,
            );
          }
        });
      },
    ),
  );
});

test("runWithConcurrency turns a synchronous throw or a plain value into a result", async () => {
  const results = await runWithConcurrency([1, 2, 3], 2, (n) => {
    if (n === 2) throw new TypeError("two");
    return n;
  });
  assert.deepEqual(results[0], { status: "fulfilled", value: 1 });
  assert.equal(results[1].status, "rejected");
  assert.ok((results[1] as PromiseRejectedResult).reason instanceof TypeError);
  assert.deepEqual(results[2], { status: "fulfilled", value: 3 });
});

test("runWithConcurrency with no items resolves to no results", async () => {
  assert.deepEqual(await runWithConcurrency([], 4, () => 1), []);
});

test("runWithConcurrency starts nothing more after an abort", async () => {
  const controller = new AbortController();
  const started: number[] = [];
  const results = await runWithConcurrency(
    [0, 1, 2, 3, 4, 5],
    2,
    async (n) => {
      started.push(n);
      await Promise.resolve();
      if (n === 1) controller.abort("shutting down");
      return n;
    },
    { signal: controller.signal },
  );
  assert.deepEqual(started, [0, 1]);
  assert.deepEqual(results[0], { status: "fulfilled", value: 0 });
  assert.deepEqual(results[1], { status: "fulfilled", value: 1 });
  for (const result of results.slice(2)) {
    assert.equal(result.status, "rejected");
    const reason = (result as PromiseRejectedResult).reason;
    assert.ok(reason instanceof AbortedError);
    assert.equal(reason.cause, "shutting down");
  }
});

test("runWithConcurrency rejects a limit that is not a positive integer", async () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    await assert.rejects(
      runWithConcurrency([1], bad, () => 1),
      (e: unknown) =>
        e instanceof RangeError &&
        /runWithConcurrency: expected a positive integer limit/.test(
          e.message,
        ) &&
        e.message.endsWith(`got ${bad}`),
    );
  }
});
