// Client.request under faults and hostile timing: every request settles
// exactly once, the counts add up and nothing is left behind (timers,
// requests in flight, escaped errors), whatever happens to its nodes, its
// signal, the client or its hedges while it runs. Virtual clock, in-memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import {
  AbortedError,
  ClientClosedError,
  InvalidArgumentError,
  NoHealthyNodesError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { ops, replyText } from "../testing/ops.ts";
import { startTestNode } from "../testing/node.ts";
import { Client } from "../src/client/client.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { CountingClock } from "./support/counting.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { Clock, TimerHandle } from "../src/clock.ts";
import { type Hedge, Hedging } from "../src/client/hedging.ts";
import type { ManagedNode } from "../src/cluster/node.ts";
import { drive, watchEscapes } from "./support/fault_harness.ts";
import {
  assertNothingInFlight,
  closeDriven,
  countedSignal,
  guardedScene as scene,
  settle,
} from "./support/fault_checks.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { type HedgeScene, hedgeScene } from "./support/hedge_scene.ts";
import { childReport } from "./support/exit/spawn.ts";

/** Whether `call` settled once the network ran, without moving the clock. */
async function settledNow(
  clock: VirtualClock,
  call: Promise<unknown>,
): Promise<boolean> {
  let done = false;
  call.then(() => done = true, () => done = true);
  await settle(clock);
  return done;
}

const RETRY = { maxRetries: 3, initialBackoffMs: 5000, jitter: false };

test("a signal aborted by a retry listener ends the request at once, not after the backoff", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    const controller = new AbortController();
    client.addEventListener("retry", () => controller.abort("stop"));
    const call = client.request(ops.fail(100, true), {
      signal: controller.signal,
    });
    call.catch(() => {});
    assert.ok(await settledNow(clock, call), "settled without the backoff");
    await assert.rejects(
      call,
      (e: unknown) => e instanceof AbortedError && e.cause === "stop",
    );
    assertNothingInFlight(client);
  });
});

test("a disconnect from a retry listener ends the request at once and leaves no timer", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    let closing: Promise<void> | undefined;
    client.addEventListener("retry", () => {
      closing = client.disconnect({ timeoutMs: 1 });
    });
    const call = client.request(ops.fail(100, true));
    call.catch(() => {});
    assert.ok(await settledNow(clock, call), "settled without the backoff");
    await assert.rejects(
      call,
      (e: unknown) =>
        e instanceof ClientClosedError && e.code === "CLIENT_CLOSED" &&
        /the client disconnected while the request waited to be retried/.test(
          e.message,
        ),
    );
    await settle(clock);
    await closing;
    assert.equal(clock.pendingTimers, 0);
  });
});

/** The hedge scene, with escaped errors checked at the end. */
async function hedged(
  config: Partial<ConnectionConfig>,
  body: (s: HedgeScene) => Promise<void>,
): Promise<void> {
  const escapes = watchEscapes();
  await hedgeScene(config, async (s) => {
    try {
      await body(s);
    } finally {
      await closeDriven(s.client, s.clock);
    }
  });
  assert.deepEqual(await escapes.stop(), []);
}

test("a hedged request ends with the first node's refusal, not after the slower attempt says it again", async () => {
  // The hedge's node answered "not found" at 10 ms; the request waited for
  // the slow node's own answer, 190 ms later.
  await hedged({}, async ({ client, clock }) => {
    const start = clock.now();
    const call = client.request(ops.fail(404, false, "not found"), {
      idempotent: true,
    }).then(
      () => assert.fail("expected the node's error"),
      (error: unknown) => ({ error, at: clock.now() - start }),
    );
    await clock.advance(10);
    await settle(clock);
    assert.ok(await settledNow(clock, call), "settled on the first answer");
    const { error, at } = await call;
    assert.ok(error instanceof RemoteError && error.remoteCode === 404);
    assert.equal(error.nodeId, "h1");
    assert.ok(at < 20, `settled after ${at} ms`);
    // The slow attempt is still out, and booked when it ends.
    assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [1, 0]);
    await clock.advance(250);
    const stats = client.stats();
    assert.equal(stats.failed, 1);
    assert.equal(stats.succeeded, 0);
    assert.equal(stats.hedges, 1);
    assert.equal(stats.retries, 0);
    assertNothingInFlight(client);
  });
});

