import assert from "node:assert/strict";
import { test } from "node:test";
import { fc } from "./support/fc.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { Connection } from "../src/connection/connection.ts";
import { ConfigError, NegotiationError, TlsError } from "../src/errors.ts";
import {
  createHandshake,
  type HandshakeOptions,
  handshakeResult,
  type TransportUpgrade,
} from "../src/handshake/handshake.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import {
  allowedProtocols,
  decodeNegotiate,
  decodeNegotiateOk,
  selectProtocol,
  sortProtocols,
  type TlsPolicy,
} from "../src/protocol/negotiation.ts";
import { PROTOCOL_PRIORITY, type ProtocolType } from "../src/protocol_type.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import {
  answerHello,
  type ScriptedNode,
  scriptedNode,
} from "./support/scripted_node.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const protocolSet = fc.subarray([...PROTOCOL_PRIORITY]);
const policy = fc.constantFrom<TlsPolicy>("require", "prefer", "disable");
const noop: TransportUpgrade = () => Promise.resolve();

/** What a client offers: its policy's protocols that it has a transport for. */
function offerOf(
  tlsPolicy: TlsPolicy,
  allowed: ProtocolType[],
  capable: ProtocolType[],
): ProtocolType[] {
  return allowedProtocols(tlsPolicy, allowed).filter((p) =>
    p === "tcp" || capable.includes(p)
  );
}

function connect(
  adapter: RuntimeAdapter,
  port: number,
  options: HandshakeOptions,
): Promise<Connection> {
  return Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port,
    timeoutMs: 5000,
    handshake: createHandshake(options),
  });
}

/**
 * A node that answers HELLO and then NEGOTIATE with whatever `negotiateOk`
 * returns, to play a node that disagrees or misbehaves.
 */
function negotiatingNode(
  adapter: RuntimeAdapter,
  hello: object,
  negotiateOk: (offer: Message) => object,
): Promise<ScriptedNode> {
  return scriptedNode(
    adapter,
    (m) =>
      m.type === MessageType.Negotiate
        ? [MessageType.NegotiateOk, negotiateOk(m)]
        : answerHello(hello)(m),
  );
}

const HELLO = { nodeId: "scripted", maxFrameSize: 1 << 20, auth: "none" };

test("Property 8: Protocol Selection Priority", async () => {
  // The rule itself, on every combination of sets, policies and orders.
  fc.assert(
    fc.property(
      protocolSet,
      protocolSet,
      policy,
      protocolSet,
      (capable, node, tlsPolicy, allowedRaw) => {
        const allowed = allowedRaw.length ? allowedRaw : [...PROTOCOL_PRIORITY];
        const offer = offerOf(tlsPolicy, allowed, capable);
        const chosen = selectProtocol(offer, node);
        const common = PROTOCOL_PRIORITY.filter((p) =>
          offer.includes(p) && node.includes(p)
        );
        // The best protocol both have, or none when they share none.
        assert.equal(chosen, common[0]);
        if (chosen !== undefined) {
          for (const p of PROTOCOL_PRIORITY) {
            if (p === chosen) break;
            assert.ok(!common.includes(p), `${p} outranks ${chosen}`);
          }
          // Never outside the policy, never one the client cannot do.
          assert.ok(allowed.includes(chosen));
          if (tlsPolicy === "require") assert.equal(chosen, "tls");
          if (tlsPolicy === "disable") assert.notEqual(chosen, "tls");
          assert.ok(chosen === "tcp" || capable.includes(chosen));
        }
        // Both sides reach the same answer, whatever order the sets come in.
        assert.equal(selectProtocol(node, offer), chosen);
        assert.equal(
          selectProtocol([...offer].reverse(), [...node].reverse()),
          chosen,
        );
      },
    ),
    { numRuns: 1000 },
  );

  // The same rule through the real exchange with the reference node: the
  // client's and the node's choices agree, or negotiation fails closed
  // listing both sets.
  await fc.assert(
    fc.asyncProperty(
      protocolSet,
      protocolSet.filter((s) => s.length > 0),
      policy,
      async (capable, nodeProtocols, tlsPolicy) => {
        const network = createMemoryNetwork();
        const node = await startTestNode({
          runtime: network,
          protocols: nodeProtocols,
        });
        const offer = offerOf(tlsPolicy, [...PROTOCOL_PRIORITY], capable);
        const expected = selectProtocol(offer, nodeProtocols);
        const upgraded: ProtocolType[] = [];
        const transports = {
          tls: capable.includes("tls")
            ? () => (upgraded.push("tls"), Promise.resolve())
            : undefined,
          udp: capable.includes("udp")
            ? () => (upgraded.push("udp"), Promise.resolve())
            : undefined,
        };
        try {
          const connection = await connect(network, node.port, {
            tlsPolicy,
            transports,
          });
          assert.ok(expected !== undefined);
          const result = handshakeResult(connection)!;
          assert.equal(result.protocol, expected);
          assert.deepEqual(result.nodeProtocols, sortProtocols(nodeProtocols));
          assert.deepEqual(result.clientProtocols, offer);
          assert.deepEqual(upgraded, expected === "tcp" ? [] : [expected]);
          await connection.close();
        } catch (error) {
          // The stand-in TLS transport switches nothing: the choice stands
          // (its transport ran), and the plaintext stream is refused.
          if (error instanceof TlsError) {
            assert.equal(expected, "tls");
            assert.equal(error.reason, "handshake");
            assert.deepEqual(upgraded, ["tls"]);
          } else {
            if (!(error instanceof NegotiationError)) throw error;
            assert.equal(expected, undefined);
            assert.deepEqual(error.clientProtocols, offer);
            assert.deepEqual(
              error.nodeProtocols,
              sortProtocols(nodeProtocols),
            );
            assert.deepEqual(upgraded, []);
          }
        } finally {
          await node.close();
        }
        assert.equal(network.openChannels, 0);
      },
    ),
    { numRuns: 150 },
  );
});

