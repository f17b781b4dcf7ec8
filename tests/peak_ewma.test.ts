// Latency-aware balancing (issue #14, point 3): the peak-EWMA estimate,
// the P2C balancer over `latency × (in flight + 1)`, and a client with
// `loadBalancing: "peak-ewma"` on the memory network and a virtual clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createBalancer,
  HealthyNodeSet,
  PeakEwmaBalancer,
} from "../src/cluster/balancer.ts";
import {
  PEAK_EWMA_DECAY_MS,
  PEAK_EWMA_FAILURE_MS,
  PeakEwma,
  peakEwmaFailureSample,
} from "../src/cluster/peak_ewma.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { parseConnectionString } from "../src/config/url.ts";
import {
  AbortedError,
  ConfigError,
  ConnectionLostError,
  InvalidArgumentError,
  RemoteError,
  RequestTimeoutError,
} from "../src/errors.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { decodeReply, ops } from "../testing/ops.ts";
import { startScene } from "./support/fault_scene.ts";
import { assertClean, seeded } from "./helpers.ts";

const TAU = PEAK_EWMA_DECAY_MS;

function close(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: expected ${expected}, got ${actual}`,
  );
}

test("the estimate jumps to a slower reply at once", () => {
  const ewma = new PeakEwma(1);
  assert.equal(ewma.estimate(0, 0), 0);
  ewma.observe(0, 1, 0);
  assert.equal(ewma.estimate(0, 0), 1);
  ewma.observe(0, 50, 0);
  assert.equal(ewma.estimate(0, 0), 50);
});

test("after a peak, faster replies pull the estimate down over the time constant, not at once", () => {
  const ewma = new PeakEwma(1);
  ewma.observe(0, 50, 0);
  // A fast reply right after the peak hardly moves it.
  ewma.observe(0, 1, 1);
  assert.ok(ewma.estimate(0, 1) > 49.9);
  // One time constant later, a fast reply takes 1 - 1/e of the way.
  const before = ewma.estimate(0, 1);
  ewma.observe(0, 1, 1 + TAU);
  const w = Math.exp(-1);
  close(ewma.estimate(0, 1 + TAU), before * w + 1 * (1 - w), "after one tau");
});

test("a node passed over decays toward zero with the time constant, read at pick time", async () => {
  const clock = new VirtualClock();
  const ewma = new PeakEwma(1);
  ewma.observe(0, 40, clock.now());
  await clock.advance(TAU);
  close(ewma.estimate(0, clock.now()), 40 * Math.exp(-1), "one tau");
  await clock.advance(2 * TAU);
  close(ewma.estimate(0, clock.now()), 40 * Math.exp(-3), "three tau");
  // Reading does not change the state: the same answer twice.
  close(ewma.estimate(0, clock.now()), 40 * Math.exp(-3), "read again");
});

test("the time constant can be set, and must be positive", () => {
  const ewma = new PeakEwma(1, 100);
  ewma.observe(0, 10, 0);
  close(ewma.estimate(0, 100), 10 * Math.exp(-1), "tau 100 ms");
  // Refused with an InvalidArgumentError naming the argument: a NaN slot
  // count made an empty table, 1e10 a raw RangeError, "5" ms was taken.
  const refused = (make: () => unknown, argument: string) =>
    assert.throws(
      make,
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument &&
        e.message.startsWith("new PeakEwma(): "),
      argument,
    );
  for (const decayMs of [0, -1, NaN, "5"]) {
    refused(() => new PeakEwma(1, decayMs as number), "decayMs");
  }
  for (const slots of [NaN, -1, 1.5, 1e10, "3"]) {
    refused(() => new PeakEwma(slots as number), "slots");
  }
  // Estimates that never decay stay allowed.
  assert.equal(new PeakEwma(1, Infinity).decayMs, Infinity);
});

test("observe() refuses a slot no table may have (a timestamp passed as the slot, NaN, a fraction) with InvalidArgumentError naming it, growing nothing", () => {
  const ewma = new PeakEwma(2);
  for (const slot of [1e10, Date.UTC(2026, 0, 1), 2 ** 24, NaN, 2.5, "3"]) {
    assert.throws(
      () => ewma.observe(slot as number, 5, 0),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "slot" &&
        e.message.startsWith("PeakEwma.observe: "),
      String(slot),
    );
  }
  assert.equal(ewma.slots, 2);
  // A slot the constructor could have made still grows the table.
  ewma.observe(5, 7, 0);
  assert.ok(ewma.slots >= 6);
  assert.equal(ewma.estimate(5, 0), 7);
});

test("observe() refuses a fraction of a slot or a negative one inside the table, and a time that is NaN, negative or infinite, naming it and changing nothing: they were booked nowhere, or stayed in the estimate for good", () => {
  const ewma = new PeakEwma(4);
  ewma.observe(1, 10, 0);
  const bad: [number, number, number, string][] = [
    [0.5, 5, 0, "slot"],
    [1.5, 5, 0, "slot"],
    [-1, 5, 0, "slot"],
    [1, NaN, 0, "ms"],
    [1, -3, 0, "ms"],
    [1, Infinity, 0, "ms"],
    [1, 5, NaN, "now"],
    [1, 5, Infinity, "now"],
    [1, 5, -Infinity, "now"],
  ];
  for (const [slot, ms, now, argument] of bad) {
    assert.throws(
      () => ewma.observe(slot, ms, now),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument &&
        e.message.startsWith("PeakEwma.observe: "),
      `${slot} ${ms} ${now}`,
    );
  }
  assert.equal(ewma.slots, 4);
  assert.equal(ewma.estimate(1, 0), 10, "the estimate is as it was");
  assert.equal(ewma.estimate(0, 0), 0);
  // 0 ms stays a sample (a coarse clock), and decays as before.
  ewma.observe(2, 0, 0);
  assert.ok(ewma.estimate(2, 0) > 0);
  ewma.observe(1, 20, 100);
  assert.equal(ewma.estimate(1, 100), 20);
});

test('observe() refuses an ms or a now that is no number ("12", null, true, [], a boxed number) with InvalidArgumentError naming it, changing nothing: they were coerced and booked', () => {
  const ewma = new PeakEwma(2);
  ewma.observe(0, 10, 0);
  const bad = ["12", null, true, [], [12], new Number(12), undefined, {}];
  for (const value of bad) {
    for (const argument of ["ms", "now"] as const) {
      assert.throws(
        () =>
          argument === "ms"
            ? ewma.observe(0, value as number, 5)
            : ewma.observe(0, 50, value as number),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === argument &&
          e.message.startsWith("PeakEwma.observe: "),
        `${argument}: ${String(value)}`,
      );
    }
  }
  assert.equal(ewma.estimate(0, 0), 10, "slot 0 keeps its estimate");
  assert.equal(ewma.estimate(1, 0), 0, "slot 1 is still unmeasured");
});

test("estimate and cost of what is no slot (a fraction, a negative number, a string) read as a node never measured: they answered undefined and NaN", () => {
  const ewma = new PeakEwma(4);
  ewma.observe(1, 10, 0);
  for (const slot of [0.5, 1.5, -1, "1", NaN]) {
    assert.equal(ewma.estimate(slot as number, 0), 0, String(slot));
    assert.equal(ewma.cost(slot as number, 0, 0), 0, String(slot));
  }
  assert.equal(ewma.estimate(1, 0), 10);
  assert.equal(ewma.cost(1, 1, 0), 20);
});

test('reset() refuses what is no slot (a string, a fraction, a negative number, NaN) with InvalidArgumentError naming it, forgetting nothing: reset("1") forgot slot 1 and reset(1.5) forgot nothing, silently', () => {
  const ewma = new PeakEwma(4);
  ewma.observe(1, 10, 0);
  for (const slot of ["1", 1.5, 0.5, -1, NaN, 2 ** 24, undefined]) {
    assert.throws(
      () => ewma.reset(slot as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "slot" &&
        e.message.startsWith("PeakEwma.reset: "),
      String(slot),
    );
  }
  assert.equal(ewma.estimate(1, 0), 10, "slot 1 still has its estimate");
  // A slot the table has not grown to has nothing to forget.
  ewma.reset(100);
  assert.equal(ewma.slots, 4);
  ewma.reset(1);
  assert.equal(ewma.estimate(1, 0), 0);
});

test("cost is estimate × (in flight + 1); an unmeasured node is free when idle and last when busy", () => {
  const ewma = new PeakEwma(3);
  ewma.observe(0, 2, 0);
  assert.equal(ewma.cost(0, 0, 0), 2);
  assert.equal(ewma.cost(0, 4, 0), 10);
  assert.equal(ewma.cost(1, 0, 0), 0);
  assert.ok(ewma.cost(1, 1, 0) > ewma.cost(0, 1_000_000, 0));
  // Slots beyond the arrays grow on observe; reads there are unmeasured.
  assert.equal(ewma.cost(7, 0, 0), 0);
  ewma.observe(7, 3, 0);
  assert.equal(ewma.estimate(7, 0), 3);
  ewma.reset(7);
  assert.equal(ewma.estimate(7, 0), 0);
});

test("cost() refuses a load that is no count of requests (NaN, negative, a fraction, a string) and a now that is no finite number, with InvalidArgumentError naming it: a NaN or negative load answered NaN or a negative cost, and that node looked cheapest", () => {
  const ewma = new PeakEwma(2);
  ewma.observe(0, 10, 0);
  const bad: [string, number, number][] = [
    ["load", NaN, 0],
    ["load", -1, 0],
    ["load", -Infinity, 0],
    ["load", 0.5, 0],
    ["load", "1" as unknown as number, 0],
    ["load", null as unknown as number, 0],
    ["load", undefined as unknown as number, 0],
    ["now", 0, NaN],
    ["now", 0, Infinity],
    ["now", 0, "5" as unknown as number],
  ];
  for (const [argument, load, now] of bad) {
    for (const slot of [0, 1]) {
      assert.throws(
        () => ewma.cost(slot, load, now),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === argument &&
          e.message.startsWith("PeakEwma.cost: "),
        `slot ${slot}, ${argument}: ${
          String(argument === "load" ? load : now)
        }`,
      );
    }
  }
  assert.equal(ewma.cost(0, 1, 0), 20, "good arguments still answer");
});

test('estimate() refuses a now that is no finite number (NaN, Infinity, a string, null) with InvalidArgumentError naming it: NaN answered NaN, and "5" or null was coerced', () => {
  const ewma = new PeakEwma(1);
  ewma.observe(0, 10, 0);
  for (const now of [NaN, Infinity, -Infinity, "5", null, undefined]) {
    assert.throws(
      () => ewma.estimate(0, now as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "now" &&
        e.message.startsWith("PeakEwma.estimate: "),
      String(now),
    );
  }
  assert.equal(ewma.estimate(0, 0), 10, "a finite now still answers");
});

test("a failure the node is blamed for counts as a reply a second late; an abort counts for nothing", () => {
  assert.equal(peakEwmaFailureSample(2, new AbortedError("gave up")), -1);
  assert.equal(
    peakEwmaFailureSample(
      2,
      new ConnectionLostError({ hostname: "a", port: 1 }, "reset"),
    ),
    PEAK_EWMA_FAILURE_MS,
  );
  assert.equal(
    peakEwmaFailureSample(2, new RemoteError(100, "try later", true)),
    PEAK_EWMA_FAILURE_MS,
  );
  // An application's own error is a real, timely answer.
  assert.equal(peakEwmaFailureSample(2, new RemoteError(7, "bad", false)), 2);
  // A timeout is its own (long) sample.
  assert.equal(
    peakEwmaFailureSample(
      3000,
      new RequestTimeoutError("a:1", 3000, { sent: true }),
    ),
    3000,
  );
  assert.equal(peakEwmaFailureSample(5, new Error("odd")), 5);
});

function balancerOver(
  n: number,
  options: { seed?: number; clock?: { now(): number } } = {},
) {
  const names = Array.from({ length: n }, (_, i) => `node-${i}`);
  const set = new HealthyNodeSet(names, {
    slotOf: (node) => names.indexOf(node),
  });
  const latency = new PeakEwma(n);
  const loads = new Int32Array(n);
  const clock = options.clock ?? new VirtualClock();
  const balancer = createBalancer("peak-ewma", set, {
    latency,
    loads,
    clock,
    random: seeded(options.seed ?? 1),
  });
  return { names, set, latency, loads, clock, balancer };
}

test("createBalancer builds a peak-EWMA balancer, and needs its estimates, loads and slots", () => {
  const { balancer } = balancerOver(2);
  assert.ok(balancer instanceof PeakEwmaBalancer);
  const set = new HealthyNodeSet(["a"], { slotOf: () => 0 });
  assert.throws(
    () => createBalancer("peak-ewma", set),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "options.latency",
  );
  // Kept and failing only at the pick, before: a latency that is no
  // PeakEwma.
  assert.throws(
    () =>
      createBalancer("peak-ewma", set, {
        latency: {} as PeakEwma,
        loads: new Int32Array(1),
      }),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "options.latency",
  );
  assert.throws(
    () =>
      new PeakEwmaBalancer(new HealthyNodeSet(["a"]), {
        latency: new PeakEwma(1),
        loads: new Int32Array(1),
        clock: new VirtualClock(),
      }),
    (e: unknown) =>
      e instanceof InvalidArgumentError && e.argument === "nodes" &&
      /expected a set with slots/.test(e.message),
  );
});

test("of two candidates the pick takes the cheaper: a slow idle node loses to a fast busy one", () => {
  const { latency, loads, balancer, clock } = balancerOver(2);
  latency.observe(0, 40, clock.now());
  latency.observe(1, 1, clock.now());
  loads[1] = 10; // 1 × 11 < 40 × 1
  for (let i = 0; i < 10; i++) assert.equal(balancer.pick(), "node-1");
  loads[1] = 50; // 1 × 51 > 40
  for (let i = 0; i < 10; i++) assert.equal(balancer.pick(), "node-0");
});

test("exclude is honoured when another node exists; an empty set gives undefined", () => {
  const { latency, balancer, clock, set } = balancerOver(3);
  latency.observe(0, 1, clock.now());
  latency.observe(1, 50, clock.now());
  latency.observe(2, 50, clock.now());
  for (let i = 0; i < 20; i++) {
    assert.notEqual(balancer.pick("node-0"), "node-0");
  }
  set.delete("node-1");
  set.delete("node-2");
  assert.equal(balancer.pick("node-0"), "node-0");
  set.delete("node-0");
  assert.equal(balancer.pick(), undefined);
});

test("equal nodes, one request at a time: every node gets requests (ties go to the rotation)", () => {
  const { balancer, names } = balancerOver(5, { seed: 7 });
  const seen = new Map<string, number>();
  for (let i = 0; i < 50; i++) {
    const node = balancer.pick()!;
    seen.set(node, (seen.get(node) ?? 0) + 1);
  }
  // Unmeasured and idle: all cost 0, so the rotation decides, in turn.
  for (const name of names) assert.equal(seen.get(name), 10);
});

test("a passed-over slow node is tried again once its estimate has decayed", async () => {
  const clock = new VirtualClock();
  const { latency, balancer } = balancerOver(2, { clock });
  latency.observe(0, 50, clock.now());
  latency.observe(1, 1, clock.now());
  for (let i = 0; i < 10; i++) assert.equal(balancer.pick(), "node-1");
  // Node 1 keeps answering in 1 ms; node 0 hears nothing and decays
  // below it after tau × ln(50) ≈ 39 s.
  await clock.advance(TAU * Math.log(50) + 1000);
  latency.observe(1, 1, clock.now());
  const picks = new Set<string>();
  for (let i = 0; i < 4; i++) picks.add(balancer.pick()!);
  assert.ok(picks.has("node-0"));
});

/**
 * A discrete-event model: `callers` each send the next request as soon as
 * the last is answered; a request to node i takes `latencies[i]` ms on
 * the virtual clock. Returns the share of requests each node got.
 */
function simulate(latencies: number[], callers: number, total: number) {
  // A plain clock the model moves itself.
  const clock = { t: 0, now: () => clock.t };
  const { balancer, latency, loads, names } = balancerOver(
    latencies.length,
    { seed: 3, clock },
  );
  const counts = new Array(latencies.length).fill(0);
  // (end time, slot, start time) of each request in flight.
  const flying: [number, number, number][] = [];
  const send = () => {
    const slot = names.indexOf(balancer.pick()!);
    loads[slot]++;
    counts[slot]++;
    flying.push([clock.now() + latencies[slot], slot, clock.now()]);
  };
  for (let i = 0; i < callers; i++) send();
  let sent = callers;
  while (flying.length > 0) {
    flying.sort((a, b) => a[0] - b[0]);
    const [end, slot, start] = flying.shift()!;
    clock.t = end;
    loads[slot]--;
    latency.observe(slot, end - start, clock.now());
    if (sent < total) {
      send();
      sent++;
    }
  }
  return counts.map((c) => c / total);
}

test("a node 40× slower than its peers gets few requests (model)", () => {
  const shares = simulate([1, 1, 40], 32, 20_000);
  assert.ok(shares[2] < 0.02, `the slow node got ${shares[2]}`);
  // And in-flight counting alone would let it hold as many as the others:
  // here it held about a fortieth of their share.
  assert.ok(shares[0] > 0.4 && shares[1] > 0.4, `${shares}`);
});

test("equal nodes under load share the requests evenly (model)", () => {
  const shares = simulate([1, 1, 1], 32, 9_000);
  for (const share of shares) {
    assert.ok(Math.abs(share - 1 / 3) < 0.05, `shares ${shares}`);
  }
});

test('loadBalancing accepts "peak-ewma", in the config and the connection string', () => {
  assert.equal(
    resolveConfig({ hosts: ["a:1"], loadBalancing: "peak-ewma" })
      .loadBalancing,
    "peak-ewma",
  );
  assert.equal(
    resolveConfig({ hosts: ["a:1"] }).loadBalancing,
    "least-in-flight",
  );
  assert.throws(
    () =>
      resolveConfig({
        hosts: ["a:1"],
        loadBalancing: "fastest" as "peak-ewma",
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.field, "loadBalancing");
      assert.match(error.message, /fastest/);
      return true;
    },
  );
  const parsed = parseConnectionString(
    "nodewire://a:1/?loadBalancing=peak-ewma",
  );
  assert.equal(resolveConfig(parsed).loadBalancing, "peak-ewma");
});

test("a client with peak-ewma sends a node 40× slower than its peers few requests, and spreads over the others", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 3,
    config: {
      loadBalancing: "peak-ewma",
      poolConfig: { minConnections: 1 },
    },
  });
  // 0.5 ms each way on the fast nodes, 20 ms on the slow one: 1 vs 40 ms.
  await s.proxies[0].setFaults({ latencyMs: 0.5 });
  await s.proxies[1].setFaults({ latencyMs: 0.5 });
  await s.proxies[2].setFaults({ latencyMs: 20 });
  assert.equal(s.client.manager.timesRequests, true);
  const answered = new Map<string, number>();
  const caller = async () => {
    for (let i = 0; i < 30; i++) {
      const { nodeId } = decodeReply(await s.client.request(ops.echo("x")));
      answered.set(nodeId, (answered.get(nodeId) ?? 0) + 1);
    }
  };
  await s.run(Promise.all(Array.from({ length: 32 }, caller)));
  const total = 32 * 30;
  const slow = answered.get("n2") ?? 0;
  assert.equal(
    (answered.get("n0") ?? 0) + (answered.get("n1") ?? 0) + slow,
    total,
  );
  assert.ok(slow < total * 0.05, `the slow node answered ${slow} of ${total}`);
  assert.ok((answered.get("n0") ?? 0) > total * 0.3);
  assert.ok((answered.get("n1") ?? 0) > total * 0.3);
  assertClean(await s.finish());
});

test("a client with peak-ewma spreads sequential requests over every equal node", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 3,
    config: {
      loadBalancing: "peak-ewma",
      poolConfig: { minConnections: 1 },
    },
  });
  const seen = new Map<string, number>();
  const run = async () => {
    for (let i = 0; i < 90; i++) {
      const { nodeId } = decodeReply(await s.client.request(ops.echo()));
      seen.set(nodeId, (seen.get(nodeId) ?? 0) + 1);
    }
  };
  await s.run(run());
  assert.deepEqual([...seen.keys()].sort(), ["n0", "n1", "n2"]);
  for (const count of seen.values()) assert.ok(count >= 20, `${[...seen]}`);
  assertClean(await s.finish());
});

test("other balancers do not time requests", async () => {
  for (const loadBalancing of ["round-robin", "least-in-flight"] as const) {
    const s = await startScene({
      mode: "virtual",
      nodes: 2,
      config: { loadBalancing },
    });
    assert.equal(s.client.manager.timesRequests, false);
    assertClean(await s.finish());
  }
});

test("a slot that is a BigInt or a Symbol is refused by observe() with InvalidArgumentError naming it, and read by estimate() and cost() as no slot of the table, as a string is: each threw a raw TypeError (slot >>> 0)", () => {
  const ewma = new PeakEwma(4);
  ewma.observe(1, 10, 0);
  for (const slot of [1n, Symbol("slot")]) {
    const what = typeof slot;
    assert.throws(
      () => ewma.observe(slot as unknown as number, 5, 0),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "slot" &&
        e.message.startsWith("PeakEwma.observe: "),
      what,
    );
    assert.equal(ewma.estimate(slot as unknown as number, 0), 0, what);
    assert.equal(ewma.cost(slot as unknown as number, 0, 0), 0, what);
    assert.equal(
      ewma.cost(slot as unknown as number, 2, 0),
      ewma.cost(3, 2, 0),
      `${what}: priced as a node never measured`,
    );
  }
  assert.equal(ewma.estimate(1, 0), 10, "nothing booked");
});

test("PeakEwmaBalancer and createBalancer refuse a latency that passes instanceof but is no PeakEwma's own table (a Proxy of one, Object.create of its prototype) with InvalidArgumentError naming it: built, every pick() threw a raw TypeError", () => {
  const slotOf = (n: string) => (n === "a" ? 0 : 1);
  const fakes: [string, unknown][] = [
    ["a Proxy", new Proxy(new PeakEwma(2), {})],
    ["Object.create", Object.create(PeakEwma.prototype)],
  ];
  for (const [what, latency] of fakes) {
    const options = {
      latency: latency as PeakEwma,
      loads: new Int32Array(2),
      clock: new VirtualClock(),
    };
    for (
      const build of [
        () =>
          new PeakEwmaBalancer(
            new HealthyNodeSet(["a", "b"], { slotOf }),
            options,
          ),
        () =>
          createBalancer(
            "peak-ewma",
            new HealthyNodeSet(["a", "b"], { slotOf }),
            options,
          ),
      ]
    ) {
      let outcome: unknown;
      try {
        outcome = build().pick();
      } catch (error) {
        outcome = error;
      }
      assert.ok(outcome instanceof InvalidArgumentError, `${what}: ${outcome}`);
      assert.match(outcome.argument, /(^|\.)latency$/, what);
      assert.match(outcome.message, /new PeakEwma\(\)/, what);
    }
  }
});

test("PeakEwmaBalancer and createBalancer refuse a clock whose now() reads no finite number, and loads without a count for a slot of the set, with InvalidArgumentError naming them: built, a NaN clock decayed nothing, a BigInt one threw a raw TypeError at every pick, and a negative load was picked every time", () => {
  const slotOf = (n: string) => "abc".indexOf(n);
  const options = (now: () => unknown, loads: ArrayLike<unknown>) => ({
    latency: new PeakEwma(3),
    loads: loads as ArrayLike<number>,
    clock: { now: now as () => number },
  });
  const cases: [string, () => unknown, ArrayLike<unknown>, RegExp][] = [
    ["now NaN", () => NaN, [0, 0, 0], /^options\.clock$/],
    ["now undefined", () => undefined, [0, 0, 0], /^options\.clock$/],
    ["now a string", () => "5", [0, 0, 0], /^options\.clock$/],
    ["now a BigInt", () => 5n, [0, 0, 0], /^options\.clock$/],
    ["now Infinity", () => Infinity, [0, 0, 0], /^options\.clock$/],
    ["a load NaN", () => 0, [0, NaN, 0], /^options\.loads\[1\]$/],
    ["a load negative", () => 0, [-5, 0, 0], /^options\.loads\[0\]$/],
    ["a load a fraction", () => 0, [0, 0, 0.5], /^options\.loads\[2\]$/],
    ["a load a string", () => 0, ["1", 0, 0], /^options\.loads\[0\]$/],
    ["loads too short", () => 0, [0], /^options\.loads\[1\]$/],
  ];
  for (const [what, now, loads, argument] of cases) {
    for (
      const build of [
        () =>
          new PeakEwmaBalancer(
            new HealthyNodeSet(["a", "b", "c"], { slotOf }),
            options(now, loads),
          ),
        () =>
          createBalancer(
            "peak-ewma",
            new HealthyNodeSet(["a", "b", "c"], { slotOf }),
            options(now, loads),
          ),
      ]
    ) {
      assert.throws(build, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${what}: ${e}`);
        assert.match(e.argument, argument, what);
        return true;
      }, what);
    }
  }
  // An empty set (or one of duplicates) has no slot to check, and picks
  // nothing (or its one node).
  const none = new PeakEwmaBalancer(new HealthyNodeSet([], { slotOf }), {
    latency: new PeakEwma(1),
    loads: [],
    clock: { now: () => 0 },
  });
  assert.equal(none.pick(), undefined);
  const one = new PeakEwmaBalancer(
    new HealthyNodeSet(["a", "a"], { slotOf }),
    { latency: new PeakEwma(1), loads: [0], clock: { now: () => 0 } },
  );
  assert.equal(one.pick(), "a");
});

