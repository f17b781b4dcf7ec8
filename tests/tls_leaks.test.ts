// Leak checks for TLS: after using TLS every way there is (pooled
// connections, a refused certificate, a handshake abandoned at its
// timeout) and disconnecting, no socket, TLS session or timer is left.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client/client.ts";
import { systemClock } from "../src/clock.ts";
import { Connection } from "../src/connection/connection.ts";
import { TlsError } from "../src/errors.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { tlsTransport } from "../src/handshake/tls.ts";
import { CountingClock } from "./support/counting.ts";
import { agreeToTls, pem } from "./helpers.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";

const g = globalThis as {
  Deno?: {
    test(t: {
      name: string;
      sanitizeOps: boolean;
      sanitizeResources: boolean;
      fn: () => Promise<void>;
    }): void;
  };
  Bun?: unknown;
  process?: { getActiveResourcesInfo?: () => string[] };
};

const CA = pem("ca.pem");

/** Polls `check` until it holds, for at most `ms` of real time. */
async function settle(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A node that agrees to TLS and then never answers the ClientHello. */
async function muteNode() {
  const adapter = await getAdapter();
  let open = 0;
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    open++;
    agreeToTls(channel, { nodeId: "mute", protocols: ["tls"] });
    channel.onClose(() => open--);
  });
  return {
    port: listener.port,
    get open() {
      return open;
    },
    close: () => listener.close(),
  };
}

async function exercise() {
  const clock = new CountingClock(systemClock);
  const node = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
  });
  const client = await Client.connect({
    hosts: [node.address],
    clock,
    enableTls: true,
    tls: { ca: CA },
    healthConfig: { intervalMs: 20, timeoutMs: 500 },
    poolConfig: { minConnections: 2, maxConnections: 4 },
  });
  await Promise.all(
    Array.from({ length: 100 }, () => client.request(ops.echo("x"))),
  );
  await client.healthCheckAllNodes();
  // The pool opens its second connection in the background; the requests
  // may all finish over the first before that TLS handshake completes.
  await settle(() => node.stats.tlsHandshakes >= 2);
  const handshakes = node.stats.tlsHandshakes;
  await client.disconnect({ timeoutMs: 1000 });
  await settle(() => node.stats.open === 0);
  const nodeOpen = node.stats.open;
  await node.close();

  // A certificate the client refuses.
  const bad = await startTestNode({
    protocols: ["tls"],
    tls: { cert: pem("expired.pem"), key: pem("expired-key.pem") },
  });
  await assert.rejects(
    Client.connect({
      hosts: [bad.address],
      clock,
      enableTls: true,
      tls: { ca: CA },
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 1 },
    }),
    (error) => error instanceof TlsError && error.reason === "expired",
  );
  await settle(() => bad.stats.open === 0);
  const badOpen = bad.stats.open;
  await bad.close();

  // A handshake abandoned at its timeout: the socket must still close.
  const mute = await muteNode();
  const tls = resolveTlsConfig({ ca: CA, handshakeTimeoutMs: 100 }, "require");
  await assert.rejects(
    Connection.connect({
      adapter: await getAdapter(),
      hostname: "127.0.0.1",
      port: mute.port,
      clock,
      handshake: createHandshake({
        tlsPolicy: "require",
        transports: { tls: tlsTransport({ tls, clock }) },
      }),
    }),
    (error) =>
      error instanceof TlsError && error.reason === "handshake-timeout",
  );
  await settle(() => mute.open === 0);
  const muteOpen = mute.open;
  await mute.close();
  return {
    handshakes,
    nodeOpen,
    badOpen,
    muteOpen,
    timers: clock.liveTimers,
  };
}

test("after TLS every way there is, no connection or timer is left on either side", async () => {
  const r = await exercise();
  assert.ok(r.handshakes >= 2, `TLS sessions were opened (${r.handshakes})`);
  assert.equal(r.nodeOpen, 0, "every TLS connection closed at the node");
  assert.equal(r.badOpen, 0, "the refused connection closed at the node");
  assert.equal(r.muteOpen, 0, "the abandoned handshake's socket closed");
  assert.equal(r.timers, 0, "every timer fired or was cleared");
});

test("after TLS the runtime's socket handles are back where they started", async (t) => {
  const info = g.process?.getActiveResourcesInfo;
  if (g.Bun || info === undefined) {
    // Bun reports no active resources; the counts above cover it.
    t.diagnostic("no getActiveResourcesInfo to compare");
    assert.deepEqual(info?.() ?? [], []);
    return;
  }
  const sockets = () =>
    info().filter((r) => /tcp|tls|pipe|stream/i.test(r)).length;
  const before = sockets();
  const r = await exercise();
  assert.ok(r.handshakes > 0);
  await settle(() => sockets() <= before);
  assert.ok(sockets() <= before, `${before} before, ${sockets()} after`);
});

if (g.Deno) {
  // Deno's op and resource sanitizers do not cover node:test tests; this
  // one has both on, so a read left pending or a socket left open fails.
  g.Deno.test({
    name: "Deno sanitizers: TLS leaves no op or resource behind",
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const r = await exercise();
      assert.equal(r.muteOpen, 0);
      assert.equal(r.timers, 0);
    },
  });
}
