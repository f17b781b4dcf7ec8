// The diagnostics_channel channels, heard the way an APM agent hears them:
// through node:diagnostics_channel's subscribe(), on Deno, Bun and Node.
// Each message names its client, so every assertion filters by client id
// (other clients of the same process publish on the same channels).
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import {
  type CheckoutMessage,
  type ConnectionCloseMessage,
  type ConnectionOpenMessage,
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsMessages,
  type NodeHealthMessage,
  type RequestMessage,
} from "../src/diagnostics/channels.ts";
import {
  AbortedError,
  AuthenticationError,
  NoHealthyNodesError,
  PoolTimeoutError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { hedgeScene } from "./support/hedge_scene.ts";

type Name = keyof DiagnosticsMessages;
const ALL = Object.values(DIAGNOSTICS_CHANNELS) as Name[];

interface Heard {
  name: Name;
  /** The message object itself (request messages are filled in later). */
  message: Record<string, unknown>;
  /** Its fields as they were when published. */
  seen: Record<string, unknown>;
}

/** Records every message on `names` until `stop()`. */
function listen(names: readonly Name[] = ALL) {
  const heard: Heard[] = [];
  const listeners = names.map((name) => {
    const listener = (message: unknown) => {
      const m = message as Record<string, unknown>;
      heard.push({ name, message: m, seen: { ...m } });
    };
    subscribe(name, listener);
    return [name, listener] as const;
  });
  return {
    heard,
    of(clientId: number, name?: Name): Heard[] {
      return heard.filter((h) =>
        h.message.clientId === clientId &&
        (name === undefined || h.name === name)
      );
    },
    stop() {
      for (const [name, listener] of listeners) unsubscribe(name, listener);
    },
  };
}

const quiet: Partial<ConnectionConfig> = {
  healthConfig: { intervalMs: 0 },
  poolConfig: { minConnections: 1 },
  retryConfig: { initialBackoffMs: 1, maxRetries: 2 },
};

async function withNodes(
  n: number,
  body: (nodes: TestNode[]) => Promise<void>,
  options: { credentials?: Record<string, string> } = {},
): Promise<void> {
  const nodes = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        startTestNode({ nodeId: `d${i}`, credentials: options.credentials }),
    ),
  );
  try {
    await body(nodes);
  } finally {
    await Promise.all(nodes.map((node) => node.close()));
  }
}

test("a request publishes start then end on one message object: node, attempt, sizes, duration, never the bytes", async () => {
  await withNodes(1, async ([node]) => {
    const channel = listen();
    const client = await Client.connect({ hosts: [node.address], ...quiet });
    try {
      const payload = ops.echo("abc");
      const reply = await client.request(payload, { idempotent: true });
      const [start, end] = channel.of(client.id).filter((h) =>
        h.name.startsWith("nodewire:request:")
      );
      assert.equal(start.name, "nodewire:request:start");
      assert.equal(end.name, "nodewire:request:end");
      assert.equal(start.message, end.message, "one object per attempt");
      const m = end.message as unknown as RequestMessage;
      assert.equal(m.clientId, client.id);
      assert.ok(m.requestId > 0);
      assert.equal(m.attempt, 0);
      assert.equal(m.address, node.address);
      assert.equal(m.idempotent, true);
      assert.equal(m.payloadBytes, payload.byteLength);
      assert.equal(m.replyBytes, reply.byteLength);
      assert.ok(typeof m.connectionId === "number");
      assert.equal(m.waitMs, 0, "a connection was ready");
      assert.ok(m.durationMs! >= 0);
      assert.equal(m.error, undefined);
      assert.equal(m.retrying, false);
      assert.equal(m.hedge, false);
      assert.equal(m.settles, true, "its reply is the request's");
      // At start, the outcome was not known yet.
      assert.equal(start.seen.durationMs, undefined);
      assert.equal(start.seen.replyBytes, undefined);
      for (const value of Object.values(m)) {
        assert.ok(!(value instanceof Uint8Array), "no payload bytes");
      }
      // The next request has its own number.
      await client.request(ops.echo("d"));
      const ids = channel.of(client.id, "nodewire:request:start").map((h) =>
        h.message.requestId
      );
      assert.equal(new Set(ids).size, 2);
    } finally {
      channel.stop();
      await client.disconnect();
    }
  });
});

