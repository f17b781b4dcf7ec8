// The fault matrix, part 1: faults met while connecting. Each test is one
// row and checks that every request settles once, in time and typed; that
// nothing escapes to the process; that retries happen only where safe;
// that the client recovers when the fault clears; and that nothing leaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NodewireError } from "../src/errors.ts";
import { ConnectFailedError } from "../src/errors.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { type Scene, startScene } from "./support/fault_scene.ts";
import { assertClean, nodeOf, rowHealth } from "./helpers.ts";

/** Sends `count` echo requests at once and waits for all of them. */
async function burst(
  s: Scene,
  count: number,
  label: string,
  options: { idempotent?: boolean } = {},
) {
  const tracked = Array.from({ length: count }, (_, i) =>
    s.tracker.track(
      `${label} ${i}`,
      s.client.request(ops.echo(`${label}-${i}`), options),
    ));
  await s.run(Promise.all(tracked.map((t) => t.done)));
  for (const t of tracked) {
    if (t.ok) {
      assert.equal(
        new TextDecoder().decode(decodeReply(t.value as Uint8Array).data),
        t.label.replace(" ", "-"),
        "each reply belongs to its request",
      );
    }
  }
  return tracked;
}

test("row: connection refused — never sent, so retried on another node even when not idempotent; recovers", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 2,
    config: {
      poolConfig: { minConnections: 1, maxConnections: 2 },
      healthConfig: rowHealth,
    },
  });
  await s.proxies[1].setFaults({ down: true });
  // A client whose only node refuses fails at once, typed, naming why.
  const alone = s.tracker.track(
    "connect to a refusing node",
    s.connect({ hosts: [s.proxies[1].address] }),
  );
  await s.run(alone.done);
  assert.ok(alone.error instanceof ConnectFailedError);
  assert.equal(
    alone.error.failures[0].error instanceof NodewireError &&
      (alone.error.failures[0].error as NodewireError).code,
    "CONNECTION_REFUSED",
  );
  assert.equal(
    alone.settledAt! - alone.startedAt,
    0,
    "no waiting for a refusal",
  );

  const during = await burst(s, 20, "refused");
  assert.equal(during.filter((t) => t.ok).length, 20, "all succeed elsewhere");
  assert.ok(during.every((t) => nodeOf(t) === "n0"));
  assert.ok(
    s.retries.length >= 1,
    "requests that met the refusal were retried",
  );
  for (const r of s.retries) {
    assert.equal((r.detail.error as NodewireError).code, "CONNECTION_REFUSED");
  }
  assert.equal(
    s.nodes[1].stats.requests,
    0,
    "nothing reached the refusing node",
  );
  assert.equal(s.client.stats().nodes[1].healthy, false);

  // The refusals ejected it: passing health checks do not end an
  // ejection early, so it is back when its time (30 s, less jitter) is over.
  assert.equal(s.client.manager.nodes[1].health.isEjected, true);
  await s.proxies[1].clearFaults();
  await s.pass(3000);
  assert.equal(s.client.stats().nodes[1].healthy, false, "still ejected");
  await s.pass(27_000);
  assert.equal(
    s.client.stats().nodes[1].healthy,
    true,
    "back once its ejection is over, the health loop finding it up",
  );
  const after = await burst(s, 10, "recovered");
  assert.ok(after.every((t) => t.ok));
  assert.ok(after.some((t) => nodeOf(t) === "n1"), "requests reach it again");
  s.tracker.assertSettled(1000);
  assertClean(await s.finish());
});

test("row: connect timeout — a peer that never completes the handshake fails within timeoutMs; recovers", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 2,
    noClient: true,
    config: {
      timeoutMs: 2000,
      poolConfig: { minConnections: 1, maxConnections: 2 },
      healthConfig: rowHealth,
    },
  });
  // Accepts TCP, never forwards HELLO nor answers it.
  await s.proxies[1].setFaults({ stall: true });
  const alone = s.tracker.track(
    "connect to a silent peer",
    s.connect({ hosts: [s.proxies[1].address] }),
  );
  await s.run(alone.done);
  assert.ok(alone.error instanceof ConnectFailedError, String(alone.error));
  assert.equal(alone.settledAt! - alone.startedAt, 2000, "exactly timeoutMs");
  const cause = alone.error.failures[0].error as NodewireError;
  assert.equal(cause.code, "CONNECT_TIMEOUT", cause.message);

  s.client = await s.connect();
  assert.equal(s.client.stats().nodes[1].healthy, false);
  const during = await burst(s, 10, "silent");
  assert.ok(during.every((t) => t.ok && nodeOf(t) === "n0"));
  assert.equal(s.retries.length, 0, "unhealthy: no request was sent its way");

  await s.proxies[1].clearFaults();
  await s.pass(3000);
  assert.equal(s.client.stats().nodes[1].healthy, true);
  const after = await burst(s, 10, "recovered");
  assert.ok(after.every((t) => t.ok));
  assert.ok(after.some((t) => nodeOf(t) === "n1"));
  s.tracker.assertSettled(2000);
  assertClean(await s.finish());
});

