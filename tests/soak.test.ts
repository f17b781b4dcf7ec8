// Soak: random faults across three nodes, each behind a fault proxy on
// real loopback sockets, under steady load. It checks that no request is
// lost or answered twice, that no reply reaches the wrong request, that
// every request settles within its bound and typed, and that heap, open
// sockets and timers come back to where they started.
//
// Runs about 16 s by default; NODEWIRE_SOAK_SECONDS=300 runs longer (pass
// a matching --timeout to bun test). NODEWIRE_SOAK_SEED replays a run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import { NodewireError } from "../src/errors.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { countChannels, CountingClock } from "./support/counting.ts";
import { eventually, watchEscapes } from "./support/fault_harness.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { type ProxyFaults, startFaultProxy } from "../testing/proxy.ts";
import { seeded } from "./helpers.ts";

const g = globalThis as {
  process?: {
    env?: Record<string, string | undefined>;
    memoryUsage?: () => { heapUsed: number };
  };
  Bun?: { gc(force: boolean): void };
  gc?: () => void;
};
const env = g.process?.env ?? {};
const SECONDS = Math.max(8, Number(env.NODEWIRE_SOAK_SECONDS ?? 16));
const SEED = Number(env.NODEWIRE_SOAK_SEED ?? Date.now() % 1_000_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function heap(): Promise<number> {
  g.Bun?.gc(true);
  g.gc?.();
  await sleep(50);
  return g.process?.memoryUsage?.().heapUsed ?? 0;
}

// Per attempt: at most the acquire wait (1 s) plus the request timeout
// (1 s); four attempts and the backoffs between them.
const REQUEST_BOUND_MS = 4 * (1000 + 1000) + 20 + 40 + 80 + 500;

test(
  `soak: ${SECONDS} s of random faults on 3 nodes under load (seed ${SEED})`,
  {
    timeout: (SECONDS + 60) * 1000,
  },
  async () => {
    const random = seeded(SEED);
    const watch = watchEscapes();
    const base = await getAdapter();
    const adapter = countChannels(base);
    const clock = new CountingClock(systemClock);
    const nodes = await Promise.all(
      [0, 1, 2].map((i) => startTestNode({ runtime: base, nodeId: `n${i}` })),
    );
    const proxies = await Promise.all(
      nodes.map((node) =>
        startFaultProxy({ target: node, runtime: base, random })
      ),
    );
    const client = await Client.connect({
      hosts: proxies.map((p) => p.address),
      runtime: adapter,
      clock,
      timeoutMs: 1000,
      requestTimeoutMs: 1000,
      poolConfig: {
        minConnections: 2,
        maxConnections: 4,
        connectionTimeoutMs: 1000,
        heartbeatIntervalMs: 500,
      },
      retryConfig: { initialBackoffMs: 20, maxBackoffMs: 200, maxRetries: 3 },
      healthConfig: {
        intervalMs: 250,
        timeoutMs: 200,
        unhealthyThreshold: 2,
        healthyThreshold: 1,
      },
    });

    // ---------------------------------------------------------------- load
    let nextId = 0;
    let issued = 0;
    let settled = 0;
    let succeeded = 0;
    let slowest = 0;
    const settlements = new Map<number, number>();
    const codes: Record<string, number> = {};
    const problems: string[] = [];
    let clearedAt = Infinity;
    let lateFailures = 0;
    let running = true;

    async function one(): Promise<void> {
      const id = nextId++;
      const data = `req-${id}-${Math.floor(random() * 1e9)}`;
      const idempotent = random() < 0.5;
      const payload = random() < 0.1 ? ops.sleep(5, data) : ops.echo(data);
      const started = performance.now();
      issued++;
      let outcome: { ok: boolean; value?: Uint8Array; error?: unknown };
      try {
        outcome = {
          ok: true,
          value: await client.request(payload, { idempotent }),
        };
      } catch (error) {
        outcome = { ok: false, error };
      }
      const took = performance.now() - started;
      slowest = Math.max(slowest, took);
      settled++;
      settlements.set(id, (settlements.get(id) ?? 0) + 1);
      if (took > REQUEST_BOUND_MS) problems.push(`${data} took ${took} ms`);
      if (outcome.ok) {
        succeeded++;
        const got = new TextDecoder().decode(decodeReply(outcome.value!).data);
        if (got !== data) problems.push(`${data} got the reply for ${got}`);
      } else {
        const error = outcome.error;
        if (!(error instanceof NodewireError)) {
          problems.push(`${data} failed untyped: ${error}`);
        } else {
          codes[error.code] = (codes[error.code] ?? 0) + 1;
        }
        if (started >= clearedAt + 1500) lateFailures++;
      }
    }

    const workers = Array.from({ length: 8 }, async () => {
      while (running) {
        await one();
        await sleep(1 + Math.floor(random() * 4));
      }
    });

    // --------------------------------------------------------------- faults
    const FAULTS: Array<() => ProxyFaults | "reset" | "restart" | "garbage"> = [
      () => ({ latencyMs: Math.floor(random() * 30), jitterMs: 10 }),
      () => ({ chunkSize: 1 + Math.floor(random() * 7) }),
      () => ({ stall: true }),
      () => "reset",
      () => ({ closeMidFrame: true }),
      () => ({ resetAfterBytes: 50 + Math.floor(random() * 5000) }),
      () => ({ dataLimit: 100 + Math.floor(random() * 10_000) }),
      () => ({ down: true }),
      () => ({ duplicateFrames: true }),
      () => "restart",
      () => "garbage",
    ];
    const applied: Record<string, number> = {};
    async function faulty(index: number, until: number): Promise<void> {
      const proxy = proxies[index];
      const node = nodes[index];
      while (performance.now() < until) {
        await sleep(200 + random() * 800);
        const fault = FAULTS[Math.floor(random() * FAULTS.length)]();
        const name = typeof fault === "string" ? fault : Object.keys(fault)[0];
        applied[name] = (applied[name] ?? 0) + 1;
        const lasts = 100 + random() * 900;
        if (fault === "reset") {
          proxy.resetConnections();
        } else if (fault === "garbage") {
          proxy.inject(new Uint8Array([0xff, 0, 1, 2, 3]));
        } else if (fault === "restart") {
          await node.stop();
          await sleep(lasts);
          await node.start();
        } else {
          await proxy.setFaults(fault);
          await sleep(lasts);
          await proxy.clearFaults();
        }
      }
    }

    await sleep(1000); // warm-up, no faults
    const heapBefore = await heap();
    const faultSeconds = SECONDS - 4;
    const until = performance.now() + faultSeconds * 1000;
    await Promise.all([0, 1, 2].map((i) => faulty(i, until)));
    await Promise.all(proxies.map((p) => p.clearFaults()));
    clearedAt = performance.now();
    await sleep(3000); // recovery under load
    running = false;
    await Promise.all(workers);
    await client.disconnect();
    const channelsClosed = await eventually(() => adapter.openChannels === 0);

    // ------------------------------------------------------------- verdict
    const twice = [...settlements.values()].filter((n) => n !== 1).length;
    const summary = {
      seed: SEED,
      seconds: SECONDS,
      issued,
      succeeded,
      failed: settled - succeeded,
      slowestMs: Math.round(slowest),
      codes,
      faults: applied,
    };
    settlements.clear();
    const heapAfter = await heap();
    console.log(
      `soak ${JSON.stringify(summary)} heap ${
        ((heapAfter - heapBefore) / 1048576).toFixed(1)
      } MiB`,
    );
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(nodes.map((n) => n.close()));
    const escaped = await watch.stop();

    assert.deepEqual(
      problems.slice(0, 5),
      [],
      "wrong replies, untyped or slow",
    );
    assert.equal(settled, issued, "no request lost");
    assert.equal(twice, 0, "no request settled twice");
    assert.ok(issued > SECONDS * 100, `steady load (${issued} requests)`);
    assert.ok(succeeded > issued / 2, "most requests got through the faults");
    assert.equal(
      lateFailures,
      0,
      "after the faults cleared, everything succeeds",
    );
    assert.ok(channelsClosed, `${adapter.openChannels} channels still open`);
    assert.equal(clock.liveTimers, 0, "no timer left");
    assert.deepEqual(escaped, [], "no error escaped");
    if (heapBefore > 0) {
      assert.ok(
        heapAfter - heapBefore < 64 * 1048576,
        `heap grew by ${((heapAfter - heapBefore) / 1048576).toFixed(1)} MiB`,
      );
    }
  },
);
