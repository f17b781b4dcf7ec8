// A custom clock whose setTimeout() throws where a timer is armed before
// the work starts: a connection's open, a TLS upgrade, a TLS switch. Each
// fails with the ConfigError naming the clock's setTimeout() (its throw
// as cause), not with the clock's raw Error, and leaves nothing open.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { Connection } from "../src/connection/connection.ts";
import { ConfigError } from "../src/errors.ts";
import { upgradeToTls } from "../src/handshake/tls.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { breakableClock } from "./support/breakable_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** Checks that `error` is the ConfigError naming setTimeout(). */
function assertSetFailed(error: unknown, cause: Error, what: string) {
  assert.ok(error instanceof ConfigError, `${what}: ${String(error)}`);
  assert.equal(error.field, "clock", what);
  assert.match(error.message, /setTimeout\(\)/, what);
  assert.equal(error.cause, cause, what);
}

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