test("the TLS policy narrows the protocols a client allows", () => {
  const all: ProtocolType[] = ["udp", "tcp", "tls"];
  assert.deepEqual(allowedProtocols("prefer", all), ["tls", "tcp", "udp"]);
  assert.deepEqual(allowedProtocols("require", all), ["tls"]);
  assert.deepEqual(allowedProtocols("disable", all), ["tcp", "udp"]);
  assert.deepEqual(allowedProtocols("require", ["tcp"]), []);
  assert.deepEqual(sortProtocols(["udp", "quic", "tls", "udp"]), [
    "tls",
    "udp",
  ]);
});

test("NEGOTIATE and NEGOTIATE_OK payloads are checked field by field", () => {
  assert.deepEqual(
    decodeNegotiate(encodeJson({ protocols: ["udp", "quic", "tcp"] })),
    { protocols: ["tcp", "udp"] },
  );
  assert.deepEqual(
    decodeNegotiateOk(
      encodeJson({ protocols: ["tcp", "udp"], selected: "tcp", udpPort: 7001 }),
    ),
    { protocols: ["tcp", "udp"], selected: "tcp", udpPort: 7001 },
  );
  assert.deepEqual(
    decodeNegotiateOk(encodeJson({ protocols: ["tcp"], selected: null })),
    { protocols: ["tcp"], selected: null },
  );
  for (
    const bad of [
      {},
      { protocols: "tcp", selected: "tcp" },
      { protocols: [1], selected: "tcp" },
      { protocols: ["tcp"] },
      { protocols: ["tcp"], selected: "quic" },
      { protocols: ["udp"], selected: "udp" },
      { protocols: ["udp"], selected: "udp", udpPort: 0 },
      { protocols: ["udp"], selected: "udp", udpPort: 70000 },
      { protocols: ["udp"], selected: "udp", udpPort: "7001" },
    ]
  ) {
    assert.throws(
      () => decodeNegotiateOk(encodeJson(bad)),
      (e: Error) => (e as { code?: string }).code === "PROTOCOL_ERROR",
      JSON.stringify(bad),
    );
  }
});

