import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  type Balancer,
  createBalancer,
  HealthyNodeSet,
  LeastInFlightBalancer,
  PeakEwmaBalancer,
  RoundRobinBalancer,
} from "../src/cluster/balancer.ts";
import { PeakEwma } from "../src/cluster/peak_ewma.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { seeded } from "./helpers.ts";

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `node-${i}`);
}

type Strategy = "round-robin" | "least-in-flight";

/**
 * A balancer plus a simple load model: every pick adds a request in flight
 * on the chosen node, and the oldest request completes once more than
 * `concurrency` are in flight.
 */
function harness(
  strategy: Strategy,
  set: HealthyNodeSet<string>,
  seed: number,
  concurrency = 8,
) {
  const inFlight = new Map<string, number>();
  const pending: string[] = [];
  const balancer: Balancer<string> = createBalancer(strategy, set, {
    inFlight: (node) => inFlight.get(node) ?? 0,
    random: seeded(seed),
  });
  return {
    balancer,
    pick(exclude?: string): string | undefined {
      const node = balancer.pick(exclude);
      if (node !== undefined) {
        inFlight.set(node, (inFlight.get(node) ?? 0) + 1);
        pending.push(node);
        if (pending.length > concurrency) {
          const done = pending.shift()!;
          inFlight.set(done, inFlight.get(done)! - 1);
        }
      }
      return node;
    },
  };
}

// --- HealthyNodeSet ----------------------------------------------------------

test("a node set adds and removes members, ignoring duplicates", () => {
  const set = new HealthyNodeSet(["a", "b", "a", "c"]);
  assert.equal(set.size, 3);
  assert.equal(set.add("b"), false);
  assert.equal(set.delete("b"), true);
  assert.equal(set.delete("b"), false);
  assert.equal(set.has("b"), false);
  assert.deepEqual(set.toArray().sort(), ["a", "c"]);
  assert.deepEqual([...set].sort(), ["a", "c"]);
  assert.equal(set.indexOf("zzz"), -1);
  assert.equal(set.at(5), undefined);
  set.clear();
  assert.equal(set.size, 0);
  assert.equal(set.at(0), undefined);
});

test("a node set behaves like a Set under any sequence of changes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.nat({ max: 9 })), { maxLength: 200 }),
      (ops) => {
        const set = new HealthyNodeSet<number>();
        const model = new Set<number>();
        for (const [add, node] of ops) {
          if (add) assert.equal(set.add(node), !model.has(node));
          else assert.equal(set.delete(node), model.has(node));
          if (add) model.add(node);
          else model.delete(node);
          assert.equal(set.size, model.size);
          for (let i = 0; i < set.size; i++) {
            const member = set.at(i)!;
            assert.ok(model.has(member));
            assert.equal(set.indexOf(member), i);
          }
          for (let node = 0; node < 10; node++) {
            assert.equal(set.has(node), model.has(node));
          }
        }
      },
    ),
  );
});

test("a node set compares nodes by identity", () => {
  const a = { address: "a:7000" };
  const twin = { address: "a:7000" };
  const set = new HealthyNodeSet([a]);
  assert.equal(set.has(twin), false);
  assert.equal(set.add(twin), true);
  assert.equal(set.size, 2);
});

// --- round robin -------------------------------------------------------------

test("round robin cycles through the nodes in order", () => {
  const balancer = new RoundRobinBalancer(new HealthyNodeSet(["a", "b", "c"]));
  const picks = Array.from({ length: 7 }, () => balancer.pick());
  assert.deepEqual(picks, ["a", "b", "c", "a", "b", "c", "a"]);
});

test("round robin gives every node exactly k picks over k × n picks", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.integer({ min: 1, max: 20 }),
      fc.nat({ max: 50 }),
      (n, k, warmup) => {
        const balancer = new RoundRobinBalancer(new HealthyNodeSet(names(n)));
        // Start anywhere in the cycle.
        for (let i = 0; i < warmup; i++) balancer.pick();
        const counts = new Map<string, number>();
        for (let i = 0; i < k * n; i++) {
          const node = balancer.pick()!;
          counts.set(node, (counts.get(node) ?? 0) + 1);
        }
        assert.equal(counts.size, n);
        for (const count of counts.values()) assert.equal(count, k);
      },
    ),
  );
});

