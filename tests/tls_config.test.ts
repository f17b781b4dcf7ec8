// TLS without sockets: the `tls` configuration, how each runtime's TLS
// failures are classified, retryability, and the handshake timeout and
// the plaintext-injection check on the deterministic memory network with a
// virtual clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConfigError,
  ConnectionLostError,
  NegotiationError,
  ProtocolError,
  TlsError,
} from "../src/errors.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { isRetryable } from "../src/client/retry.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { toTlsError } from "../src/runtime/tls.ts";
import type {
  ByteChannel,
  RuntimeAdapter,
  TlsOptions,
} from "../src/runtime/types.ts";
import {
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  resolveTlsConfig,
} from "../src/config/tls.ts";
import { tlsTransport } from "../src/handshake/tls.ts";
import { agreeToTls, pem } from "./helpers.ts";
import { startTestNode } from "../testing/node.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail("expected a ConfigError");
}

const endpoint = { hostname: "127.0.0.1", port: 7000 };

test("tls config: defaults, and TLS on means verification on", () => {
  const { tls } = resolveConfig({ hosts: ["a"], enableTls: true });
  assert.deepEqual(tls, {
    ca: undefined,
    serverName: undefined,
    dangerouslySkipVerify: false,
    handshakeTimeoutMs: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
    direct: false,
  });
  assert.equal(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, 3000);
  // Without TLS the section resolves to the same defaults.
  assert.deepEqual(resolveConfig({ hosts: ["a"] }).tls, tls);
});

test("tls config: a CA bundle is split into one certificate per entry", () => {
  const ca = pem("ca.pem");
  const other = pem("untrusted.pem");
  const resolved = resolveTlsConfig({ ca: ca + other }, "prefer").ca!;
  assert.equal(resolved.length, 2);
  assert.ok(resolved.every((c) => c.startsWith("-----BEGIN CERTIFICATE-----")));
  assert.deepEqual(
    resolveTlsConfig({ ca: [ca, other] }, "require").ca,
    resolved,
  );
});

test("tls config: bad values name their field, and a private key is never echoed", () => {
  const key = pem("server-key.pem");
  const e = configError(() => resolveTlsConfig({ ca: key }, "require"));
  assert.equal(e.field, "tls.ca");
  assert.ok(!e.message.includes(key.split("\n")[1]), e.message);
  assert.match(e.message, /private key/);

  const cases: [unknown, string, "require" | "prefer" | "disable"][] = [
    [{ ca: [] }, "tls.ca", "require"],
    [{ ca: "not a certificate" }, "tls.ca", "require"],
    [{ ca: [pem("ca.pem"), 7] }, "tls.ca[1]", "require"],
    [{ serverName: "two words" }, "tls.serverName", "require"],
    [{ serverName: "" }, "tls.serverName", "require"],
    [{ dangerouslySkipVerify: "yes" }, "tls.dangerouslySkipVerify", "require"],
    [{ handshakeTimeoutMs: 0 }, "tls.handshakeTimeoutMs", "require"],
    [{ handshakeTimeoutMs: -1 }, "tls.handshakeTimeoutMs", "require"],
    [{ handshakeTimeoutMs: 2 ** 31 }, "tls.handshakeTimeoutMs", "require"],
    [{ handshakeTimeoutMs: "3000" }, "tls.handshakeTimeoutMs", "require"],
    [{ insecure: true }, "tls.insecure", "require"],
    [{ direct: true }, "tls.direct", "prefer"],
    [{ ca: pem("ca.pem") }, "tls", "disable"],
    ["yes", "tls", "require"],
  ];
  for (const [value, field, policy] of cases) {
    assert.equal(
      configError(() => resolveTlsConfig(value, policy)).field,
      field,
      JSON.stringify(value),
    );
  }
  // Through resolveConfig too: tls without TLS switched on is a mistake.
  assert.equal(
    configError(() =>
      resolveConfig({ hosts: ["a"], tls: { serverName: "db" } })
    )
      .field,
    "tls",
  );
});

test("tls config: a hole in a CA list is a missing certificate, not one skipped", () => {
  // forEach skips holes: [, ca] and [ca, , other] were taken for [ca] and
  // [ca, other] without a word, as protocols' holes are not.
  const ca = pem("ca.pem");
  const cases: [unknown[], string][] = [
    [[, ca], "tls.ca[0]"],
    [[ca, , pem("untrusted.pem")], "tls.ca[1]"],
    [new Array(2), "tls.ca[0]"],
  ];
  for (const [list, field] of cases) {
    const e = configError(() => resolveTlsConfig({ ca: list }, "require"));
    assert.equal(e.field, field);
    assert.match(e.message, /expected a PEM string, got undefined/);
  }
});