test("config: tlsPolicy defaults to require with enableTls and disable without; protocols keep priority order", () => {
  assert.equal(resolveConfig({ hosts: ["a"] }).tlsPolicy, "disable");
  assert.deepEqual(resolveConfig({ hosts: ["a"] }).protocols, [
    "tls",
    "tcp",
    "udp",
  ]);
  assert.equal(
    resolveConfig({ hosts: ["a"], enableTls: true }).tlsPolicy,
    "require",
  );
  assert.equal(
    resolveConfig({ hosts: ["a"], enableTls: true, tlsPolicy: "prefer" })
      .tlsPolicy,
    "prefer",
  );
  assert.deepEqual(
    resolveConfig({ hosts: ["a"], protocols: ["udp", "tcp"] }).protocols,
    ["tcp", "udp"],
  );
  const field = (config: object) => {
    try {
      resolveConfig({ hosts: ["a"], ...config });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.field;
    }
    assert.fail(`accepted ${JSON.stringify(config)}`);
  };
  assert.equal(field({ enableTls: true, tlsPolicy: "disable" }), "tlsPolicy");
  assert.equal(field({ tlsPolicy: "sometimes" }), "tlsPolicy");
  assert.equal(field({ protocols: [] }), "protocols");
  assert.equal(field({ protocols: "tcp" }), "protocols");
  assert.equal(field({ protocols: ["tcp", "quic"] }), "protocols[1]");
  assert.equal(field({ protocols: ["tcp", "tcp"] }), "protocols[1]");
  // A hole is a mistake, not a protocol skipped (forEach skipped it).
  // deno-lint-ignore no-sparse-arrays
  assert.equal(field({ protocols: [, "udp"] }), "protocols[0]");
  assert.equal(field({ enableTls: true, protocols: ["tcp"] }), "protocols");
  assert.equal(field({ protocols: ["tls"] }), "protocols");
});

test("against the reference node, the client negotiates TCP and requests flow", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp", "udp"],
  });
  const connection = await connect(network, node.port, {});
  const result = handshakeResult(connection)!;
  // TLS is not offered (no transport, policy "disable"); UDP ranks below TCP.
  assert.equal(result.protocol, "tcp");
  assert.deepEqual(result.clientProtocols, ["tcp"]);
  assert.deepEqual(result.nodeProtocols, ["tls", "tcp", "udp"]);
  assert.equal(result.udpPort, node.port);
  assert.equal(result.authenticated, false);
  assert.equal(node.stats.negotiations, 1);
  assert.equal(replyText(await connection.sendRequest(ops.echo("hi"))), "hi");
  await connection.close();
  await node.close();
});

test("handshakeResult hands out a copy: a caller that changes what it got changes nothing later calls see", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp", "udp"],
  });
  const connection = await connect(network, node.port, {});
  try {
    const first = handshakeResult(connection)!;
    first.clientProtocols.push("udp");
    first.nodeProtocols.length = 0;
    first.protocol = "udp";
    first.authenticated = true;
    const again = handshakeResult(connection)!;
    assert.notEqual(again, first);
    assert.equal(again.protocol, "tcp");
    assert.deepEqual(again.clientProtocols, ["tcp"]);
    assert.deepEqual(again.nodeProtocols, ["tls", "tcp", "udp"]);
    assert.equal(again.authenticated, false);
  } finally {
    await connection.close();
    await node.close();
  }
});

test("required TLS with no TLS transport fails closed before NEGOTIATE, listing both sets", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  await assert.rejects(
    connect(network, node.port, { enableTls: true }),
    (error) => {
      assert.ok(error instanceof NegotiationError);
      assert.equal(error.code, "NEGOTIATION_FAILED");
      assert.equal(error.retryable, false);
      assert.deepEqual(error.clientProtocols, []);
      assert.deepEqual(error.allowedProtocols, ["tls"]);
      assert.deepEqual(error.nodeProtocols, ["tcp"]);
      assert.match(error.message, /TLS is required/);
      assert.match(error.message, /node supports \[tcp\]/);
      return true;
    },
  );
  assert.equal(node.stats.negotiations, 0);
  assert.equal(node.stats.requests, 0);
  await node.close();
  assert.equal(network.openChannels, 0);
});

test("required TLS offered to a node without TLS gets no common protocol, never TCP", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  let upgraded = false;
  await assert.rejects(
    connect(network, node.port, {
      enableTls: true,
      transports: { tls: () => (upgraded = true, Promise.resolve()) },
    }),
    (error) => {
      assert.ok(error instanceof NegotiationError);
      assert.deepEqual(error.clientProtocols, ["tls"]);
      assert.deepEqual(error.nodeProtocols, ["tcp"]);
      assert.match(error.message, /no protocol in common/);
      return true;
    },
  );
  assert.equal(upgraded, false);
  assert.equal(node.stats.negotiations, 1);
  await node.close();
});