test("round robin keeps shares within one of each other after the set changes", () => {
  const set = new HealthyNodeSet(names(5));
  const balancer = new RoundRobinBalancer(set);
  for (let i = 0; i < 3; i++) balancer.pick();
  set.delete("node-1");
  set.delete("node-4");
  const counts = new Map<string, number>();
  for (let i = 0; i < 3 * 10 + 2; i++) {
    const node = balancer.pick()!;
    counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), ["node-0", "node-2", "node-3"]);
  const shares = [...counts.values()];
  assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, String(shares));
});

test("round robin skips the excluded node when another is healthy", () => {
  const balancer = new RoundRobinBalancer(new HealthyNodeSet(["a", "b", "c"]));
  assert.equal(balancer.pick("a"), "b");
  assert.equal(balancer.pick("c"), "a");
  assert.equal(balancer.pick(), "b");
  assert.equal(balancer.pick("zzz"), "c");
});

test("round robin returns the excluded node when it is the only one", () => {
  const balancer = new RoundRobinBalancer(new HealthyNodeSet(["a"]));
  assert.equal(balancer.pick("a"), "a");
});

test("either strategy returns undefined when no node is healthy", () => {
  for (const strategy of ["round-robin", "least-in-flight"] as const) {
    const set = new HealthyNodeSet<string>();
    const { balancer } = harness(strategy, set, 1);
    assert.equal(balancer.pick(), undefined);
    assert.equal(balancer.pick("a"), undefined);
  }
});

// --- least in flight -----------------------------------------------------------

test("least-in-flight takes the less loaded of the two sampled nodes", () => {
  const load = new Map([["a", 9], ["b", 1], ["c", 9]]);
  // The rotation starts at position 1 ("b"); the other candidate is
  // position 2 ("c").
  const draws = [0.5, 0.9];
  const balancer = new LeastInFlightBalancer(
    new HealthyNodeSet(["a", "b", "c"]),
    {
      inFlight: (node) => load.get(node)!,
      random: () => draws.shift()!,
    },
  );
  assert.equal(balancer.pick(), "b");
});

test("least-in-flight visits equal, idle nodes in turn, from a random start", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 16 }),
      fc.integer(),
      (n, seed) => {
        const balancer = new LeastInFlightBalancer(
          new HealthyNodeSet(names(n)),
          { inFlight: () => 0, random: seeded(seed) },
        );
        const picks = Array.from({ length: 3 * n }, () => balancer.pick()!);
        const start = names(n).indexOf(picks[0]);
        assert.deepEqual(
          picks,
          Array.from({ length: 3 * n }, (_, i) => `node-${(start + i) % n}`),
        );
      },
    ),
  );
});

test("least-in-flight does not always start its rotation at the same node", () => {
  const starts = new Set<string>();
  for (let seed = 0; seed < 50; seed++) {
    const balancer = new LeastInFlightBalancer(new HealthyNodeSet(names(4)), {
      inFlight: () => 0,
      random: seeded(seed),
    });
    starts.add(balancer.pick()!);
  }
  assert.equal(starts.size, 4);
});

test("least-in-flight never picks the most loaded node of three", () => {
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      const load = new Map([["a", 1], ["b", 2], ["c", 3]]);
      const balancer = new LeastInFlightBalancer(
        new HealthyNodeSet(["a", "b", "c"]),
        {
          inFlight: (node) => load.get(node)!,
          random: seeded(seed),
        },
      );
      for (let i = 0; i < 50; i++) assert.notEqual(balancer.pick(), "c");
    }),
  );
});

test("least-in-flight reads the load of at most two nodes per pick", () => {
  let reads = 0;
  const balancer = new LeastInFlightBalancer(new HealthyNodeSet(names(100)), {
    inFlight: () => {
      reads++;
      return 0;
    },
    random: seeded(7),
  });
  for (let i = 0; i < 1000; i++) {
    reads = 0;
    balancer.pick(i % 2 === 0 ? "node-3" : undefined);
    assert.ok(reads <= 2, `read ${reads} loads`);
  }
});

