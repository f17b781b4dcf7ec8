// The handshake as a hostile or broken node drives it, and its options as
// a careless user gives them (the review of src/handshake/, src/auth/,
// src/config/tls.ts and src/connection/open.ts). Scripted nodes run on the
// in-memory network with a virtual clock, so every outcome is deterministic;
// the one real-socket test spawns a client process and watches it exit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { Client } from "../src/client/client.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { Connection } from "../src/connection/connection.ts";
import { FrameWriter } from "../src/connection/frame_writer.ts";
import {
  AuthenticationError,
  ConfigError,
  ConnectionLostError,
  ConnectTimeoutError,
  InvalidArgumentError,
  ProtocolError,
  RemoteError,
} from "../src/errors.ts";
import {
  createHandshake,
  type HandshakeOptions,
} from "../src/handshake/handshake.ts";
import { ScramClient } from "../src/auth/scram.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import {
  decodeHelloOk,
  encodeError,
  encodeJson,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { Secret } from "../src/secret.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { nodeId as kitNodeId } from "../testing/options.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { printable } from "../src/errors/base.ts";
import { agreeToTls } from "./helpers.ts";
import { spawnScript } from "./support/exit/spawn.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { fc } from "./support/fc.ts";

const PASSWORD = "Tr0ub4dor&3-never-shown";
const HELLO_OK = { nodeId: "n1", maxFrameSize: 1 << 20, auth: "none" };
const SALT = "W22ZaJ0SNY7soEsUEjb6gQ==";

type Reply = (
  type: number,
  payload: object | string | Uint8Array,
  sequence?: number,
) => void;

/** What a scripted node does with each message; `reply` answers it. */
type Script = (message: Message, reply: Reply) => void;

/**
 * Opens one connection to a node that plays `script`, on a fresh memory
 * network and virtual clock; `advanceMs` of virtual time pass while it
 * opens. Returns what the connect threw (or the connection), after
 * checking that nothing is left: no channel, no timer.
 */
async function attempt(
  script: Script,
  options: { handshake?: HandshakeOptions; advanceMs?: number } = {},
): Promise<unknown> {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const listener = await network.listen({ port: 0 }, (channel) => {
    const codec = new MessageCodec(1 << 24);
    const writer = new FrameWriter(channel);
    channel.onData((chunk) =>
      codec.decode(
        chunk,
        (m) =>
          script(m, (type, payload, sequence = m.sequence) =>
            writer.push(
              type,
              0,
              sequence,
              payload instanceof Uint8Array
                ? payload
                : typeof payload === "string"
                ? new TextEncoder().encode(payload)
                : encodeJson(payload),
            )),
      )
    );
    channel.onClose(() => {});
  });
  const opening = Connection.connect({
    adapter: network,
    hostname: "127.0.0.1",
    port: listener.port,
    clock,
    timeoutMs: 1000,
    handshake: createHandshake(options.handshake ?? {}),
  }).then((c) => c, (error: unknown) => error);
  await clock.advance(options.advanceMs ?? 0);
  const outcome = await opening;
  if (outcome instanceof Connection) outcome.destroy();
  await listener.close();
  await clock.advance(0);
  assert.equal(network.openChannels, 0, "every channel is closed");
  assert.equal(clock.pendingTimers, 0, "no timer is left");
  return outcome;
}

/** A node that answers HELLO with `hello` (and NEGOTIATE with `negotiated`). */
function helloScript(hello: unknown, negotiated?: unknown): Script {
  return (m, reply) => {
    if (m.type === MessageType.Hello) {
      reply(MessageType.HelloOk, hello as object);
    }
    if (m.type === MessageType.Negotiate && negotiated !== undefined) {
      reply(MessageType.NegotiateOk, negotiated as object);
    }
  };
}

/**
 * A node that requires SCRAM and answers AUTH_START with `serverFirst(r)`
 * (`r`: the client's nonce) and AUTH_FINAL with `final`.
 */
function scramScript(
  serverFirst: (clientNonce: string) => string,
  final: (m: Message, reply: Reply) => void = () => {},
): Script {
  return (m, reply) => {
    if (m.type === MessageType.Hello) {
      reply(MessageType.HelloOk, { ...HELLO_OK, auth: "scram-sha-256" });
    } else if (m.type === MessageType.AuthStart) {
      const first = JSON.parse(new TextDecoder().decode(m.payload)).message;
      const nonce = first.split(",r=")[1];
      reply(MessageType.AuthChallenge, { message: serverFirst(nonce) });
    } else if (m.type === MessageType.AuthFinal) final(m, reply);
  };
}

