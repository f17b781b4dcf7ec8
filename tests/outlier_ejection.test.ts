// Outlier ejection (issue #14, item 4) and the panic threshold. What
// requests see takes a node out for a while: five node failures in a row,
// or a success rate well below its peers'. An ejection is the node's health
// going unhealthy through the same path and event as a failed health
// check; health checks cannot end it early, and can hold the node down
// past its end. Every scene runs on the virtual clock over the in-memory
// network; the rules' arithmetic is checked on its own first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import {
  EJECTION_JITTER,
  ejectionTime,
  nextEjectionCount,
  successRateOutliers,
} from "../src/cluster/ejection.ts";
import {
  DEFAULT_OUTLIER_EJECTION,
  DEFAULT_PANIC_THRESHOLD,
} from "../src/config/defaults.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import {
  ConfigError,
  NoHealthyNodesError,
  RemoteError,
} from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { CountingClock } from "./support/counting.ts";
import { type MemoryScene, memoryScene } from "./support/memory_scene.ts";

const OVERLOADED = ops.fail(RemoteErrorCode.Overloaded, false, "busy");

interface Scene extends MemoryScene {
  /** Every `nodeHealthChanged`, as `n1:false ejected for ...`. */
  changes: string[];
}

/**
 * `n` nodes (`n0`...) and a client of them on one virtual clock and memory
 * network. Round-robin, so that requests sent one at a time go to the
 * nodes in turn, and one attempt per request, so that each outcome is
 * booked against the node it went to.
 */
async function scene(
  n: number,
  config: Partial<ConnectionConfig>,
  body: (s: Scene) => Promise<void>,
): Promise<void> {
  await memoryScene(n, {
    loadBalancing: "round-robin",
    retryConfig: { maxRetries: 0 },
    poolConfig: { minConnections: 1 },
    ...config,
  }, async (s) => {
    const changes: string[] = [];
    const idOf = new Map(s.nodes.map((node) => [node.address, node.nodeId]));
    s.client.addEventListener("nodeHealthChanged", (e) => {
      const d = e.detail;
      changes.push(`${idOf.get(d.address)}:${d.healthy} ${d.reason}`);
    });
    await body({ ...s, changes });
  });
}

/** Sends `payload` once; the id of the node that answered, and how. */
async function send(
  client: Client,
  payload: Uint8Array,
): Promise<{ nodeId: string | undefined; ok: boolean }> {
  try {
    return {
      nodeId: decodeReply(await client.request(payload)).nodeId,
      ok: true,
    };
  } catch (error) {
    assert.ok(error instanceof RemoteError, String(error));
    return { nodeId: error.nodeId, ok: false };
  }
}

/**
 * Sends `payload` to `target`, one of two healthy nodes under round-robin:
 * echoes until the other node answers one, since the next request then
 * goes to `target`. Checks that it did.
 */
async function sendTo(
  client: Client,
  target: string,
  payload: Uint8Array,
): Promise<boolean> {
  assert.equal(client.manager.healthyCount, 2, "both nodes in rotation");
  while ((await send(client, ops.echo())).nodeId === target) {
    // Answered by the target itself: the other one is next, then the target.
  }
  const outcome = await send(client, payload);
  assert.equal(outcome.nodeId, target, "round-robin alternates");
  return outcome.ok;
}

/** The health record of node `nodeId` (`n0`...). */
function healthOf(s: Scene, nodeId: string) {
  const address = s.nodes.find((n) => n.nodeId === nodeId)!.address;
  return s.client.manager.node(address)!.health;
}