test("tls config: an IPv6 server name may come in brackets", () => {
  assert.equal(
    resolveTlsConfig({ serverName: "[::1]" }, "require").serverName,
    "::1",
  );
  assert.equal(
    resolveTlsConfig({ serverName: "db.internal" }, "prefer").serverName,
    "db.internal",
  );
});

test("tls config: the server name is a host name, checked at the door as hosts are", () => {
  // These resolved, then failed every connect: a NUL byte or a name over
  // 255 characters as the runtime's startTls() refused it (a
  // ConnectFailedError blaming the node), "a:b:c" or "-bad-" as Deno's
  // "Invalid hostname" TypeError; "[db]" lost its brackets without a word.
  const long = Array.from({ length: 5 }, () => "a".repeat(60)).join(".");
  for (
    const name of ["db\u0000", long, "a:b:c", "-bad-", "a..b", "[db]", "%"]
  ) {
    const e = configError(() =>
      resolveTlsConfig({ serverName: name }, "require")
    );
    assert.equal(e.field, "tls.serverName", JSON.stringify(name));
  }
  const fine: [string, string][] = [
    ["db.internal", "db.internal"],
    ["db.internal.", "db.internal."],
    ["my_db", "my_db"],
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["[2001:db8::7]", "2001:db8::7"],
  ];
  for (const [name, resolved] of fine) {
    assert.equal(
      resolveTlsConfig({ serverName: name }, "require").serverName,
      resolved,
    );
  }
});

test("TLS failures from each runtime map to one reason", () => {
  const raw = (message: string, extra: object = {}) =>
    Object.assign(new Error(message), extra);
  const cases: [Error, string][] = [
    // Deno.startTls (rustls), `InvalidData`.
    [
      raw("invalid peer certificate: UnknownIssuer", { name: "InvalidData" }),
      "certificate",
    ],
    [
      raw(
        'invalid peer certificate: certificate not valid for name "127.0.0.1"; certificate is only valid for DnsName("wrong.invalid")',
        { name: "InvalidData" },
      ),
      "hostname",
    ],
    [
      raw(
        "invalid peer certificate: certificate expired: verification time 1 (UNIX), but certificate is not valid after 0",
        { name: "InvalidData" },
      ),
      "expired",
    ],
    // node:tls and Bun.
    [
      raw("self-signed certificate", { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
      "certificate",
    ],
    [
      raw("unable to verify the first certificate", {
        code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      }),
      "certificate",
    ],
    [
      raw("Hostname/IP does not match certificate's altnames", {
        code: "ERR_TLS_CERT_ALTNAME_INVALID",
      }),
      "hostname",
    ],
    [raw("certificate has expired", { code: "CERT_HAS_EXPIRED" }), "expired"],
    [
      raw("certificate is not yet valid", { code: "CERT_NOT_YET_VALID" }),
      "expired",
    ],
    [
      raw("wrong version number", { code: "ERR_SSL_WRONG_VERSION_NUMBER" }),
      "handshake",
    ],
  ];
  for (const [error, reason] of cases) {
    const mapped = toTlsError(error, endpoint, "127.0.0.1");
    assert.ok(mapped instanceof TlsError, `${error.message} -> ${mapped}`);
    assert.equal(mapped.reason, reason, error.message);
    assert.equal(mapped.cause, error);
    assert.equal(mapped.address, "127.0.0.1:7000");
  }
  // A connection that simply went away is a lost connection, not a verdict.
  for (
    const lost of [
      raw(
        "Client network socket disconnected before secure TLS connection was established",
        { code: "ECONNRESET" },
      ),
      raw("tls handshake eof", { name: "UnexpectedEof" }),
    ]
  ) {
    assert.ok(toTlsError(lost, endpoint, "x") instanceof ConnectionLostError);
  }
  // SDK errors (an abort's reason) pass through.
  const own = new TlsError("t", {
    reason: "handshake-timeout",
    address: "a:1",
  });
  assert.equal(toTlsError(own, endpoint, "x"), own);
});

test("TlsError: only a handshake timeout is retried; certificate failures never are", () => {
  for (
    const reason of ["certificate", "hostname", "expired", "handshake"] as const
  ) {
    const e = new TlsError("x", { reason, address: "a:1" });
    assert.equal(e.retryable, false);
    assert.equal(isRetryable(e, { idempotent: true }), false);
    assert.equal(e.code, "TLS_FAILED");
  }
  const timeout = new TlsError("x", {
    reason: "handshake-timeout",
    address: "a:1",
  });
  assert.equal(timeout.retryable, true);
  // Nothing was sent, so even a non-idempotent request may be retried.
  assert.equal(isRetryable(timeout), true);
});

test("the memory network has no TLS: the client does not offer it, and require fails closed", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp"],
  });
  try {
    await assert.rejects(
      Client.connect({
        hosts: [node.address],
        runtime: network,
        enableTls: true,
        poolConfig: { minConnections: 1 },
        healthConfig: { intervalMs: 0 },
      }),
      (error) => {
        assert.ok(error instanceof NegotiationError, String(error));
        assert.deepEqual(error.clientProtocols, []);
        assert.match(error.message, /no TLS transport/);
        return true;
      },
    );
    // Nothing was negotiated: the client gave up before sending NEGOTIATE.
    assert.equal(node.stats.negotiations, 0);
  } finally {
    await node.close();
  }
  assert.equal(network.openChannels, 0);
});

