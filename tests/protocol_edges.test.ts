// Defects at the edges of the ./protocol and ./testing exports (and the
// CLI's TLS files), each with a test that failed before its fix: a HELLO
// announcing a maxFrameSize of 1 was taken, as was a test node's; ERROR
// codes above 65535 wrapped; agreeFeatures("udp-batch") threw a TypeError
// from inside and sortProtocols("tcp") answered []; a NEGOTIATE_OK could
// select a protocol it did not list; CredentialStore.add coerced a
// password that is no string; and `nodewire node --tls-cert` took a file
// that is not PEM and served a node no TLS handshake could reach;
// selectProtocol("tcp", ...) read the string as its letters, and the
// entry did not export MIN_FRAME_SIZE.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { main } from "../cli.ts";
import * as entry from "../protocol.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { Connection } from "../src/connection/connection.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import {
  ConfigError,
  InvalidArgumentError,
  NegotiationError,
  NodewireError,
  ProtocolError,
} from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import {
  MAX_FRAME_SIZE_LIMIT,
  MessageType,
  MIN_FRAME_SIZE,
} from "../src/protocol/frame.ts";
import {
  agreeFeatures,
  decodeError,
  decodeHello,
  decodeHelloOk,
  encodeError,
  encodeJson,
  PROTOCOL_FEATURES,
} from "../src/protocol/messages.ts";
import {
  allowedProtocols,
  decodeNegotiateOk,
  sortProtocols,
} from "../src/protocol/negotiation.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { CredentialStore } from "../testing/auth.ts";
import { startTestNode } from "../testing/node.ts";
import { concatBytes } from "../testing/bytes.ts";
import { ops } from "../testing/ops.ts";
import { openTestConnection } from "./support/test_connection.ts";

