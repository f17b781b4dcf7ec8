// TLS end to end over real loopback sockets on the runtime's native adapter:
// the upgrade after NEGOTIATE_OK, direct TLS, the TLS policy, certificate
// failures that fail closed, the unsafe switch and the handshake timeout.
// Certificates come from scripts/gen-test-certs.sh (testing/certs/).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectFailedError,
  ConnectionLostError,
  NegotiationError,
  TlsError,
} from "../src/errors.ts";
import {
  createHandshake,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import { HEADER_SIZE, MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { systemClock } from "../src/clock.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { tlsTransport } from "../src/handshake/tls.ts";
import { agreeToTls, pem } from "./helpers.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { concatBytes } from "../testing/bytes.ts";

const CA = pem("ca.pem");

/** A node serving TLS (and TCP) with the named fixture certificate. */
function tlsNode(
  cert = "server",
  extra: Parameters<typeof startTestNode>[0] = {},
) {
  return startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem(`${cert}.pem`), key: pem(`${cert}-key.pem`) },
    ...extra,
  });
}

/** One connection, no health loop: every attempt is one we caused. */
function config(
  address: string,
  extra: Partial<ConnectionConfig> = {},
): ConnectionConfig {
  return {
    hosts: [address],
    timeoutMs: 5000,
    poolConfig: { minConnections: 1, maxConnecting: 1 },
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 3, initialBackoffMs: 10 },
    ...extra,
  };
}

/** A TCP relay that records what passes each way. */
async function recordingRelay(adapter: RuntimeAdapter, target: TestNode) {
  const toNode: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  const open = new Set<ByteChannel>();
  const listener = await adapter.listen({ port: 0 }, (inbound) => {
    open.add(inbound);
    inbound.onClose(() => open.delete(inbound));
    adapter.connect({ hostname: target.hostname, port: target.port }).then(
      (outbound) => {
        open.add(outbound);
        // Reading starts here, once both ends exist: nothing is lost.
        inbound.onData((chunk) => {
          toNode.push(chunk.slice());
          outbound.write(chunk);
        });
        outbound.onData((chunk) => {
          toClient.push(chunk.slice());
          inbound.write(chunk);
        });
        inbound.onClose(() => {
          open.delete(inbound);
          outbound.close();
        });
        outbound.onClose(() => {
          open.delete(outbound);
          inbound.close();
        });
      },
      () => inbound.destroy(),
    );
  });
  return {
    address: `127.0.0.1:${listener.port}`,
    toNode: () => concatBytes(toNode),
    toClient: () => concatBytes(toClient),
    async close() {
      await listener.close();
      for (const channel of open) channel.destroy();
    },
  };
}