test("least-in-flight stays in range with a generator that returns 0 or 1", () => {
  for (const value of [0, 1, 1 - Number.EPSILON, -0.5, 2]) {
    const set = new HealthyNodeSet(["a", "b", "c"]);
    const balancer = new LeastInFlightBalancer(set, {
      inFlight: () => 0,
      random: () => value,
    });
    for (const exclude of [undefined, "a", "b", "c"]) {
      const node = balancer.pick(exclude);
      assert.ok(node !== undefined && set.has(node), `${value}: ${node}`);
      assert.notEqual(node, exclude);
    }
  }
});

test("least-in-flight with two nodes and one excluded returns the other", () => {
  const balancer = new LeastInFlightBalancer(new HealthyNodeSet(["a", "b"]), {
    inFlight: () => 0,
  });
  for (let i = 0; i < 20; i++) {
    assert.equal(balancer.pick("a"), "b");
    assert.equal(balancer.pick("b"), "a");
  }
});

test("least-in-flight returns the excluded node when it is the only one", () => {
  const balancer = new LeastInFlightBalancer(new HealthyNodeSet(["a"]), {
    inFlight: () => 0,
  });
  assert.equal(balancer.pick("a"), "a");
});

test("an excluded node is never picked while another is healthy, for either strategy", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Strategy>("round-robin", "least-in-flight"),
      fc.integer({ min: 2, max: 12 }),
      fc.integer(),
      fc.array(fc.nat({ max: 11 }), { minLength: 1, maxLength: 100 }),
      (strategy, n, seed, excludes) => {
        const nodes = names(n);
        const h = harness(strategy, new HealthyNodeSet(nodes), seed);
        for (const x of excludes) {
          const exclude = nodes[x % n];
          const node = h.pick(exclude);
          assert.ok(node !== undefined && node !== exclude, `${node}`);
        }
      },
    ),
  );
});

test("createBalancer builds the strategy the config names", () => {
  const set = new HealthyNodeSet(["a"]);
  assert.ok(createBalancer("round-robin", set) instanceof RoundRobinBalancer);
  const p2c = createBalancer("least-in-flight", set, { inFlight: () => 0 });
  assert.ok(p2c instanceof LeastInFlightBalancer);
  assert.equal(p2c.nodes, set);
  // InvalidArgumentErrors naming the argument (raw TypeErrors before), and
  // an inFlight that is no function is refused here, not at every pick.
  const refused = (make: () => unknown, argument: string) =>
    assert.throws(
      make,
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument,
      argument,
    );
  refused(() => createBalancer("least-in-flight", set), "options.inFlight");
  refused(
    () =>
      createBalancer("least-in-flight", set, {
        inFlight: 5 as unknown as () => number,
      }),
    "options.inFlight",
  );
  refused(() => createBalancer("random" as "round-robin", set), "strategy");
  assert.throws(
    () => createBalancer("random" as "round-robin", set),
    /expected one of "round-robin", "least-in-flight", "peak-ewma", got "random"/,
  );
  refused(() => new RoundRobinBalancer(null as never), "nodes");
});

// --- properties --------------------------------------------------------------

test("Property 3: Load Distribution", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Strategy>("round-robin", "least-in-flight"),
      fc.integer({ min: 2, max: 16 }),
      fc.integer({ min: 1, max: 32 }),
      fc.integer(),
      (strategy, n, concurrency, seed) => {
        const set = new HealthyNodeSet(names(n));
        const h = harness(strategy, set, seed, concurrency);
        const counts = new Map<string, number>();
        const requests = 50 * n;
        for (let i = 0; i < requests; i++) {
          const node = h.pick()!;
          counts.set(node, (counts.get(node) ?? 0) + 1);
        }
        // Every healthy node receives requests; no single node gets them all.
        assert.equal(counts.size, n, `only ${counts.size} of ${n} used`);
        for (const [node, count] of counts) {
          assert.ok(count > 0 && count < requests, `${node}: ${count}`);
        }
        // And the spread is fair, not merely non-empty: no node gets more
        // than three times its fair share.
        assert.ok(Math.max(...counts.values()) <= (3 * requests) / n);
      },
    ),
  );
});