const invalid = (argument: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof InvalidArgumentError && e.argument === argument &&
  (pattern === undefined || pattern.test(e.message));

// ------------------------------------------------------- least frame size

test("one least frame size: HELLO, HELLO_OK, the client's config and a test node all refuse less than MIN_FRAME_SIZE (1024); a HELLO of 1 was taken, and so was a test node's", async () => {
  assert.equal(MIN_FRAME_SIZE, 1024);
  const hello = (maxFrameSize: unknown) =>
    encodeJson({ version: 1, client: "c", maxFrameSize });
  for (const bad of [1, 0, 1023, 1.5, "2048", null]) {
    assert.throws(
      () => decodeHello(hello(bad)),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message.includes(
          `HELLO maxFrameSize is ${
            JSON.stringify(bad)
          }, expected an integer of at least 1024`,
        ),
      `HELLO ${bad}`,
    );
    assert.throws(
      () =>
        decodeHelloOk(
          encodeJson({ nodeId: "n", maxFrameSize: bad, auth: "none" }),
        ),
      /HELLO_OK maxFrameSize is .*, expected an integer of at least 1024/,
    );
  }
  assert.equal(decodeHello(hello(MIN_FRAME_SIZE)).maxFrameSize, 1024);

  const network = createMemoryNetwork();
  for (const bad of [1, MIN_FRAME_SIZE - 1]) {
    await assert.rejects(
      startTestNode({ runtime: network, maxFrameSize: bad }),
      (e: unknown) =>
        e instanceof ConfigError && /maxFrameSize/.test(e.message) &&
        e.message.includes(`${MIN_FRAME_SIZE}`),
      `test node ${bad}`,
    );
    assert.throws(
      () => resolveConfig({ hosts: ["127.0.0.1:7000"], maxFrameSize: bad }),
      (e: unknown) =>
        e instanceof ConfigError && e.code === "CONFIG_INVALID" &&
        e.field === "maxFrameSize" &&
        e.message.includes(`expected an integer in ${MIN_FRAME_SIZE}–`) &&
        e.message.endsWith(`got ${bad}`),
    );
  }
  const node = await startTestNode({
    runtime: network,
    maxFrameSize: MIN_FRAME_SIZE,
  });
  await node.close();
  assert.equal(
    resolveConfig({ hosts: ["127.0.0.1:7000"], maxFrameSize: MIN_FRAME_SIZE })
      .maxFrameSize,
    MIN_FRAME_SIZE,
  );
  assert.ok(MIN_FRAME_SIZE < MAX_FRAME_SIZE_LIMIT);
});

// ------------------------------------------------------------ ERROR codes

test("encodeError refuses a code that is no u16 with an InvalidArgumentError naming error.code and the range: 65536 went out as 0, -1 as 65535", () => {
  for (const code of [65536, 70000, -1, NaN, 1.5, Infinity, "4", undefined]) {
    assert.throws(
      () =>
        encodeError({ code: code as number, retryable: false, message: "m" }),
      invalid("error.code", /expected an integer in 0–65535/),
      String(code),
    );
  }
  for (const code of [0, 1, 256, 65535]) {
    const round = decodeError(
      encodeError({ code, retryable: true, message: "busy" }),
    );
    assert.deepEqual(round, { code, retryable: true, message: "busy" });
  }
});

// -------------------------------------------------- lists that are arrays

test("agreeFeatures and sortProtocols refuse what is not an array of strings, naming the argument: a string threw a TypeError from inside, or was read as its letters", () => {
  for (const bad of ["udp-batch", 1, {}, [1], [null]]) {
    assert.throws(
      () => agreeFeatures(bad as never, PROTOCOL_FEATURES),
      invalid("offered", /expected an array of strings/),
    );
    assert.throws(
      () => agreeFeatures(["udp-batch"], bad as never),
      invalid("supported", /expected an array of strings/),
    );
  }
  for (const bad of ["tcp", "tls", new Set(["tcp"]), {}, [1, "tcp"], null]) {
    assert.throws(
      () => sortProtocols(bad as never),
      invalid("protocols", /expected an array of strings/),
      String(bad),
    );
    assert.throws(
      () => allowedProtocols("prefer", bad as never),
      invalid("protocols"),
    );
  }
  assert.deepEqual(agreeFeatures(undefined, PROTOCOL_FEATURES), []);
  assert.deepEqual(agreeFeatures(["x", "udp-batch"] as never, ["udp-batch"]), [
    "udp-batch",
  ]);
  assert.deepEqual(sortProtocols(["udp", "quic", "tls", "udp"]), [
    "tls",
    "udp",
  ]);
});

test("selectProtocol refuses what is not an array of strings, naming the argument, as its siblings do: a string was read as its letters and answered undefined", () => {
  for (const bad of ["tcp", new Set(["tcp"]), {}, [1, "tcp"], null]) {
    assert.throws(
      () => entry.selectProtocol(bad as never, ["tcp"]),
      invalid("a", /expected an array of strings/),
      String(bad),
    );
    assert.throws(
      () => entry.selectProtocol(["tcp"], bad as never),
      invalid("b", /expected an array of strings/),
      String(bad),
    );
  }
  assert.equal(
    entry.selectProtocol(["tcp", "quic", "udp"], ["udp", "tcp"]),
    "tcp",
  );
  assert.equal(entry.selectProtocol(["tls"], ["tcp"]), undefined);
});

test("the ./protocol entry exports MIN_FRAME_SIZE beside DEFAULT_MAX_FRAME_SIZE and MAX_FRAME_SIZE_LIMIT: the least maxFrameSize a HELLO_OK may announce", () => {
  assert.equal(entry.MIN_FRAME_SIZE, MIN_FRAME_SIZE);
  const ok = (maxFrameSize: number) =>
    encodeJson({ nodeId: "n", maxFrameSize, auth: "none" });
  assert.equal(
    entry.decodeHelloOk(ok(entry.MIN_FRAME_SIZE)).maxFrameSize,
    entry.MIN_FRAME_SIZE,
  );
  assert.throws(
    () => entry.decodeHelloOk(ok(entry.MIN_FRAME_SIZE - 1)),
    (e: unknown) =>
      e instanceof ProtocolError && e.code === "PROTOCOL_ERROR" &&
      /HELLO_OK maxFrameSize is 1023, expected an integer of at least 1024/
        .test(e.message),
  );
  assert.ok(entry.MIN_FRAME_SIZE <= entry.DEFAULT_MAX_FRAME_SIZE);
  assert.ok(entry.DEFAULT_MAX_FRAME_SIZE <= entry.MAX_FRAME_SIZE_LIMIT);
});

// --------------------------------------------------- NEGOTIATE_OK choice

test("decodeNegotiateOk refuses a selected protocol the payload does not list, with a ProtocolError showing both", () => {
  const answer = (protocols: string[], selected: unknown) =>
    encodeJson({ protocols, selected, udpPort: 7001 });
  for (
    const [protocols, selected] of [
      [["tcp"], "udp"],
      [["tcp", "udp"], "tls"],
      [[], "tcp"],
      [["tcp", "quic"], "quic"],
    ] as const
  ) {
    assert.throws(
      () => decodeNegotiateOk(answer([...protocols], selected)),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message.startsWith(
          `NEGOTIATE_OK selected ${JSON.stringify(selected)}, expected one of`,
        ),
      `${selected} of ${protocols}`,
    );
  }
  assert.equal(
    decodeNegotiateOk(answer(["tcp", "udp"], "udp")).selected,
    "udp",
  );
  assert.equal(decodeNegotiateOk(answer(["tcp"], null)).selected, null);
});

/** A node that answers HELLO, then NEGOTIATE with `negotiateOk`. */
async function negotiatingNode(
  adapter: RuntimeAdapter,
  protocols: string[],
  negotiateOk: object,
) {
  const codec = new MessageCodec();
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    channel.onClose(() => {});
    const reader = new MessageCodec();
    const reply = (type: number, sequence: number, body: object) =>
      channel.write(codec.encode({
        type,
        flags: 0,
        sequence,
        payload: encodeJson(body),
      }));
    channel.onData((chunk) =>
      reader.decode(chunk, (m) => {
        if (m.type === MessageType.Hello) {
          reply(MessageType.HelloOk, m.sequence, {
            nodeId: "chooser",
            maxFrameSize: 1 << 20,
            auth: "none",
            protocols,
          });
        } else if (m.type === MessageType.Negotiate) {
          reply(MessageType.NegotiateOk, m.sequence, negotiateOk);
        }
      })
    );
  });
  return listener;
}

