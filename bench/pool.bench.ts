/**
 * Checkout speed of the SDK's `ConnectionPool` (getConnection /
 * returnConnection) beside generic-pool 3.9 and tarn 3.1, in one run, over
 * a trivial fake connection, so that only the pools' own bookkeeping is
 * measured.
 *
 *   deno run -A bench/pool.bench.ts
 *   bun bench/pool.bench.ts
 *   node --import tsx bench/pool.bench.ts
 *
 * Scenarios:
 * - sequential: one caller, acquire → release, in a loop; a resource is
 *   always free, so this is the "no wait" path of each pool.
 * - concurrent: 100 callers over 10 resources, each acquire → await a
 *   resolved promise (brief work) → release, until a fixed total count;
 *   90 callers are always queued, so this is the wait-queue path.
 *
 * How the comparison is kept fair:
 * - The same resource for all three: a `FakeConnection` built
 *   synchronously, handed over through an already resolved promise.
 * - The same sizes: min = max = 10, every pool filled to 10 before the
 *   first measured round (warm-up rounds run before measuring too).
 * - The same acquire timeout, 5 s, on all three. Each pays for it the way
 *   it is written: ours arms a timer only for a caller that must wait;
 *   generic-pool and tarn arm one on every acquire (tarn cannot turn it
 *   off, generic-pool could, but then it would lack a guarantee the other
 *   two give).
 * - No validation anywhere: generic-pool's testOnBorrow/testOnReturn are
 *   off (its default); tarn's `validate` is its default `() => true`, which
 *   it always runs; ours checks only `isOpen`, a field read. No idle
 *   eviction or lifetime that could fire during a run: ours has
 *   idleTimeoutMs = maxLifetimeMs = 0, generic-pool runs no evictor (its
 *   default), tarn's reaper (its default, every 1 s) never closes
 *   anything at min = max. No event listeners on any pool.
 * - Each pool is called through the same thin adapter (`acquire`,
 *   `release`), and the loop checks on every checkout that no resource is
 *   held by two callers at once (a broken pool would look fast).
 * - Rounds alternate: the order of the three pools rotates every round,
 *   so drift on a busy machine hits all alike. Reported: the median round
 *   per pool and the ratio ours / max(generic-pool, tarn). Target: ≥ 2×.
 *
 * BENCH_QUICK=1 makes it a smoke run of a few seconds. BENCH_POOLS
 * (e.g. `ours`) and BENCH_SCENARIOS (e.g. `concurrent`) narrow a run, to
 * profile one case alone. The last line is one JSON object.
 *
 * @module
 */

import genericPool from "generic-pool";
import tarn from "tarn";
import { ConnectionPool } from "../src/pool/pool.ts";
import { FakeConnection } from "../tests/support/fake_connection.ts";
import {
  env,
  fixed,
  int,
  maxOf,
  median,
  minOf,
  now,
  printTable,
  QUICK,
  runtimeLabel,
  runtimeName,
  yieldToEventLoop,
} from "./harness.ts";

type PoolName = "ours" | "generic-pool" | "tarn";
type Scenario = "sequential" | "concurrent";

const POOLS = (env("BENCH_POOLS") ?? "ours,generic-pool,tarn").split(
  ",",
) as PoolName[];
const SCENARIOS = (env("BENCH_SCENARIOS") ?? "sequential,concurrent").split(
  ",",
) as Scenario[];
const SIZE = 10;
const CALLERS = 100;
const ACQUIRE_TIMEOUT_MS = 5_000;
const ROUNDS = QUICK ? 2 : 9;
const WARMUP_ROUNDS = QUICK ? 1 : 2;
/** Checkouts per round: roughly 0.1-0.5 s each at full size. */
const OPS: Record<Scenario, number> = {
  sequential: QUICK ? 20_000 : 200_000,
  concurrent: QUICK ? 10_000 : 100_000,
};
/** A round stops early after this long, whatever its count. */
const ROUND_LIMIT_MS = QUICK ? 1_000 : 5_000;

/** The trivial resource every pool hands out. */
class BenchConnection extends FakeConnection {
  /** Held by a caller right now (checked by the bench, not the pools). */
  held = false;
}

const create = (): Promise<BenchConnection> =>
  Promise.resolve(new BenchConnection());

/** One pool behind the same two calls, plus setup and teardown. */
interface Contender {
  name: PoolName;
  acquire(): Promise<BenchConnection>;
  release(conn: BenchConnection): void;
  close(): Promise<void>;
}