/** Skips `count` frames and returns where the bytes after them start. */
function afterFrames(bytes: Uint8Array, types: number[]): number {
  let at = 0;
  for (const type of types) {
    assert.equal(bytes[at + 1], type, `frame type at ${at}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset + at + 12, 4);
    at += HEADER_SIZE + view.getUint32(0);
  }
  return at;
}

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

test("TLS is chosen when both sides have it, requests flow over it, and the wire carries TLS records only", async () => {
  const adapter = await getAdapter();
  const node = await tlsNode();
  const relay = await recordingRelay(adapter, node);
  const client = await Client.connect(
    config(relay.address, { tlsPolicy: "prefer", tls: { ca: CA } }),
  );
  const secret = "top-secret-payload-4711";
  try {
    assert.equal(replyText(await client.request(ops.echo(secret))), secret);
    assert.equal(client.stats().nodes[0].protocol, "tls");
    await client.withConnection((connection) => {
      assert.equal(handshakeResult(connection)?.protocol, "tls");
      assert.equal(connection.encrypted, true);
      return Promise.resolve();
    });
    assert.equal(node.stats.tlsHandshakes, 1);
    assert.equal(node.stats.tlsFailures, 0);

    const up = relay.toNode();
    const down = relay.toClient();
    // HELLO and NEGOTIATE in plaintext, then a TLS handshake record
    // (0x16, version 3.x): the ClientHello.
    const clientHello = afterFrames(up, [
      MessageType.Hello,
      MessageType.Negotiate,
    ]);
    assert.deepEqual([up[clientHello], up[clientHello + 1]], [0x16, 0x03]);
    // HELLO_OK and NEGOTIATE_OK, then the ServerHello.
    const serverHello = afterFrames(down, [
      MessageType.HelloOk,
      MessageType.NegotiateOk,
    ]);
    assert.deepEqual([down[serverHello], down[serverHello + 1]], [0x16, 0x03]);
    // Everything after that is TLS records: the request and its echo
    // never appear in the clear.
    const plain = new TextEncoder().encode(secret);
    assert.ok(!includes(up, plain), "request visible on the wire");
    assert.ok(!includes(down, plain), "reply visible on the wire");
  } finally {
    await client.disconnect();
    await relay.close();
    await node.close();
  }
});

test("prefer falls back to TCP only because the node does not offer TLS", async () => {
  const node = await startTestNode({ protocols: ["tcp"] });
  const client = await Client.connect(
    config(node.address, { tlsPolicy: "prefer", tls: { ca: CA } }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("plain"))), "plain");
    assert.equal(client.stats().nodes[0].protocol, "tcp");
    await client.withConnection((connection) => {
      const result = handshakeResult(connection)!;
      // TLS was offered, first; the node simply does not have it.
      assert.equal(result.clientProtocols[0], "tls");
      assert.deepEqual(result.nodeProtocols, ["tcp"]);
      assert.equal(result.protocol, "tcp");
      assert.equal(connection.encrypted, false);
      return Promise.resolve();
    });
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("require against a node without TLS fails closed with a NegotiationError, on one connection", async () => {
  const node = await startTestNode({ protocols: ["tcp"] });
  try {
    await assert.rejects(
      Client.connect(
        config(node.address, { enableTls: true, tls: { ca: CA } }),
      ),
      (error) => {
        assert.ok(error instanceof NegotiationError, String(error));
        assert.equal(error.retryable, false);
        assert.deepEqual(error.clientProtocols, ["tls"]);
        assert.deepEqual(error.nodeProtocols, ["tcp"]);
        return true;
      },
    );
    assert.equal(node.stats.accepted, 1);
    assert.equal(node.stats.requests, 0);
  } finally {
    await node.close();
  }
});

for (
  const [what, cert, reason, pattern] of [
    [
      "a certificate from an untrusted CA",
      "untrusted",
      "certificate",
      /not trusted/,
    ],
    [
      "a certificate for another host name",
      "wrong-host",
      "hostname",
      /not valid for "127\.0\.0\.1"/,
    ],
    ["an expired certificate", "expired", "expired", /expired/],
  ] as const
) {
  test(`${what} fails closed with TlsError "${reason}": never retried, never TCP`, async () => {
    // The node serves TCP too, and the policy would allow it: a
    // certificate failure must still not fall back to it.
    const node = await tlsNode(cert);
    try {
      await assert.rejects(
        Client.connect(
          config(node.address, { tlsPolicy: "prefer", tls: { ca: CA } }),
        ),
        (error) => {
          assert.ok(error instanceof TlsError, String(error));
          assert.equal(error.code, "TLS_FAILED");
          assert.equal(error.reason, reason);
          assert.equal(error.retryable, false);
          assert.equal(error.address, node.address);
          assert.match(error.message, pattern);
          return true;
        },
      );
      // One connection, one negotiation, no request: nothing retried and
      // nothing sent in the clear after the failure.
      assert.equal(node.stats.accepted, 1);
      assert.equal(node.stats.negotiations, 1);
      assert.equal(node.stats.requests, 0);
      assert.equal(node.stats.tlsHandshakes, 0);
    } finally {
      await node.close();
    }
  });
}

test("dangerouslySkipVerify accepts the untrusted certificate (and only says so by name)", async () => {
  const node = await tlsNode("untrusted");
  const client = await Client.connect(
    config(node.address, {
      enableTls: true,
      tls: { dangerouslySkipVerify: true },
    }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("risky"))), "risky");
    assert.equal(client.stats().nodes[0].protocol, "tls");
    assert.equal(node.stats.tlsHandshakes, 1);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a DNS server name is verified too, and a CA list given as one PEM string works", async () => {
  const node = await tlsNode();
  const client = await Client.connect(
    config(node.address, {
      enableTls: true,
      tls: { ca: CA + pem("untrusted.pem"), serverName: "localhost" },
    }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("dns"))), "dns");
    assert.equal(
      resolveConfig(config(node.address, {
        enableTls: true,
        tls: { ca: CA + pem("untrusted.pem") },
      })).tls.ca?.length,
      2,
    );
  } finally {
    await client.disconnect();
    await node.close();
  }
  const wrong = await tlsNode();
  try {
    await assert.rejects(
      Client.connect(
        config(wrong.address, {
          enableTls: true,
          tls: { ca: CA, serverName: "db.example.invalid" },
        }),
      ),
      (error) => error instanceof TlsError && error.reason === "hostname",
    );
  } finally {
    await wrong.close();
  }
});

test("SCRAM authentication runs over the TLS stream", async () => {
  const node = await tlsNode("server", {
    credentials: { alice: "s3cret-pass" },
  });
  const client = await Client.connect(
    config(node.address, {
      enableTls: true,
      tls: { ca: CA },
      username: "alice",
      password: "s3cret-pass",
    }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("auth"))), "auth");
    await client.withConnection((connection) => {
      const result = handshakeResult(connection)!;
      assert.equal(result.protocol, "tls");
      assert.equal(result.authenticated, true);
      return Promise.resolve();
    });
    assert.equal(node.stats.authSuccesses, 1);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("direct TLS: the stream is encrypted from the first byte", async () => {
  const node = await startTestNode({
    protocols: ["tls"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem"), direct: true },
  });
  const client = await Client.connect(
    config(node.address, { enableTls: true, tls: { ca: CA, direct: true } }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("direct"))), "direct");
    assert.equal(client.stats().nodes[0].protocol, "tls");
    assert.equal(node.stats.tlsHandshakes, 1);
  } finally {
    await client.disconnect();
    await node.close();
  }
  // And a plaintext client cannot talk to it.
  const again = await startTestNode({
    protocols: ["tls"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem"), direct: true },
  });
  try {
    // Turned away (the node drops a plaintext hello), not a connect that
    // merely timed out or failed some other way.
    await assert.rejects(
      Client.connect(config(again.address, { timeoutMs: 1000 })),
      (error: unknown) => {
        assert.ok(error instanceof ConnectFailedError, String(error));
        const why = error.failures[0]?.error;
        assert.ok(why instanceof ConnectionLostError, String(why));
        return true;
      },
    );
    assert.equal(again.stats.requests, 0);
  } finally {
    await again.close();
  }
});

test("a node that never completes the TLS handshake fails within handshakeTimeoutMs", async () => {
  const adapter = await getAdapter();
  // Says yes to TLS, then swallows the ClientHello and never answers.
  const swallowed: number[] = [];
  let closed = 0;
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    agreeToTls(channel, {
      nodeId: "mute",
      protocols: ["tls", "tcp"],
      onSwitched: (chunk) => swallowed.push(chunk.length),
    });
    channel.onClose(() => closed++);
  });
  const tls = resolveTlsConfig({ ca: CA, handshakeTimeoutMs: 300 }, "require");
  const started = performance.now();
  try {
    await assert.rejects(
      Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port: listener.port,
        timeoutMs: 10_000,
        handshake: createHandshake({
          tlsPolicy: "require",
          transports: { tls: tlsTransport({ tls, clock: systemClock }) },
        }),
      }),
      (error) => {
        assert.ok(error instanceof TlsError, String(error));
        assert.equal(error.reason, "handshake-timeout");
        // A slow node may answer the next time: retryable, never sent.
        assert.equal(error.retryable, true);
        assert.equal(error.sent, false);
        return true;
      },
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 3000, `took ${elapsed} ms`);
    assert.ok(swallowed.length > 0, "the ClientHello reached the node");
    // The client closed the socket: the node sees it go within a bound.
    for (let i = 0; i < 100 && closed === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(closed, 1);
  } finally {
    await listener.close();
  }
});

test("the Node adapter hands over the TLS records of one read together, before their microtasks", async () => {
  // Node's TLSSocket calls back once per record and runs the microtasks
  // in between: the client then answered each record with a write of its
  // own, and its batches only ever split (bench/limit.bench.ts, tls).
  const [net, tls] = await Promise.all([
    import("node:net"),
    import("node:tls"),
  ]);
  const { nodeAdapter } = await import("../src/runtime/node/adapter.ts");
  const { Duplex } = await import("node:stream");
  const records = [
    new TextEncoder().encode("first record"),
    new TextEncoder().encode("second record"),
  ];
  const server = net.createServer((socket) => {
    // Ciphertext passes through, except the two records, held back and
    // written to the socket at once: they arrive in one read.
    let held: Uint8Array[] | undefined;
    const wire = new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        if (held === undefined) socket.write(chunk);
        else {
          held.push(chunk);
          if (held.length === records.length) socket.write(concatBytes(held));
        }
        callback();
      },
    });
    socket.on("data", (chunk) => wire.push(chunk));
    socket.on("error", () => {});
    const secure = new tls.TLSSocket(wire, {
      isServer: true,
      cert: pem("server.pem"),
      key: pem("server-key.pem"),
    });
    secure.on("error", () => {});
    secure.once("secure", () => {
      held = [];
      for (const record of records) secure.write(record);
    });
    socket.on("close", () => secure.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const channel = await nodeAdapter.connect({
    hostname: "127.0.0.1",
    port,
    tls: { serverName: "localhost", ca: [CA] },
  });
  try {
    const seen: string[] = [];
    let text = "";
    const expected = "first recordsecond record";
    await new Promise<void>((resolve) => {
      channel.onClose(() => resolve());
      channel.onData((chunk) => {
        seen.push("data");
        queueMicrotask(() => seen.push("microtask"));
        text += new TextDecoder().decode(chunk);
        if (text.length >= expected.length) resolve();
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(text, expected);
    // However the runtime cuts them (one callback per record, or both in
    // one), no microtask runs before the last of them.
    const firstMicrotask = seen.indexOf("microtask");
    assert.ok(
      firstMicrotask > 0 && seen.lastIndexOf("data") < firstMicrotask,
      seen.join(", "),
    );
  } finally {
    channel.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