test("a retryable refusal from a hedged attempt waits for the other attempt", async () => {
  // "Overloaded, try elsewhere" is no answer: the slow attempt may still
  // succeed, so the request waits for it (here it fails the same way).
  await hedged(
    { retryConfig: { maxRetries: 0 } },
    async ({ client, clock }) => {
      const call = client.request(ops.fail(503, true), { idempotent: true });
      call.catch(() => {});
      await clock.advance(10);
      await clock.advance(10);
      assert.equal(await settledNow(clock, call), false);
      await clock.advance(250);
      await assert.rejects(
        call,
        (e: unknown) =>
          e instanceof RetriesExhaustedError &&
          e.cause instanceof RemoteError &&
          e.cause.nodeId === "h0",
      );
      assert.equal(client.stats().hedges, 1);
      assertNothingInFlight(client);
    },
  );
});

test("a disconnect wakes every request waiting to be retried: each fails at once with ClientClosedError, and no timer is left", async () => {
  await scene(2, { retryConfig: RETRY }, async ({ client, clock }) => {
    let retries = 0;
    client.addEventListener("retry", () => retries++);
    const calls = Array.from(
      { length: 20 },
      () => client.request(ops.fail(100, true)).catch((e) => e),
    );
    await settle(clock);
    assert.equal(retries, 20, "every request waits to be retried");
    const closing = client.disconnect({ timeoutMs: 10_000 });
    await settle(clock);
    for (const outcome of await Promise.all(calls)) {
      assert.ok(outcome instanceof ClientClosedError, String(outcome));
    }
    await settle(clock);
    await closing;
    assert.equal(clock.pendingTimers, 0);
    const stats = client.stats();
    assert.equal(stats.failed, 20);
    assert.equal(stats.retries, 20);
    assertNothingInFlight(client);
  });
});

test("an abort during the backoff ends the request at once and leaves no listener on the signal", async () => {
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    const controller = new AbortController();
    const { signal, live } = countedSignal(controller);
    const call = client.request(ops.fail(100, true), { signal });
    call.catch(() => {});
    await settle(clock);
    assert.equal(client.stats().retries, 1);
    controller.abort("stop");
    assert.ok(await settledNow(clock, call));
    await assert.rejects(
      call,
      (e: unknown) => e instanceof AbortedError && e.cause === "stop",
    );
    assert.equal(live(), 0);
    assertNothingInFlight(client);
  });
});

test("requests sharing a signal hold one listener on it while they wait to be retried, and an abort ends every wait", async () => {
  // Before: a listener per waiting request (Node warned past ten; on Deno
  // each add and remove scanned them all).
  await scene(1, { retryConfig: RETRY }, async ({ client, clock }) => {
    const controller = new AbortController();
    const { signal, live } = countedSignal(controller);
    const calls = Array.from(
      { length: 20 },
      () => client.request(ops.fail(100, true), { signal }).catch((e) => e),
    );
    await settle(clock);
    assert.equal(client.stats().retries, 20, "all wait to be retried");
    assert.equal(live(), 1);
    controller.abort("stop");
    for (const error of await Promise.all(calls)) {
      assert.ok(error instanceof AbortedError && error.cause === "stop");
    }
    assert.equal(live(), 0);
    assertNothingInFlight(client);
  });
});