const CREDENTIALS: HandshakeOptions = {
  username: "alice",
  password: new Secret(PASSWORD),
};

function assertQuiet(error: unknown): void {
  const texts = [
    String(error),
    inspect(error, { depth: 10 }),
    (error as Error).stack ?? "",
  ];
  for (const text of texts) {
    assert.ok(!text.includes(PASSWORD), `the password leaked: ${text}`);
  }
}

test("a node value that String() cannot render is a ProtocolError, not a TypeError", async () => {
  // JSON.parse gives `{"toString": 1}` an own toString that is no function:
  // String() of it throws a TypeError.
  const hostile = { toString: 1 };
  const cases = [
    helloScript({ ...HELLO_OK, auth: hostile }),
    helloScript({ ...HELLO_OK, protocols: ["tcp", "udp"] }, {
      protocols: ["tcp", "udp"],
      selected: "tcp",
      udpPort: hostile,
    }),
  ];
  for (const script of cases) {
    const error = await attempt(script);
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, /\{"toString":1\}/);
  }
});

test("text a node chooses is cut short and kept on one line in handshake errors", async () => {
  const huge = "x\n".repeat(50_000);
  const cases: [Script, HandshakeOptions?][] = [
    [helloScript({ ...HELLO_OK, auth: huge })],
    [
      helloScript({ ...HELLO_OK, protocols: ["tcp"] }, {
        protocols: ["tcp"],
        selected: huge,
      }),
    ],
    [
      scramScript((r) => `r=${r}X,s=${SALT},i=${"9".repeat(100_000)}`),
      CREDENTIALS,
    ],
    [
      scramScript(
        (r) => `r=${r}X,s=${SALT},i=4096`,
        (_m, reply) => reply(MessageType.AuthOk, { message: `e=${huge}` }),
      ),
      CREDENTIALS,
    ],
  ];
  for (const [script, handshake] of cases) {
    const error = await attempt(script, { handshake });
    assert.ok(
      error instanceof ProtocolError || error instanceof AuthenticationError,
      String(error),
    );
    assert.ok(error.message.length < 400, `${error.message.length} characters`);
    assert.ok(!error.message.includes("\n"), "one line");
    assertQuiet(error);
  }
});

test("a HELLO_OK whose protocols is not an array of strings is refused, not taken for a node without negotiation", async () => {
  for (const protocols of ["tcp", [1], { tcp: true }, null]) {
    const error = await attempt(helloScript({ ...HELLO_OK, protocols }));
    assert.ok(
      error instanceof ProtocolError,
      `${inspect(protocols)}: ${error}`,
    );
    assert.match(
      error.message,
      /HELLO_OK protocols .* not an array of strings/,
    );
  }
});

test("a HELLO_OK nodeId over 255 UTF-8 bytes is refused: every error from the node would carry it", async () => {
  const cases: [string, RegExp][] = [
    ["n".repeat(100_000), /nodeId "n+…" has more than 255 UTF-8 bytes$/],
    // 128 characters, each two bytes on the wire.
    ["é".repeat(128), /nodeId "é+…" has 256 UTF-8 bytes, more than 255$/],
    ["n".repeat(256), /nodeId "n+…" has more than 255 UTF-8 bytes$/],
  ];
  for (const [nodeId, message] of cases) {
    const error = await attempt(helloScript({ ...HELLO_OK, nodeId }));
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, message);
  }
  const fine = await attempt(
    helloScript({ ...HELLO_OK, nodeId: "é".repeat(127) + "x" }),
  );
  assert.ok(fine instanceof Connection, String(fine));
});

test("a HELLO_OK nodeId no log could show as it is (a control, format or separator character) is refused, shown escaped", async () => {
  for (
    const nodeId of ["n\u001b[2J1", "n\n1", "a\u202eb", "\u2028", "\ud800"]
  ) {
    const error = await attempt(helloScript({ ...HELLO_OK, nodeId }));
    assert.ok(error instanceof ProtocolError, `${inspect(nodeId)}: ${error}`);
    assert.match(
      error.message,
      /^HELLO_OK nodeId ".*" has a control or format character$/,
    );
    assert.ok(error.message.includes(printable(JSON.stringify(nodeId))));
    assert.equal(printable(error.message), error.message, "shown escaped");
  }
  for (const nodeId of ["n 1", "nœud-é", "节点-1", "🦕"]) {
    const fine = await attempt(helloScript({ ...HELLO_OK, nodeId }));
    assert.ok(fine instanceof Connection, `${inspect(nodeId)}: ${fine}`);
  }
});