test("the default configuration balances by load", () => {
  assert.equal(
    resolveConfig({ hosts: ["a"] }).loadBalancing,
    "least-in-flight",
  );
});

test("Property 3: Load Distribution, with the default configuration", () => {
  // A harness over in-flight counts: the default is one of its strategies.
  const strategy = resolveConfig({ hosts: ["a"] }).loadBalancing as Strategy;
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 16 }),
      fc.integer({ min: 1, max: 20 }),
      fc.integer(),
      (n, k, seed) => {
        // One request at a time: nothing is ever in flight at a pick, so
        // every pick is a tie, and ties must not leave a node out.
        const set = new HealthyNodeSet(names(n));
        const balancer = createBalancer(strategy, set, {
          inFlight: () => 0,
          random: seeded(seed),
        });
        const counts = new Map<string, number>();
        for (let i = 0; i < k * n; i++) {
          const node = balancer.pick()!;
          counts.set(node, (counts.get(node) ?? 0) + 1);
        }
        assert.equal(counts.size, n, `only ${counts.size} of ${n} used`);
        for (const count of counts.values()) assert.equal(count, k);
      },
    ),
  );
});

test("Property 3 holds for equal nodes under load too, with the default configuration", () => {
  // A harness over in-flight counts: the default is one of its strategies.
  const strategy = resolveConfig({ hosts: ["a"] }).loadBalancing as Strategy;
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 16 }),
      fc.integer({ min: 1, max: 64 }),
      fc.integer(),
      (n, concurrency, seed) => {
        const h = harness(
          strategy,
          new HealthyNodeSet(names(n)),
          seed,
          concurrency,
        );
        const counts = new Map<string, number>();
        const requests = 20 * n;
        for (let i = 0; i < requests; i++) {
          const node = h.pick()!;
          counts.set(node, (counts.get(node) ?? 0) + 1);
        }
        // Equal nodes finishing in order: in-flight counts stay within one
        // of each other, so shares stay close to fair.
        assert.equal(counts.size, n, `only ${counts.size} of ${n} used`);
        const shares = [...counts.values()];
        assert.ok(
          Math.max(...shares) - Math.min(...shares) <= 2 + requests / (4 * n),
          String(shares),
        );
      },
    ),
  );
});

/**
 * 32 callers, each sending its next request as soon as the last one is
 * answered, over `n` nodes of which the last answers in `slowTicks` ticks
 * and the others in one. Returns the share of requests the slow node got.
 */
function slowNodeShare(
  strategy: Strategy,
  seed: number,
  n = 3,
  slowTicks = 40,
  ticks = 2_000,
): number {
  const nodes = names(n);
  const slow = nodes[n - 1];
  const inFlight = new Map(nodes.map((node) => [node, 0]));
  const balancer = createBalancer(strategy, new HealthyNodeSet(nodes), {
    inFlight: (node) => inFlight.get(node)!,
    random: seeded(seed),
  });
  // Callers by the tick their request is answered.
  const due: { node: string; at: number }[] = [];
  let total = 0;
  let onSlow = 0;
  const send = (now: number) => {
    const node = balancer.pick()!;
    inFlight.set(node, inFlight.get(node)! + 1);
    due.push({ node, at: now + (node === slow ? slowTicks : 1) });
    total++;
    if (node === slow) onSlow++;
  };
  for (let i = 0; i < 32; i++) send(0);
  for (let now = 1; now <= ticks; now++) {
    for (let i = 0; i < due.length;) {
      if (due[i].at !== now) {
        i++;
        continue;
      }
      const { node } = due.splice(i, 1)[0];
      inFlight.set(node, inFlight.get(node)! - 1);
      send(now);
    }
  }
  return onSlow / total;
}