async function makeOurs(): Promise<Contender> {
  const pool = new ConnectionPool<BenchConnection>({
    address: "bench:0",
    config: {
      minConnections: SIZE,
      maxConnections: SIZE,
      maxConnecting: SIZE,
      connectionTimeoutMs: ACQUIRE_TIMEOUT_MS,
      idleTimeoutMs: 0,
      maxLifetimeMs: 0,
    },
    factory: create,
  });
  pool.start();
  await fill(() => pool.getConnection(), (c) => pool.returnConnection(c));
  if (pool.stats().open !== SIZE) {
    throw new Error(`ours: ${pool.stats().open} open after warm-up`);
  }
  return {
    name: "ours",
    acquire: () => pool.getConnection(),
    release: (conn) => pool.returnConnection(conn),
    close: () => pool.close(),
  };
}

async function makeGenericPool(): Promise<Contender> {
  const pool = genericPool.createPool<BenchConnection>({
    create,
    destroy: (conn: BenchConnection) => conn.close(),
  }, {
    min: SIZE,
    max: SIZE,
    acquireTimeoutMillis: ACQUIRE_TIMEOUT_MS,
  });
  await pool.ready();
  await fill(() => pool.acquire(), (c) => void pool.release(c));
  if (pool.size !== SIZE) {
    throw new Error(`generic-pool: ${pool.size} open after warm-up`);
  }
  return {
    name: "generic-pool",
    acquire: () => pool.acquire(),
    // Resolves at once for a borrowed resource; callers do not await it.
    release: (conn) => void pool.release(conn),
    close: async () => {
      await pool.drain();
      await pool.clear();
    },
  };
}

async function makeTarn(): Promise<Contender> {
  const pool = new tarn.Pool<BenchConnection>({
    create,
    destroy: (conn: BenchConnection) => conn.close(),
    min: SIZE,
    max: SIZE,
    acquireTimeoutMillis: ACQUIRE_TIMEOUT_MS,
  });
  // tarn opens nothing up front: acquiring SIZE at once makes it create them.
  await fill(() => pool.acquire().promise, (c) => pool.release(c));
  const open = pool.numFree() + pool.numUsed();
  if (open !== SIZE) throw new Error(`tarn: ${open} open after warm-up`);
  return {
    name: "tarn",
    acquire: () => pool.acquire().promise,
    release: (conn) => void pool.release(conn),
    close: async () => {
      await pool.destroy();
    },
  };
}

/** Checks out SIZE resources at once and gives them back: a full pool. */
async function fill(
  acquire: () => Promise<BenchConnection>,
  release: (conn: BenchConnection) => void,
): Promise<void> {
  const held: Promise<BenchConnection>[] = [];
  for (let i = 0; i < SIZE; i++) held.push(acquire());
  for (const conn of await Promise.all(held)) release(conn);
}

interface Round {
  completed: number;
  seconds: number;
  /** Checkouts of a resource that another caller still held. */
  violations: number;
}

async function runSequential(pool: Contender, count: number): Promise<Round> {
  const { acquire, release } = pool;
  let completed = 0;
  let violations = 0;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  while (completed < count) {
    const conn = await acquire();
    if (conn.held) violations++;
    conn.held = true;
    conn.held = false;
    release(conn);
    // A clock read per 1024 checkouts bounds the round in time.
    if ((++completed & 1023) === 0 && now() > deadline) break;
  }
  return { completed, seconds: (now() - started) / 1000, violations };
}

async function runConcurrent(pool: Contender, count: number): Promise<Round> {
  const { acquire, release } = pool;
  let issued = 0;
  let completed = 0;
  let violations = 0;
  let stop = false;
  const started = now();
  const deadline = started + ROUND_LIMIT_MS;
  const caller = async () => {
    while (!stop && issued < count) {
      issued++;
      const conn = await acquire();
      if (conn.held) violations++;
      conn.held = true;
      await Promise.resolve(); // brief work
      conn.held = false;
      release(conn);
      if ((++completed & 1023) === 0 && now() > deadline) stop = true;
    }
  };
  const callers: Promise<void>[] = [];
  for (let i = 0; i < CALLERS; i++) callers.push(caller());
  await Promise.all(callers);
  return { completed, seconds: (now() - started) / 1000, violations };
}

const run: Record<
  Scenario,
  (pool: Contender, count: number) => Promise<Round>
> = {
  sequential: runSequential,
  concurrent: runConcurrent,
};

const makers: Record<PoolName, () => Promise<Contender>> = {
  ours: makeOurs,
  "generic-pool": makeGenericPool,
  tarn: makeTarn,
};
const contenders: Contender[] = [];
for (const name of POOLS) contenders.push(await makers[name]());