function configError(config: unknown, field: string, pattern: RegExp) {
  assert.throws(
    () => resolveConfig({ hosts: ["a"], ...(config as object) }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.field, field);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

// --- the rules' arithmetic -------------------------------------------------

test("ejection time: base × count, bounded by the maximum, jitter only takes off", () => {
  const config = { baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 300_000 };
  const none = () => 0;
  const most = () => 0.999999;
  assert.deepEqual(
    [1, 2, 3, 10, 11, 50].map((n) => ejectionTime(n, config, none)),
    [30_000, 60_000, 90_000, 300_000, 300_000, 300_000],
  );
  for (const count of [1, 2, 3, 10, 1000]) {
    const full = Math.min(30_000 * count, 300_000);
    const shortest = ejectionTime(count, config, most);
    assert.ok(shortest > full * (1 - EJECTION_JITTER) - 1e-6);
    assert.ok(shortest <= full);
  }
  // A broken random source cannot stretch or invert it.
  assert.equal(ejectionTime(1, config, () => 7), 27_000);
  assert.equal(ejectionTime(1, config, () => -7), 30_000);
});

test("ejection count: one more each time, less one per interval spent back", () => {
  // First ejection, and one right after the last ended.
  assert.equal(nextEjectionCount(0, undefined, 0, 10_000), 1);
  assert.equal(nextEjectionCount(1, 30_000, 30_000, 10_000), 2);
  assert.equal(nextEjectionCount(2, 90_000, 95_000, 10_000), 3);
  // Behaving: one interval forgives one ejection, and never below zero.
  assert.equal(nextEjectionCount(3, 0, 10_000, 10_000), 3);
  assert.equal(nextEjectionCount(3, 0, 29_999, 10_000), 2);
  assert.equal(nextEjectionCount(3, 0, 30_000, 10_000), 1);
  assert.equal(nextEjectionCount(3, 0, 1e9, 10_000), 1);
  // Put back by hand before its end: no interval spent back yet.
  assert.equal(nextEjectionCount(2, 50_000, 20_000, 10_000), 3);
});

test("success rate: a node well below its peers is an outlier; noise, spread and low volume are not", () => {
  const rules = {
    successRateMinNodes: 3,
    successRateMinRequests: 100,
    successRateStdevFactor: 1.9,
    successRateMinGap: 0.1,
  };
  const at = (rate: number, requests = 200) => ({
    successes: Math.round(rate * requests),
    failures: requests - Math.round(rate * requests),
  });
  // One bad node among four: Envoy's rule over all four could never single
  // it out (a lone outlier is at most 1.5 deviations below such a mean).
  const four = successRateOutliers(
    [at(1), at(0.995), at(1), at(0.6)],
    rules,
  );
  assert.deepEqual(four.map((o) => o.index), [3]);
  assert.equal(four[0].rate, 0.6);
  assert.equal(four[0].requests, 200);
  assert.ok(Math.abs(four[0].peerMean - 0.99833) < 1e-4);
  // A few failures more than peers that have none: within the gap.
  assert.deepEqual(
    successRateOutliers([at(1), at(1), at(1), at(0.92)], rules),
    [],
  );
  // Peers spread widely: the deviations decide, not the gap.
  const spread = [at(1), at(0.8), at(0.9), at(0.78)];
  assert.deepEqual(successRateOutliers(spread, rules), []);
  assert.deepEqual(
    successRateOutliers(spread, { ...rules, successRateStdevFactor: 0 })
      .map((o) => o.index),
    [3],
    "the gap alone would have it",
  );
  assert.deepEqual(
    successRateOutliers(spread, {
      ...rules,
      successRateStdevFactor: 0,
      successRateMinGap: 0,
    }).map((o) => o.index),
    [3, 1],
    "worst first",
  );
  // Too few requests: not compared; too few compared: no verdict.
  assert.deepEqual(
    successRateOutliers([at(1), at(1), at(0.2, 99)], rules),
    [],
  );
  assert.deepEqual(
    successRateOutliers([at(1), at(1), at(0.2, 99)], {
      ...rules,
      successRateMinNodes: 2,
    }),
    [],
    "the low-volume node is not judged",
  );
  assert.deepEqual(
    successRateOutliers([at(1), at(0.2)], { ...rules, successRateMinNodes: 2 })
      .map((o) => o.index),
    [1],
  );
  assert.deepEqual(
    successRateOutliers([at(1), at(1), at(0)], {
      ...rules,
      successRateMinNodes: 0,
    }),
    [],
    "0 turns it off",
  );
});

// --- ejection through the client -------------------------------------------

test("five node failures in a row eject a node through nodeHealthChanged; each new ejection lasts longer, bounded; good behaviour brings the count down", async () => {
  await scene(2, {}, async (s) => {
    const { client, clock, changes } = s;
    const n1 = healthOf(s, "n1");
    // Four failures and an answer (NotFound counts as one): no run of five.
    for (let i = 0; i < 4; i++) await sendTo(client, "n1", OVERLOADED);
    await sendTo(client, "n1", ops.fail(RemoteErrorCode.NotFound, false));
    for (let i = 0; i < 4; i++) await sendTo(client, "n1", OVERLOADED);
    assert.deepEqual(changes, []);
    await sendTo(client, "n1", OVERLOADED);
    const ejectedAt = clock.now();
    assert.equal(changes.length, 1);
    assert.match(
      changes[0],
      /^n1:false ejected for \d+ ms \(ejection 1\): 5 requests in a row failed, the last with: node n1 answered error 4: busy$/,
    );
    assert.equal(n1.isEjected, true);
    assert.equal(n1.ejectionCount, 1);
    const first = n1.ejectedUntil! - ejectedAt;
    assert.ok(first > 27_000 - 1e-6 && first <= 30_000, `${first} ms`);
    // Out of rotation: every request goes to n0.
    for (let i = 0; i < 6; i++) {
      assert.equal((await send(client, ops.echo())).nodeId, "n0");
    }
    // Back when its time is over, with an event that says so.
    await clock.advance(Math.ceil(first) - 1);
    assert.equal(n1.isHealthy, false);
    await clock.advance(1);
    assert.equal(n1.isHealthy, true);
    assert.match(changes[1], /^n1:true ejection ended after \d+ ms$/);

    // Failing again at once: twice as long. Then three times, ... up to
    // the maximum, 300 s: count 10 and beyond.
    const lengths = [first];
    for (let count = 2; count <= 12; count++) {
      for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
      assert.equal(n1.ejectionCount, count);
      const length = n1.ejectedUntil! - clock.now();
      lengths.push(length);
      const full = Math.min(30_000 * count, 300_000);
      assert.ok(
        length > full * (1 - EJECTION_JITTER) - 1e-6 && length <= full,
        `ejection ${count}: ${length} ms`,
      );
      await clock.advance(Math.ceil(length));
      assert.equal(n1.isHealthy, true);
    }
    assert.ok(lengths[1] > lengths[0] && lengths[2] > lengths[1]);
    assert.ok(Math.max(...lengths) <= 300_000);

    // Behaving for three intervals (10 s each) forgives three ejections.
    await clock.advance(30_000);
    for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
    assert.equal(n1.ejectionCount, 12 - 3 + 1);
  });
});

test("a success rate well below its peers' ejects a node at the end of the window (four nodes)", async () => {
  await scene(4, {
    outlierEjection: { successRateMinRequests: 20 },
  }, async (s) => {
    const { client, clock, changes } = s;
    // Learn the round-robin cycle, then send so that n3 fails two
    // requests in five (never five in a row) while the others succeed.
    const cycle: string[] = [];
    for (let i = 0; i < 4; i++) {
      cycle.push((await send(client, ops.echo())).nodeId!);
    }
    assert.deepEqual([...cycle].sort(), ["n0", "n1", "n2", "n3"]);
    const start = clock.now();
    for (let round = 0; round < 30; round++) {
      for (const nodeId of cycle) {
        const fail = nodeId === "n3" && round % 5 < 2;
        const outcome = await send(client, fail ? OVERLOADED : ops.echo());
        assert.equal(outcome.nodeId, nodeId);
        assert.equal(outcome.ok, !fail);
      }
    }
    assert.deepEqual(changes, [], "no verdict before the window closes");
    await clock.advance(10_000 - (clock.now() - start) - 1);
    assert.deepEqual(changes, []);
    await clock.advance(1);
    assert.equal(changes.length, 1);
    assert.match(
      changes[0],
      /^n3:false ejected for \d+ ms \(ejection 1\): success rate 60\.0% over 30 requests, its peers' 100\.0% \(±0\.0%\)$/,
    );
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) {
      seen.add((await send(client, ops.echo())).nodeId!);
    }
    assert.deepEqual([...seen].sort(), ["n0", "n1", "n2"]);
  });
});

test("a node a little worse than its peers, or with too few requests, stays", async () => {
  await scene(3, {
    outlierEjection: { successRateMinRequests: 20 },
  }, async (s) => {
    const { client, clock, changes } = s;
    const cycle: string[] = [];
    for (let i = 0; i < 3; i++) {
      cycle.push((await send(client, ops.echo())).nodeId!);
    }
    for (let round = 0; round < 25; round++) {
      for (const nodeId of cycle) {
        // n2 fails 4% of its requests: within the 10-point gap.
        await send(
          client,
          nodeId === "n2" && round === 3 ? OVERLOADED : ops.echo(),
        );
      }
    }
    await clock.advance(10_000);
    assert.deepEqual(changes, []);
    // The next window: n2 fails half of only 10 requests.
    for (let round = 0; round < 10; round++) {
      for (const nodeId of cycle) {
        await send(
          client,
          nodeId === "n2" && round % 2 === 0 ? OVERLOADED : ops.echo(),
        );
      }
    }
    await clock.advance(10_000);
    assert.deepEqual(changes, []);
  });
});

test("at most maxEjectedShare of the nodes are ejected at once, and never the last healthy one; health checks still take it down", async () => {
  // Four nodes, every request failing: the run of five is reached by each
  // node in turn, but half of four is two.
  await scene(4, {}, async (s) => {
    for (let i = 0; i < 40; i++) await send(s.client, OVERLOADED);
    assert.equal(s.client.manager.healthyCount, 2);
    assert.equal(s.changes.length, 2);
    assert.ok(s.changes.every((c) => /^n\d:false ejected /.test(c)));
  });
  // Two nodes, and a share that would allow both: the last one stays.
  await scene(2, {
    outlierEjection: { maxEjectedShare: 1 },
    healthConfig: { intervalMs: 1000, unhealthyThreshold: 2 },
  }, async (s) => {
    for (let i = 0; i < 40; i++) await send(s.client, OVERLOADED);
    assert.equal(s.client.manager.healthyCount, 1);
    assert.equal(s.changes.length, 1);
    const last = s.client.manager.nodes.find((n) => n.health.isHealthy)!;
    assert.ok(last.health.consecutiveRequestFailures >= 15);
    // Failed health checks are not what requests see: they take the last
    // node out as before, and the client fails fast.
    await s.nodes.find((n) => n.address === last.address)!.stop();
    await s.clock.advance(2000);
    assert.equal(s.client.manager.healthyCount, 0);
    await assert.rejects(
      s.client.request(ops.echo()),
      (e: unknown) =>
        e instanceof NoHealthyNodesError && e.code === "NO_HEALTHY_NODES" &&
        /no healthy node among 2: /.test(e.message) &&
        e.message.includes(last.address),
    );
  });
});

test("health checks do not end an ejection early, and failed ones hold the node down past its end", async () => {
  await scene(2, {
    healthConfig: {
      intervalMs: 1000,
      unhealthyThreshold: 2,
      healthyThreshold: 1,
    },
  }, async (s) => {
    const { client, clock, changes } = s;
    const n1 = healthOf(s, "n1");
    // n1 answers pings but fails requests: ejected, and every health
    // check during the ejection passes.
    for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
    const until = n1.ejectedUntil!;
    const passedBefore = n1.totalSuccesses;
    await clock.advance(Math.ceil(until - clock.now()) - 1);
    assert.ok(n1.totalSuccesses - passedBefore >= 25, "checks kept passing");
    assert.equal(n1.isHealthy, false, "still ejected");
    assert.equal(changes.length, 1);
    await clock.advance(1);
    assert.equal(n1.isHealthy, true);
    assert.match(changes[1], /^n1:true ejection ended after/);

    // Ejected again, and this time the node dies during the ejection: the
    // checks hold it down when the ejection ends, without an event.
    for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
    assert.equal(n1.ejectionCount, 2);
    await s.nodes[1].stop();
    await clock.advance(Math.ceil(n1.ejectedUntil! - clock.now()));
    assert.equal(n1.isEjected, false);
    assert.equal(n1.isHealthy, false, "held down by the health checks");
    assert.equal(changes.length, 3);
    // Back up: the checks bring it back, as they would any node.
    await s.nodes[1].start();
    await clock.advance(2000);
    assert.equal(n1.isHealthy, true);
    assert.equal(changes.length, 4);
    assert.match(changes[3], /^n1:true 1 health checks passed$/);
  });
});

test("markNodeHealthy ends an ejection at once", async () => {
  await scene(2, {}, async (s) => {
    const n1 = healthOf(s, "n1");
    for (let i = 0; i < 5; i++) await sendTo(s.client, "n1", OVERLOADED);
    assert.equal(n1.isEjected, true);
    assert.equal(
      s.client.manager.markNodeHealthy(n1.address, "operator"),
      true,
    );
    assert.equal(n1.isEjected, false);
    assert.equal(n1.isHealthy, true);
    await s.clock.advance(60_000);
    assert.deepEqual(s.changes.map((c) => c.split(" ")[0]), [
      "n1:false",
      "n1:true",
    ]);
  });
});

test("outlierEjection: false leaves nodes to the health checks", async () => {
  await scene(2, { outlierEjection: false }, async (s) => {
    for (let i = 0; i < 40; i++) await send(s.client, OVERLOADED);
    assert.equal(s.client.manager.healthyCount, 2);
    assert.deepEqual(s.changes, []);
  });
});

test("ejection follows the membership: a removed node's ejection ends with it, and the share counts the nodes of the moment", async () => {
  await scene(2, {}, async (s) => {
    const { client, clock, changes } = s;
    for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
    assert.equal(changes.length, 1);
    const removed = healthOf(s, "n1");
    await client.removeNode(s.nodes[1].address);
    await clock.advance(60_000);
    assert.equal(changes.length, 1, "no return announced for a node gone");
    assert.equal(removed.isEjected, true, "its ejection timer never fired");
    // Two nodes again, then three: half of three is one at a time.
    const extra = await Promise.all(
      ["n2", "n3"].map((nodeId) =>
        startTestNode({ nodeId, runtime: s.network, clock })
      ),
    );
    try {
      for (const node of extra) {
        assert.equal((await client.addNode(node.address)).healthy, true);
      }
      for (let i = 0; i < 30; i++) await send(client, OVERLOADED);
      assert.equal(client.manager.healthyCount, 2, "one of three ejected");
      assert.equal(changes.filter((c) => /:false ejected/.test(c)).length, 2);
    } finally {
      await client.disconnect({ timeoutMs: 1 });
      await Promise.all(extra.map((node) => node.close()));
    }
  });
});

// --- timers ------------------------------------------------------------------

test("ejection timers run on the client's clock and are cleared on disconnect", async () => {
  const network = createMemoryNetwork();
  // The real clock, counted: an ejection's 30 s timer must not outlive
  // the client.
  const clock = new CountingClock(systemClock);
  const nodes = await Promise.all(
    [0, 1].map((i) => startTestNode({ nodeId: `n${i}`, runtime: network })),
  );
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: network,
    clock,
    loadBalancing: "round-robin",
    retryConfig: { maxRetries: 0 },
    healthConfig: { intervalMs: 0 },
  });
  try {
    for (let i = 0; i < 5; i++) await sendTo(client, "n1", OVERLOADED);
    assert.equal(client.manager.healthyCount, 1);
    assert.equal(client.manager.nodes[1].health.isEjected, true);
  } finally {
    await client.disconnect({ timeoutMs: 100 });
    await Promise.all(nodes.map((n) => n.close()));
  }
  assert.equal(clock.liveTimers, 0, "every timer fired or was cleared");
});

