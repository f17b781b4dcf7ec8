// End to end over real loopback sockets on the runtime's native adapter:
// negotiation and SCRAM authentication between a Client and reference nodes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  AuthenticationError,
  ConfigError,
  NegotiationError,
  RemoteError,
} from "../src/errors.ts";
import {
  createHandshake,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import { ConnectionManager } from "../src/cluster/manager.ts";
import type { ProtocolSelectedEvent } from "../src/cluster/events.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const PASSWORD = "correct horse battery staple";
const USERS = { alice: PASSWORD };

/** Small pools, no background health loop: every attempt is one we caused. */
function config(node: TestNode, extra: Partial<ConnectionConfig> = {}) {
  return {
    hosts: [node.address],
    timeoutMs: 5000,
    poolConfig: { minConnections: 1, maxConnecting: 1 },
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 3, initialBackoffMs: 10 },
    ...extra,
  };
}

function assertNoPassword(password: string, ...values: unknown[]): void {
  for (const value of values) {
    for (
      const text of [
        String(value),
        JSON.stringify(value, (_k, v) => typeof v === "bigint" ? 0 : v) ?? "",
        inspect(value, { depth: 6, showHidden: false }),
        value instanceof Error ? `${value.message}\n${value.stack}` : "",
      ]
    ) {
      assert.ok(!text.includes(password), `password leaked in: ${text}`);
    }
  }
}

test("a client with the right password authenticates every pooled connection and its requests flow", async () => {
  const node = await startTestNode({ credentials: USERS });
  const client = await Client.connect(
    config(node, {
      username: "alice",
      password: PASSWORD,
      poolConfig: { minConnections: 3, maxConnecting: 3 },
    }),
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("hi"))), "hi");
    await client.withConnection(async (connection) => {
      const result = handshakeResult(connection)!;
      assert.equal(result.authenticated, true);
      assert.equal(result.username, "alice");
      assert.equal(result.protocol, "tcp");
      // The authenticated connection serves requests.
      assert.equal(replyText(await connection.sendRequest(ops.echo("x"))), "x");
    });
    assert.equal(client.stats().nodes[0].protocol, "tcp");
    assert.ok(node.stats.authSuccesses >= 1);
    assert.equal(node.stats.authFailures, 0);
    // The pool's other connections log in in the background: an exchange
    // may be under way (counted as an attempt, not yet a success). Give it
    // a bounded moment to end before comparing.
    for (
      let waited = 0;
      waited < 2000 && node.stats.authAttempts !== node.stats.authSuccesses;
      waited += 10
    ) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(node.stats.authAttempts, node.stats.authSuccesses);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a wrong password fails fast with AuthenticationError and is never retried", async () => {
  const node = await startTestNode({ credentials: USERS });
  const wrong = "Tr0ub4dor&3-wrong";
  try {
    let caught: unknown;
    try {
      await Client.connect(
        config(node, { username: "alice", password: wrong }),
      );
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof AuthenticationError, String(caught));
    assert.equal(caught.code, "AUTH_FAILED");
    assert.equal(caught.reason, "rejected");
    assert.equal(caught.retryable, false);
    assert.equal(caught.address, node.address);
    assert.match(caught.message, /as "alice" failed/);
    // One exchange, refused once, and nothing after it.
    assert.equal(node.stats.authAttempts, 1);
    assert.equal(node.stats.authFailures, 1);
    assert.equal(node.stats.accepted, 1);
    assert.equal(node.stats.requests, 0);
    assertNoPassword(wrong, caught);
  } finally {
    await node.close();
  }
});

test("a wrong password on a later connection fails the request at once, with no retry", async () => {
  const first = await startTestNode({ credentials: USERS });
  const port = first.port;
  const client = await Client.connect(
    config(first, {
      username: "alice",
      password: PASSWORD,
      poolConfig: { minConnections: 0, maxConnecting: 1 },
    }),
  );
  let second: TestNode | undefined;
  try {
    const pool = client.manager.nodes[0].pool;
    const open = pool.connections();
    assert.ok(open.length >= 1);
    // The node restarts with the password changed.
    await first.close();
    await Promise.all(open.map((c) => c.closed));
    second = await startTestNode({ port, credentials: { alice: "rotated" } });
    await assert.rejects(
      client.request(ops.echo("x"), { idempotent: true }),
      (error) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.reason, "rejected");
        return true;
      },
    );
    assert.equal(client.stats().retries, 0);
    assert.equal(second.stats.authAttempts, 1);
    assert.equal(second.stats.authFailures, 1);
    assertNoPassword(PASSWORD, client, client.config, client.stats());
  } finally {
    await client.disconnect();
    await second?.close();
  }
});