test("a PeakEwmaBalancer whose clock later reads no finite number (NaN, a BigInt, a Symbol, Infinity with estimates that never decay) picks as if no time had passed: no throw, no NaN cost, the slow node still passed over", () => {
  const slotOf = (n: string) => "abc".indexOf(n);
  const readings: [string, unknown][] = [
    ["NaN", NaN],
    ["undefined", undefined],
    ["a BigInt", 5n],
    ["a Symbol", Symbol("t")],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    ["earlier", -1_000_000],
  ];
  for (const [what, reading] of readings) {
    // Estimates that never decay: Infinity elapsed over them was NaN.
    const latency = new PeakEwma(3, Infinity);
    latency.observe(0, 40, 0);
    latency.observe(1, 1, 0);
    latency.observe(2, 1, 0);
    let first = true;
    const balancer = new PeakEwmaBalancer(
      new HealthyNodeSet(["a", "b", "c"], { slotOf }),
      {
        latency,
        loads: new Int32Array(3),
        clock: {
          now: () => {
            if (first) {
              first = false;
              return 0;
            }
            return reading as number;
          },
        },
        random: seeded(7),
      },
    );
    const picks = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const node = balancer.pick()!;
      picks.set(node, (picks.get(node) ?? 0) + 1);
    }
    // a costs 40 against 1: it loses every comparison it is in.
    assert.equal(picks.get("a"), undefined, `${what}: ${[...picks]}`);
    assert.equal((picks.get("b") ?? 0) + (picks.get("c") ?? 0), 300, what);
  }
});
