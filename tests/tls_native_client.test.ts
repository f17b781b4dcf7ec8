// Deno's native TLS (Deno.Conn + Deno.startTls, chosen through the
// startsTls hint) attacked at the client level by a helper session: pools
// under load, SCRAM, large payloads, disconnects in the middle of opening,
// a mute TLS node next to a healthy one, and the "stalled" endpoint
// mechanism. The first two tests failed on Deno before the fix of the
// commit that added this file. Tests only Deno can run are registered on
// Deno only.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client/client.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { agreeToTls, hookStartTls, pem } from "./helpers.ts";
import { startTestNode } from "../testing/node.ts";
import { decodeReply, ops, replyText } from "../testing/ops.ts";

const CA = pem("ca.pem");
const ON_DENO = detectRuntime() === "deno";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tlsNode(extra: Parameters<typeof startTestNode>[0] = {}) {
  return startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
    ...extra,
  });
}

const big = () => new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);

/** Four connections, all opened at once, shared past two in flight. */
const POOL_OF_FOUR = {
  minConnections: 4,
  maxConnections: 4,
  maxConnecting: 4,
  multiplexThreshold: 2,
};

// --------------------------------------------- defects, fixed since

test("a disconnect while the pool is still opening connections under load leaves no socket open to the node", async () => {
  const node = await tlsNode();
  const client = await Client.connect({
    hosts: [node.address],
    tlsPolicy: "require",
    tls: { ca: CA },
    poolConfig: POOL_OF_FOUR,
    healthConfig: { intervalMs: 0 },
  });
  const payload = big();
  // The 1 MiB echoes keep the event loop busy while the pool's other three
  // connects are under way; the disconnect's 20 ms then aborts them.
  const settled = Array.from(
    { length: 40 },
    (_, i) =>
      client.request(i % 4 === 0 ? ops.echo(payload) : ops.echo("x")).then(
        () => "ok",
        (e: Error) => e.name,
      ),
  );
  try {
    await client.disconnect({ timeoutMs: 20 });
    await Promise.all(settled);
    for (let i = 0; i < 150 && node.stats.open > 0; i++) await sleep(20);
    // Deno's native path had left 3 sockets ESTABLISHED for as long as the
    // process lived: Deno.connect aborted as it connected leaks the socket.
    assert.equal(node.stats.open, 0, "sockets the client still holds open");
  } finally {
    await node.close();
  }
});

if (ON_DENO) {
  test("Deno: a handshake given up on by disconnect() against a healthy node leaves the node on Deno.startTls for later clients", async () => {
    const node = await tlsNode();
    const { hook, restore } = hookStartTls();
    try {
      const client = await Client.connect({
        hosts: [node.address],
        tlsPolicy: "require",
        tls: { ca: CA },
        poolConfig: { minConnections: 2, maxConnections: 2, maxConnecting: 1 },
        healthConfig: { intervalMs: 0 },
      });
      // The pool's second connection is warming up: disconnect exactly as
      // its Deno.startTls begins (with a real network's latency the window
      // is an RTT wide: 3 of 8 connect/request/disconnect cycles over a
      // 5 ms proxy left the node stalled).
      let disconnecting: Promise<void> | undefined;
      hook.onCall = () => {
        hook.onCall = undefined;
        disconnecting = client.disconnect();
      };
      for (let i = 0; i < 400 && !disconnecting; i++) await sleep(5);
      assert.ok(disconnecting, "the second connection reached Deno.startTls");
      await disconnecting;
      // The healthy node finished that handshake and the socket is gone...
      for (let i = 0; i < 100 && node.stats.open > 0; i++) await sleep(20);
      assert.equal(node.stats.open, 0);
      // ...within its grace, so the node is not stalled: a later client's
      // TLS to it still goes through Deno.startTls (it had gone through
      // node:tls, twice the CPU per request, for the life of the process).
      const before = hook.calls;
      const later = await Client.connect({
        hosts: [node.address],
        tlsPolicy: "require",
        tls: { ca: CA },
        poolConfig: { minConnections: 1, maxConnecting: 1 },
        healthConfig: { intervalMs: 0 },
      });
      try {
        assert.equal(replyText(await later.request(ops.echo("y"))), "y");
        assert.equal(
          hook.calls - before,
          1,
          "the later client's connection went through Deno.startTls",
        );
      } finally {
        await later.disconnect();
      }
    } finally {
      restore();
      await node.close();
    }
  });
}