test("a node that serves only UDP and a client that cannot do UDP share nothing", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network, protocols: ["udp"] });
  await assert.rejects(connect(network, node.port, {}), (error) => {
    assert.ok(error instanceof NegotiationError);
    assert.deepEqual(error.clientProtocols, ["tcp"]);
    assert.deepEqual(error.nodeProtocols, ["udp"]);
    return true;
  });
  await node.close();
});

test("a node whose choice differs from the client's rule is refused", async () => {
  const network = createMemoryNetwork();
  for (
    const answer of [
      { protocols: ["tcp", "udp"], selected: "udp", udpPort: 9 },
      { protocols: ["tcp"], selected: null },
      { protocols: ["tls", "tcp"], selected: "tls" },
      { protocols: ["udp"], selected: "udp", udpPort: 9 },
    ]
  ) {
    const node = await negotiatingNode(
      network,
      { ...HELLO, protocols: answer.protocols },
      () => answer,
    );
    await assert.rejects(
      connect(network, node.port, {}),
      (error) => {
        assert.ok(error instanceof NegotiationError, String(error));
        assert.deepEqual(error.nodeProtocols, answer.protocols);
        return true;
      },
      JSON.stringify(answer),
    );
    await node.close();
  }
  assert.equal(network.openChannels, 0);
});

test("the client offers exactly its policy's protocols that it has a transport for", async () => {
  const network = createMemoryNetwork();
  const offers: unknown[] = [];
  const node = await negotiatingNode(
    network,
    { ...HELLO, protocols: ["tcp"] },
    (m) => {
      offers.push(decodeNegotiate(m.payload).protocols);
      return { protocols: ["tcp"], selected: "tcp" };
    },
  );
  const cases: [HandshakeOptions, ProtocolType[]][] = [
    [{}, ["tcp"]],
    [{ tlsPolicy: "prefer" }, ["tcp"]],
    [{ tlsPolicy: "prefer", transports: { tls: noop } }, ["tls", "tcp"]],
    [{ transports: { tls: noop, udp: noop } }, ["tcp", "udp"]],
    [{ tlsPolicy: "prefer", transports: { tls: noop, udp: noop } }, [
      "tls",
      "tcp",
      "udp",
    ]],
    [{ protocols: ["tcp"], transports: { udp: noop } }, ["tcp"]],
  ];
  for (const [options] of cases) {
    const connection = await connect(network, node.port, options);
    await connection.close();
  }
  assert.deepEqual(offers, cases.map(([, offer]) => offer));
  await node.close();
});

test("a node that predates negotiation is not sent NEGOTIATE and counts as TCP", async () => {
  const network = createMemoryNetwork();
  const node = await negotiatingNode(network, HELLO, () => {
    throw new Error("must not be asked");
  });
  const connection = await connect(network, node.port, {});
  assert.equal(handshakeResult(connection)?.protocol, "tcp");
  assert.ok(!node.seen.includes(MessageType.Negotiate));
  await connection.close();
  await assert.rejects(
    connect(network, node.port, {
      enableTls: true,
      transports: { tls: noop },
    }),
    (e: unknown) =>
      e instanceof NegotiationError && e.code === "NEGOTIATION_FAILED" &&
      /failed: the node predates negotiation and serves only tcp/.test(
        e.message,
      ),
  );
  await node.close();
});

test("a transport upgrade that fails fails the connection; nothing falls back", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    protocols: ["tls", "tcp"],
  });
  const refused = new Error("certificate verify failed");
  await assert.rejects(
    connect(network, node.port, {
      tlsPolicy: "prefer",
      transports: { tls: () => Promise.reject(refused) },
    }),
    (error) => error === refused,
  );
  assert.equal(node.stats.requests, 0);
  await node.close();
  assert.equal(network.openChannels, 0);
});

test("the reference node refuses a second NEGOTIATE as a protocol violation", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const connection = await connect(network, node.port, {});
  connection.sendMessage(
    MessageType.Negotiate,
    encodeJson({ protocols: ["tcp"] }),
  );
  const error = await connection.closed;
  assert.ok(error instanceof Error);
  assert.match(error.message, /at most once/);
  await node.close();
});