test("every attempt of a retried request is published, and the last error says the request is over", async () => {
  await withNodes(2, async (nodes) => {
    const channel = listen();
    const client = await Client.connect({
      hosts: nodes.map((n) => n.address),
      ...quiet,
    });
    try {
      await assert.rejects(
        client.request(ops.fail(RemoteErrorCode.Overloaded, true)),
        (e: unknown) =>
          e instanceof RetriesExhaustedError &&
          e.code === "RETRIES_EXHAUSTED" &&
          /gave up after 3 attempts: .*answered error 4/.test(e.message),
      );
      const story = channel.of(client.id).filter((h) =>
        h.name.startsWith("nodewire:request:")
      ).map((h) =>
        `${h.name.slice(17)} ${h.seen.attempt}${
          h.name.endsWith("error")
            ? ` retrying=${h.seen.retrying} settles=${h.seen.settles}`
            : ""
        }`
      );
      assert.deepEqual(story, [
        "start 0",
        "error 0 retrying=true settles=false",
        "start 1",
        "error 1 retrying=true settles=false",
        "start 2",
        "error 2 retrying=false settles=true",
      ]);
      const errors = channel.of(client.id, "nodewire:request:error").map((h) =>
        h.message as unknown as RequestMessage
      );
      assert.equal(new Set(errors.map((m) => m.requestId)).size, 1);
      assert.ok(
        errors[0].error instanceof RemoteError,
        "an attempt's own error",
      );
      assert.ok(
        errors[2].error instanceof RetriesExhaustedError,
        "the last is the error the caller got",
      );
      assert.ok(errors.every((m) => typeof m.durationMs === "number"));
      // A retry prefers another node.
      assert.notEqual(errors[0].address, errors[1].address);
    } finally {
      channel.stop();
      await client.disconnect();
    }
  });
});

test("a request that reaches no node still starts and ends: the attempt has no address", async () => {
  await withNodes(1, async ([node]) => {
    const channel = listen([
      "nodewire:request:start",
      "nodewire:request:error",
    ]);
    const client = await Client.connect({ hosts: [node.address], ...quiet });
    try {
      client.manager.markNodeUnhealthy(node.address, "maintenance");
      await assert.rejects(
        client.request(ops.echo()),
        (e: unknown) =>
          e instanceof NoHealthyNodesError &&
          e.code === "NO_HEALTHY_NODES" &&
          e.message === `no healthy node among 1: ${node.address}`,
      );
      const heard = channel.of(client.id);
      assert.deepEqual(heard.map((h) => h.name), [
        "nodewire:request:start",
        "nodewire:request:error",
      ]);
      const m = heard[1].message as unknown as RequestMessage;
      assert.equal(m.address, undefined);
      assert.equal(m.retrying, false);
      assert.equal(m.settles, true);
      assert.ok(m.error instanceof NoHealthyNodesError);
    } finally {
      channel.stop();
      await client.disconnect();
    }
  });
});