test("the client takes a HELLO_OK nodeId exactly when the test kit takes it for a node's id: one rule", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 140 }),
        fc.string({ unit: "grapheme-ascii", minLength: 250, maxLength: 260 }),
        fc.string({ unit: "binary-ascii", maxLength: 8 }),
      ),
      (nodeId) => {
        const kit = kitNodeId(nodeId) === undefined;
        let client: boolean;
        try {
          client = decodeHelloOk(encodeJson({ ...HELLO_OK, nodeId }))
            .nodeId === nodeId;
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
          client = false;
        }
        assert.equal(client, kit, inspect(nodeId));
      },
    ),
    { numRuns: 500 },
  );
});

test("a reply with a sequence the client never used, or another message's, is a protocol violation", async () => {
  const negotiating = { ...HELLO_OK, protocols: ["tcp"] };
  const negotiated = { protocols: ["tcp"], selected: "tcp" };
  const cases: [string, Script, HandshakeOptions?][] = [
    ["HELLO_OK with 77", (m, reply) => {
      if (m.type === MessageType.Hello) {
        reply(MessageType.HelloOk, HELLO_OK, 77);
      }
    }],
    ["HELLO_OK with 0", (m, reply) => {
      if (m.type === MessageType.Hello) reply(MessageType.HelloOk, HELLO_OK, 0);
    }],
    ["NEGOTIATE_OK with HELLO's 1", (m, reply) => {
      if (m.type === MessageType.Hello) reply(MessageType.HelloOk, negotiating);
      if (m.type === MessageType.Negotiate) {
        reply(MessageType.NegotiateOk, negotiated, 1);
      }
    }],
    ["NEGOTIATE_OK with 99", (m, reply) => {
      if (m.type === MessageType.Hello) reply(MessageType.HelloOk, negotiating);
      if (m.type === MessageType.Negotiate) {
        reply(MessageType.NegotiateOk, negotiated, 99);
      }
    }],
    [
      "AUTH_OK with AUTH_START's",
      scramScript(
        (r) => `r=${r}X,s=${SALT},i=4096`,
        (m, reply) =>
          reply(MessageType.AuthOk, { message: "v=AAAA" }, m.sequence - 1),
      ),
      CREDENTIALS,
    ],
  ];
  for (const [what, script, handshake] of cases) {
    const error = await attempt(script, { handshake });
    assert.ok(error instanceof ProtocolError, `${what}: ${error}`);
    assert.match(error.message, /with sequence \d+, got .* with sequence \d+/);
    assertQuiet(error);
  }
});

/** A node's ERROR: Unavailable, "starting". */
const STARTING = encodeError({
  code: RemoteErrorCode.Unavailable,
  retryable: true,
  message: "starting",
});

test('a node\'s ERROR answering HELLO names the node by its address (its id is not known yet), not as "node ?"', async () => {
  const refused = await attempt((m, reply) => {
    if (m.type === MessageType.Hello) {
      reply(MessageType.Error, STARTING);
    }
  });
  assert.ok(refused instanceof RemoteError, String(refused));
  assert.equal(refused.remoteCode, RemoteErrorCode.Unavailable);
  assert.equal(refused.nodeId, undefined);
  assert.match(refused.address ?? "", /^127\.0\.0\.1:\d+$/);
  assert.equal(
    refused.message,
    `node ${refused.address} answered error 5: starting`,
  );
});

test("a node's ERROR answering NEGOTIATE or AUTH_FINAL keeps its code: AuthFailed is an authentication failure", async () => {
  const refused = await attempt((m, reply) => {
    if (m.type === MessageType.Hello) {
      reply(MessageType.HelloOk, { ...HELLO_OK, protocols: ["tcp"] });
    }
    if (m.type === MessageType.Negotiate) {
      reply(MessageType.Error, STARTING);
    }
  });
  assert.ok(refused instanceof RemoteError, String(refused));
  assert.equal(refused.remoteCode, RemoteErrorCode.Unavailable);
  assert.match(refused.message, /node n1 answered error 5: starting/);

  const rejected = await attempt(
    scramScript(
      (r) => `r=${r}X,s=${SALT},i=4096`,
      (_m, reply) =>
        reply(
          MessageType.Error,
          encodeError({
            code: RemoteErrorCode.AuthFailed,
            retryable: false,
            message: "authentication failed",
          }),
        ),
    ),
    { handshake: CREDENTIALS },
  );
  assert.ok(rejected instanceof AuthenticationError, String(rejected));
  assert.equal(rejected.reason, "rejected");
  assert.equal(rejected.retryable, false);
  assert.match(rejected.message, /authentication failed/);
  assertQuiet(rejected);
});

