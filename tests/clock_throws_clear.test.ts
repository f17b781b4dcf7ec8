// A custom clock whose clearTimeout() throws once the client is up. Each
// place that cancels a timer did so as part of other work (a settling, a
// re-arm, a shutdown), and the throw stopped that work where it was: a
// connection's shutdown left its requests unsettled, a receiveMessage, a
// TLS switch or a lazy client's first connect never settled, a connection
// opened was neither handed over nor destroyed, a pool's or a client's
// close never ended, a removed node never left, and the throws escaped
// from timers, socket events and promise handlers. Now the work completes
// as if the timer had been cleared, the timer finds nothing to do when it
// fires, and the ConfigError naming clearTimeout() reaches the callers who
// wait on the clear itself: disconnect() and removeNode().
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { Hedging } from "../src/client/hedging.ts";
import { sleep } from "../src/client/sleep.ts";
import type { ManagedNode } from "../src/cluster/node.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  type DeadlineEntry,
  DeadlineTracker,
} from "../src/connection/deadlines.ts";
import { AbortedError, ConfigError, NodewireError } from "../src/errors.ts";
import { upgradeToTls } from "../src/handshake/tls.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import {
  assertClearFailed,
  breakableClock,
  clientOnBreakableClock,
  fakePoolOn,
  removeNodeOn,
} from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { tickEnds } from "./support/stub_connection.ts";

interface Entry extends DeadlineEntry {
  id: number;
}

test("a deadline tracker whose clock's clearTimeout() throws as its timer moves earlier, re-arms from a firing and stops throws nothing, and expires each entry at its deadline", async () => {
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const held = new Set<Entry>();
  const expired: [number, number][] = [];
  const tracker = new DeadlineTracker<Entry>(
    clock,
    (visit) => held.forEach(visit),
    (e) => {
      held.delete(e);
      expired.push([e.id, virtual.now()]);
      // Adds a later one from inside the firing: the timer is armed for
      // it, then moved earlier for entry 2, a clear the clock refuses.
      if (e.id === 3) add(4, 500);
    },
    () => assert.fail("every deadline can be armed"),
  );
  const add = (id: number, timeoutMs: number) => {
    const e: Entry = { id, deadline: 0, timeoutMs: 0 };
    held.add(e);
    tracker.add(e, timeoutMs);
  };
  add(1, 300);
  state.clears = 0;
  // Earlier than the armed timer: the clear throws. Before: thrown out
  // of add() (the request failed with the raw Error), and the tracker
  // stayed armed for 300 only.
  add(2, 200);
  add(3, 100);
  await virtual.advance(100);
  await virtual.advance(100);
  await virtual.advance(100);
  assert.deepEqual(expired, [[3, 100], [2, 200], [1, 300]]);
  await virtual.advance(300);
  assert.deepEqual(expired.at(-1), [4, 600]);
  add(5, 100);
  // Before: thrown out of stop() (a connection's shutdown).
  tracker.stop();
  assert.equal(tracker.armed, false);
  await virtual.advance(1000);
  assert.equal(expired.length, 4, "nothing expires once stopped");
  assert.ok(state.clearsThrown >= 3, `${state.clearsThrown} clears threw`);
  // Before: the firing's re-arm threw out of the timer.
  assert.deepEqual(await watch.stop(), []);
});

const codec = new MessageCodec();
const negotiateOk = (sequence: number) =>
  codec.encode({
    type: MessageType.NegotiateOk,
    flags: 0,
    sequence,
    payload: new Uint8Array(0),
  });

test("receiveMessage waits that end while the clock's clearTimeout() throws each settle (a message, an abort, a timeout, the connection lost), and nothing escapes", async () => {
  const { virtual, clock, state, brokeClear } = breakableClock();
  const watch = watchEscapes();
  let deliver!: (chunk: Uint8Array) => void;
  const channel = stubChannel({ onData: (fn) => (deliver = fn) });
  const c = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 1000,
  });
  state.clears = 0;
  const settled = (p: Promise<unknown>) =>
    p.then((m) => ["message", m], (e: unknown) => ["error", e]);
  // Before: pending for good, the throw out of the delivery.
  const taken = settled(c.receiveMessage({ timeoutMs: 100 }));
  deliver(negotiateOk(1));
  const [kind] = await taken;
  assert.equal(kind, "message");
  // Before: pending, the throw uncaught from the abort's dispatch.
  const caller = new AbortController();
  const aborted = settled(
    c.receiveMessage({ timeoutMs: 100, signal: caller.signal }),
  );
  caller.abort(new Error("gave up"));
  const [, abortError] = await aborted;
  assert.ok(abortError instanceof AbortedError, String(abortError));
  // Its own timeout: the timer's handle is spent, its clear throws too.
  const timedOut = settled(c.receiveMessage({ timeoutMs: 100 }));
  await virtual.advance(100);
  const [, timeoutError] = await timedOut;
  assert.ok(timeoutError instanceof NodewireError, String(timeoutError));
  // Two waiting as the connection goes: before, the first's throw kept
  // the second waiting.
  const first = settled(c.receiveMessage({ timeoutMs: 100 }));
  const second = settled(c.receiveMessage({ timeoutMs: 100 }));
  c.destroy();
  for (const [kind, error] of [await first, await second]) {
    assert.equal(kind, "error");
    assert.ok(error instanceof NodewireError, String(error));
  }
  // The timers left armed fire into settled waits.
  await virtual.advance(1000);
  assert.ok(state.clearsThrown >= 4, `${state.clearsThrown} clears threw`);
  const escaped = await watch.stop();
  assert.deepEqual(escaped.filter((e) => e === brokeClear), []);
  assert.deepEqual(escaped, []);
});

