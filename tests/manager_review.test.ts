// What an adversarial review of the ConnectionManager found: marks that
// still acted on a closed manager, nodes that joined twice under another
// spelling, and a ConnectFailedError whose message grew with the number
// of hosts. Virtual clock over the in-memory network; nothing real.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { ConnectionManager } from "../src/cluster/manager.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import {
  ClientClosedError,
  ConfigError,
  ConnectFailedError,
  ConnectionRefusedError,
  InvalidArgumentError,
  NoHealthyNodesError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";
import { failure } from "./support/fault_checks.ts";
import { startScene } from "./support/fault_scene.ts";
import { watchEscapes } from "./support/fault_harness.ts";

/** Lets the memory network and every settled promise run. */
async function settle(clock: VirtualClock): Promise<void> {
  await clock.advance(0);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

// --- a closed manager --------------------------------------------------------

test("after disconnect, markNodeHealthy and markNodeUnhealthy return false and change, restart or dispatch nothing", async () => {
  await scene(2, {}, async ({ client, clock, nodes }) => {
    // One node down, one up: each mark has something it could change.
    assert.equal(client.manager.markNodeUnhealthy(nodes[1].address), true);
    await client.disconnect();
    await settle(clock);
    const heard: string[] = [];
    client.addEventListener("nodeHealthChanged", (e) => {
      heard.push(`client: ${e.detail.address} ${e.detail.healthy}`);
    });
    client.manager.addEventListener("nodeHealthChanged", (e) => {
      heard.push(`manager: ${e.detail.address} ${e.detail.healthy}`);
    });
    for (const node of client.manager.nodes) {
      node.pool.addEventListener("poolCleared", () => heard.push("cleared"));
      node.pool.addEventListener("connectionCreated", () => heard.push("open"));
    }
    const timers = clock.pendingTimers;
    assert.equal(client.manager.markNodeUnhealthy(nodes[0].address), false);
    assert.equal(client.manager.markNodeHealthy(nodes[1].address), false);
    assert.equal(
      client.manager.markNodeUnhealthy(nodes[0].address, "x"),
      false,
    );
    await settle(clock);
    assert.deepEqual(heard, []);
    assert.deepEqual(client.stats().nodes.map((n) => n.healthy), [true, false]);
    assert.equal(client.manager.healthyCount, 1);
    assert.equal(clock.pendingTimers, timers);
    assert.deepEqual(nodes.map((n) => n.stats.open), [0, 0]);
  });
});

test("after disconnect, addNode and removeNode refuse on the client and the manager, opening no socket and no timer", async () => {
  await scene(2, {}, async ({ client, clock, nodes, spare }) => {
    const n2 = await spare("n2");
    await client.disconnect();
    await settle(clock);
    const timers = clock.pendingTimers;
    const calls = [
      () => client.addNode(n2.address),
      () => client.manager.addNode(n2.address),
      () => client.removeNode(nodes[0].address),
      () => client.manager.removeNode(nodes[0].address),
    ];
    for (const call of calls) {
      assert.ok(await failure(call()) instanceof ClientClosedError);
    }
    await settle(clock);
    assert.equal(n2.stats.accepted, 0);
    assert.equal(clock.pendingTimers, timers);
    assert.deepEqual(
      client.stats().nodes.map((n) => n.address),
      nodes.map((n) => n.address),
    );
  });
});

// --- one node, many spellings ------------------------------------------------

test("addNode refuses a node already present under another spelling; removeNode finds it by any spelling", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const started: TestNode[] = await Promise.all([
    startTestNode({
      nodeId: "db1",
      hostname: "db1",
      port: 7000,
      runtime: network,
      clock,
    }),
    startTestNode({
      nodeId: "v6",
      hostname: "::1",
      port: 7000,
      runtime: network,
      clock,
    }),
    startTestNode({
      nodeId: "v4",
      hostname: "127.0.0.1",
      port: 7000,
      runtime: network,
      clock,
    }),
  ]);
  const client = await Client.connect({
    hosts: ["db1:7000", "[::1]:7000", "127.0.0.1"],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
  });
  try {
    const before = client.stats().nodes.map((n) => n.address);
    assert.deepEqual(before, ["db1:7000", "[::1]:7000", "127.0.0.1:7000"]);
    const added: string[] = [];
    client.addEventListener("nodeAdded", (e) => added.push(e.detail.address));
    const spellings = [
      "DB1:7000",
      "db1.:7000",
      "Db1.",
      "[0:0:0:0:0:0:0:1]:7000",
      "[0:0:0:0:0:0:0:1]",
      "0:0::1",
      "127.0.0.1:7000",
    ];
    for (const host of spellings) {
      const error = await failure(client.addNode(host));
      assert.ok(error instanceof ConfigError, `${host}: ${error}`);
      assert.equal(error.field, "host");
      assert.match(error.message, /already a node/);
    }
    await settle(clock);
    assert.deepEqual(added, []);
    assert.deepEqual(client.stats().nodes.map((n) => n.address), before);
    // Another port is another node: still welcome.
    const other = await startTestNode({
      nodeId: "db1b",
      hostname: "db1",
      port: 7001,
      runtime: network,
      clock,
    });
    started.push(other);
    assert.equal((await client.addNode("db1:7001")).healthy, true);
    // Removal by any spelling; the node keeps the name it was given, and
    // removing it again while it leaves waits for the same removal.
    const removed: string[] = [];
    client.addEventListener(
      "nodeRemoved",
      (e) => removed.push(e.detail.address),
    );
    const removal = client.removeNode("DB1.:7000");
    const again = client.removeNode("db1");
    await Promise.all([removal, again]);
    await client.removeNode("[0:0:0:0:0:0:0:1]");
    await client.removeNode("DB1:7001");
    assert.deepEqual(removed, ["db1:7000", "[::1]:7000", "db1:7001"]);
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [
      "127.0.0.1:7000",
    ]);
    await settle(clock);
    assert.deepEqual(started.map((n) => n.stats.open > 0), [
      false,
      false,
      true,
      false,
    ]);
    // Gone, so welcome back under any spelling (the memory network knows
    // the name only as it was listened on: no answer there).
    assert.equal((await client.addNode("DB1.:7000")).address, "DB1.:7000");
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [
      "127.0.0.1:7000",
      "DB1.:7000",
    ]);
  } finally {
    await client.disconnect({ timeoutMs: 1 });
    await Promise.all(started.map((node) => node.close()));
  }
});