test("SCRAM: a count that is no number says so, and a server-first over 4096 characters is refused unread", async () => {
  const client = () => {
    const c = new ScramClient({
      username: "user",
      password: new Secret(PASSWORD),
      nonce: "abc",
    });
    c.clientFirstMessage();
    return c;
  };
  for (const count of ["1e9", "abc", "-5", "4096.0"]) {
    await assert.rejects(
      client().clientFinalMessage(`r=abcX,s=${SALT},i=${count}`),
      (e) =>
        e instanceof AuthenticationError && e.reason === "bad-challenge" &&
        e.message.includes(`"${count}" is not a positive integer`),
      count,
    );
  }
  // A well-formed message with a 6 KB salt: the key cache would keep it,
  // and AUTH_FINAL would echo a nonce as long.
  const salt = btoa("s".repeat(4500));
  await assert.rejects(
    client().clientFinalMessage(`r=abcX,s=${salt},i=4096`),
    (e) =>
      e instanceof AuthenticationError && e.reason === "bad-challenge" &&
      /more than 4096/.test(e.message),
  );
  // At the bound, a real exchange still goes through.
  const ok = `r=abcX,s=${btoa("s".repeat(3000))},i=4096`;
  assert.ok(ok.length <= 4096);
  assert.match(await client().clientFinalMessage(ok), /,p=/);
});

test("an empty or SASLprep-refused password fails when the client is built, before any socket", async () => {
  for (const password of ["", "\u00ad", `bell\u0007${PASSWORD}`]) {
    assert.throws(
      () => createHandshake({ username: "u", password: new Secret(password) }),
      (e) =>
        e instanceof AuthenticationError && e.reason === "invalid-credentials",
    );
  }
  const network = createMemoryNetwork();
  const node = await startTestNode({
    runtime: network,
    credentials: { u: PASSWORD },
  });
  try {
    const error = await Client.connect({
      hosts: [node.address],
      runtime: network,
      username: "u",
      password: `bell\u0007${PASSWORD}`,
      healthConfig: { intervalMs: 0 },
    }).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof AuthenticationError, String(error));
    assert.equal(error.reason, "invalid-credentials");
    assertQuiet(error);
    assert.equal(node.stats.accepted, 0, "no connection was opened");
  } finally {
    await node.close();
  }
});

test("Connection.connect refuses bad options before opening a socket", async () => {
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const base = { adapter: network, hostname: "127.0.0.1", port: node.port };
  const cases: [string, Record<string, unknown>][] = [
    ["timeoutMs", { timeoutMs: Infinity }],
    ["timeoutMs", { timeoutMs: NaN }],
    ["timeoutMs", { timeoutMs: -1 }],
    ["timeoutMs", { timeoutMs: 2 ** 40 }],
    ["port", { port: 70_000 }],
    ["port", { port: 0 }],
    ["port", { port: String(node.port) }],
    ["hostname", { hostname: "" }],
    ["signal", { signal: {} }],
    ["maxFrameSize", { maxFrameSize: 0 }],
  ];
  try {
    for (const [field, bad] of cases) {
      const error = await Connection.connect({ ...base, ...bad } as never)
        .then((c) => (c.destroy(), undefined), (e: unknown) => e);
      assert.ok(
        error instanceof InvalidArgumentError,
        `${inspect(bad)}: ${error}`,
      );
      assert.equal(error.argument, `options.${field}`);
    }
    assert.equal(node.stats.accepted, 0, "no connection was opened");
  } finally {
    await node.close();
  }
});