// ------------------------------------------------------- regression guards

test("a pool of four over TLS with SCRAM carries concurrent requests, 1 MiB payloads and requestMany; on Deno each connection went through Deno.startTls", async () => {
  const node = await tlsNode({ credentials: { alice: "pw-native-tls" } });
  const { hook, restore } = hookStartTls();
  const client = await Client.connect({
    hosts: [node.address],
    tlsPolicy: "require",
    tls: { ca: CA },
    username: "alice",
    password: "pw-native-tls",
    poolConfig: POOL_OF_FOUR,
    healthConfig: { intervalMs: 0 },
  });
  try {
    const payload = big();
    const replies = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => client.request(ops.echo(i % 25 === 0 ? payload : `r${i}`)),
      ),
    );
    replies.forEach((reply, i) => {
      if (i % 25 === 0) assert.deepEqual(decodeReply(reply).data, payload);
      else assert.equal(replyText(reply), `r${i}`);
    });
    const many = await client.requestMany(
      Array.from({ length: 300 }, (_, i) => ops.echo(`m${i}`)),
    );
    assert.equal(many.length, 300);
    for (let i = 0; i < 100 && client.stats().nodes[0].pool.open < 4; i++) {
      await sleep(20);
    }
    const stats = client.stats().nodes[0];
    assert.equal(stats.protocol, "tls");
    assert.equal(stats.pool.open, 4);
    assert.equal(node.stats.authFailures, 0);
    assert.equal(hook.calls, ON_DENO ? stats.pool.totalCreated : 0);
  } finally {
    restore();
    await client.disconnect();
    await node.close();
  }
});

test("a node that agrees to TLS and never answers the ClientHello times out its handshake; the healthy node next to it serves every request and disconnect settles", async () => {
  const adapter = await getAdapter();
  const accepted: ByteChannel[] = [];
  const mute = await adapter.listen({ port: 0 }, (channel) => {
    accepted.push(channel);
    agreeToTls(channel, {
      nodeId: "mute",
      protocols: ["tls", "tcp"],
      onSwitched: () => {},
    });
  });
  const good = await tlsNode({ nodeId: "good" });
  try {
    const client = await Client.connect({
      hosts: [`127.0.0.1:${mute.port}`, good.address],
      tlsPolicy: "require",
      tls: { ca: CA, handshakeTimeoutMs: 200, serverName: "localhost" },
      poolConfig: { minConnections: 2, maxConnecting: 2 },
      healthConfig: { intervalMs: 0 },
      timeoutMs: 3000,
      retryConfig: { maxRetries: 3, initialBackoffMs: 10 },
    });
    try {
      const replies = await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) => client.request(ops.echo(`r${i}`), { idempotent: true }),
        ),
      );
      for (const reply of replies) {
        assert.equal(decodeReply(reply).nodeId, "good");
      }
      const byId = new Map(client.stats().nodes.map((n) => [n.address, n]));
      assert.equal(byId.get(good.address)?.protocol, "tls");
      assert.equal(byId.get(`127.0.0.1:${mute.port}`)?.healthy, false);
    } finally {
      await client.disconnect();
    }
  } finally {
    // Deno leaves the one natively abandoned socket to its peer: close it.
    for (const channel of accepted) channel.destroy();
    await mute.close();
    await good.close();
  }
});