// --- panic threshold ---------------------------------------------------------

test("panic threshold: below it requests spread over every node; at or above it only over healthy ones", async () => {
  await scene(4, { panicThreshold: 0.5 }, async (s) => {
    const { client } = s;
    const manager = client.manager;
    const spread = async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 8; i++) {
        seen.add((await send(client, ops.echo())).nodeId!);
      }
      return [...seen].sort();
    };
    manager.markNodeUnhealthy(s.nodes[0].address, "test");
    manager.markNodeUnhealthy(s.nodes[1].address, "test");
    // Two of four healthy is not fewer than half.
    assert.deepEqual(await spread(), ["n2", "n3"]);
    manager.markNodeUnhealthy(s.nodes[2].address, "test");
    // One of four: panic, every node gets its share.
    assert.deepEqual(await spread(), ["n0", "n1", "n2", "n3"]);
    manager.markNodeUnhealthy(s.nodes[3].address, "test");
    assert.deepEqual(await spread(), ["n0", "n1", "n2", "n3"]);
    manager.markNodeHealthy(s.nodes[0].address, "test");
    manager.markNodeHealthy(s.nodes[1].address, "test");
    assert.deepEqual(await spread(), ["n0", "n1"]);
  });
  // Off by default: with no node healthy the client fails fast.
  assert.equal(DEFAULT_PANIC_THRESHOLD, 0);
  await scene(2, {}, async (s) => {
    for (const node of s.nodes) {
      s.client.manager.markNodeUnhealthy(node.address, "test");
    }
    await assert.rejects(
      s.client.request(ops.echo()),
      (e: unknown) =>
        e instanceof NoHealthyNodesError && e.code === "NO_HEALTHY_NODES" &&
        /no healthy node among 2: /.test(e.message) &&
        s.nodes.every((n) => e.message.includes(n.address)),
    );
  });
});

