import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

const IDLE_TIMEOUT_MS = 1000;

type Step =
  | { kind: "exclusive" }
  | { kind: "shared" }
  | { kind: "burst"; size: number }
  | { kind: "pause"; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constant<Step>({ kind: "exclusive" }),
  fc.constant<Step>({ kind: "shared" }),
  fc.integer({ min: 1, max: 6 }).map((size): Step => ({ kind: "burst", size })),
  // Every gap stays within the idle timeout.
  fc.integer({ min: 0, max: IDLE_TIMEOUT_MS - 1 }).map((ms): Step => ({
    kind: "pause",
    ms,
  })),
);

function setup(minConnections: number) {
  const clock = new VirtualClock();
  let nextId = 1;
  const created: number[] = [];
  const pool = new ConnectionPool<FakeConnection>({
    address: "10.0.0.1:7000",
    config: {
      minConnections,
      maxConnections: 8,
      idleTimeoutMs: IDLE_TIMEOUT_MS,
      maxLifetimeMs: 0,
    },
    factory: () => {
      const conn = new FakeConnection(nextId++);
      created.push(conn.id);
      return Promise.resolve(conn);
    },
    clock,
  });
  return { clock, pool, created };
}

/** One request, done one after the other: checkout, a request, give back. */
async function runStep(
  pool: ConnectionPool<FakeConnection>,
  clock: VirtualClock,
  s: Step,
  handedOut: number[],
): Promise<void> {
  switch (s.kind) {
    case "exclusive": {
      const conn = await pool.getConnection();
      handedOut.push(conn.id);
      conn.inFlight++;
      await clock.advance(1);
      conn.inFlight--;
      pool.returnConnection(conn);
      return;
    }
    case "shared": {
      const conn = await pool.acquireShared();
      handedOut.push(conn.id);
      conn.inFlight++;
      await clock.advance(1);
      conn.inFlight--;
      return;
    }
    case "burst": {
      const conns = await Promise.all(
        Array.from({ length: s.size }, () => pool.getConnection()),
      );
      for (const conn of conns) handedOut.push(conn.id);
      await clock.advance(1);
      for (const conn of conns) pool.returnConnection(conn);
      return;
    }
    case "pause":
      await clock.advance(s.ms);
      return;
  }
}

/**
 * Caps the pauses so that no connection sits unused for as long as the idle
 * timeout: `perGap` bounds the time between two uses, `total` the whole run.
 */
function withinIdleTimeout(steps: Step[], limit: "perGap" | "total"): Step[] {
  // Each request takes 1 ms of virtual time; leave room for it.
  let budget = IDLE_TIMEOUT_MS - 2 * (steps.length + 1);
  return steps.map((s) => {
    if (s.kind !== "pause") {
      if (limit === "perGap") budget = IDLE_TIMEOUT_MS - 2;
      return s;
    }
    const ms = Math.max(0, Math.min(s.ms, budget));
    budget -= ms;
    return { kind: "pause", ms };
  });
}

async function run(minConnections: number, steps: Step[]) {
  const { clock, pool, created } = setup(minConnections);
  pool.start();
  await clock.advance(0);
  const handedOut: number[] = [];
  for (const s of steps) await runStep(pool, clock, s, handedOut);
  const stats = pool.stats();
  await pool.close();
  return { created, handedOut, stats };
}

test("Property 5: Connection Reuse", async () => {
  // Sequential use, however long, with every gap within the idle timeout:
  // one connection when min is 0, else only the min connections.
  const sequential = fc.array(
    fc.oneof(
      fc.constant<Step>({ kind: "exclusive" }),
      fc.constant<Step>({ kind: "shared" }),
      fc.constant<Step>({ kind: "burst", size: 1 }),
      fc.integer({ min: 0, max: IDLE_TIMEOUT_MS * 3 }).map((ms): Step => ({
        kind: "pause",
        ms,
      })),
    ),
    { minLength: 1, maxLength: 30 },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 }),
      sequential,
      async (minConnections, generated) => {
        const steps = withinIdleTimeout(generated, "perGap");
        const { created, handedOut, stats } = await run(minConnections, steps);
        const used = steps.some((s) => s.kind !== "pause");
        const expected = minConnections === 0
          ? (used ? [1] : [])
          : Array.from({ length: minConnections }, (_, i) => i + 1);
        assert.deepEqual(created, expected);
        for (const id of handedOut) assert.ok(expected.includes(id));
        // Oldest first: with one request at a time, always the first one.
        assert.ok(handedOut.every((id) => id === 1), `${handedOut}`);
        assert.equal(stats.totalClosed, 0);
      },
    ),
    { numRuns: 100 },
  );
});

test("Property 5: Connection Reuse, with concurrent bursts", async () => {
  // Bursts of concurrent checkouts within one idle timeout: no connection
  // beyond what the minimum or the peak concurrency needs.
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 }),
      fc.array(step, { minLength: 1, maxLength: 25 }),
      async (minConnections, generated) => {
        const steps = withinIdleTimeout(generated, "total");
        let peak = 1;
        for (const s of steps) {
          if (s.kind === "burst") peak = Math.max(peak, s.size);
        }
        const needed = Math.max(minConnections, peak);
        const { created, handedOut, stats } = await run(minConnections, steps);
        assert.ok(
          created.length <= needed,
          `created ${created.length} connections, needed ${needed}`,
        );
        for (const id of handedOut) assert.ok(id <= needed, `id ${id}`);
        assert.equal(stats.totalClosed, 0, "nothing idled out");
      },
    ),
    { numRuns: 100 },
  );
});

test("Property 5 (counterpart): past the idle timeout, a connection above the minimum is not reused", async () => {
  const { clock, pool, created } = setup(0);
  const first = await pool.acquireShared();
  await clock.advance(IDLE_TIMEOUT_MS);
  const second = await pool.acquireShared();
  assert.notEqual(second.id, first.id);
  assert.deepEqual(created, [1, 2]);
  await pool.close();
});