test("a request leaves no listener on its signal: after a reply, retries, a timeout, a hedge and no healthy node", async () => {
  await scene(2, {
    retryConfig: { maxRetries: 2, initialBackoffMs: 10, jitter: false },
    poolConfig: { minConnections: 1, maxConnections: 1 },
    hedging: { delayMs: 10 },
  }, async ({ client, clock, nodes }) => {
    const { signal, live } = countedSignal(new AbortController());
    const run = async (payload: Uint8Array, options = {}) => {
      const call = client.request(payload, { signal, ...options }).catch((
        e,
      ) => e);
      for (let t = 0; t < 40; t++) await clock.advance(10);
      return await call;
    };
    assert.equal(replyText(await run(ops.echo("a"))), "a");
    assert.ok(await run(ops.fail(100, true)) instanceof RetriesExhaustedError);
    await run(ops.sleep(300), { timeoutMs: 50, retry: false });
    await run(ops.sleep(30), { idempotent: true });
    assert.equal(client.stats().hedges, 1);
    // Two waiting for the one connection of each node.
    await Promise.all([run(ops.sleep(5)), run(ops.sleep(5))]);
    for (const node of nodes) client.manager.markNodeUnhealthy(node.address);
    await run(ops.echo());
    assert.equal(live(), 0);
    assertNothingInFlight(client);
  });
});

test("with one healthy node a request is not hedged to the node it already waits on", async () => {
  await hedged({}, async ({ client, clock, fast }) => {
    client.manager.markNodeUnhealthy(fast.address);
    const call = client.request(ops.echo("x"), { idempotent: true });
    await clock.advance(250);
    assert.equal(replyText(await call), "x");
    assert.equal(client.stats().hedges, 0);
    assertNothingInFlight(client);
  });
});

/**
 * A clock the test moves by hand, synchronously, with at most one timer
 * armed between steps (all the hedging policy uses): fast enough for
 * thousands of steps.
 */
function handClock() {
  let now = 0;
  // Armed timers. A timer may be armed just before the one it replaces is
  // cleared (so that a clock whose setTimeout() throws leaves the old one
  // standing), never more than that: `armed` is checked after each step.
  const timers = new Set<{ fn: () => void; at: number }>();
  const clock: Clock = {
    now: () => now,
    setTimeout(fn, ms) {
      assert.ok(timers.size <= 1, "one timer at a time, and its replacement");
      const timer = { fn, at: now + ms };
      timers.add(timer);
      return timer as unknown as TimerHandle;
    },
    clearTimeout(handle) {
      timers.delete(handle as unknown as { fn: () => void; at: number });
    },
  };
  const due = () => [...timers].find((t) => t.at <= now);
  return {
    clock,
    pending: () => timers.size > 0,
    /** How many timers are armed. */
    armed: () => timers.size,
    /** Moves time on by `ms`, one ms at a time, firing what is due. */
    advance(ms: number) {
      for (let i = 0; i < ms; i++) {
        now++;
        for (let timer = due(); timer !== undefined; timer = due()) {
          timers.delete(timer);
          timer.fn();
        }
      }
    },
  };
}

test("the hedging timer looks at each waiting hedge a few times, not once per firing: steady traffic with a long hedge delay", () => {
  // Every firing scanned every hedge still waiting: with the delay at
  // 1000 ms and a request each ms, each hedge was looked at hundreds of
  // times (630,000 looks for 3,000 requests).
  const hand = handClock();
  const hedging = new Hedging(
    { delayMs: 1000, percentile: 95, maxHedges: 1 },
    hand.clock,
  );
  const node = {} as ManagedNode;
  let looks = 0;
  let fired = 0;
  const n = 3000;
  for (let i = 0; i < n; i++) {
    const hedge = hedging.start(() => fired++);
    let current: unknown = undefined;
    Object.defineProperty(hedge, "current", {
      get() {
        looks++;
        return current;
      },
      set(value) {
        current = value;
      },
    });
    hedge.arm(node);
    // Half the requests get their reply before their hedge is due.
    if (i % 2 === 0) hedge.finish();
    hand.advance(1);
  }
  hand.advance(1000);
  assert.equal(fired, n / 2);
  assert.ok(looks < 10 * n, `${looks} looks for ${n} hedges`);
  assert.equal(hand.pending(), false);
});