interface Series {
  pool: PoolName;
  scenario: Scenario;
  rates: number[];
  ops: number;
  violations: number;
}

const series: Series[] = [];
const totalStarted = now();
for (const scenario of SCENARIOS) {
  const count = OPS[scenario];
  const group = contenders.map((pool): [Contender, Series] => [pool, {
    pool: pool.name,
    scenario,
    rates: [],
    ops: 0,
    violations: 0,
  }]);
  for (let w = 0; w < WARMUP_ROUNDS; w++) {
    for (const [pool] of group) await run[scenario](pool, count);
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate who goes first, so no pool always follows the same one.
    const order = group.map((_, i) => group[(i + r) % group.length]);
    for (const [pool, s] of order) {
      await yieldToEventLoop();
      const round = await run[scenario](pool, count);
      s.rates.push(round.completed / round.seconds);
      s.ops += round.completed;
      s.violations += round.violations;
    }
  }
  series.push(...group.map(([, s]) => s));
}
const totalSeconds = (now() - totalStarted) / 1000;
for (const pool of contenders) await pool.close();

interface Figures {
  pool: PoolName;
  scenario: Scenario;
  rounds: number;
  ops: number;
  opsPerSecond: number;
  minOpsPerSecond: number;
  maxOpsPerSecond: number;
  violations: number;
}

const figures: Figures[] = series.map((s) => ({
  pool: s.pool,
  scenario: s.scenario,
  rounds: s.rates.length,
  ops: s.ops,
  opsPerSecond: median(s.rates),
  minOpsPerSecond: minOf(s.rates),
  maxOpsPerSecond: maxOf(s.rates),
  violations: s.violations,
}));

/** ours / the faster of generic-pool and tarn, per scenario. */
const ratios: Partial<Record<Scenario, number>> = {};
for (const scenario of SCENARIOS) {
  const rate = (pool: PoolName) =>
    figures.find((f) => f.pool === pool && f.scenario === scenario)
      ?.opsPerSecond;
  const ours = rate("ours");
  const others = [rate("generic-pool"), rate("tarn")].filter(
    (r): r is number => r !== undefined,
  );
  if (ours !== undefined && others.length > 0) {
    ratios[scenario] = ours / Math.max(...others);
  }
}

console.log(
  `ConnectionPool vs generic-pool vs tarn on ${runtimeLabel()}: ` +
    `min = max = ${SIZE}, fake connections` +
    `${QUICK ? " (BENCH_QUICK: smoke run, figures not meaningful)" : ""}`,
);
console.log(
  `${ROUNDS} rotating rounds per pool after ${WARMUP_ROUNDS} warm-up; ` +
    `concurrent = ${CALLERS} callers; ${fixed(totalSeconds, 1)} s measured`,
);
printTable(
  [
    "scenario",
    "pool",
    "ops/round",
    "median ops/s",
    "min",
    "max",
    "ours is",
  ],
  figures.map((f) => {
    const ours = figures.find((o) =>
      o.pool === "ours" && o.scenario === f.scenario
    );
    return [
      f.scenario,
      f.pool,
      int(OPS[f.scenario]),
      int(f.opsPerSecond),
      int(f.minOpsPerSecond),
      int(f.maxOpsPerSecond),
      f.pool === "ours" || ours === undefined
        ? "-"
        : `${fixed(ours.opsPerSecond / f.opsPerSecond, 2)}x`,
    ];
  }),
);
for (const scenario of SCENARIOS) {
  const ratio = ratios[scenario];
  if (ratio === undefined) continue;
  console.log(
    `target ours / max(generic-pool, tarn) >= 2x, ${scenario}: ` +
      `${fixed(ratio, 2)}x ${ratio >= 2 ? "(met)" : "(NOT met)"}`,
  );
}
const violations = figures.reduce((sum, f) => sum + f.violations, 0);
if (violations > 0) {
  console.log(`WARNING: ${violations} checkouts of a resource already held`);
}
console.log(JSON.stringify({
  bench: "pool",
  runtime: runtimeName(),
  version: runtimeLabel(),
  quick: QUICK,
  size: SIZE,
  callers: CALLERS,
  results: figures.map((f) => ({
    ...f,
    opsPerSecond: Math.round(f.opsPerSecond),
    minOpsPerSecond: Math.round(f.minOpsPerSecond),
    maxOpsPerSecond: Math.round(f.maxOpsPerSecond),
  })),
  ratios: Object.fromEntries(
    Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))]),
  ),
}));