test("a request aborted while it waits to be retried ends with a message of its own", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  const channel = listen();
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    ...quiet,
    retryConfig: { initialBackoffMs: 1000, maxRetries: 3 },
  });
  try {
    const stop = new AbortController();
    const pending = client.request(ops.fail(RemoteErrorCode.Overloaded, true), {
      signal: stop.signal,
    }).catch((e) => e);
    await clock.advance(1);
    stop.abort(new Error("user gave up"));
    assert.ok((await pending) instanceof AbortedError);
    const story = channel.of(client.id).filter((h) =>
      h.name.startsWith("nodewire:request:")
    ).map((h) => `${h.name.slice(17)} ${h.seen.attempt} ${h.seen.address}`);
    assert.deepEqual(story, [
      `start 0 ${node.address}`,
      `error 0 ${node.address}`,
      "start 1 undefined",
      "error 1 undefined",
    ]);
    const last = channel.of(client.id, "nodewire:request:error").at(-1)!
      .message as unknown as RequestMessage;
    assert.ok(last.error instanceof AbortedError);
    assert.equal(last.retrying, false);
    assert.equal(last.settles, true);
  } finally {
    channel.stop();
    await client.disconnect();
    await node.close();
  }
});

test("two clients are told apart by clientId, which is each client's id", async () => {
  await withNodes(1, async ([node]) => {
    const channel = listen(["nodewire:request:end"]);
    const a = await Client.connect({ hosts: [node.address], ...quiet });
    const b = await Client.connect({ hosts: [node.address], ...quiet });
    try {
      assert.notEqual(a.id, b.id);
      await a.request(ops.echo("a"));
      await b.request(ops.echo("b"));
      await b.request(ops.echo("b"));
      assert.equal(channel.of(a.id).length, 1);
      assert.equal(channel.of(b.id).length, 2);
    } finally {
      channel.stop();
      await a.disconnect();
      await b.disconnect();
    }
  });
});

test("clientId is unique within the process, even between two copies of the library, which publish on the same channels", async () => {
  // Each copy (two versions in one program, JSR's and npm's) counted from
  // 1 on its own: the first clients of both were 1, and a subscriber (the
  // OpenTelemetry bridge too) took one's messages for the other's.
  const { nextClientId } = await import("../src/diagnostics/channels.ts");
  const copy = await import(
    "../src/diagnostics/channels.ts?second-copy" as string
  ) as { nextClientId: () => number };
  const ids = [nextClientId(), copy.nextClientId(), nextClientId()];
  assert.equal(new Set(ids).size, 3, ids.join(", "));
  assert.ok(ids[1] > ids[0] && ids[2] > ids[1], ids.join(", "));
});

test("connections publish their opening (with protocol and time) and their close, lost or clean", async () => {
  await withNodes(1, async ([node]) => {
    const channel = listen([
      "nodewire:connection:open",
      "nodewire:connection:close",
    ]);
    const client = await Client.connect({ hosts: [node.address], ...quiet });
    let lostId: number | undefined;
    try {
      const [open] = channel.of(client.id, "nodewire:connection:open");
      const o = open.message as unknown as ConnectionOpenMessage;
      assert.equal(o.address, node.address);
      assert.ok(typeof o.connectionId === "number");
      assert.equal(o.nodeId, "d0");
      assert.equal(o.protocol, "tcp");
      assert.equal(o.encrypted, false);
      assert.ok(o.durationMs >= 0);
      assert.equal(o.error, undefined);
      // The connection breaks under the client: its close carries the error.
      const connection = client.manager.nodes[0].pool.connections()[0];
      lostId = connection.id;
      connection.destroy(new Error("cable cut"));
      await connection.closed;
      const lost = channel.of(client.id, "nodewire:connection:close").find((
        h,
      ) => h.message.connectionId === lostId)!
        .message as unknown as ConnectionCloseMessage;
      assert.equal(lost.address, node.address);
      assert.equal(lost.nodeId, "d0");
      assert.match(String(lost.error?.message), /cable cut/);
      assert.ok(lost.durationMs >= 0);
      // A new connection, closed cleanly by the disconnect below.
      await client.request(ops.echo());
    } finally {
      await client.disconnect();
      channel.stop();
    }
    // The disconnect closed the others cleanly.
    const clean = channel.of(client.id, "nodewire:connection:close").filter((
      h,
    ) => h.message.connectionId !== lostId);
    assert.ok(clean.length >= 1);
    assert.ok(clean.every((h) => h.message.error === undefined));
  });
});