test("property: the hedging timer sends each live hedge once, at its time, whatever the delays and whichever requests finish or re-arm first", () => {
  const step = fc.oneof(
    fc.record({
      kind: fc.constant("start"),
      delay: fc.integer({ min: 1, max: 60 }),
    }),
    fc.record({ kind: fc.constant("finish"), pick: fc.nat() }),
    fc.record({
      kind: fc.constant("rearm"),
      pick: fc.nat(),
      delay: fc.integer({ min: 1, max: 60 }),
    }),
    fc.record({
      kind: fc.constant("wait"),
      ms: fc.integer({ min: 0, max: 30 }),
    }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
      const hand = handClock();
      const hedging = new Hedging(
        { delayMs: 1, percentile: 95, maxHedges: 1 },
        hand.clock,
      );
      // The model: when each hedge is due (undefined: not any more), and
      // when it was sent.
      const hedges: {
        hedge: Hedge;
        due: number | undefined;
        sent: number[];
        scheduled: number;
      }[] = [];
      const schedule = (h: (typeof hedges)[number], delay: number) => {
        h.hedge.current = hedging.schedule(h.hedge, delay);
        h.scheduled++;
        h.due = hand.clock.now() + delay;
      };
      for (const s of steps) {
        if (s.kind === "start") {
          const h = {
            hedge: undefined as unknown as Hedge,
            due: undefined as number | undefined,
            sent: [] as number[],
            scheduled: 0,
          };
          h.hedge = hedging.start(() => {
            assert.equal(hand.clock.now(), h.due, "sent at its time");
            h.sent.push(hand.clock.now());
            h.due = undefined;
          });
          hedges.push(h);
          schedule(h, s.delay);
        } else if (hedges.length > 0 && s.kind !== "wait") {
          const h = hedges[s.pick % hedges.length];
          if (s.kind === "finish") {
            h.hedge.finish();
            h.due = undefined;
          } else schedule(h, s.delay);
        } else if (s.kind === "wait") {
          // Nothing due may be left unsent.
          hand.advance(s.ms);
        }
        for (const h of hedges) {
          if (h.due !== undefined) {
            assert.ok(h.due > hand.clock.now(), "a due hedge was not sent");
          }
        }
        assert.ok(hand.armed() <= 1, "one timer at a time");
      }
      hand.advance(100);
      for (const h of hedges) {
        assert.equal(h.due, undefined);
        assert.ok(
          h.sent.length <= h.scheduled,
          `sent ${h.sent.length} times, scheduled ${h.scheduled}`,
        );
      }
      assert.equal(hand.pending(), false, "a timer with nothing to send");
    }),
  );
});

/** The runtime's adapter, with every datagram received delivered twice, the copy later. */
async function duplicatingAdapter(): Promise<RuntimeAdapter> {
  const adapter = await getAdapter();
  return {
    ...adapter,
    name: adapter.name,
    connect: adapter.connect.bind(adapter),
    listen: adapter.listen.bind(adapter),
    async datagram(options) {
      const channel = await adapter.datagram!(options);
      const onMessage = channel.onMessage.bind(channel);
      channel.onMessage = (fn) =>
        onMessage((bytes, hostname, port) => {
          const copy = bytes.slice();
          fn(bytes, hostname, port);
          setTimeout(() => fn(copy, hostname, port), 1);
        });
      return channel;
    },
  };
}