test("row: a host name that does not resolve (real DNS) — typed HOST_NOT_FOUND, fast; the other nodes serve", async () => {
  const s = await startScene({
    mode: "loopback",
    nodes: 1,
    proxied: false,
    noClient: true,
    config: { timeoutMs: 3000, retryConfig: { initialBackoffMs: 5 } },
  });
  const alone = s.tracker.track(
    "connect to nonexistent.invalid",
    s.connect({ hosts: ["nonexistent.invalid:7000"] }),
  );
  await alone.done;
  assert.ok(alone.error instanceof ConnectFailedError);
  assert.equal(
    (alone.error.failures[0].error as NodewireError).code,
    "HOST_NOT_FOUND",
  );
  s.client = await s.connect({
    hosts: [s.nodes[0].address, "nonexistent.invalid:7000"],
  });
  assert.equal(s.client.stats().nodes[1].healthy, false);
  const during = await burst(s, 10, "dns");
  assert.ok(during.every((t) => t.ok));
  s.tracker.assertSettled(3000);
  assertClean(await s.finish());
});

test("row: a host name that does not resolve, then does (memory network) — the client picks it up", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    noClient: true,
    config: {
      healthConfig: rowHealth,
    },
  });
  s.client = await s.connect({
    hosts: [s.proxies[0].address, "late.invalid:7100"],
  });
  assert.equal(s.client.stats().nodes[1].healthy, false);
  const during = await burst(s, 6, "unresolved");
  assert.ok(during.every((t) => t.ok && nodeOf(t) === "n0"));
  // The name starts resolving: a node comes up under it.
  const late = await startTestNode({
    runtime: s.base,
    clock: s.clock,
    hostname: "late.invalid",
    port: 7100,
    nodeId: "late",
  });
  await s.pass(3000);
  assert.equal(s.client.stats().nodes[1].healthy, true);
  const after = await burst(s, 6, "resolved");
  assert.ok(after.some((t) => nodeOf(t) === "late"));
  s.tracker.assertSettled(1000);
  const result = await s.finish();
  await late.close();
  assertClean(result);
});

/** Most connect attempts to one address within any `windowMs`. */
function peakRate(times: number[], from: number, to: number, windowMs = 1000) {
  const inRange = times.filter((t) => t >= from && t < to);
  let peak = 0;
  for (const start of inRange) {
    peak = Math.max(
      peak,
      inRange.filter((t) => t >= start && t < start + windowMs).length,
    );
  }
  return { peak, total: inRange.length };
}