test("a node 40 times slower than its peers gets a small share under the default, its full turn under round-robin", () => {
  // A harness over in-flight counts: the default is one of its strategies.
  const strategy = resolveConfig({ hosts: ["a"] }).loadBalancing as Strategy;
  fc.assert(
    fc.property(fc.integer(), (seed) => {
      // Equal in-flight counts mean a share of about 1 / (1 + 2 × 40).
      const share = slowNodeShare(strategy, seed);
      assert.ok(share < 0.03, `slow node share ${share}`);
    }),
    { numRuns: 20 },
  );
  const roundRobin = slowNodeShare("round-robin", 1);
  assert.ok(Math.abs(roundRobin - 1 / 3) < 0.01, `${roundRobin}`);
});

test("Property 4: Unhealthy Node Avoidance", () => {
  type Op =
    | { kind: "down"; node: number }
    | { kind: "up"; node: number }
    | { kind: "pick"; exclude: number | undefined };
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant("down" as const),
        node: fc.nat({ max: 15 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant("up" as const),
        node: fc.nat({ max: 15 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant("pick" as const),
        exclude: fc.option(fc.nat({ max: 15 }), { nil: undefined }),
      }),
      weight: 6,
    },
  );
  fc.assert(
    fc.property(
      fc.constantFrom<Strategy>("round-robin", "least-in-flight"),
      fc.integer({ min: 1, max: 16 }).chain((n) =>
        fc.tuple(fc.constant(n), fc.subarray(names(n)))
      ),
      fc.array(op, { maxLength: 300 }),
      fc.integer(),
      (strategy, [n, initiallyDown], ops, seed) => {
        const nodes = names(n);
        const healthy = new Set(
          nodes.filter((x) => !initiallyDown.includes(x)),
        );
        const set = new HealthyNodeSet(healthy);
        const h = harness(strategy, set, seed);
        for (const step of ops) {
          if (step.kind === "down") {
            const node = nodes[step.node % n];
            healthy.delete(node);
            set.delete(node);
          } else if (step.kind === "up") {
            const node = nodes[step.node % n];
            healthy.add(node);
            set.add(node);
          } else {
            const exclude = step.exclude === undefined
              ? undefined
              : nodes[step.exclude % n];
            const node = h.pick(exclude);
            if (healthy.size === 0) {
              assert.equal(node, undefined);
            } else {
              assert.ok(
                node !== undefined && healthy.has(node),
                `picked unhealthy ${node}`,
              );
              if (healthy.size > 1 || !healthy.has(exclude!)) {
                assert.notEqual(node, exclude);
              }
            }
          }
        }
      },
    ),
  );
});

test("HealthyNodeSet.add whose slotOf throws leaves the set as it was: the node is no member, and the members keep their slots", () => {
  const slots = new Map([["a", 0], ["b", 1]]);
  const set = new HealthyNodeSet(["a", "b"], {
    slotOf: (node: string) => {
      const slot = slots.get(node);
      if (slot === undefined) throw new Error(`no slot for ${node}`);
      return slot;
    },
  });
  assert.throws(() => set.add("c"), /no slot for c/);
  assert.equal(set.has("c"), false);
  assert.equal(set.size, 2);
  assert.deepEqual(set.toArray(), ["a", "b"]);
  // Once it has a slot, it joins as any node does.
  slots.set("c", 2);
  assert.equal(set.add("c"), true);
  assert.deepEqual(set.toArray(), ["a", "b", "c"]);
});

test('HealthyNodeSet.add refuses a slot from slotOf that is no integer from 0 (NaN, -1, 1.5, "3", 2^31) with InvalidArgumentError naming it, leaving the set as it was; the constructor too', () => {
  for (const slot of [NaN, -1, 1.5, "3", 2 ** 31, undefined]) {
    const set = new HealthyNodeSet(["a"], {
      slotOf: (node: string) => (node === "a" ? 0 : slot) as number,
    });
    assert.throws(
      () => set.add("b"),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "slotOf" &&
        e.message.startsWith("HealthyNodeSet.add: "),
      String(slot),
    );
    // Stored, it became slot 0 (the first member's) or a wrapped number.
    assert.equal(set.has("b"), false);
    assert.deepEqual([set.size, set.slotAt(0)], [1, 0]);
    assert.throws(
      () => new HealthyNodeSet(["b"], { slotOf: () => slot as number }),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        (e.cause as InvalidArgumentError)?.argument === "slotOf",
      String(slot),
    );
  }
});

