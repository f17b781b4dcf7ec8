// The logger tells the story of a client: connects and their failures,
// TLS, negotiation and authentication outcomes, lost connections, pool
// clears, health changes and retries, each with its error object where
// there is one, and never a credential.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pem } from "./helpers.ts";
import { rejectionsDuring } from "./support/uncaught.ts";
import { inspect } from "node:util";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig, LogEntry } from "../src/config/shapes.ts";
import {
  AuthenticationError,
  ConnectFailedError,
  NegotiationError,
  NodeUnhealthyError,
  RemoteError,
  RetriesExhaustedError,
  TlsError,
} from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const PASSWORD = "s3cret-Horse-Battery-Staple";

/** One connection per node, no health loop: every entry is one we caused. */
function config(
  hosts: string[],
  entries: LogEntry[],
  extra: Partial<ConnectionConfig> = {},
): ConnectionConfig {
  return {
    hosts,
    poolConfig: { minConnections: 1, maxConnecting: 1 },
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 2, initialBackoffMs: 1 },
    logger: (entry) => entries.push(entry),
    ...extra,
  };
}

/** The entries as `level event`, for comparing stories. */
const story = (entries: LogEntry[]) =>
  entries.map((e) => `${e.level} ${e.event}`);

function find(entries: LogEntry[], event: string): LogEntry {
  const entry = entries.find((e) => e.event === event);
  assert.ok(entry, `no ${event} entry in: ${story(entries).join(", ")}`);
  return entry;
}

async function deadAddress(): Promise<string> {
  const node = await startTestNode();
  const address = node.address;
  await node.close();
  return address;
}

/** Nothing the logger received shows the password, however it is printed. */
function assertNoPassword(entries: LogEntry[]): void {
  for (const entry of entries) {
    const error = entry.error;
    const causes: unknown[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) {
      causes.push(e);
    }
    for (
      const text of [
        entry.message,
        JSON.stringify(entry),
        inspect(entry, { depth: 8 }),
        ...causes.map((e) => `${(e as Error).message}\n${(e as Error).stack}`),
      ]
    ) {
      assert.ok(!text.includes(PASSWORD), `password leaked in: ${text}`);
    }
  }
}

test("a connect tells which nodes answered, over what, and which did not and why", async () => {
  const node = await startTestNode({ nodeId: "alive" });
  const dead = await deadAddress();
  const entries: LogEntry[] = [];
  const client = await Client.connect(
    config([node.address, dead], entries),
  );
  try {
    const opened = find(entries, "connectionOpened");
    assert.equal(opened.level, "debug");
    assert.equal(opened.address, node.address);
    assert.equal(typeof opened.connectionId, "number");
    assert.match(opened.message, /open in \d+ ms \(over tcp\)/);
    const selected = find(entries, "protocolSelected");
    assert.equal(selected.level, "info");
    assert.match(selected.message, /\(alive\) negotiated tcp/);
    const failed = find(entries, "connectionFailed");
    assert.equal(failed.level, "warn");
    assert.equal(failed.address, dead);
    assert.ok(failed.error instanceof Error, "the error object itself");
    assert.ok(failed.message.includes(failed.error.message));
    const down = find(entries, "nodeHealthChanged");
    assert.equal(down.level, "warn");
    assert.equal(down.address, dead);
    const connected = find(entries, "connected");
    assert.equal(connected.level, "info");
    assert.equal(connected.message, "connected: 1 of 2 nodes healthy");
  } finally {
    await client.disconnect();
    await node.close();
  }
  assert.equal(entries.at(-1)?.event, "disconnected");
});

test("a connect that reaches no node is an error entry carrying the error thrown", async () => {
  const entries: LogEntry[] = [];
  const thrown = await Client.connect(
    config([await deadAddress()], entries),
  ).catch((e) => e);
  assert.ok(thrown instanceof ConnectFailedError);
  const entry = find(entries, "connectFailed");
  assert.equal(entry.level, "error");
  assert.equal(entry.error, thrown);
  assert.match(entry.message, /^connect failed: /);
});

