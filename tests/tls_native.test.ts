// The `startsTls` hint: the client tells the adapter which connections it
// will upgrade to verified TLS, so that Deno's adapter opens those on a
// Deno.Conn and upgrades them with Deno.startTls (rustls) rather than
// node:tls. What the hint changes is checked on Deno; that it is only a
// hint (every adapter's channel works either way) on all three runtimes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ConnectionLostError, InvalidArgumentError } from "../src/errors.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import { connectHinted, hookStartTls, pem } from "./helpers.ts";
import type {
  ByteChannel,
  ConnectOptions,
  RuntimeAdapter,
} from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const CA = pem("ca.pem");
const ON_DENO = detectRuntime() === "deno";

/** The runtime's adapter, recording what each connect was asked. */
async function recording() {
  const inner = await getAdapter();
  const asked: ConnectOptions[] = [];
  const channels: ByteChannel[] = [];
  const adapter: RuntimeAdapter = {
    ...inner,
    async connect(options) {
      asked.push(options);
      const channel = await inner.connect(options);
      channels.push(channel);
      return channel;
    },
  };
  return { adapter, asked, channels };
}

test("the client hints startsTls exactly when the handshake will upgrade to verified TLS, and TLS works with the hint on every runtime", async () => {
  const node = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
  });
  const { hook: startTls, restore: restoreStartTls } = hookStartTls();
  try {
    const cases: [string, Partial<ConnectionConfig>, boolean, string][] = [
      ["require", { tlsPolicy: "require", tls: { ca: CA } }, true, "tls"],
      ["prefer", { tlsPolicy: "prefer", tls: { ca: CA } }, true, "tls"],
      ["disable", { tlsPolicy: "disable" }, false, "tcp"],
      [
        "prefer without tls in protocols",
        { tlsPolicy: "prefer", protocols: ["tcp"] },
        false,
        "tcp",
      ],
      [
        "verification skipped",
        { tlsPolicy: "require", tls: { dangerouslySkipVerify: true } },
        false,
        "tls",
      ],
    ];
    for (const [name, extra, hinted, protocol] of cases) {
      const { adapter, asked } = await recording();
      const before = startTls.calls;
      const client = await Client.connect({
        hosts: [`127.0.0.1:${node.port}`],
        poolConfig: { minConnections: 1, maxConnecting: 1 },
        healthConfig: { intervalMs: 0 },
        runtime: adapter,
        ...extra,
      });
      try {
        assert.equal(replyText(await client.request(ops.echo(name))), name);
        assert.equal(client.stats().nodes[0].protocol, protocol, name);
        assert.ok(asked.length > 0, name);
        for (const options of asked) {
          assert.equal(options.startsTls, hinted, name);
        }
        // On Deno a hinted connection is upgraded by Deno.startTls, once
        // per connection; nothing else calls it.
        assert.equal(
          startTls.calls - before,
          ON_DENO && hinted ? asked.length : 0,
          name,
        );
      } finally {
        await client.disconnect();
      }
    }
  } finally {
    restoreStartTls();
    await node.close();
  }
});

test("direct TLS with verification goes through Deno.startTls on Deno, and works on every runtime", async () => {
  const node = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert: pem("server.pem"), key: pem("server-key.pem"), direct: true },
  });
  const { hook: startTls, restore: restoreStartTls } = hookStartTls();
  const { adapter, asked } = await recording();
  const client = await Client.connect({
    hosts: [`127.0.0.1:${node.port}`],
    poolConfig: { minConnections: 1, maxConnecting: 1 },
    healthConfig: { intervalMs: 0 },
    runtime: adapter,
    tlsPolicy: "require",
    tls: { ca: CA, direct: true },
  });
  try {
    assert.equal(replyText(await client.request(ops.echo("d"))), "d");
    assert.equal(asked[0].startsTls, false);
    assert.equal(startTls.calls, ON_DENO ? asked.length : 0);
  } finally {
    restoreStartTls();
    await client.disconnect();
    await node.close();
  }
});