// --- the message of a failed connect -----------------------------------------

test("ConnectFailedError names the first ten hosts in its message and keeps every failure in `failures`", () => {
  const failures = Array.from({ length: 5000 }, (_, i) => ({
    address: `db-${i}.example.internal:7000`,
    error: new ConnectionRefusedError({
      hostname: `db-${i}.example.internal`,
      port: 7000,
    }),
  }));
  const error = new ConnectFailedError(failures);
  assert.ok(error.message.length < 2000, `${error.message.length} chars`);
  for (let i = 0; i < 10; i++) {
    assert.ok(
      error.message.includes(
        `db-${i}.example.internal:7000 (connection to db-${i}.example.internal:7000 refused)`,
      ),
      error.message,
    );
  }
  assert.ok(!error.message.includes("db-10.example"), error.message);
  assert.match(error.message, /and 4990 more/);
  assert.equal(error.failures.length, 5000);
  assert.deepEqual(error.failures, failures);
  assert.equal(error.cause, failures[0].error);
  assert.equal(error.retryable, true);
  // A reason a node made long is shortened in the message, not in `failures`.
  const long = new ConnectFailedError([
    { address: "a:1", error: new Error("x".repeat(100_000)) },
  ]);
  assert.ok(long.message.length < 1000, `${long.message.length} chars`);
  assert.equal(long.failures[0].error.message.length, 100_000);
  // Ten or fewer: all named, nothing "more".
  const few = new ConnectFailedError(failures.slice(0, 10));
  assert.doesNotMatch(few.message, /more/);
  assert.ok(few.message.includes("db-9.example.internal:7000"));
});

test("a client of many unreachable hosts fails with a bounded message that holds no password", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const hosts = Array.from({ length: 300 }, (_, i) => `127.0.0.1:${2000 + i}`);
  const error = await failure(Client.connect({
    hosts,
    runtime: network,
    clock,
    username: "app",
    password: "hunter2-secret",
    healthConfig: { intervalMs: 0 },
  }));
  assert.ok(error instanceof ConnectFailedError, String(error));
  assert.ok(error.message.length < 2000, `${error.message.length} chars`);
  assert.match(error.message, /and 290 more/);
  assert.doesNotMatch(error.message, /hunter2/);
  assert.deepEqual(error.failures.map((f) => f.address), hosts);
  assert.equal(clock.pendingTimers, 0);
});

test("NoHealthyNodesError names the first ten nodes in its message and keeps every address", () => {
  const addresses = Array.from({ length: 5000 }, (_, i) => `db${i}:7000`);
  const error = new NoHealthyNodesError(addresses);
  assert.ok(error.message.length < 300, `${error.message.length} chars`);
  assert.match(
    error.message,
    /^no healthy node among 5000: db0:7000, .*db9:7000, and 4990 more$/,
  );
  assert.deepEqual(error.addresses, addresses);
  const few = new NoHealthyNodesError(["a:1", "b:2"]);
  assert.equal(few.message, "no healthy node among 2: a:1, b:2");
});