test("a node that selects UDP when the client offered only TCP is refused at the handshake: by a NegotiationError when it lists UDP (as before), by a ProtocolError when it does not (its NEGOTIATE_OK contradicts itself; a NegotiationError before)", async () => {
  const network = createMemoryNetwork();
  for (
    const [protocols, expected] of [
      [["tcp", "udp"], NegotiationError],
      [["tcp"], ProtocolError],
    ] as const
  ) {
    const node = await negotiatingNode(network, [...protocols], {
      protocols,
      selected: "udp",
      udpPort: 9,
    });
    try {
      const error = await Connection.connect({
        adapter: network,
        hostname: "127.0.0.1",
        port: node.port,
        handshake: createHandshake({}),
      }).then((c) => (c.destroy(), undefined), (e: unknown) => e);
      assert.ok(error instanceof expected, `${protocols}: ${error}`);
      assert.equal(network.openChannels, 0, "the socket was closed");
    } finally {
      await node.close();
    }
  }
});

// ------------------------------------------------- CredentialStore.add

test("CredentialStore.add refuses a password that is no string with an InvalidArgumentError that never shows it: a number or an object's toString became the password", async () => {
  const store = new CredentialStore();
  const secret = { toString: () => "hunter2-from-toString" };
  for (const bad of [123456, secret, null, undefined, new Uint8Array(4)]) {
    await assert.rejects(
      store.add("alice", bad as never),
      (e: unknown) =>
        invalid("password", /expected a string, got "\[redacted\]"/)(e) &&
        !(e as Error).message.includes("123456") &&
        !(e as Error).message.includes("hunter2"),
      String(bad),
    );
  }
  assert.equal(store.has("alice"), false);
  await store.add("alice", "correct horse", { iterations: 1 });
  assert.equal(store.has("alice"), true);
});

// ------------------------------------------------------- CLI TLS files