test("tls: a CA given as bytes, a path or a broken PEM, and a server name with a port or a pattern, are config errors", () => {
  const pem = (body: string) =>
    `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
  const tlsError = (tls: object) => {
    try {
      resolveConfig({ hosts: ["127.0.0.1:7000"], enableTls: true, tls });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error;
    }
    assert.fail(`accepted ${inspect(tls)}`);
  };
  // readFileSync(path) without "utf8".
  assert.match(
    tlsError({ ca: new TextEncoder().encode(pem("MIIB")) }).message,
    /read the file as text.*got a Uint8Array/,
  );
  assert.match(tlsError({ ca: "./certs/ca.pem" }).message, /not its path/);
  // A PEM from an environment variable, its newlines still "\n" escapes;
  // a block that is base64 but no certificate.
  for (const ca of [pem("MIIB").replaceAll("\n", "\\n"), pem("AAAA")]) {
    assert.equal(tlsError({ ca }).field, "tls.ca");
  }
  for (const serverName of ["db.internal:7000", "*.internal", "[::1"]) {
    assert.equal(tlsError({ serverName }).field, "tls.serverName");
  }
  // Still fine: IPv6 with and without brackets, a DNS name.
  for (const serverName of ["::1", "[::1]", "db.internal"]) {
    resolveConfig({ hosts: ["h:1"], enableTls: true, tls: { serverName } });
  }
});

test("held: a node that goes silent mid-SCRAM is cut off by the connect timeout; PING is answered and GOODBYE ends it", async () => {
  const silent = await attempt(
    scramScript((r) => `r=${r}X,s=${SALT},i=4096`),
    { handshake: CREDENTIALS, advanceMs: 1000 },
  );
  assert.ok(silent instanceof ConnectTimeoutError, String(silent));
  assertQuiet(silent);

  const pinged = await attempt((m, reply) => {
    if (m.type !== MessageType.Hello) return;
    reply(MessageType.Ping, "are you there", 9);
    reply(MessageType.HelloOk, HELLO_OK);
  });
  assert.ok(pinged instanceof Connection, String(pinged));

  const left = await attempt((m, reply) => {
    if (m.type === MessageType.Hello) reply(MessageType.Goodbye, "", 0);
  });
  assert.equal((left as Error).name, "ConnectionLostError", String(left));
});

test("against a node that never answers the TLS handshake, the client process fails in time and exits on its own, also when Connection.startTls's own limit gives up", async () => {
  const adapter = await getAdapter();
  let accepted = 0;
  let closed = 0;
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    accepted++;
    agreeToTls(channel, {
      nodeId: "mute",
      protocols: ["tls", "tcp"],
      onSwitched: () => {},
    });
    channel.onClose(() => closed++);
  });
  try {
    for (
      const [mode, expected] of [
        ["tls", "TlsError TLS_FAILED handshake-timeout"],
        ["connect", "ConnectTimeoutError CONNECT_TIMEOUT -"],
        // The switch's limit gave up without telling the adapter, whose
        // handshake then held the process for good, on every runtime.
        ["switch", "TlsError TLS_FAILED handshake-timeout"],
      ]
    ) {
      const child = spawnScript("tests/support/exit/mute_tls.ts", [
        String(listener.port),
        mode,
      ]);
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (out += d));
      // A child that hangs is killed, and the test fails on its late exit.
      const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await new Promise((resolve) => child.on("exit", resolve));
      const exited = Date.now();
      clearTimeout(kill);
      assert.equal(code, 0, out);
      assert.match(out, new RegExp(`^error ${expected}$`, "m"), out);
      const mark = Number(/^mark (\d+)$/m.exec(out)?.[1]);
      assert.ok(
        exited - mark < 2000,
        `exited ${exited - mark} ms after its last call`,
      );
    }
    // The client closed each socket it opened.
    for (let i = 0; i < 100 && closed < accepted; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(closed, accepted);
  } finally {
    await listener.close();
  }
});

/** A channel the test feeds: whatever the node "sends" arrives at once. */
function fedChannel() {
  let onData: (chunk: Uint8Array) => void = () => {};
  const channel = stubChannel({
    onData: (fn: (chunk: Uint8Array) => void) => (onData = fn),
  });
  const codec = new MessageCodec();
  return {
    channel,
    send: (type: number, payload = new Uint8Array(0)) =>
      onData(codec.encode({ type, flags: 0, sequence: 0, payload })),
  };
}

test("control messages nobody receives are kept up to 64, then the connection fails: a node cannot grow the inbox without end", async () => {
  const fed = fedChannel();
  const c = new Connection(fed.channel, { hostname: "fake", port: 1 });
  for (let i = 0; i < 64; i++) fed.send(MessageType.AuthOk);
  assert.equal(c.isOpen, true, "64 kept");
  fed.send(MessageType.AuthOk);
  const error = await c.closed;
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.ok(error.cause instanceof ProtocolError, String(error.cause));
  assert.match(error.message, /65 control messages \(type 0x8 last\)/);

  // Or 1 MiB of them, whatever their number.
  const big = fedChannel();
  const d = new Connection(big.channel, { hostname: "fake", port: 1 });
  for (let i = 0; i < 3; i++) {
    big.send(MessageType.NegotiateOk, new Uint8Array(400_000));
  }
  assert.equal(d.isOpen, false);
  assert.ok((await d.closed)?.cause instanceof ProtocolError);

  // Received ones do not count.
  const taken = fedChannel();
  const e = new Connection(taken.channel, { hostname: "fake", port: 1 });
  for (let i = 0; i < 200; i++) {
    taken.send(MessageType.AuthOk);
    await e.receiveMessage();
  }
  assert.equal(e.isOpen, true);
  e.destroy();
});

test("a node's ERROR text is cut at 1,024 characters in the RemoteError's message", () => {
  const long = new RemoteError(7, "x".repeat(100_000), false, "n1");
  assert.equal(long.message, `node n1 answered error 7: ${"x".repeat(1024)}…`);
  const short = new RemoteError(7, "not found", false, "n1");
  assert.equal(short.message, "node n1 answered error 7: not found");
});

test("RemoteError is built from whatever it is handed: a proxy whose traps throw, a revoked one or a symbol is shown by its kind, never thrown", () => {
  const trap = () => {
    throw new Error("trap");
  };
  const hostile = new Proxy({}, {
    get: trap,
    getPrototypeOf: trap,
    has: trap,
    ownKeys: trap,
    getOwnPropertyDescriptor: trap,
  });
  const { proxy: revoked, revoke } = Proxy.revocable({}, {});
  revoke();
  const odd: [never, string][] = [
    [hostile as never, "an object"],
    [revoked as never, "an object"],
    [Symbol("s") as never, "Symbol(s)"],
  ];
  for (const [value, shown] of odd) {
    const code = new RemoteError(value, "boom", false, "n1");
    assert.equal(code.message, `node n1 answered error ${shown}: boom`);
    assert.equal(code.remoteCode, value, "the field keeps what was handed");
    const text = new RemoteError(7, value, false, "n1");
    assert.equal(text.message, `node n1 answered error 7: ${shown}`);
    const id = new RemoteError(7, "boom", false, value);
    assert.equal(id.message, `node ${shown} answered error 7: boom`);
    assert.equal(id.nodeId, value);
    const address = new RemoteError(7, "boom", false, undefined, value);
    assert.equal(address.message, `node ${shown} answered error 7: boom`);
    assert.equal(address.address, value);
    for (const error of [code, text, id, address]) {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.code, "REMOTE_ERROR");
      assert.equal(error.retryable, false);
    }
  }
  // A string a proxy turns into is still shown: only a throw is replaced.
  const lying = new Proxy({}, {
    get: (_, key) => key === Symbol.toPrimitive ? () => "fine" : undefined,
  });
  assert.equal(
    new RemoteError(7, lying as never, false, "n1").message,
    "node n1 answered error 7: fine",
  );
});

test("enableTls and tlsPolicy that contradict each other are refused, either way round", () => {
  for (
    const [enableTls, tlsPolicy] of [
      [true, "disable"],
      [false, "require"],
      [false, "prefer"],
    ] as const
  ) {
    assert.throws(
      () => resolveConfig({ hosts: ["db:7000"], enableTls, tlsPolicy }),
      (e: unknown) =>
        e instanceof ConfigError && e.field === "tlsPolicy" &&
        e.message.includes(`when enableTls is ${enableTls}`),
    );
  }
  assert.equal(
    resolveConfig({ hosts: ["db:7000"], enableTls: false }).tlsPolicy,
    "disable",
  );
  assert.equal(
    resolveConfig({ hosts: ["db:7000"], tlsPolicy: "prefer" }).tlsPolicy,
    "prefer",
  );
});

/** A character a terminal acts on, or that hides or reorders text. */
const UNSEEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

test("what a node sends is shown escaped in messages, as sent in fields: its ERROR text (and an id a caller gives RemoteError) cannot write to a terminal or forge a log line", async () => {
  const id = "n1\u001b]0;owned\u0007\u202e";
  const text = "boom\u001b[2J\r\nERROR forged line";
  const direct = new RemoteError(7, text, false, id);
  assert.equal(direct.nodeId, id, "the field keeps the id as sent");
  assert.doesNotMatch(direct.message, UNSEEN, direct.message);
  assert.match(direct.message, /n1\\u001b\]0;owned\\u0007\\u202e answered/);
  assert.match(direct.message, /boom\\u001b\[2J\\u000d\\u000aERROR forged/);

  // A caller's odd values are shown, as before, not thrown on.
  const odd = new RemoteError(7, 42 as unknown as string, false, 9 as never);
  assert.equal(odd.message, "node 9 answered error 7: 42");

  // A node's own id with such characters is refused in HELLO_OK (tested
  // above); its ERROR text is shown escaped.
  const node = await startTestNode({ nodeId: "n1" });
  const entries: { message: string }[] = [];
  const client = await Client.connect({
    hosts: [node.address],
    poolConfig: { minConnections: 1, maxConnections: 1 },
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 0 },
    logger: (entry) => entries.push(entry),
  });
  try {
    const failed = await client.request(ops.fail(7, false, text)).then(
      () => assert.fail("the request should fail"),
      (error: unknown) => error,
    );
    assert.ok(failed instanceof RemoteError, String(failed));
    assert.equal(failed.nodeId, "n1");
    assert.match(failed.message, /boom\\u001b\[2J\\u000d\\u000aERROR forged/);
    assert.doesNotMatch(failed.message, UNSEEN, failed.message);
    assert.ok(entries.length > 0, "the client logged its connect");
    for (const entry of entries) {
      assert.doesNotMatch(entry.message, UNSEEN, entry.message);
    }
  } finally {
    await client.disconnect();
    await node.close();
  }

  // The handshake's own refusal names the user escaped.
  const guarded = await startTestNode({
    nodeId: "n1",
    credentials: { app: "secret-pw" },
  });
  /** The messages of a connect to `guarded` that must fail, joined. */
  const refusal = (extra: { username?: string; password?: string }) =>
    Client.connect({
      hosts: [guarded.address],
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 0 },
      ...extra,
    }).then(
      async (c) => {
        await c.disconnect();
        assert.fail("connect should fail");
      },
      (error: Error) => `${error.message} / ${String(error.cause ?? "")}`,
    );
  try {
    const refused = await refusal({});
    assert.doesNotMatch(refused, UNSEEN, refused);
    assert.match(refused, /\(n1\)/);
    // A user name SASLprep lets through (an isolate).
    const rejected = await refusal({
      username: "app\u2066",
      password: "wrong-pw",
    });
    assert.doesNotMatch(rejected, UNSEEN, rejected);
    assert.match(rejected, /app\\u2066/);
  } finally {
    await guarded.close();
  }
});

test("a handshake from createHandshake refuses a hello whose nodeId no HELLO_OK could hold (a number, a symbol, a control character) naming hello.nodeId, not a TypeError", async () => {
  const handshake = createHandshake({});
  const connection = { address: "127.0.0.1:7000" } as Connection;
  const cases: [unknown, string][] = [
    [7, "7"],
    [Symbol("x"), "a symbol"],
    ["n\u001b1", '"n\\u001b1"'],
  ];
  for (const [nodeId, shown] of cases) {
    const hello = { nodeId, auth: "scram-sha-256", maxFrameSize: 1024 };
    await assert.rejects(
      handshake(connection, hello as never, new AbortController().signal),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, "hello.nodeId");
        assert.equal(
          error.message,
          "handshake: invalid hello.nodeId: expected a node id: a string " +
            "of 1 to 255 UTF-8 bytes with no control or format character, " +
            `got ${shown}`,
        );
        return true;
      },
    );
  }
});

/**
 * A connection that must not be touched: any read of it is recorded, so a
 * hello refused up front is seen to be refused before the handshake did
 * anything with the connection.
 */
function untouchedConnection(): { connection: Connection; reads: string[] } {
  const reads: string[] = [];
  const connection = new Proxy({}, {
    get(_, key) {
      reads.push(String(key));
      throw new Error(`the handshake read connection.${String(key)}`);
    },
  }) as Connection;
  return { connection, reads };
}

/** A revoked proxy: every operation on it throws a TypeError. */
function revoked(target: object = {}): object {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

const thrower = () => {
  throw new Error("getter");
};

/**
 * A hello createHandshake's hook must refuse: its description (what
 * fast-check prints: it cannot print a revoked proxy), the argument the
 * error names, and a way to build it.
 */
type HostileHello = [string, string, () => unknown];

const hostileHello: fc.Arbitrary<HostileHello> = fc.oneof(
  fc.constantFrom<HostileHello>(
    ["null", "hello", () => null],
    ["undefined", "hello", () => undefined],
    ["0", "hello", () => 0],
    ["NaN", "hello", () => Number.NaN],
    ['"n1"', "hello", () => "n1"],
    ["true", "hello", () => true],
    ["a symbol", "hello", () => Symbol("hello")],
    ["a function", "hello", () => () => HELLO_OK],
    ["a revoked proxy", "hello", () => revoked()],
    [
      "a proxy whose get throws",
      "hello.nodeId",
      () => new Proxy({}, { get: thrower }),
    ],
  ),
  fc.tuple(
    fc.constantFrom<[string, unknown[]]>(
      ["nodeId", [
        undefined,
        null,
        7,
        Symbol("n"),
        "",
        { toString: 1 },
        ["n1"],
        "n\u001b1",
        "n".repeat(256),
      ]],
      ["maxFrameSize", [
        undefined,
        null,
        Number.NaN,
        Infinity,
        -1,
        0,
        1023,
        1024.5,
        "1024",
        1024n,
      ]],
      ["auth", [undefined, null, "None", "scram", 1, { toString: 1 }]],
      ["protocols", [null, "tcp", [1], {}, ["tcp", null]]],
      ["features", [null, "udp-batch", [1], {}]],
    ),
    fc.nat(),
    fc.constantFrom("plain", "getter", "revoked"),
  ).map(([[field, values], i, how]): HostileHello => {
    const value = values[i % values.length];
    const list = field === "protocols" || field === "features";
    const kind = how === "getter"
      ? "a getter that throws"
      : how === "revoked" && list
      ? "a revoked proxy"
      : inspect(value);
    const make = () => {
      const hello: Record<string, unknown> = { ...HELLO_OK };
      if (how === "getter") {
        Object.defineProperty(hello, field, { get: thrower, enumerable: true });
      } else if (how === "revoked" && list) hello[field] = revoked([]);
      else if (value === undefined) delete hello[field];
      else hello[field] = value;
      return hello;
    };
    return [`${field}: ${kind}`, `hello.${field}`, make];
  }),
);

test("createHandshake's hook refuses a bad hello up front with an InvalidArgumentError naming it, before it touches the connection", async () => {
  const handshake = createHandshake({});
  await fc.assert(
    fc.asyncProperty(hostileHello, async ([what, argument, make]) => {
      const hello = make();
      const { connection, reads } = untouchedConnection();
      const error = await handshake(
        connection,
        hello as never,
        new AbortController().signal,
      ).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof InvalidArgumentError, `${what}: ${error}`);
      assert.equal(error.argument, argument, error.message);
      assert.match(error.message, /^handshake: invalid hello/);
      assert.match(error.message, /: (expected .+|could not be read), got /);
      assert.deepEqual(reads, [], "the connection was not touched");
    }),
    { numRuns: 300 },
  );
});

test("createHandshake's hook takes every hello a HELLO_OK decodes to as before", async () => {
  const open = createHandshake({});
  const guarded = createHandshake(CREDENTIALS);
  const connection = { address: "127.0.0.1:7000" } as Connection;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        nodeId: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 })
          .filter((id) => kitNodeId(id) === undefined),
        maxFrameSize: fc.integer({ min: 1024, max: 2 ** 40 }),
        auth: fc.constantFrom("none", "scram-sha-256"),
        features: fc.option(fc.array(fc.string({ maxLength: 12 })), {
          nil: undefined,
        }),
        extra: fc.string({ maxLength: 8 }),
      }, { requiredKeys: ["nodeId", "maxFrameSize", "auth"] }),
      async (fields) => {
        const hello = decodeHelloOk(encodeJson(fields));
        const signal = new AbortController().signal;
        const outcome = await open(connection, hello, signal).then(
          () => "open",
          (e: unknown) => e,
        );
        if (hello.auth === "none") {
          assert.equal(outcome, "open");
          // Credentials and a node that does not authenticate: refused.
          const refused = await guarded(connection, hello, signal).then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(refused instanceof AuthenticationError, String(refused));
          assert.equal(refused.reason, "node-unauthenticated");
        } else {
          assert.ok(outcome instanceof AuthenticationError, String(outcome));
          assert.equal(outcome.reason, "credentials-required");
          assert.ok(outcome.message.includes(`(${hello.nodeId})`));
        }
      },
    ),
    { numRuns: 200 },
  );
});