test("markNodeUnhealthy and markNodeHealthy refuse an address or reason that is no string with InvalidArgumentError, changing nothing; a reason's control characters do not reach a log line raw", async () => {
  const lines: string[] = [];
  await scene(
    2,
    { logger: (entry) => lines.push(entry.message) },
    ({ client, nodes }) => {
      const changes: unknown[] = [];
      client.addEventListener("nodeHealthChanged", (e) => {
        changes.push(e.detail.reason);
      });
      const address = nodes[0].address;
      const bad: [unknown, unknown, string][] = [
        [5, undefined, "address"],
        [undefined, undefined, "address"],
        [address, 5, "reason"],
        [address, Symbol("s"), "reason"],
        [address, { toString: () => "maintenance" }, "reason"],
        [address, null, "reason"],
      ];
      for (const [a, reason, argument] of bad) {
        for (
          const [method, mark] of [
            ["ConnectionManager.markNodeUnhealthy", "markNodeUnhealthy"],
            ["ConnectionManager.markNodeHealthy", "markNodeHealthy"],
          ] as const
        ) {
          assert.throws(
            () => client.manager[mark](a as string, reason as string),
            (error) =>
              error instanceof InvalidArgumentError &&
              error.argument === argument &&
              error.message.startsWith(`${method}: `),
          );
        }
      }
      assert.deepEqual(changes, []);
      assert.deepEqual(client.stats().nodes.map((n) => n.healthy), [
        true,
        true,
      ]);
      // A string is taken as it is, and told printably.
      assert.equal(
        client.manager.markNodeUnhealthy(address, "down\u001b[2J\nforged"),
        true,
      );
      assert.deepEqual(changes, ["down\u001b[2J\nforged"]);
      const line = lines.find((l) => l.includes("is unhealthy"))!;
      assert.ok(line.endsWith("down\\u001b[2J\\u000aforged"), line);
    },
  );
});

// --- the manager's own doors and results ------------------------------------

/** A manager of `n` reference nodes on one virtual clock, not connected. */
async function bareManager(n: number) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const nodes = await Promise.all(
    Array.from(
      { length: n },
      (_, i) => startTestNode({ nodeId: `n${i}`, runtime: network, clock }),
    ),
  );
  const manager = new ConnectionManager(
    resolveConfig({
      hosts: nodes.map((node) => node.address),
      runtime: network,
      clock,
      healthConfig: { intervalMs: 0 },
    }),
    network,
  );
  const end = async () => {
    await manager.close();
    await Promise.all(nodes.map((node) => node.close()));
  };
  return { manager, clock, network, end };
}

test("connect() refuses a signal that is no AbortSignal with InvalidArgumentError naming it, marking no node unhealthy", async () => {
  const { manager, clock, end } = await bareManager(2);
  try {
    const hostile = {
      get aborted(): boolean {
        throw new Error("getter bug");
      },
    };
    for (const signal of ["stop", { aborted: false }, hostile]) {
      const error = await failure(
        manager.connect(signal as unknown as AbortSignal),
      );
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, "signal");
      assert.match(error.message, /ConnectionManager\.connect/);
      await settle(clock);
      assert.equal(manager.healthyCount, 2, "no node was marked unhealthy");
    }
  } finally {
    await end();
  }
});

test("healthCheckAllNodes() after close() reports each node's error as ClientClosedError, with its code, not a plain Error", async () => {
  const { manager, clock, end } = await bareManager(2);
  try {
    const connected = manager.connect();
    await settle(clock);
    await connected;
    await manager.close();
    const results = await manager.healthCheckAllNodes();
    assert.equal(results.length, 2);
    for (const result of results) {
      assert.equal(result.ok, false);
      assert.ok(
        result.error instanceof ClientClosedError,
        String(result.error),
      );
      assert.equal(result.error.code, "CLIENT_CLOSED");
    }
  } finally {
    await end();
  }
});

test("connect() after close(), or with close() called while it waits, rejects with ClientClosedError (not retryable), not a retryable ConnectFailedError of closed pools", async () => {
  const { manager, clock, end } = await bareManager(2);
  try {
    const racing = failure(manager.connect());
    const closing = manager.close();
    await settle(clock);
    await closing;
    const during = await racing;
    assert.ok(during instanceof ClientClosedError, String(during));
    assert.equal(during.retryable, false);
    const after = await failure(manager.connect());
    assert.ok(after instanceof ClientClosedError, String(after));
    assert.equal(clock.pendingTimers, 0, "no health loop started");
  } finally {
    await end();
  }
});