/** Runs the CLI in-process, already told to stop, and captures its output. */
async function cli(args: string[]) {
  const lines: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const code = await main(args, { signal: AbortSignal.abort() });
    return { code, output: lines.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("node --tls-cert/--tls-key refuses files that hold no PEM certificate or key, exit 2 naming the option and the file and never what it holds: the node started and failed every TLS handshake", async () => {
  const certs = (name: string) =>
    fileURLToPath(new URL(`../testing/certs/${name}`, import.meta.url));
  // A line of the key's body, which no message may show.
  const keyLine = readFileSync(certs("server-key.pem"), "utf8").split("\n")[1];
  const dir = mkdtempSync(join(tmpdir(), "nodewire-pem-"));
  try {
    const junk = join(dir, "junk.txt");
    writeFileSync(junk, "not-pem-SECRET-MATERIAL\n");
    const cases: [string, string, RegExp][] = [
      [
        junk,
        certs("server-key.pem"),
        /--tls-cert: ".*junk\.txt" holds no PEM certificate/,
      ],
      [
        certs("server.pem"),
        junk,
        /--tls-key: ".*junk\.txt" holds no PEM private key/,
      ],
      // Swapped: each file is PEM, of the wrong kind.
      [
        certs("server-key.pem"),
        certs("server.pem"),
        /--tls-cert: ".*server-key\.pem" holds no PEM certificate/,
      ],
    ];
    for (const [cert, key, message] of cases) {
      const run = await cli([
        "node",
        "--port",
        "0",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
      ]);
      assert.equal(run.code, 2, run.output);
      assert.match(run.output, message);
      assert.ok(!run.output.includes("SECRET"), run.output);
      assert.ok(!run.output.includes(keyLine), run.output);
    }
    // The real pair starts (and stops at once: the signal is aborted).
    const ok = await cli([
      "node",
      "--port",
      "0",
      "--tls-cert",
      certs("server.pem"),
      "--tls-key",
      certs("server-key.pem"),
    ]);
    assert.equal(ok.code, 0, ok.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a test node counts in stats.requests the requests it answers, not the ERROR it sends for a message that is no request", async () => {
  const { node, connection, close } = await openTestConnection(
    createMemoryNetwork(),
  );
  try {
    await connection.sendRequest(ops.echo("x"));
    assert.equal(node.stats.requests, 1);
    // HELLO_OK is the node's to send: a client's is a protocol violation.
    connection.sendMessage(MessageType.HelloOk, new Uint8Array(0));
    await connection.closed;
    assert.equal(node.stats.requests, 1, "the ERROR is no request answered");
  } finally {
    await close();
  }
});

for (
  const [name, type] of [
    ["a second HELLO", MessageType.Hello],
    ["HELLO_OK", MessageType.HelloOk],
    ["NEGOTIATE_OK", MessageType.NegotiateOk],
    ["AUTH_CHALLENGE", MessageType.AuthChallenge],
    ["AUTH_OK", MessageType.AuthOk],
    ["PONG", MessageType.Pong],
    ["RESPONSE", MessageType.Response],
    ["ERROR", MessageType.Error],
  ] as const
) {
  test(`a test node ends the session of a client that sends ${name} (a protocol violation), as for any other, after an ERROR saying why`, async () => {
    const { connection, close } = await openTestConnection(
      createMemoryNetwork(),
    );
    try {
      connection.sendMessage(type, new Uint8Array(0));
      // Sent after the violation: the node has dropped the client by then.
      const after = await connection.sendRequest(ops.echo("x")).then(
        () => "answered",
        (e: unknown) => e,
      );
      assert.ok(after instanceof NodewireError, String(after));
      assert.match(after.message, /unexpected message type|HELLO/);
      assert.equal(connection.isOpen, false);
    } finally {
      await close();
    }
  });
}

test("a test node does not count the ERROR it sends for bytes it cannot decode as a request", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  try {
    const channel = await network.connect({
      hostname: "127.0.0.1",
      port: node.port,
    });
    const heard: Uint8Array[] = [];
    const closed = new Promise<void>((resolve) =>
      channel.onClose(() => resolve())
    );
    channel.onData((chunk) => heard.push(chunk));
    channel.write(new Uint8Array(16).fill(0xff));
    await closed;
    const frames: number[] = [];
    new MessageCodec(1 << 20).decode(
      concatBytes(heard),
      (m) => frames.push(m.type),
    );
    assert.deepEqual(frames, [MessageType.Error], "told why, then dropped");
    assert.equal(node.stats.requests, 0);
  } finally {
    await node.close();
  }
});