test("over UDP a duplicated reply is dropped, never handed to another request, and the connection stays", async () => {
  const node = await startTestNode({ protocols: ["udp"], udpPort: 0 });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: await duplicatingAdapter(),
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
  });
  try {
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => client.request(ops.echo(`r${round}.${i}`)),
        ),
      );
      replies.forEach((reply, i) => {
        assert.equal(replyText(reply), `r${round}.${i}`);
      });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const dropped = await client.withConnection((c) =>
      Promise.resolve(c.stats.dropped)
    );
    assert.equal(dropped, 60, "every copy dropped");
    const pool = client.stats().nodes[0].pool;
    assert.equal(pool.totalCreated, 1, "the one connection stayed");
    assert.equal(client.stats().succeeded, 60);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a disconnect from a listener while a hedge is sent leaves no hedging timer behind", async () => {
  // The hedge re-armed itself for a second hedge after disconnect had
  // stopped the hedging timer: a new timer outlived the client.
  const escapes = watchEscapes();
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const counting = new CountingClock(clock);
  const nodes = await Promise.all(
    [0, 1].map((i) =>
      startTestNode({ nodeId: `n${i}`, runtime: network, clock })
    ),
  );
  const client = await Client.connect({
    hosts: nodes.map((n) => n.address),
    runtime: network,
    clock: counting,
    loadBalancing: "round-robin",
    healthConfig: { intervalMs: 0 },
    poolConfig: { minConnections: 1, maxConnections: 1 },
    hedging: { delayMs: 10, maxHedges: 2 },
  });
  try {
    await clock.advance(0);
    let closing: Promise<void> | undefined;
    client.addEventListener("checkedOut", () => {
      // The main attempt's checkout is the first, the hedge's the second.
      if (client.stats().hedges === 1) {
        closing ??= client.disconnect({ timeoutMs: 1 });
      }
    });
    const call = client.request(ops.sleep(100), { idempotent: true });
    call.catch(() => {});
    await clock.advance(10);
    assert.ok(closing !== undefined, "disconnected during the hedge");
    for (let i = 0; i < 5; i++) await clock.advance(1);
    await closing;
    await assert.rejects(
      call,
      (e: unknown) =>
        e instanceof ClientClosedError && e.code === "CLIENT_CLOSED" &&
        /disconnect cancelled the request after waiting 1 ms/.test(e.message),
    );
    assert.equal(counting.liveTimers, 0, "client timers left");
  } finally {
    await client.disconnect();
    await clock.advance(200);
    await Promise.all(nodes.map((n) => n.close()));
  }
  assert.deepEqual(await escapes.stop(), []);
});

test("a retry that finds no healthy node fails with NoHealthyNodesError whose cause is the failed attempt's error; a first attempt's has none", async () => {
  // The retry's NoHealthyNodesError had no cause: why the node went away
  // (the attempt's own failure) was lost.
  await scene(1, { retryConfig: RETRY }, async ({ client, clock, nodes }) => {
    const address = nodes[0].address;
    client.addEventListener("retry", () => {
      client.manager.markNodeUnhealthy(address);
    });
    const call = client.request(ops.fail(100, true));
    call.catch(() => {});
    await settle(clock);
    await clock.advance(RETRY.initialBackoffMs);
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof NoHealthyNodesError, String(e));
      assert.equal(e.code, "NO_HEALTHY_NODES");
      assert.equal(e.message, `no healthy node among 1: ${address}`);
      assert.deepEqual(e.addresses, [address]);
      assert.ok(e.cause instanceof RemoteError, `cause: ${e.cause}`);
      assert.equal(e.cause.remoteCode, 100);
      return true;
    });
    await assert.rejects(
      client.request(ops.echo()),
      (e: unknown) => e instanceof NoHealthyNodesError && e.cause === undefined,
    );
    const stats = client.stats();
    assert.equal(stats.retries, 1);
    assert.equal(stats.failed, 2);
    assertNothingInFlight(client);
  });
});

test("an attempt that waited for a pool connection is not sent once its request has its outcome: neither the main attempt nor a hedge", async () => {
  // Once the connection came, the waiting attempt was sent anyway: load
  // on a node for a request already answered, booked as an attempt.
  await hedged({}, async ({ client, clock, slow, behind, fast }) => {
    const slowNode = client.manager.nodes.find((n) =>
      n.address === slow.address
    )!;
    const health = () =>
      client.stats().nodes.map((n) => [n.healthy, n.consecutiveFailures]);
    // The main attempt waits for the slow node's pool to open a connection
    // (200 ms through the proxy); the hedge, 10 ms later, is answered.
    slowNode.pool.clear();
    const first = client.request(ops.echo("a"), { idempotent: true });
    await clock.advance(10);
    await settle(clock);
    assert.ok(await settledNow(clock, first), "the hedge answered");
    assert.equal(replyText(await first), "a");
    await clock.advance(1000);
    assert.equal(behind.stats.requests, 0, "the main attempt was sent");
    assert.equal(fast.stats.requests, 1);
    assertNothingInFlight(client);
    // One plain request moves the round robin on: the next request's main
    // attempt goes to the fast node, its hedge to the slow one.
    assert.equal(
      replyText(await drive(clock, client.request(ops.echo("b")))),
      "b",
    );
    assert.equal(behind.stats.requests, 1);
    slowNode.pool.clear();
    const second = client.request(ops.sleep(30, "c"), { idempotent: true });
    await clock.advance(10);
    await settle(clock);
    assert.equal(client.stats().hedges, 2, "hedged to the slow node");
    await clock.advance(30);
    await settle(clock);
    assert.equal(replyText(await second), "c");
    await clock.advance(1000);
    assert.equal(behind.stats.requests, 1, "the hedge was sent");
    assert.equal(fast.stats.requests, 2);
    const stats = client.stats();
    assert.equal(stats.succeeded, 3);
    assert.equal(stats.failed, 0);
    assert.deepEqual(health(), [[true, 0], [true, 0]]);
    assertNothingInFlight(client);
  });
});