/**
 * The memory network with a stand-in for TLS: `startTls` records its
 * options and never completes unless aborted, like a node that swallows
 * the ClientHello.
 */
function stallingTls(network: RuntimeAdapter) {
  const calls: TlsOptions[] = [];
  const adapter: RuntimeAdapter = {
    name: "memory",
    supportsTls: true,
    listen: (options, onConnection) => network.listen(options, onConnection),
    async connect(options) {
      const channel: ByteChannel = await network.connect(options);
      channel.startTls = (tls) => {
        calls.push(tls);
        return new Promise((_, reject) => {
          tls.signal?.addEventListener("abort", () => {
            channel.destroy();
            reject(tls.signal!.reason);
          }, { once: true });
        });
      };
      return channel;
    },
  };
  return { adapter, calls };
}

test("the TLS handshake times out at exactly handshakeTimeoutMs on the client's clock", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp"],
  });
  const { adapter, calls } = stallingTls(network);
  const tls = resolveTlsConfig({ handshakeTimeoutMs: 1500 }, "require");
  const outcome: { value?: unknown } = {};
  const connecting = Connection.connect({
    adapter,
    hostname: node.hostname,
    port: node.port,
    clock,
    timeoutMs: 5000,
    handshake: createHandshake({
      tlsPolicy: "require",
      transports: { tls: tlsTransport({ tls, clock }) },
    }),
  }).then((c) => (outcome.value = c), (e) => (outcome.value = e));
  try {
    await clock.advance(0);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].serverName, "127.0.0.1");
    assert.equal(calls[0].dangerouslySkipVerify, false);
    await clock.advance(1499);
    assert.equal(outcome.value, undefined);
    await clock.advance(1);
    await connecting;
    const error = outcome.value as unknown;
    assert.ok(error instanceof TlsError, String(error));
    assert.equal(error.reason, "handshake-timeout");
    assert.match(error.message, /within 1500 ms/);
    // Every timer was cleared and the socket is gone, both ends.
    await clock.advance(0);
    assert.equal(clock.pendingTimers, 0);
  } finally {
    await node.close();
  }
  assert.equal(network.openChannels, 0);
});

test("plaintext after NEGOTIATE_OK is refused before the TLS handshake starts", async () => {
  const network = createMemoryNetwork();
  // A node (or a man in the middle) that agrees to TLS and then slips a
  // plaintext frame in behind NEGOTIATE_OK, in the same write.
  const listener = await network.listen({ port: 0 }, (channel) => {
    agreeToTls(channel, {
      nodeId: "evil",
      protocols: ["tls", "tcp"],
      afterAgreeing: (writer) =>
        writer.push(MessageType.Ping, 0, 99, new Uint8Array([1])),
    });
    channel.onClose(() => {});
  });
  const { adapter, calls } = stallingTls(network);
  const tls = resolveTlsConfig({}, "require");
  try {
    await assert.rejects(
      Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port: listener.port,
        handshake: createHandshake({
          tlsPolicy: "require",
          transports: { tls: tlsTransport({ tls, clock: new VirtualClock() }) },
        }),
      }),
      (error) => {
        assert.ok(error instanceof ProtocolError, String(error));
        assert.match(error.message, /plaintext data arrived after/);
        return true;
      },
    );
    assert.equal(calls.length, 0);
  } finally {
    await listener.close();
  }
});