test("loads whose slot cannot be read (a proxy whose index read throws) are refused with an InvalidArgumentError naming that slot, what was thrown as cause: it was thrown raw from new and createBalancer", () => {
  const slotOf = (n: string) => "ab".indexOf(n);
  const set = () => new HealthyNodeSet(["a", "b"], { slotOf });
  const broke = new Error("index read broke");
  const loads = new Proxy([0, 0], {
    get(target, key, receiver) {
      if (key === "1") throw broke;
      return Reflect.get(target, key, receiver);
    },
  }) as ArrayLike<number>;
  const latency = () => new PeakEwma(2);
  const clock = { now: () => 0 };
  const builds: [string, () => unknown][] = [
    [
      "LeastInFlightBalancer",
      () => new LeastInFlightBalancer(set(), { inFlight: () => 0, loads }),
    ],
    [
      "PeakEwmaBalancer",
      () => new PeakEwmaBalancer(set(), { latency: latency(), loads, clock }),
    ],
    [
      "createBalancer least-in-flight",
      () =>
        createBalancer("least-in-flight", set(), { inFlight: () => 0, loads }),
    ],
    [
      "createBalancer peak-ewma",
      () =>
        createBalancer("peak-ewma", set(), {
          latency: latency(),
          loads,
          clock,
        }),
    ],
  ];
  for (const [what, build] of builds) {
    assert.throws(build, (e: unknown) => {
      // Before: the proxy's own Error, raw.
      assert.ok(e instanceof InvalidArgumentError, `${what}: ${e}`);
      assert.equal(e.argument, "options.loads[1]", what);
      assert.match(e.message, /could not be read/, what);
      assert.match(e.message, /index read broke/, what);
      assert.equal(e.cause, broke, what);
      return true;
    }, what);
  }
});

test("LeastInFlightBalancer (and createBalancer) refuses loads without a count for a slot of its set, naming the slot: built, a negative load was picked every time and a NaN or missing one was never the busier", () => {
  const slotOf = (n: string) => "abcd".indexOf(n);
  const set = () => new HealthyNodeSet(["a", "b", "c", "d"], { slotOf });
  const cases: [string, ArrayLike<unknown>, string][] = [
    ["negative", [-5, 0, 0, 0], "options.loads[0]"],
    ["NaN", [0, 0, NaN, 0], "options.loads[2]"],
    ["a fraction", [0, 0.5, 0, 0], "options.loads[1]"],
    ["a string", [0, 0, 0, "1"], "options.loads[3]"],
    ["too short", [0, 0], "options.loads[2]"],
  ];
  for (const [what, loads, argument] of cases) {
    for (
      const build of [
        () =>
          new LeastInFlightBalancer(set(), {
            inFlight: () => 0,
            loads: loads as ArrayLike<number>,
          }),
        () =>
          createBalancer("least-in-flight", set(), {
            inFlight: () => 0,
            loads: loads as ArrayLike<number>,
          }),
      ]
    ) {
      assert.throws(build, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${what}: ${e}`);
        assert.equal(e.argument, argument, what);
        return true;
      }, what);
    }
  }
  // Without slots the loads are not read, nor checked; counts are taken.
  const plain = new LeastInFlightBalancer(new HealthyNodeSet(["a"]), {
    inFlight: () => 0,
    loads: [-1],
  });
  assert.equal(plain.pick(), "a");
  const good = new LeastInFlightBalancer(set(), {
    inFlight: () => 0,
    loads: new Int32Array([3, 0, 2, 1]),
  });
  assert.ok(["b", "c", "d"].includes(good.pick()!));
});