test("a wrong password is an authentication error entry, and the password is nowhere", async () => {
  const node = await startTestNode({ credentials: { alice: "right" } });
  const entries: LogEntry[] = [];
  try {
    await assert.rejects(
      Client.connect(
        config([node.address], entries, {
          username: "alice",
          password: PASSWORD,
        }),
      ),
      (e: unknown) =>
        e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
        e.message.includes(node.address) &&
        /as "alice" failed: the node rejected the credentials/.test(e.message),
    );
    const auth = find(entries, "authenticationFailed");
    assert.equal(auth.level, "error");
    assert.ok(auth.error instanceof AuthenticationError);
    assert.match(auth.message, /^authentication with 127\.0\.0\.1:\d+ failed/);
    assert.ok(story(entries).includes("error connectFailed"));
    assertNoPassword(entries);
  } finally {
    await node.close();
  }
});

test("an authenticated connection says who it logged in as, never with what", async () => {
  const node = await startTestNode({ credentials: { alice: PASSWORD } });
  const entries: LogEntry[] = [];
  const client = await Client.connect(
    config([node.address], entries, { username: "alice", password: PASSWORD }),
  );
  try {
    await client.request(ops.echo("x"));
    assert.match(
      find(entries, "connectionOpened").message,
      /\(over tcp, authenticated as alice\)/,
    );
  } finally {
    await client.disconnect();
    await node.close();
  }
  assertNoPassword(entries);
});

test("TLS outcomes are told: negotiated TLS, and a certificate refused as a TLS error", async () => {
  const good = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
    credentials: { alice: PASSWORD },
  });
  const untrusted = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("untrusted.pem"), key: pem("untrusted-key.pem") },
  });
  const entries: LogEntry[] = [];
  const refused: LogEntry[] = [];
  try {
    const client = await Client.connect(
      config([good.address], entries, {
        enableTls: true,
        tls: { ca: pem("ca.pem") },
        username: "alice",
        password: PASSWORD,
      }),
    );
    await client.disconnect();
    assert.match(find(entries, "protocolSelected").message, /negotiated tls/);
    assert.match(
      find(entries, "connectionOpened").message,
      /\(over tls, authenticated as alice\)/,
    );
    await assert.rejects(
      Client.connect(
        config([untrusted.address], refused, {
          tlsPolicy: "prefer",
          tls: { ca: pem("ca.pem") },
        }),
      ),
      (e: unknown) =>
        e instanceof TlsError && e.code === "TLS_FAILED" &&
        e.message.includes(untrusted.address) &&
        /failed: the node's certificate is not trusted/.test(e.message),
    );
    const tls = find(refused, "tlsFailed");
    assert.equal(tls.level, "error");
    assert.ok(tls.error instanceof TlsError);
    assert.match(
      tls.message,
      /^TLS with 127\.0\.0\.1:\d+ failed: .*not trusted/,
    );
  } finally {
    await good.close();
    await untrusted.close();
  }
  assertNoPassword([...entries, ...refused]);
});

test("a protocol no side agrees on is a negotiation error entry", async () => {
  const node = await startTestNode({ protocols: ["tcp"] });
  const entries: LogEntry[] = [];
  try {
    await assert.rejects(
      Client.connect(
        config([node.address], entries, {
          enableTls: true,
          tls: { ca: pem("ca.pem") },
        }),
      ),
      (e: unknown) =>
        e instanceof NegotiationError && e.code === "NEGOTIATION_FAILED" &&
        e.message.includes(node.address) &&
        /failed: no protocol in common .*node supports \[tcp\]/.test(
          e.message,
        ),
    );
    const entry = find(entries, "negotiationFailed");
    assert.equal(entry.level, "error");
    assert.ok(entry.error instanceof NegotiationError);
  } finally {
    await node.close();
  }
});

