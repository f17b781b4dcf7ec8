// The handshake held to its word (the review of src/handshake/): a TLS
// transport of the caller's own that resolves without switching the
// stream, a TLS config whose handshake timeout is no duration, options the
// client's config refuses, direct TLS to a node that predates negotiation.
// Memory network and virtual clock, but for the one TLS node on loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Connection } from "../src/connection/connection.ts";
import { TlsError } from "../src/errors.ts";
import {
  createHandshake,
  handshakeFromConfig,
  type HandshakeOptions,
  handshakeResult,
} from "../src/handshake/handshake.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { answerHello, scriptedNode } from "./support/scripted_node.ts";
import { pem } from "./helpers.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { tlsTransport } from "../src/handshake/tls.ts";
import { Secret } from "../src/secret.ts";
import { invalid } from "./support/doors.ts";

function connect(
  adapter: RuntimeAdapter,
  port: number,
  options: HandshakeOptions,
): Promise<Connection> {
  return Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port,
    clock: new VirtualClock(),
    timeoutMs: 5000,
    handshake: createHandshake(options),
  });
}

test("a TLS transport that resolves without switching the stream to TLS fails the connection with a TlsError: it was handed out in plaintext, reported as TLS, its replies never read", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp"],
  });
  let called = 0;
  await assert.rejects(
    connect(network, node.port, {
      tlsPolicy: "require",
      transports: { tls: () => (called++, Promise.resolve()) },
    }),
    (error) => {
      assert.ok(error instanceof TlsError, String(error));
      assert.equal(error.code, "TLS_FAILED");
      assert.equal(error.reason, "handshake");
      assert.equal(error.address, `127.0.0.1:${node.port}`);
      assert.match(error.message, /not switched to TLS/);
      return true;
    },
  );
  assert.equal(called, 1);
  assert.equal(node.stats.requests, 0);
  await node.close();
  assert.equal(network.openChannels, 0);
});

test("tlsTransport refuses a TLS config whose handshakeTimeoutMs is no duration, naming options.tls: NaN, Infinity or 0 was taken, and every TLS upgrade then failed at once as a handshake timeout", () => {
  const tls = resolveTlsConfig({}, "require");
  const clock = new VirtualClock();
  for (
    const handshakeTimeoutMs of [
      Number.NaN,
      Infinity,
      0,
      -1,
      2 ** 31,
      "3000",
      undefined,
    ]
  ) {
    assert.throws(
      () =>
        tlsTransport({ tls: { ...tls, handshakeTimeoutMs } as never, clock }),
      (error) => {
        invalid("tlsTransport", "options.tls")(error);
        assert.match((error as Error).message, /handshakeTimeoutMs/);
        return true;
      },
      String(handshakeTimeoutMs),
    );
  }
  assert.equal(
    typeof tlsTransport({ tls: { ...tls, handshakeTimeoutMs: 1 }, clock }),
    "function",
  );
});

test('createHandshake refuses enableTls with a tlsPolicy that contradicts it, naming options.tlsPolicy, as the client\'s config does: enableTls true with tlsPolicy "disable" never offered TLS and connected in plaintext', async () => {
  for (
    const options of [
      { enableTls: true, tlsPolicy: "disable" },
      { enableTls: false, tlsPolicy: "require" },
      { enableTls: false, tlsPolicy: "prefer" },
    ] as const
  ) {
    assert.throws(
      () => createHandshake(options),
      (error) => {
        invalid("createHandshake", "options.tlsPolicy")(error);
        assert.match((error as Error).message, /enableTls/);
        return true;
      },
      JSON.stringify(options),
    );
  }
  // What agrees with enableTls, or stands alone, is taken.
  for (
    const options of [
      { enableTls: true, tlsPolicy: "require" },
      { enableTls: true, tlsPolicy: "prefer" },
      { enableTls: false, tlsPolicy: "disable" },
      { enableTls: true },
      { tlsPolicy: "disable" },
    ] as const
  ) {
    assert.equal(typeof createHandshake(options), "function");
  }
  // A client's resolved config says its policy alone (enableTls defaults
  // to false beside a "prefer" given on its own).
  for (const tlsPolicy of ["prefer", "require", "disable"] as const) {
    const config = resolveConfig({ hosts: ["127.0.0.1:7000"], tlsPolicy });
    assert.equal(typeof handshakeFromConfig(config), "function", tlsPolicy);
  }
  // The plaintext connection the contradiction used to give.
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const connection = await connect(network, node.port, { enableTls: true })
    .catch((error: unknown) => error);
  assert.ok(!(connection instanceof Connection), "TLS required: no plaintext");
  await node.close();
  assert.equal(network.openChannels, 0);
});