test("a client with no credentials against a node that requires them gets a clear AuthenticationError", async () => {
  const node = await startTestNode({ credentials: USERS });
  try {
    await assert.rejects(Client.connect(config(node)), (error) => {
      assert.ok(error instanceof AuthenticationError, String(error));
      assert.equal(error.reason, "credentials-required");
      assert.match(error.message, /requires authentication \(SCRAM-SHA-256\)/);
      assert.match(error.message, /no username and password are configured/);
      return true;
    });
    // A username alone is refused before connecting (issue 12, defect 7).
    await assert.rejects(
      Client.connect(config(node, { username: "alice" })),
      (error) =>
        error instanceof ConfigError && error.field === "password" &&
        /a password is required when a username is given/.test(error.message),
    );
    // Refused before a single SCRAM message was sent.
    assert.equal(node.stats.authAttempts, 0);
  } finally {
    await node.close();
  }
});

test("the /core handshake given a username alone refuses before any SCRAM message", async () => {
  const node = await startTestNode({ credentials: USERS });
  try {
    await assert.rejects(
      Connection.connect({
        adapter: await getAdapter(),
        hostname: node.hostname,
        port: node.port,
        handshake: createHandshake({ username: "alice" }),
      }),
      (error) =>
        error instanceof AuthenticationError &&
        /no password is configured/.test(error.message),
    );
    assert.equal(node.stats.authAttempts, 0);
  } finally {
    await node.close();
  }
});

test("a connection that skips authentication gets ERROR 6 (AuthRequired) for every request", async () => {
  const node = await startTestNode({ credentials: USERS });
  const connection = await Connection.connect({
    adapter: await getAdapter(),
    hostname: node.hostname,
    port: node.port,
  });
  try {
    assert.equal(connection.hello?.auth, "scram-sha-256");
    await assert.rejects(connection.sendRequest(ops.echo("x")), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.remoteCode, RemoteErrorCode.AuthRequired);
      assert.equal(error.retryable, false);
      return true;
    });
    assert.equal(node.stats.requests, 1);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("credentials against a node that does not authenticate are refused, not ignored", async () => {
  const node = await startTestNode();
  try {
    await assert.rejects(
      Client.connect(config(node, { username: "alice", password: PASSWORD })),
      (error) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.reason, "node-unauthenticated");
        return true;
      },
    );
    assert.equal(node.stats.requests, 0);
  } finally {
    await node.close();
  }
});

test("negotiation picks TCP when TLS is not offered and the policy allows it; stats and events show it", async () => {
  const plain = await startTestNode();
  // Advertises TLS and UDP too; the client has no TLS transport to offer
  // (its adapter is told it has no TLS), and UDP ranks below TCP.
  const rich = await startTestNode({ protocols: ["tls", "tcp", "udp"] });
  const resolved = resolveConfig({
    ...config(plain),
    hosts: [plain.address, rich.address],
    tlsPolicy: "prefer",
  });
  const manager = new ConnectionManager(resolved, {
    ...await getAdapter(),
    supportsTls: false,
  });
  const events: ProtocolSelectedEvent[] = [];
  manager.addEventListener(
    "protocolSelected",
    (e) => events.push(e),
  );
  try {
    await manager.connect();
    assert.deepEqual(manager.nodes.map((n) => n.protocol), ["tcp", "tcp"]);
    assert.deepEqual(
      events.map((
        e,
      ) => [e.detail.address, e.detail.protocol, e.detail.previous])
        .sort(),
      [[plain.address, "tcp", undefined], [rich.address, "tcp", undefined]]
        .sort(),
    );
    assert.equal(plain.stats.negotiations, 1);
    assert.equal(rich.stats.negotiations, 1);
    const connection = await manager.nodes[1].pool.acquireShared();
    assert.deepEqual(handshakeResult(connection)?.nodeProtocols, [
      "tls",
      "tcp",
      "udp",
    ]);
    assert.equal(handshakeResult(connection)?.udpPort, rich.port);
  } finally {
    await manager.close();
    await plain.close();
    await rich.close();
  }
});

test("enableTls against a node without TLS fails closed with a NegotiationError listing both sets", async () => {
  const node = await startTestNode();
  try {
    await assert.rejects(
      Client.connect(config(node, { enableTls: true })),
      (error) => {
        assert.ok(error instanceof NegotiationError, String(error));
        assert.equal(error.code, "NEGOTIATION_FAILED");
        assert.equal(error.retryable, false);
        assert.deepEqual(error.allowedProtocols, ["tls"]);
        assert.deepEqual(error.nodeProtocols, ["tcp"]);
        assert.ok(!error.clientProtocols.includes("tcp"));
        assert.match(error.message, /policy allows \[tls\]/);
        assert.match(error.message, /node supports \[tcp\]/);
        return true;
      },
    );
    // One connection, no request ever sent, no fallback connection.
    assert.equal(node.stats.accepted, 1);
    assert.equal(node.stats.requests, 0);
  } finally {
    await node.close();
  }
});