test("stopHealthLoop() called while a scheduled sweep waits for its pings stops the loop: the sweep ends, and no other follows", async () => {
  const s = await startScene({
    mode: "virtual",
    nodes: 1,
    config: { healthConfig: { intervalMs: 1000, timeoutMs: 300 } },
  });
  try {
    const health = s.client.manager.nodes[0].health;
    await s.pass(1000);
    const passed = health.totalSuccesses;
    assert.ok(passed >= 1, "the loop ran");
    // The next sweep's ping hangs in the proxy.
    await s.proxies[0].setFaults({ stall: true });
    await s.pass(1000);
    s.client.manager.stopHealthLoop();
    // Its ping times out; then nothing more is checked.
    for (let i = 0; i < 10; i++) await s.pass(1000);
    assert.equal(health.totalSuccesses, passed);
    assert.equal(health.totalFailures, 1, "only the sweep in progress failed");
  } finally {
    await s.proxies[0].setFaults({ stall: false });
    const result = await s.finish();
    assert.deepEqual(result.escaped, []);
  }
});

test("addNode() with close() called while its first connection is made rejects with ClientClosedError, not a result saying the health checks will keep trying", async () => {
  const { manager, clock, network, end } = await bareManager(1);
  const spare = await startTestNode({ nodeId: "n9", runtime: network, clock });
  try {
    const connected = manager.connect();
    await settle(clock);
    await connected;
    const adding = failure(manager.addNode(spare.address));
    const closing = manager.close();
    await settle(clock);
    await closing;
    const error = await adding;
    assert.ok(error instanceof ClientClosedError, String(error));
  } finally {
    await spare.close();
    await end();
  }
});

test("markNodeHealthy on a node already healthy returns false and changes nothing: its run of failed checks and requests still counts toward taking it out", async () => {
  await scene(2, {}, ({ client, clock, nodes }) => {
    const address = nodes[0].address;
    const health = client.manager.node(address)!.health;
    const lost = new Error("no answer");
    health.recordFailure(lost, clock.now());
    health.recordFailure(lost, clock.now());
    health.recordRequestFailure(lost);
    const before = JSON.stringify(health);
    // A script that keeps the node "in rotation" must not mask its failing.
    assert.equal(client.manager.markNodeHealthy(address, "keep it"), false);
    assert.equal(JSON.stringify(health), before);
    assert.equal(health.consecutiveFailures, 2);
    // The third failed check (the default threshold) takes it out.
    assert.equal(health.recordFailure(lost, clock.now()), true);
  });
});

test("a change of a node's health made by a listener of its pool while the manager takes the node out is told after it, so the last nodeHealthChanged says what is so", async () => {
  await scene(2, {}, ({ client, nodes }) => {
    const address = nodes[0].address;
    const manager = client.manager;
    const told: string[] = [];
    manager.addEventListener("nodeHealthChanged", (e) => {
      told.push(`${e.detail.healthy} ${e.detail.reason}`);
    });
    // An operator's rule: a node cleared for maintenance comes straight back.
    manager.node(address)!.pool.addEventListener("poolCleared", () => {
      manager.markNodeHealthy(address, "back");
    }, { once: true });
    assert.equal(manager.markNodeUnhealthy(address, "maintenance"), true);
    assert.deepEqual(told, ["false maintenance", "true back"]);
    assert.equal(manager.node(address)!.health.isHealthy, true);
    assert.equal(manager.healthyCount, 2);
  });
});

test("a listener that flips a node's health on every change ends after a bounded number of changes, with no error escaping", async () => {
  const escapes = watchEscapes();
  await scene(2, {}, ({ client, nodes }) => {
    const address = nodes[0].address;
    const manager = client.manager;
    let told = 0;
    manager.addEventListener("nodeHealthChanged", (e) => {
      told++;
      if (e.detail.healthy) manager.markNodeUnhealthy(address, "flip");
      else manager.markNodeHealthy(address, "flop");
    });
    manager.markNodeUnhealthy(address, "start");
    assert.ok(told > 1 && told <= 200, `${told} changes told`);
    // What the set says matches the record, whichever way it ended.
    const healthy = manager.node(address)!.health.isHealthy;
    assert.equal(manager.healthyCount, healthy ? 2 : 1);
  });
  assert.deepEqual(await escapes.stop(), []);
});

test("the list manager.nodes returns cannot be reordered or emptied under the manager: sorting it for display leaves the host order, and the nodes, as they were", async () => {
  await scene(3, {}, async ({ client, clock, nodes }) => {
    const manager = client.manager;
    const order = nodes.map((n) => n.address);
    const list = manager.nodes as unknown as unknown[];
    // A JavaScript caller's careless calls: each throws on a frozen list.
    for (
      const change of [
        () => list.reverse(),
        () => list.sort(),
        () => (list.length = 0),
        () => list.push({}),
      ]
    ) {
      try {
        change();
      } catch {
        // Refused: the manager's list stays as it is.
      }
    }
    assert.deepEqual(manager.nodes.map((n) => n.address), order);
    const checks = manager.healthCheckAllNodes();
    await clock.advance(10);
    assert.deepEqual((await checks).map((r) => r.address), order);
  });
});