test("createHandshake refuses a protocols list the client's config refuses, naming it: a misspelt name was dropped, and an empty list, or one that leaves the TLS policy nothing, failed every connect with a NegotiationError that named neither", () => {
  const bad: [HandshakeOptions, string, RegExp][] = [
    [
      { protocols: ["tpc" as never] },
      "options.protocols[0]",
      /"tls", "tcp" or "udp"/,
    ],
    [
      { protocols: ["tcp", "UDP" as never] },
      "options.protocols[1]",
      /"tls", "tcp" or "udp"/,
    ],
    [{ protocols: [] }, "options.protocols", /non-empty/],
    [
      { protocols: ["tcp"], tlsPolicy: "require" },
      "options.protocols",
      /must include "tls"/,
    ],
    [
      { protocols: ["tls"], tlsPolicy: "disable" },
      "options.protocols",
      /"tcp" or "udp"/,
    ],
    [{ protocols: ["tls"] }, "options.protocols", /"tcp" or "udp"/],
  ];
  for (const [options, argument, words] of bad) {
    assert.throws(
      () => createHandshake(options),
      (error) => {
        invalid("createHandshake", argument)(error);
        assert.match((error as Error).message, words);
        return true;
      },
      JSON.stringify(options),
    );
  }
  for (
    const options of [
      { protocols: ["udp", "tcp"] },
      { protocols: ["tls"], tlsPolicy: "require" },
      { protocols: ["tls", "udp"], tlsPolicy: "prefer" },
    ] as HandshakeOptions[]
  ) {
    assert.equal(typeof createHandshake(options), "function");
  }
});

test("direct TLS to a node that predates negotiation counts its stream as TLS, as docs/PROTOCOL.md says: a client requiring TLS was refused with a NegotiationError saying the node serves only tcp, though every byte was encrypted", async () => {
  const adapter = await getAdapter();
  // A node listening with TLS only whose HELLO_OK lists no protocols.
  const tlsOnly: RuntimeAdapter = {
    name: adapter.name,
    connect: (options) => adapter.connect(options),
    listen: (options, onConnection) =>
      adapter.listen(
        {
          ...options,
          tls: { cert: pem("server.pem"), key: pem("server-key.pem") },
        },
        onConnection,
      ),
  };
  const node = await scriptedNode(
    tlsOnly,
    answerHello({ nodeId: "legacy", maxFrameSize: 1 << 20, auth: "none" }),
  );
  const clock = new VirtualClock();
  const tls = resolveTlsConfig(
    { ca: [pem("ca.pem")], direct: true },
    "require",
  );
  const connection = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
    clock,
    timeoutMs: 5000,
    tls: { serverName: "127.0.0.1", ca: tls.ca },
    handshake: createHandshake({
      tlsPolicy: "require",
      transports: { tls: tlsTransport({ tls, clock }) },
    }),
  });
  try {
    assert.equal(connection.encrypted, true);
    const result = handshakeResult(connection);
    assert.equal(result?.protocol, "tls");
    assert.deepEqual(result?.nodeProtocols, ["tls"]);
    assert.ok(!node.seen.includes(MessageType.Negotiate));
  } finally {
    connection.destroy();
    await node.close();
  }
});

test('createHandshake refuses a password without a username, naming options.username, as the client\'s config does: no node could take it (one that authenticates was told no username "and password are" configured, one that does not was refused for the credentials)', () => {
  const password = new Secret("correct horse");
  assert.throws(
    () => createHandshake({ password }),
    (error) => {
      invalid("createHandshake", "options.username")(error);
      assert.match((error as Error).message, /required when a password/);
      assert.ok(!(error as Error).message.includes("correct horse"));
      return true;
    },
  );
  assert.equal(
    typeof createHandshake({ username: "alice", password }),
    "function",
  );
});
