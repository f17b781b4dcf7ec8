// A custom clock whose setTimeout() throws where a timer is armed before
// the work starts: a connection's open, a TLS upgrade, a TLS switch, a
// receiveMessage wait, a lazy client's first connect, a removed node's
// grace. Each fails with the ConfigError naming the clock's setTimeout()
// (its throw as cause), not with the clock's raw Error, and leaves
// nothing open.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { Client } from "../src/client/client.ts";
import { Connection } from "../src/connection/connection.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { upgradeToTls } from "../src/handshake/tls.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import {
  assertSetFailed,
  breakableClock,
  clientOnBreakableClock,
  disconnectOn,
  removeNodeOn,
} from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { tickEnds } from "./support/stub_connection.ts";

test("Connection.connect with a clock whose setTimeout() throws rejects with the ConfigError naming it, before any socket", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { clock, brokeSet: broke, state } = breakableClock();
  const watch = watchEscapes();
  try {
    state.sets = 0;
    // Before: rejected with the clock's raw Error.
    const error = await Connection.connect({
      adapter: network,
      hostname: "127.0.0.1",
      port: node.port,
      clock,
      timeoutMs: 1000,
    }).then(() => "opened", (e: unknown) => e);
    assertSetFailed(error, broke, "the open");
    assert.equal(state.setsThrown, 1);
    await tickEnds();
    assert.equal(network.openChannels, 0);
  } finally {
    network.breakAll("the test is over");
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

/** A plain channel whose startTls is counted and never settles. */
function upgradable() {
  const seen = { startTls: 0, destroyed: 0 };
  const channel = stubChannel({
    onData: () => {},
    pause: () => {},
    resume: () => {},
    destroy: () => void seen.destroyed++,
    startTls: () => {
      seen.startTls++;
      return new Promise<ByteChannel>(() => {});
    },
  });
  return { channel, seen };
}

test("a TLS upgrade whose clock's setTimeout() throws rejects with the ConfigError naming it, and the adapter is never asked", async () => {
  const { clock, brokeSet: broke, state } = breakableClock();
  const watch = watchEscapes();
  const { channel, seen } = upgradable();
  const c = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock: new VirtualClock(),
  });
  state.sets = 0;
  // Before: rejected with the clock's raw Error.
  const error = await upgradeToTls(
    c,
    resolveTlsConfig({ handshakeTimeoutMs: 2000 }, "require"),
    clock,
    new AbortController().signal,
  ).then(() => "upgraded", (e: unknown) => e);
  assertSetFailed(error, broke, "the upgrade");
  assert.equal(seen.startTls, 0, "the adapter was not asked");
  c.destroy();
  assert.deepEqual(await watch.stop(), []);
});

test("a TLS switch whose connection's clock's setTimeout() throws rejects with the ConfigError naming it, and the connection ends", async () => {
  const { clock, brokeSet: broke, state } = breakableClock();
  const watch = watchEscapes();
  const { channel, seen } = upgradable();
  const c = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 500,
    connectTimeoutMs: 1000,
  });
  await tickEnds();
  state.sets = 0;
  // Before: rejected with the clock's raw Error.
  const error = await c.startTls({ serverName: "fake" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  assertSetFailed(error, broke, "the switch");
  assert.equal(seen.startTls, 0, "the adapter was not asked");
  assert.equal(c.isOpen, false, "the connection ended");
  assert.ok(seen.destroyed > 0, "its channel was destroyed");
  assert.deepEqual(await watch.stop(), []);
});

test("receiveMessage with a clock whose setTimeout() throws rejects with the ConfigError naming it, and waits for nothing", async () => {
  const { clock, brokeSet: broke, state } = breakableClock();
  const watch = watchEscapes();
  let deliver!: (chunk: Uint8Array) => void;
  const d = new Connection(
    stubChannel({ onData: (fn) => (deliver = fn) }),
    { hostname: "fake", port: 1 },
    { clock },
  );
  await tickEnds();
  state.sets = 0;
  // Before: rejected with the clock's raw Error.
  const error = await d.receiveMessage({ timeoutMs: 100 }).then(
    () => "received",
    (e: unknown) => e,
  );
  assertSetFailed(error, broke, "the wait");
  // No waiter was left behind: the next message is kept for the next
  // receive, which (the clock mended, no limit) takes it.
  state.sets = Infinity;
  const codec = new MessageCodec();
  deliver(codec.encode({
    type: MessageType.NegotiateOk,
    flags: 0,
    sequence: 1,
    payload: new Uint8Array(0),
  }));
  const message = await d.receiveMessage({ timeoutMs: Infinity });
  assert.equal(message.type, MessageType.NegotiateOk);
  d.destroy();
  assert.deepEqual(await watch.stop(), []);
});

test("a lazy client's first request whose connect's time limit cannot be armed rejects with the ConfigError naming setTimeout(); nothing escapes", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const { virtual, clock, brokeSet } = breakableClock();
  // Only the lazy connect's limit breaks: the first timer armed for the
  // request's timeout (the request's own deadline comes later).
  const setTimeout = clock.setTimeout;
  let broken = 0;
  clock.setTimeout = (fn, ms) => {
    if (ms === 777 && broken++ === 0) throw brokeSet;
    return setTimeout(fn, ms);
  };
  const watch = watchEscapes();
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
  }, { lazy: true });
  try {
    let outcome: unknown = "pending";
    client.request(ops.echo("x"), { timeoutMs: 777 }).then(
      (reply) => (outcome = replyText(reply)),
      (error) => (outcome = error),
    );
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await virtual.advance(0);
      await tickEnds();
    }
    assert.equal(broken, 1, "the limit was armed once");
    // Before: rejected with the clock's raw Error.
    assertSetFailed(outcome, brokeSet, "the first request");
    // The connect it stopped waiting for goes on: the next request
    // gets its reply.
    assert.equal(replyText(await client.request(ops.echo("y"))), "y");
  } finally {
    await disconnectOn(client, virtual);
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});

test("removeNode() while the clock's setTimeout() throws: the node leaves at once (its pool closed, nodeRemoved told) and removeNode() rejects with the ConfigError naming setTimeout()", async () => {
  const s = await clientOnBreakableClock({ nodes: 2 });
  const { client, virtual, state, brokeSet, network } = s;
  let escaped: unknown[] = [];
  try {
    const address = s.nodes[1].address;
    const open = network.openChannels;
    state.sets = 0;
    state.setBreaks = 1;
    const { outcome, removed } = await removeNodeOn(client, virtual, address);
    // Before: rejected with the clock's raw Error, the node out of the
    // members with its pool never closed, nodeRemoved never told.
    assertSetFailed(outcome, brokeSet, "removeNode");
    assert.deepEqual(removed, [address]);
    assert.deepEqual(client.stats().nodes.map((n) => n.address), [
      s.nodes[0].address,
    ]);
    assert.ok(
      network.openChannels < open,
      `the removed node's connection was closed (${network.openChannels} of ${open} open)`,
    );
    state.sets = Infinity;
    assert.equal(replyText(await client.request(ops.echo("y"))), "y");
  } finally {
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, []);
});
