// A hostile node's handshake, against Connection.connect and
// Client.connect on the in-memory network and a virtual clock: HELLO_OK
// with odd fields, answers of another type or sequence, NEGOTIATE_OK
// naming what was not offered, frames right behind a handshake answer,
// SCRAM steps broken or refused, a node that closes each connection as
// its handshake ends, a handshake that never ends. Whatever it does,
// connect settles typed within its timeout, never shows the password,
// and leaves no timer and no channel behind; the defects found on the way
// each have a test here that failed before its fix.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { Client } from "../src/client/client.ts";
import type { Connection } from "../src/connection/connection.ts";
import { createHandshake } from "../src/handshake/handshake.ts";
import {
  ConnectFailedError,
  ConnectionLostError,
  ConnectTimeoutError,
  type NodewireError,
} from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { CredentialStore, ScramServer } from "../testing/auth.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { encodeError, encodeJson } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { fc } from "./support/fc.ts";
import { drive, Tracker, watchEscapes } from "./support/fault_harness.ts";
import {
  endsClean,
  frame,
  type HandshakeScript,
  HostileNode,
  NODE_MAX_FRAME,
} from "./support/hostile_node.ts";

test("a node that closes every connection as its handshake ends (ERROR 0 right behind HELLO_OK) is a failed open, backed off: Client.connect fails with CONNECT_FAILED after one attempt; counted a success, the pool reopened at once without end", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const script: HandshakeScript = {
    helloOk: { nodeId: "n1", maxFrameSize: NODE_MAX_FRAME, auth: "none" },
    afterHello: frame(MessageType.Error, 0, 0, HostileNode.errorPayload),
  };
  const node = await HostileNode.start(network, script);
  let hellos = 0;
  node.onFrame = (m) => {
    // Before the fix the pool never stopped: the node gives in after 50.
    if (m.type === MessageType.Hello && ++hellos === 50) {
      script.afterHello = undefined;
    }
  };
  const connecting = Client.connect(node.clientConfig(clock, {
    timeoutMs: 1000,
    healthConfig: { intervalMs: 0 },
  }));
  const outcome = await drive(
    clock,
    connecting.then((client) => client, (error: unknown) => error),
  );
  if (outcome instanceof Client) await drive(clock, outcome.disconnect());
  assert.equal(hellos, 1, "one attempt, then the pool backs off");
  assert.ok(
    outcome instanceof ConnectFailedError &&
      outcome.failures[0].error instanceof ConnectionLostError,
    `expected CONNECT_FAILED, got ${outcome}`,
  );
  // Nothing was sent on it: a request waiting for it may be retried.
  assert.equal(
    (outcome.failures[0].error as ConnectionLostError).sent,
    false,
  );
  await endsClean(clock, node);
});

test("the connect timeout bounds a handshake deaf to its signal (SCRAM's key derivation under a node's 1,000,000 iterations, a custom hook): Connection.connect rejects with CONNECT_TIMEOUT at its limit and its socket is closed then, not once the hook is done", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await HostileNode.start(network);
  let release!: () => void;
  const hookDone = new Promise<void>((resolve) => (release = resolve));
  const tracker = new Tracker(clock);
  const t = tracker.track(
    "connect",
    node.connect(clock, {
      timeoutMs: 1000,
      // Takes no notice of the signal, as a key derivation cannot.
      handshake: () => hookDone,
    }),
  );
  await clock.advance(0);
  await clock.advance(1000);
  await clock.advance(0);
  const settledInTime = t.settledCount === 1;
  const openAtLimit = network.openChannels;
  release(); // before the fix, only now did connect settle
  await t.done;
  assert.ok(settledInTime, "connect settled at its timeout");
  assert.equal(openAtLimit, 0, "no channel open after the timeout");
  assert.ok(t.error instanceof ConnectTimeoutError, `got ${t.error}`);
  assert.equal(t.settledAt, 1000);
  assert.equal(clock.pendingTimers, 0);
  await node.close();
});

// ------------------------------------------------------------- handshake

const PASSWORD = "Tr0ub4dor&3-hostile";
const store = CredentialStore.create({ user: PASSWORD });