test("a node taken out: its health change and its pool clear, with the reason as an error", async () => {
  const nodes: TestNode[] = [
    await startTestNode({ nodeId: "a" }),
    await startTestNode({ nodeId: "b" }),
  ];
  const entries: LogEntry[] = [];
  const client = await Client.connect(
    config(nodes.map((n) => n.address), entries),
  );
  try {
    entries.length = 0;
    client.manager.markNodeUnhealthy(nodes[0].address, "maintenance");
    const cleared = find(entries, "poolCleared");
    assert.equal(cleared.level, "warn");
    assert.equal(cleared.address, nodes[0].address);
    assert.ok(cleared.error instanceof NodeUnhealthyError);
    assert.match(cleared.message, /maintenance/);
    const health = find(entries, "nodeHealthChanged");
    assert.equal(health.level, "warn");
    assert.match(health.message, /is unhealthy: maintenance/);
    client.manager.markNodeHealthy(nodes[0].address, "back");
    assert.equal(entries.at(-1)?.level, "info");
    assert.match(entries.at(-1)!.message, /is healthy: back/);
  } finally {
    await client.disconnect();
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test("a lost connection is a warning with its error; retries are told with theirs", async () => {
  const node = await startTestNode();
  const entries: LogEntry[] = [];
  const client = await Client.connect(config([node.address], entries));
  try {
    const connection = client.manager.nodes[0].pool.connections()[0];
    connection.destroy(new Error("cable cut"));
    await connection.closed;
    const lost = find(entries, "connectionLost");
    assert.equal(lost.level, "warn");
    assert.equal(lost.connectionId, connection.id);
    assert.match(lost.message, /lost: .*cable cut/);
    assert.ok(lost.error instanceof Error);
    await assert.rejects(
      client.request(ops.fail(RemoteErrorCode.Overloaded, true)),
      (e: unknown) =>
        e instanceof RetriesExhaustedError &&
        e.code === "RETRIES_EXHAUSTED" &&
        /gave up after 3 attempts: .*answered error 4/.test(e.message),
    );
    const retries = entries.filter((e) => e.event === "retry");
    assert.equal(retries.length, 2);
    assert.equal(retries[0].level, "debug");
    assert.ok(retries[0].error instanceof RemoteError);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a logger that throws loses its entries and breaks nothing", async () => {
  const node = await startTestNode();
  let calls = 0;
  const client = await Client.connect({
    hosts: [node.address],
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 1, initialBackoffMs: 1 },
    logger: () => {
      calls++;
      throw new Error("the log sink is down");
    },
  });
  try {
    client.manager.markNodeUnhealthy(node.address, "maintenance");
    client.manager.markNodeHealthy(node.address, "back");
    await assert.rejects(
      client.request(ops.fail(RemoteErrorCode.Overloaded, true)),
      (e: unknown) =>
        e instanceof RetriesExhaustedError &&
        e.code === "RETRIES_EXHAUSTED" &&
        /gave up after 2 attempts: .*answered error 4/.test(e.message),
    );
    await client.request(ops.echo("still fine"));
    assert.ok(calls >= 4);
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("an async logger that rejects loses its entries and leaves no unhandled rejection", async () => {
  // guardLogger caught a throw, but an async logger's rejection was
  // let go: an unhandled rejection per entry, which ends a Node process.
  const node = await startTestNode();
  let calls = 0;
  try {
    const rejected = await rejectionsDuring(async () => {
      const client = await Client.connect({
        hosts: [node.address],
        healthConfig: { intervalMs: 0 },
        retryConfig: { maxRetries: 1, initialBackoffMs: 1 },
        logger: async () => {
          calls++;
          await Promise.resolve();
          throw new Error("the log sink is down");
        },
      });
      try {
        client.manager.markNodeUnhealthy(node.address, "maintenance");
        client.manager.markNodeHealthy(node.address, "back");
        await assert.rejects(
          client.request(ops.fail(RemoteErrorCode.Overloaded, true)),
          RetriesExhaustedError,
        );
        assert.equal(replyText(await client.request(ops.echo("ok"))), "ok");
      } finally {
        await client.disconnect();
      }
    });
    assert.ok(calls >= 4, `${calls} entries`);
    assert.deepEqual(rejected, []);
  } finally {
    await node.close();
  }
});