test("aborting the TLS handshake of a startsTls channel rejects with the reason; on Deno the node is then stalled, and its next handshake's abort closes the socket", async () => {
  const adapter = await getAdapter();
  const accepted: ByteChannel[] = [];
  let closed = 0;
  // A peer that takes the ClientHello and never answers it.
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    accepted.push(channel);
    channel.onClose(() => closed++);
    channel.onData(() => {});
  });
  /** Connects with the hint, starts TLS, aborts it after 50 ms. */
  const abandon = async () => {
    const channel = await connectHinted(adapter, listener.port);
    const controller = new AbortController();
    const reason = new Error("given up");
    const pending = channel.startTls!({
      serverName: "localhost",
      ca: [CA],
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(pending, (error) => error === reason);
    return channel;
  };
  const seenClosed = async (count: number) => {
    for (let i = 0; i < 100 && closed < count; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return closed;
  };
  try {
    const first = await abandon();
    // Deno cannot abandon a native handshake: the socket stays open until
    // the peer answers or closes. Elsewhere it is closed at once.
    if (ON_DENO) assert.equal(first.constructor.name, "DenoConnChannel");
    assert.equal(await seenClosed(1), ON_DENO ? 0 : 1);
    // So Deno's adapter gives that node node:tls from then on, whose
    // handshake is abandoned with its socket.
    const second = await abandon();
    if (ON_DENO) assert.equal(second.constructor.name, "NodeChannel");
    assert.equal(await seenClosed(ON_DENO ? 1 : 2), ON_DENO ? 1 : 2);
    assert.equal(accepted.length, 2);
  } finally {
    for (const channel of accepted) channel.destroy();
    await listener.close();
  }
});

test("direct TLS to a node that never answers: the connect's abort rejects with its reason, and on Deno the next direct connect to it goes through node:tls", async () => {
  const adapter = await getAdapter();
  const accepted: ByteChannel[] = [];
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    accepted.push(channel);
    channel.onData(() => {});
  });
  const { hook: startTls, restore: restoreStartTls } = hookStartTls();
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const controller = new AbortController();
      const reason = new Error(`attempt ${attempt} given up`);
      setTimeout(() => controller.abort(reason), 50);
      await assert.rejects(
        adapter.connect({
          hostname: "127.0.0.1",
          port: listener.port,
          signal: controller.signal,
          tls: { serverName: "localhost", ca: [CA] },
        }),
        (error) => error === reason,
      );
    }
    assert.equal(accepted.length, 2);
    // Only the first went through Deno.startTls: its endpoint is stalled.
    assert.equal(startTls.calls, ON_DENO ? 1 : 0);
  } finally {
    restoreStartTls();
    for (const channel of accepted) channel.destroy();
    await listener.close();
  }
});

test("startsTls must be a boolean: anything else is an InvalidArgumentError naming it, from the adapter and from the client", async () => {
  const adapter = await getAdapter();
  for (const value of ["yes", 1, null, {}]) {
    await assert.rejects(
      adapter.connect({
        hostname: "127.0.0.1",
        port: 1,
        startsTls: value as unknown as boolean,
      }),
      (error) =>
        error instanceof InvalidArgumentError &&
        error.code === "INVALID_ARGUMENT" &&
        /options\.startsTls/.test(error.message) &&
        /expected a boolean/.test(error.message),
    );
  }
  await assert.rejects(
    Client.connect({ hosts: ["127.0.0.1:1"] }, {
      connection: { startsTls: "yes" as unknown as boolean },
    }),
    (error) =>
      error instanceof InvalidArgumentError &&
      /options\.connection\.startsTls: expected true or false, got "yes"/
        .test(error.message),
  );
});

// Registered on Deno only (not skipped elsewhere): the Deno.Conn channel
// is Deno's adapter's, and no other runtime opens one.
if (ON_DENO) {
  /** A listener whose channels serve a TLS upgrade and echo over it. */
  const tlsEcho = (adapter: RuntimeAdapter) =>
    adapter.listen({ port: 0 }, (channel) => {
      channel.acceptTls!({
        cert: pem("server.pem"),
        key: pem("server-key.pem"),
      }).then(
        (secure) => secure.onData((chunk) => secure.write(chunk)),
        () => {},
      );
    });

  test("Deno: a startsTls channel upgrades with Deno.startTls when it verifies, through node:tls when verification is skipped", async () => {
    const adapter = await getAdapter();
    const listener = await tlsEcho(adapter);
    const { hook: startTls, restore: restoreStartTls } = hookStartTls();
    try {
      for (
        const [tls, calls] of [
          [{ ca: [CA] }, 1],
          [{ dangerouslySkipVerify: true }, 0],
        ] as const
      ) {
        const before = startTls.calls;
        const plain = await connectHinted(adapter, listener.port);
        assert.equal(plain.constructor.name, "DenoConnChannel");
        const secure = await plain.startTls!({
          serverName: "localhost",
          ...tls,
        });
        const echoed = new Promise<string>((resolve) =>
          secure.onData((chunk) => resolve(new TextDecoder().decode(chunk)))
        );
        secure.write(new TextEncoder().encode("over tls"));
        assert.equal(await echoed, "over tls");
        assert.equal(startTls.calls - before, calls);
        secure.destroy();
      }
    } finally {
      restoreStartTls();
      await listener.close();
    }
  });

  test("Deno: a startsTls channel whose queued payload is detached ends with ConnectionLostError saying so", async () => {
    const adapter = await getAdapter();
    const accepted: ByteChannel[] = [];
    const listener = await adapter.listen({ port: 0 }, (channel) => {
      accepted.push(channel);
      channel.pause?.(); // reads nothing: the client's writes queue up
      channel.onData(() => {});
    });
    const channel = await connectHinted(adapter, listener.port);
    try {
      channel.onData(() => {});
      const closed = new Promise<Error | undefined>((resolve) =>
        channel.onClose(resolve)
      );
      channel.write(new Uint8Array(32 * 1024 * 1024));
      // Queued behind the large one, then transferred by its caller.
      const payload = new Uint8Array(64 * 1024);
      channel.write(payload);
      structuredClone(payload.buffer, { transfer: [payload.buffer] });
      assert.equal(payload.length, 0);
      while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
      accepted[0].resume?.();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const error = await Promise.race([
        closed,
        new Promise((resolve) => timer = setTimeout(resolve, 5000, "timer")),
      ]);
      clearTimeout(timer);
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.match(error.message, /detached \(transferred\) while queued/);
    } finally {
      channel.destroy();
      for (const a of accepted) a.destroy();
      await listener.close();
    }
  });
}