// --- configuration -----------------------------------------------------------

test("outlierEjection and panicThreshold: defaults, on and off, and ConfigErrors naming the field", () => {
  const c = resolveConfig({ hosts: ["a"] });
  assert.deepEqual(c.outlierEjection, { ...DEFAULT_OUTLIER_EJECTION });
  assert.equal(c.panicThreshold, 0);
  assert.deepEqual(
    resolveConfig({ hosts: ["a"], outlierEjection: true }).outlierEjection,
    { ...DEFAULT_OUTLIER_EJECTION },
  );
  assert.equal(
    resolveConfig({ hosts: ["a"], outlierEjection: false }).outlierEjection,
    undefined,
  );
  assert.equal(
    resolveConfig({ hosts: ["a"], outlierEjection: { consecutiveFailures: 0 } })
      .outlierEjection?.consecutiveFailures,
    0,
  );
  const bad: [string, unknown, RegExp][] = [
    ["consecutiveFailures", -1, /integer in 0–1000000/],
    ["consecutiveFailures", 2.5, /integer/],
    ["intervalMs", 0, /> 0/],
    ["baseEjectionTimeMs", "30s", /milliseconds/],
    ["maxEjectionTimeMs", 2 ** 31, /at most 2147483647 ms/],
    ["maxEjectedShare", 1.5, /finite number in 0–1, got 1.5/],
    ["maxEjectedShare", NaN, /finite/],
    ["successRateMinNodes", 1, /0 \(off\) or at least 2/],
    ["successRateMinRequests", 0, /integer in 1–/],
    ["successRateStdevFactor", -1, /in 0–100, got -1/],
    ["successRateMinGap", 2, /in 0–1, got 2/],
  ];
  for (const [field, value, pattern] of bad) {
    configError(
      { outlierEjection: { [field]: value } },
      `outlierEjection.${field}`,
      pattern,
    );
  }
  configError(
    {
      outlierEjection: {
        baseEjectionTimeMs: 60_000,
        maxEjectionTimeMs: 30_000,
      },
    },
    "outlierEjection.maxEjectionTimeMs",
    /must be at least outlierEjection\.baseEjectionTimeMs \(60000\)/,
  );
  configError(
    { outlierEjection: { consecutiveFailure: 3 } },
    "outlierEjection.consecutiveFailure",
    /unknown option/,
  );
  configError(
    { outlierEjection: "on" },
    "outlierEjection",
    /expected an object/,
  );
  configError({ panicThreshold: 1.5 }, "panicThreshold", /in 0–1, got 1.5/);
  configError({ panicThreshold: "half" }, "panicThreshold", /finite number/);
  configError(
    { panicThreshold: 0.5, whenNoHealthyNodes: "fail" },
    "panicThreshold",
    /whenNoHealthyNodes cannot be "fail"/,
  );
  assert.equal(
    resolveConfig({
      hosts: ["a"],
      panicThreshold: 0.5,
      whenNoHealthyNodes: "tryAll",
    })
      .panicThreshold,
    0.5,
  );
});

test("a panicThreshold resolves whenNoHealthyNodes to the tryAll it implies, so client.config tells what the client does", () => {
  // It resolved to "fail" beside panicThreshold 0.5, while the client
  // spreads over every node when none is healthy (docs/CONFIGURATION.md:
  // the threshold "implies tryAll").
  const c = resolveConfig({ hosts: ["a"], panicThreshold: 0.5 });
  assert.equal(c.panicThreshold, 0.5);
  assert.equal(c.whenNoHealthyNodes, "tryAll");
  assert.equal(resolveConfig({ hosts: ["a"] }).whenNoHealthyNodes, "fail");
  assert.equal(
    resolveConfig({ hosts: ["a"], panicThreshold: 0 }).whenNoHealthyNodes,
    "fail",
  );
});