const anyOf = <T>(...values: T[]) => fc.constantFrom(...values);
/** `valid` most of the time, else one of `odd`. */
const mostly = <T>(valid: fc.Arbitrary<T>, ...odd: T[]) =>
  fc.oneof({ weight: 6, arbitrary: valid }, {
    weight: 1,
    arbitrary: fc.constantFrom(...odd),
  });
const helloOkArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      nodeId: mostly<unknown>(fc.constant("n1"), "", "x".repeat(257), 5, null),
      maxFrameSize: mostly<unknown>(
        anyOf(4096, 1024, 2 ** 30),
        1023,
        2 ** 31,
        2 ** 40,
        -1,
        "4096",
        1.5,
        1e300,
      ),
      auth: mostly<unknown>(
        anyOf("none", "scram-sha-256"),
        "SCRAM-SHA-256",
        null,
      ),
      protocols: mostly<unknown>(
        anyOf(
          [],
          ["tcp"],
          ["udp"],
          ["tls"],
          ["tcp", "udp"],
          ["udp", "tcp", "tls"],
          ["quic"],
          ["TCP"],
        ),
        "tcp",
        [1],
        null,
        { 0: "tcp" },
      ),
      features: mostly<unknown>(
        anyOf([], ["udp-batch"], ["zstd"]),
        "udp-batch",
        [null],
        null,
      ),
      extra: fc.jsonValue({ maxDepth: 2 }),
    }, { requiredKeys: ["nodeId", "maxFrameSize", "auth"] }),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constant(new TextEncoder().encode("not json")),
      fc.constant(new TextEncoder().encode("[1]")),
      fc.constant(new TextEncoder().encode("null")),
      fc.constant(new Uint8Array([0x7b, 0xff, 0x7d])),
      fc.uint8Array({ maxLength: 8 }),
    ),
  },
);
const negotiateOkArb = fc.record({
  protocols: mostly<unknown>(
    anyOf(["tcp"], ["udp"], ["tls"], ["tcp", "udp"], ["tls", "tcp", "udp"], [
      "quic",
    ], []),
    null,
    "tcp",
  ),
  selected: mostly<unknown>(anyOf("tcp", "udp", "tls", null), "quic", 1),
  udpPort: mostly<unknown>(fc.constant(7001), 0, 70000, "7001"),
  udpToken: mostly<unknown>(
    fc.constant("000102030405060708090a0b0c0d0e0f"),
    "zz",
    5,
  ),
}, { requiredKeys: [] });

/** Frames a node sends right behind a handshake answer, or nothing. */
const trailingArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      frame(MessageType.Ping, 0, 5, new Uint8Array(3)),
      frame(MessageType.Goodbye, 0, 0, new Uint8Array(0)),
      frame(MessageType.Error, 0, 0, HostileNode.errorPayload),
      frame(MessageType.Error, 0, 0, new Uint8Array(1)),
      frame(MessageType.Error, 0, 9, HostileNode.errorPayload),
      frame(MessageType.Response, 0, 2, new Uint8Array(1)),
      frame(
        MessageType.HelloOk,
        0,
        1,
        encodeJson({ nodeId: "again", maxFrameSize: 4096, auth: "none" }),
      ),
      frame(
        MessageType.NegotiateOk,
        0,
        2,
        encodeJson({ protocols: ["tcp"], selected: "tcp" }),
      ),
      frame(MessageType.Response, 0, 2, new Uint8Array(4), 100),
      new Uint8Array([1, 0x21, 0, 0]),
      new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]),
    ),
  },
);

type AuthStep =
  | "valid"
  | "error"
  | "error0"
  | "garbage"
  | "notJson"
  | "wrongSeq"
  | "wrongType"
  | "silent";
const authStepArb = fc.constantFrom<AuthStep>(
  "valid",
  "valid",
  "error",
  "error0",
  "garbage",
  "notJson",
  "wrongSeq",
  "wrongType",
  "silent",
);