test("a failed open is published on connection:open with its error", async () => {
  const dead = await startTestNode();
  const address = dead.address;
  await dead.close();
  await withNodes(1, async ([node]) => {
    const channel = listen(["nodewire:connection:open"]);
    const client = await Client.connect({
      hosts: [node.address, address],
      ...quiet,
    });
    try {
      const failed = channel.of(client.id).map((h) =>
        h.message as unknown as ConnectionOpenMessage
      ).filter((m) => m.address === address);
      assert.ok(failed.length >= 1);
      assert.equal(failed[0].connectionId, undefined);
      assert.ok(failed[0].error instanceof Error);
      assert.ok(failed[0].durationMs >= 0);
    } finally {
      channel.stop();
      await client.disconnect();
    }
  });
});

test("checkouts are published for requests, pings and withConnection, and a wait that times out carries its error", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ runtime: network, clock });
  const channel = listen(["nodewire:pool:checkout"]);
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    ...quiet,
    poolConfig: {
      minConnections: 1,
      maxConnections: 1,
      connectionTimeoutMs: 100,
    },
  });
  try {
    await client.request(ops.echo());
    await client.ping();
    // The only connection is lent: a request waits for it, and gives up.
    let release!: () => void;
    const held = client.withConnection(() =>
      new Promise<void>((resolve) => (release = resolve))
    );
    await clock.advance(0);
    const waiting = client.request(ops.echo(), { retry: false }).catch((e) =>
      e
    );
    await clock.advance(100);
    assert.ok((await waiting) instanceof PoolTimeoutError);
    release();
    await held;
    const story = channel.of(client.id).map((h) => {
      const m = h.message as unknown as CheckoutMessage;
      return `${m.mode} ${
        m.connectionId === undefined ? "-" : "conn"
      } ${m.waitMs} ${m.error?.constructor.name ?? "ok"}`;
    });
    assert.deepEqual(story, [
      "shared conn 0 ok",
      "shared conn 0 ok",
      "exclusive conn 0 ok",
      "shared - 100 PoolTimeoutError",
    ]);
    assert.ok(
      channel.of(client.id).every((h) => h.message.address === node.address),
    );
  } finally {
    channel.stop();
    await client.disconnect();
    await node.close();
  }
});

test("health changes are published with the node and the reason", async () => {
  await withNodes(1, async ([node]) => {
    const channel = listen(["nodewire:node:health"]);
    const client = await Client.connect({ hosts: [node.address], ...quiet });
    try {
      client.manager.markNodeUnhealthy(node.address, "maintenance");
      client.manager.markNodeHealthy(node.address, "back");
      const story = channel.of(client.id).map((h) => {
        const m = h.message as unknown as NodeHealthMessage;
        return `${m.address} ${m.nodeId} ${m.healthy} ${m.reason}`;
      });
      assert.deepEqual(story, [
        `${node.address} d0 false maintenance`,
        `${node.address} d0 true back`,
      ]);
    } finally {
      channel.stop();
      await client.disconnect();
    }
  });
});

test("no message carries the password: not its fields, its JSON or its error's message", async () => {
  const password = "s3cret-Horse-Battery";
  await withNodes(1, async ([node]) => {
    const channel = listen();
    await assert.rejects(
      Client.connect({
        hosts: [node.address],
        ...quiet,
        username: "alice",
        password,
      }),
      (e: unknown) =>
        e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
        /as "alice" failed: the node rejected the credentials/.test(e.message),
    );
    const client = await Client.connect({
      hosts: [node.address],
      ...quiet,
      username: "alice",
      password: "right",
    });
    try {
      await client.request(ops.echo("x"));
      await client.request(ops.fail(RemoteErrorCode.NotFound, false)).catch(
        () => {},
      );
    } finally {
      channel.stop();
      await client.disconnect();
    }
    assert.ok(
      channel.heard.some((h) => h.message.error instanceof AuthenticationError),
    );
    for (const h of channel.heard) {
      const error = h.message.error as Error | undefined;
      for (
        const text of [
          JSON.stringify(h.message),
          String(h.message),
          error ? `${error.message} ${error.stack} ${String(error.cause)}` : "",
        ]
      ) {
        assert.ok(!text.includes(password), `${h.name}: ${text}`);
      }
    }
  }, { credentials: { alice: "right" } });
});