test("a connection opened while the clock's clearTimeout() throws is handed over and not aborted by its connect timer; nothing leaks or escapes", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  try {
    state.clears = 0;
    // Before: rejected with the clock's raw Error, the connection open
    // and nobody's (a channel left open for good).
    const c = await Connection.connect({
      adapter: network,
      hostname: "127.0.0.1",
      port: node.port,
      clock,
      timeoutMs: 1000,
    });
    assert.ok(state.clearsThrown >= 1, "the open's clear threw");
    // The connect timer it could not clear fires into an open that ended.
    await virtual.advance(1000);
    assert.equal(c.isOpen, true);
    state.clears = Infinity;
    const reply = c.sendRequest(ops.echo("x"));
    assert.equal(replyText(await reply), "x");
    c.destroy();
    await tickEnds();
    assert.equal(network.openChannels, 0);
  } finally {
    state.clears = Infinity;
    network.breakAll("the test is over");
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("a TLS switch and upgrade that end while the clock's clearTimeout() throws settle as they would have, and their timers do nothing when they fire", async () => {
  for (const outcome of ["switched", "refused"] as const) {
    const { virtual, clock, state } = breakableClock();
    const watch = watchEscapes();
    let upgraded!: (secure: ByteChannel) => void;
    let refused!: (error: Error) => void;
    let destroyed = 0;
    const plain = stubChannel({
      onData: () => {},
      pause: () => {},
      resume: () => {},
      destroy: () => void destroyed++,
      startTls: () =>
        new Promise<ByteChannel>((resolve, reject) => {
          upgraded = resolve;
          refused = reject;
        }),
    });
    const secure = { ...stubChannel({ onData: () => {} }) } as ByteChannel;
    const c = new Connection(plain, { hostname: "fake", port: 1 }, {
      clock,
      requestTimeoutMs: 500,
      connectTimeoutMs: 1000,
    });
    const caller = new AbortController();
    // Before: the switch's settling threw (an unhandled rejection) and
    // the upgrade never settled; once it did, its finally's throw
    // replaced what it ended with.
    const upgrade = upgradeToTls(
      c,
      resolveTlsConfig({ handshakeTimeoutMs: 2000 }, "require"),
      clock,
      caller.signal,
    ).then(() => "switched", (error: unknown) => error);
    await tickEnds();
    state.clears = 0;
    if (outcome === "switched") upgraded(secure);
    else refused(new Error("no common cipher"));
    for (let i = 0; i < 3; i++) await tickEnds();
    let result: unknown = "pending";
    void upgrade.then((r) => (result = r));
    await tickEnds();
    if (outcome === "switched") {
      assert.equal(result, "switched");
      assert.equal(c.encrypted, true);
      // The timers left armed (the switch's, the upgrade's) fire into
      // work that is done: the connection stays up.
      await virtual.advance(2000);
      assert.equal(c.isOpen, true);
    } else {
      assert.ok(result instanceof NodewireError, `refused: ${result}`);
      assert.ok(destroyed > 0, "the connection was destroyed");
    }
    assert.ok(state.clearsThrown >= 2, `${state.clearsThrown} clears threw`);
    c.destroy();
    assert.deepEqual(await watch.stop(), [], outcome);
  }
});

test("a pool closing while the clock's clearTimeout() throws still closes every connection, and close() resolves", async () => {
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const pool = fakePoolOn(clock, {
    minConnections: 2,
    maxConnections: 2,
    idleTimeoutMs: 50,
    maxLifetimeMs: 10_000,
  });
  const lent = [
    await pool.getConnection(),
    await pool.getConnection(),
  ];
  const connections = pool.connections();
  assert.equal(connections.length, 2);
  // A checkout that waits moves the housekeeper's timer earlier: a clear
  // the clock refuses. Before: thrown out of the checkout.
  state.clears = 0;
  const waiting = pool.getConnection({ timeoutMs: 20 }).then(
    () => "served",
    (error: unknown) => error,
  );
  await virtual.advance(20);
  const waited = await waiting;
  assert.ok(waited instanceof NodewireError, String(waited));
  for (const c of lent) pool.returnConnection(c);
  // Before: close() threw synchronously, every connection left open.
  let closed: unknown = "pending";
  pool.close().then(() => (closed = "closed"), (error) => (closed = error));
  for (let i = 0; i < 10 && closed === "pending"; i++) {
    await virtual.advance(10);
    await tickEnds();
  }
  assert.equal(closed, "closed");
  assert.ok(connections.every((c) => !c.isOpen), "every connection closed");
  // The timers left armed fire into a closed pool.
  await virtual.advance(20_000);
  assert.ok(state.clearsThrown >= 1, `${state.clearsThrown} clears threw`);
  assert.deepEqual(await watch.stop(), []);
});

for (const scene of ["idle", "busy"] as const) {
  test(`disconnect() of a client ${scene} (hedging, health checks), the clock's clearTimeout() throwing after 0 to 6 clears: every connection closes, disconnect() settles (the ConfigError naming clearTimeout() when it met it), nothing escapes`, async () => {
    const problems: string[] = [];
    let named = 0;
    for (let clears = 0; clears <= 6; clears++) {
      const s = await clientOnBreakableClock({
        nodes: 2,
        config: {
          hedging: { delayMs: 50 },
          healthConfig: { intervalMs: 1000 },
          poolConfig: { minConnections: 1, maxConnections: 2 },
        },
      });
      const { client, virtual, state, brokeClear, network, nodes, watch } = s;
      const name = `${clears} clears`;
      let request: unknown = "none";
      if (scene === "busy") {
        request = "pending";
        // Answered in 10 s: in flight through the grace, its hedge armed.
        client.request(ops.sleep(10_000, "x"), { idempotent: true }).then(
          () => (request = "replied"),
          (error) => (request = error),
        );
        await tickEnds();
      }
      state.clears = clears;
      let outcome: unknown = "pending";
      try {
        client.disconnect({ timeoutMs: 5 }).then(
          () => (outcome = "done"),
          (error) => (outcome = error),
        );
        client.disconnect({ timeoutMs: 2 }).catch(() => {});
      } catch (error) {
        outcome = `threw ${error}`;
      }
      for (let i = 0; i < 20 && outcome === "pending"; i++) {
        await virtual.advance(1).catch(() => {});
        await tickEnds();
      }
      const thrown = state.clearsThrown;
      state.clears = Infinity;
      await virtual.advance(0);
      await tickEnds();
      const open = network.openChannels;
      if (outcome === "pending") problems.push(`${name}: still pending`);
      else if (outcome instanceof ConfigError) {
        named++;
        try {
          assertClearFailed(outcome, brokeClear, name);
        } catch (error) {
          problems.push(String(error));
        }
      } else if (outcome !== "done") {
        problems.push(`${name}: ${String(outcome)}`);
      } else if (thrown > 0) {
        problems.push(`${name}: clearTimeout() threw ${thrown} times, untold`);
      }
      if (open > 0) problems.push(`${name}: ${open} channels left open`);
      if (scene === "busy" && !(request instanceof NodewireError)) {
        problems.push(`${name}: the request ended with ${request}`);
      }
      // Let anything left finish, so the process can exit.
      if (outcome === "pending" || open > 0) {
        network.breakAll("the test is over");
        for (let i = 0; i < 20; i++) await virtual.advance(1000);
      }
      for (const node of nodes) await node.close();
      const escaped = await watch.stop();
      if (escaped.length > 0) problems.push(`${name}: escaped ${escaped}`);
    }
    assert.deepEqual(problems, []);
    assert.ok(named > 0, "no disconnect() named the clock");
  });
}

test("removeNode() while the clock's clearTimeout() throws: the node leaves (nodeRemoved told) and removeNode() rejects with the ConfigError naming clearTimeout()", async () => {
  const s = await clientOnBreakableClock({ nodes: 2 });
  const { client, virtual, state, brokeClear } = s;
  let escaped: unknown[] = [];
  try {
    const address = s.nodes[1].address;
    state.clears = 0;
    const { outcome, removed } = await removeNodeOn(client, virtual, address);
    // Before: rejected with the clock's raw Error, nodeRemoved never told.
    assertClearFailed(outcome, brokeClear, "removeNode");
    assert.deepEqual(removed, [address]);
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [
      s.nodes[0].address,
    ]);
    state.clears = Infinity;
    assert.equal(replyText(await client.request(ops.echo("y"))), "y");
    // The overdue timer it could not clear destroys nothing.
    await virtual.advance(60_000);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

test("a lazy client's first request, its connect done while the clock's clearTimeout() throws, gets its reply", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
  }, { lazy: true });
  try {
    state.clears = 0;
    let outcome: unknown = "pending";
    client.request(ops.echo("x")).then(
      (reply) => (outcome = replyText(reply)),
      (error) => (outcome = error),
    );
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await virtual.advance(0);
      await tickEnds();
    }
    // Before: pending for good, an unhandled rejection.
    assert.equal(outcome, "x");
    assert.ok(state.clearsThrown >= 1, "a clear threw");
  } finally {
    state.clears = Infinity;
    const done = client.disconnect({ timeoutMs: 1 }).catch(() => {});
    for (let i = 0; i < 5; i++) await virtual.advance(1);
    await done;
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("sleep() aborted while its clock's clearTimeout() throws rejects with the abort's reason; nothing escapes", async () => {
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const caller = new AbortController();
  const reason = new Error("gave up");
  const slept = sleep(clock, 100, caller.signal).then(
    () => "slept",
    (error: unknown) => error,
  );
  state.clears = 0;
  // Before: the throw went out of abort() here, and the sleep ran on.
  caller.abort(reason);
  assert.equal(await slept, reason);
  await virtual.advance(100);
  assert.equal(state.clearsThrown, 1);
  assert.deepEqual(await watch.stop(), []);
});

test("markNodeHealthy() ending an ejection while the clock's clearTimeout() throws puts the node back in rotation, and its ejection timer does nothing when it fires", async () => {
  const s = await clientOnBreakableClock({
    nodes: 2,
    config: { loadBalancing: "round-robin", retryConfig: { maxRetries: 0 } },
  });
  const { client, virtual, state } = s;
  let escaped: unknown[] = [];
  try {
    const overloaded = ops.fail(RemoteErrorCode.Overloaded, false, "busy");
    for (let i = 0; i < 10 && client.manager.healthyCount === 2; i++) {
      await client.request(overloaded).catch(() => {});
    }
    const ejected = client.manager.nodes.find((n) => n.health.isEjected);
    assert.ok(ejected !== undefined, "a node was ejected");
    state.clears = 0;
    // Before: the clock's raw Error thrown out of markNodeHealthy, the
    // node healthy again but not back in rotation.
    assert.equal(
      client.manager.markNodeHealthy(ejected.address, "operator"),
      true,
    );
    assert.equal(client.manager.healthyCount, 2);
    assert.ok(state.clearsThrown >= 1, "the clear threw");
    // Its ejection timer, left armed, fires into a node no longer ejected.
    const changes: boolean[] = [];
    client.addEventListener("nodeHealthChanged", (e) => {
      changes.push(e.detail.healthy);
    });
    await virtual.advance(600_000);
    assert.deepEqual(changes, []);
    assert.equal(client.manager.healthyCount, 2);
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});

test("a hedge timer moved earlier while the clock's clearTimeout() throws sends each hedge once, at its time, and stops without a throw", async () => {
  const { virtual, clock, state } = breakableClock();
  const watch = watchEscapes();
  const hedging = new Hedging(
    { delayMs: undefined, percentile: 50, maxHedges: 1 },
    clock,
  );
  // Nodes known by their reply times: a slow one, then a fast one.
  const slow = {} as ManagedNode;
  const fast = {} as ManagedNode;
  for (let i = 0; i < 20; i++) {
    hedging.record(slow, 100);
    hedging.record(fast, 10);
  }
  const fired: [string, number][] = [];
  hedging.start(() => fired.push(["slow", virtual.now()])).arm(slow);
  state.clears = 0;
  // Due sooner than the armed timer: the clear throws. Before: thrown
  // out of arm(), which failed the request being hedged with it.
  hedging.start(() => fired.push(["fast", virtual.now()])).arm(fast);
  await virtual.advance(10);
  await virtual.advance(90);
  await virtual.advance(100);
  assert.deepEqual(fired, [["fast", 10], ["slow", 100]]);
  hedging.start(() => fired.push(["late", virtual.now()])).arm(slow);
  // Before: thrown out of stop(), which a disconnect calls first.
  hedging.stop();
  await virtual.advance(1000);
  assert.equal(fired.length, 2, "nothing sent once stopped");
  assert.ok(state.clearsThrown >= 1, `${state.clearsThrown} clears threw`);
  assert.deepEqual(await watch.stop(), []);
});