/** Answers one SCRAM step the way `step` says. */
function authAnswer(
  step: AuthStep,
  valid: () => Promise<string>,
  garbage: string,
  sequence: number,
  type: number,
  reply: (type: number, sequence: number, payload: Uint8Array) => void,
): Promise<void> | void {
  switch (step) {
    case "valid":
      return valid().then(
        (message) => reply(type, sequence, encodeJson({ message })),
        () =>
          reply(
            MessageType.Error,
            sequence,
            encodeError({
              code: 7,
              retryable: false,
              message: "authentication failed",
            }),
          ),
      );
    case "error":
      return reply(
        MessageType.Error,
        sequence,
        encodeError({
          code: 7,
          retryable: false,
          message: "authentication failed",
        }),
      );
    case "error0":
      return reply(
        MessageType.Error,
        0,
        encodeError({
          code: 7,
          retryable: false,
          message: "authentication failed",
        }),
      );
    case "garbage":
      return reply(type, sequence, encodeJson({ message: garbage }));
    case "notJson":
      return reply(type, sequence, new TextEncoder().encode(garbage));
    case "wrongSeq":
      return reply(type, sequence + 1, encodeJson({ message: garbage }));
    case "wrongType":
      return reply(
        type === MessageType.AuthOk
          ? MessageType.AuthChallenge
          : MessageType.AuthOk,
        sequence,
        encodeJson({ message: garbage }),
      );
    case "silent":
      return;
  }
}

const hasPassword = (error: unknown): boolean => {
  for (let e = error, depth = 0; e !== undefined && depth < 10; depth++) {
    const text = e instanceof Error
      ? `${e.message} ${e.stack ?? ""} ${JSON.stringify(e)}`
      : String(e);
    if (text.includes(PASSWORD)) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
};

test("property: whatever a hostile node answers in the handshake (odd HELLO_OK, NEGOTIATE_OK naming what was not offered, SCRAM steps broken or refused), connect settles typed within its timeout, never shows the password, and leaves no timer and no channel", async () => {
  const watch = watchEscapes();
  const credentials = await store;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        helloOk: helloOkArb,
        helloType: fc.oneof(
          { weight: 6, arbitrary: fc.constant(MessageType.HelloOk) },
          {
            weight: 1,
            arbitrary: anyOf(
              MessageType.Error,
              MessageType.NegotiateOk,
              MessageType.Pong,
              MessageType.Goodbye,
              MessageType.Response,
            ),
          },
        ),
        helloSequence: fc.oneof(
          { weight: 6, arbitrary: fc.constant(1) },
          { weight: 1, arbitrary: anyOf(0, 2, 2 ** 32 + 1) },
        ),
        negotiateOk: negotiateOkArb,
        afterHello: trailingArb,
        afterNegotiate: trailingArb,
        negotiateType: fc.oneof(
          { weight: 6, arbitrary: fc.constant(MessageType.NegotiateOk) },
          {
            weight: 1,
            arbitrary: anyOf(
              MessageType.Error,
              MessageType.HelloOk,
              MessageType.AuthOk,
            ),
          },
        ),
      }),
      fc.record({
        protocols: anyOf<readonly ("tcp" | "udp" | "tls")[] | undefined>(
          undefined,
          ["tcp"],
          ["udp"],
          ["tcp", "udp"],
          ["tls", "tcp"],
        ),
        // Mostly what the node asks for.
        credentials: fc.constantFrom(
          "match",
          "match",
          "match",
          "always",
          "never",
        ),
        udp: fc.boolean(),
        // A TLS switch offered (and refused: the memory network has none),
        // so the client pauses reading behind NEGOTIATE_OK.
        tls: fc.boolean(),
        via: fc.constantFrom("connection", "client"),
      }),
      fc.record({
        challenge: authStepArb,
        final: authStepArb,
        garbage: fc.string({ maxLength: 40 }),
      }),
      async (hello, options, auth) => {
        if (process.env.TRACE) {
          console.error("RUN", JSON.stringify([hello, options, auth]));
        }
        const network = createMemoryNetwork();
        const clock = new VirtualClock();
        let server: ScramServer | undefined;
        const node = await HostileNode.start(network, {
          ...hello,
          auth: (m, reply) => {
            const text = () =>
              JSON.parse(new TextDecoder().decode(m.payload)).message as string;
            if (m.type === MessageType.AuthStart) {
              server = new ScramServer(credentials);
              return authAnswer(
                auth.challenge,
                () => server!.serverFirstMessage(text()),
                auth.garbage,
                m.sequence,
                MessageType.AuthChallenge,
                reply,
              );
            }
            return authAnswer(
              auth.final,
              () => server!.serverFinalMessage(text()),
              auth.garbage,
              m.sequence,
              MessageType.AuthOk,
              reply,
            );
          },
        });
        const login =
          (options.credentials === "match"
              ? (hello.helloOk as { auth?: unknown }).auth === "scram-sha-256"
              : options.credentials === "always")
            ? { username: "user", password: new Secret(PASSWORD) }
            : {};
        const opening: Promise<Connection | Client> = options.via === "client"
          ? Client.connect(node.clientConfig(clock, {
            timeoutMs: 1000,
            protocols: options.protocols?.filter((p) => p !== "tls"),
            healthConfig: { intervalMs: 0 },
            retryConfig: { maxRetries: 0 },
            ...login,
          }))
          : node.connect(clock, {
            timeoutMs: 1000,
            handshake: createHandshake({
              protocols: options.protocols,
              ...login,
              ...(options.tls ? { tlsPolicy: "prefer" as const } : {}),
              transports: {
                ...(options.udp ? { udp: () => Promise.resolve() } : {}),
                ...(options.tls
                  ? { tls: (c) => c.startTls({ serverName: "127.0.0.1" }) }
                  : {}),
              },
            }),
          });
        const tracker = new Tracker(clock);
        const t = tracker.track("connect", opening);
        await drive(clock, t.done, 5000);
        // Client.connect waits twice the connect timeout for a first
        // connection (firstConnectWaitMs).
        tracker.assertSettled(options.via === "client" ? 2000 : 1000);
        if (t.value instanceof Client) {
          await drive(clock, t.value.disconnect(), 5000);
        } else if (t.ok) {
          await drive(clock, (t.value as Connection).close(), 5000);
        } else {
          assert.equal(
            hasPassword(t.error),
            false,
            `the password shows in ${t.error}`,
          );
          assert.equal(typeof (t.error as NodewireError).code, "string");
        }
        await clock.advance(0);
        assert.equal(clock.pendingTimers, 0, "a timer is left armed");
        assert.equal(network.openChannels, 0, "a channel is left open");
        assert.deepEqual(node.violations, [], "the client broke the protocol");
        await node.close();
      },
    ),
    {
      numRuns: Number(process.env.RUNS ?? 100),
      verbose: process.env.VERBOSE ? 2 : 0,
    },
  );
  assert.deepEqual(await watch.stop(), []);
});