/** A Uint8Array whose `length` getter says `length`, or throws. */
function lyingLength(bytes: Uint8Array, length: number | Error): Uint8Array {
  class Lying extends Uint8Array {
    override get length(): number {
      if (length instanceof Error) throw length;
      return length;
    }
  }
  return new Lying(bytes);
}

test("a payload whose length getter lies or throws is refused with InvalidArgumentError naming it; nothing is sent and the connection stays good", async () => {
  // It passed the check: the writer framed `length` bytes and wrote the
  // array's real ones (a stream out of step for every request on it), or
  // threw inside the connection.
  await scene(1, {
    poolConfig: { minConnections: 1, maxConnections: 1 },
  }, async ({ client, clock, nodes }) => {
    const echo = ops.echo("abc");
    const big = ops.echo(new Uint8Array(20_000));
    const ownLength = ops.echo("abc");
    Object.defineProperty(ownLength, "length", { get: () => 3 });
    const shifted = (key: string, value: unknown) => {
      const payload = lyingLength(big, big.length);
      Object.defineProperty(payload, key, { get: () => value });
      return payload;
    };
    const liars: [string, Uint8Array][] = [
      ["shorter", lyingLength(echo, 3)],
      ["longer", lyingLength(echo, echo.length + 100)],
      ["throwing", lyingLength(echo, new Error("no length"))],
      ["own property", ownLength],
      ["large, byteLength", shifted("byteLength", 7)],
      ["large, byteOffset", shifted("byteOffset", 1)],
      ["large, buffer", shifted("buffer", new ArrayBuffer(big.length))],
    ];
    for (const [name, payload] of liars) {
      await assert.rejects(client.request(payload), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${name}: ${e}`);
        assert.equal(e.argument, "payload", name);
        assert.match(e.message, /^Client\.request: invalid payload/, name);
        if (name === "throwing") {
          assert.equal((e.cause as Error).message, "no length");
        }
        return true;
      });
    }
    assert.equal(nodes[0].stats.requests, 0);
    assert.equal(client.stats().failed, 0, "refused at the door");
    // A Buffer, a subclass that overrides nothing, and large ones: sent.
    class Plain extends Uint8Array {}
    const good = [
      Buffer.from(echo),
      new Plain(echo),
      Buffer.from(big),
      new Plain(big),
    ];
    for (const payload of good) {
      const reply = await drive(clock, client.request(payload));
      assert.equal(replyText(reply).length, payload.length - 1);
    }
    assert.equal(client.stats().nodes[0].pool.totalCreated, 1);
    assertNothingInFlight(client);
  });
});

test("a retry or retryBudgetExhausted listener that throws changes nothing for the request; its error is reported to the process, as any EventTarget listener's", async () => {
  // In a child process: `bun test` fails the running test on any
  // uncaught error, whatever handler is installed (see the child).
  const report = await childReport(
    fileURLToPath(new URL("./support/throwing_listeners.ts", import.meta.url)),
  );
  assert.deepEqual(report, {
    outcome: "REMOTE_ERROR",
    retries: 1,
    failed: 1,
    inFlight: 0,
    nodesInFlight: [0],
    later: { retry: 1, retryBudgetExhausted: 1 },
    next: true,
    reported: ["retry listener bug", "budget listener bug"],
  });
});