test("row: all nodes down and then back — fail fast and typed, reconnects back off, pools refill", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 3,
    config: {
      requestTimeoutMs: 1000,
      poolConfig: {
        minConnections: 2,
        maxConnections: 4,
        connectionTimeoutMs: 1000,
      },
      healthConfig: rowHealth,
    },
  });
  let allDownAt = Infinity;
  s.client.addEventListener("nodeHealthChanged", () => {
    if (s.client.manager.healthyCount === 0) allDownAt = s.clock.now();
  });
  const downAt = s.clock.now();
  await Promise.all(s.proxies.map((p) => p.setFaults({ down: true })));
  // Steady load: a request every 50 ms; half of them idempotent.
  const load = (seconds: number, label: string) => {
    const tracked = [];
    return (async () => {
      for (let i = 0; i < seconds * 20; i++) {
        tracked.push(
          s.tracker.track(
            `${label} ${i}`,
            s.client.request(ops.echo(`${label}-${i}`), {
              idempotent: i % 2 === 0,
            }),
          ),
        );
        await s.pass(50);
      }
      return tracked;
    })();
  };
  const down = await load(30, "down");
  const upAt = s.clock.now();
  await Promise.all(s.proxies.map((p) => p.clearFaults()));
  const up = await load(10, "up");
  await s.run(s.tracker.settled());

  // Every request settled in time and typed, none succeeded while down.
  s.tracker.assertSettled(5000);
  assert.equal(
    down.filter((t) => t.ok && t.settledAt! < upAt).length,
    0,
    "nothing succeeded while every node was down",
  );
  // Ejection takes one node out at once, but never the last: the health
  // checks (two misses, a second apart) take the rest.
  assert.ok(
    allDownAt <= downAt + 2000,
    `the outage was noticed within two health checks (${
      allDownAt - downAt
    } ms)`,
  );
  const codes = new Set(
    down.filter((t) => !t.ok).map((t) => (t.error as NodewireError).code),
  );
  for (const code of codes) {
    assert.ok(
      ["NO_HEALTHY_NODES", "RETRIES_EXHAUSTED", "CONNECTION_REFUSED"].includes(
        code,
      ),
      `unexpected ${code}`,
    );
  }
  const known = down.filter((t) => t.startedAt > allDownAt);
  assert.ok(known.length > down.length / 2);
  assert.ok(
    known.every((t) =>
      !t.ok && (t.error as NodewireError).code === "NO_HEALTHY_NODES" &&
      t.settledAt === t.startedAt
    ),
    "once known down, every request fails fast",
  );

  // Reconnect attempts per node: a handful at first, then bounded by the
  // backoff and the health interval, never one per request.
  for (const proxy of s.proxies) {
    const times = s.adapter.connects.get(`127.0.0.1:${proxy.port}`) ?? [];
    const early = peakRate(times, downAt, downAt + 5000);
    const steady = peakRate(times, downAt + 5000, upAt);
    assert.ok(early.total <= 15, `first 5 s: ${early.total} attempts`);
    assert.ok(steady.peak <= 2, `peak ${steady.peak}/s while down`);
    assert.ok(steady.total <= 27, `${steady.total} attempts in 25 s`);
  }

  // Recovered: the last seconds of load all succeed, pools are back at min.
  const tail = up.filter((t) => t.startedAt >= upAt + 5000);
  assert.ok(tail.length > 0 && tail.every((t) => t.ok), "recovered");
  for (const node of s.client.stats().nodes) {
    assert.equal(node.healthy, true);
    assert.ok(
      node.pool.open >= 2,
      `${node.address} refilled to ${node.pool.open}`,
    );
  }
  assertClean(await s.finish());
});

test("row: all nodes down with whenNoHealthyNodes tryAll and no health loop — reconnects back off up to the 5 s cap", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 3,
    config: {
      whenNoHealthyNodes: "tryAll",
      requestTimeoutMs: 1000,
      poolConfig: {
        minConnections: 2,
        maxConnections: 4,
        connectionTimeoutMs: 1000,
      },
      // Only requests and the pools themselves try to reconnect here. And
      // requests take no node out (outlier ejection would spare the last
      // one anyway), so every node gets its share of the requests, as
      // tryAll gives once every node is down.
      healthConfig: { intervalMs: 0 },
      outlierEjection: false,
      // This row is about the pools' reconnect backoff under every retry
      // the policy allows; the budget (tests/retry_budget.test.ts) would
      // turn most of them away.
      retryBudget: false,
    },
  });
  const downAt = s.clock.now();
  await Promise.all(s.proxies.map((p) => p.setFaults({ down: true })));
  const down = [];
  for (let i = 0; i < 30 * 20; i++) {
    down.push(
      s.tracker.track(
        `down ${i}`,
        s.client.request(ops.echo(`d${i}`), { idempotent: i % 2 === 0 }),
      ),
    );
    await s.pass(50);
  }
  const upAt = s.clock.now();
  await Promise.all(s.proxies.map((p) => p.clearFaults()));
  await s.pass(5000);
  const after = await burst(s, 10, "up");
  await s.run(s.tracker.settled());
  s.tracker.assertSettled(5000);
  assert.equal(
    down.filter((t) => t.ok && t.settledAt! < upAt).length,
    0,
    "nothing succeeded while every node was down",
  );
  assert.deepEqual(
    Object.keys(s.tracker.codes()),
    ["RETRIES_EXHAUSTED"],
    "every request tried (tryAll) and gave up after its retries",
  );
  assert.ok(after.every((t) => t.ok), "recovered within the backoff cap");
  for (const proxy of s.proxies) {
    const times = (s.adapter.connects.get(`127.0.0.1:${proxy.port}`) ?? [])
      .filter((t) => t >= downAt && t < upAt);
    const gaps = times.slice(1).map((t, i) => t - times[i]).filter((g) =>
      g > 0
    );
    // 600 requests over 30 s: without backoff that would be hundreds of
    // connects per node. With it: the doubling schedule, then the cap.
    assert.ok(times.length <= 24, `${times.length} connects in 30 s`);
    assert.equal(Math.max(...gaps), 5000, `gaps ${gaps}`);
    assert.deepEqual(gaps.slice(-3), [5000, 5000, 5000], "held at the cap");
    for (let i = 1; i < gaps.length; i++) {
      assert.ok(gaps[i] >= gaps[i - 1], `gaps never shrink: ${gaps}`);
    }
  }
  assertClean(await s.finish());
});