test("a node that kills each connection a moment after its handshake is refilled with a growing delay, not reconnected to at once, thousands of times a second", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await HostileNode.start(network);
  let hellos = 0;
  node.onFrame = (m) => {
    if (m.type !== MessageType.Hello) return;
    // Before the fix the refill never paused: the node gives in after 500.
    if (++hellos > 500) return;
    const channel = node.channel!;
    clock.setTimeout(() => channel.destroy(), 1);
  };
  const client = await drive(
    clock,
    Client.connect(
      node.clientConfig(clock, { healthConfig: { intervalMs: 0 } }),
    ),
  );
  await clock.advance(3000);
  // Refills after 100, 200, 400, 800 ms... (minConnections at a time).
  assert.ok(hellos < 60, `${hellos} handshakes in 3 s`);
  await drive(clock, client.disconnect());
  await endsClean(clock, node);
});

test("a node's connection-wide ERROR text is shown escaped in the ConnectionLostError: it cannot write to a terminal or forge a log line", async () => {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const text = "going away\u001b[2J\r\nERROR forged line\u202e";
  const node = await HostileNode.start(network, {
    helloOk: { nodeId: "n1", maxFrameSize: NODE_MAX_FRAME, auth: "none" },
  });
  const connection = await drive(clock, node.connect(clock));
  node.send(
    MessageType.Error,
    0,
    0,
    encodeError({ code: 5, retryable: true, message: text }),
  );
  const lost = await drive(clock, connection.closed);
  assert.ok(lost instanceof ConnectionLostError, String(lost));
  assert.doesNotMatch(lost.message, /[\p{Cc}\p{Cf}]/u, lost.message);
  assert.ok(
    lost.message.includes("going away\\u001b[2J\\u000d\\u000aERROR"),
    lost.message,
  );
  await node.close();
});