test("a hedge is an attempt of its own: the winner's outcome settles the request, the loser's comes later and does not", async () => {
  const channel = listen([
    "nodewire:request:start",
    "nodewire:request:end",
    "nodewire:request:error",
  ]);
  try {
    await hedgeScene({}, async ({ client, clock, slow, fast }) => {
      const reply = client.request(ops.echo("fast"), { idempotent: true });
      await clock.advance(10);
      await reply;
      await clock.advance(250); // the slow node's late reply
      const story = channel.of(client.id).map((h) =>
        `${h.name.slice(17)} ${h.seen.hedge ? "hedge" : "main"} ${
          h.seen.address === slow.address
            ? "slow"
            : h.seen.address === fast.address
            ? "fast"
            : "?"
        }${h.name.endsWith("start") ? "" : ` settles=${h.seen.settles}`}`
      );
      assert.deepEqual(story, [
        "start main slow",
        "start hedge fast",
        "end hedge fast settles=true",
        "end main slow settles=false",
      ]);
      const ids = channel.of(client.id).map((h) => h.message.requestId);
      assert.equal(new Set(ids).size, 1, "one request");
      assert.ok(
        channel.of(client.id).every((h) => h.message.attempt === 0),
        "a hedge goes beside attempt 0",
      );
    });
  } finally {
    channel.stop();
  }
});

test("a lazy client publishes from its first call: the connect and the request", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const channel = listen();
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    ...quiet,
  }, { lazy: true });
  try {
    assert.equal(
      channel.of(client.id).length,
      0,
      "nothing before the first call",
    );
    await client.request(ops.echo("x"));
    const names = channel.of(client.id).map((h) => h.name);
    assert.ok(names.includes("nodewire:connection:open"));
    assert.deepEqual(
      names.filter((n) => n.startsWith("nodewire:request:")),
      ["nodewire:request:start", "nodewire:request:end"],
    );
  } finally {
    channel.stop();
    await client.disconnect();
    await node.close();
  }
});

test("a subscriber that freezes the message, or puts a throwing setter on it, fails no request: replies and the node's own errors come through as they are", async () => {
  // The client wrote the outcome into the published object; a frozen one
  // threw a TypeError inside the request path, and every request observed
  // that way failed with it.
  await withNodes(1, async ([node]) => {
    const tamper = [
      (m: Record<string, unknown>) => Object.freeze(m),
      (m: Record<string, unknown>) =>
        Object.defineProperty(m, "durationMs", {
          set() {
            throw new Error("no writes here");
          },
        }),
    ];
    for (const spoil of tamper) {
      const listener = (message: unknown) =>
        spoil(message as Record<string, unknown>);
      subscribe("nodewire:request:start", listener);
      const client = await Client.connect({ hosts: [node.address], ...quiet });
      try {
        const reply = await client.request(ops.echo("abc"));
        assert.equal(reply.byteLength, 1 + "d0".length + 3);
        await assert.rejects(
          client.request(ops.fail(RemoteErrorCode.NotFound, false, "gone")),
          (e: unknown) => e instanceof RemoteError && /gone/.test(e.message),
        );
        assert.equal(client.stats().succeeded, 1);
        assert.equal(client.stats().failed, 1);
      } finally {
        unsubscribe("nodewire:request:start", listener);
        await client.disconnect();
      }
    }
  });
});
