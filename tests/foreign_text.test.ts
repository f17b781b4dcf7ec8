// What a runtime adapter, its channels, a request route or a pool's factory
// fails with is foreign text: our errors quote it (in double quotes,
// escaped, cut at 200 characters) and keep it whole in their cause. As it
// came, a hostile one's megabyte went into the message, and with it into
// every log line and terminal that shows the error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { udpTransport } from "../src/handshake/udp.ts";
import type { NegotiationResult } from "../src/handshake/handshake.ts";
import { ConnectionPool } from "../src/pool/pool.ts";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { FakeConnection } from "./support/fake_connection.ts";
import { ADDRESS, watch } from "./support/pool_scene.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** Clears a screen, forges a line, reverses what follows, and goes on. */
const HOSTILE = "\u001b[2J\nconnected to db ok\u202e" + "x".repeat(1 << 20);

/** How HOSTILE's start reads once quoted: JSON's escapes, then ours. */
const SHOWN = `"\\u001b[2J\\nconnected to db ok\\u202exxx`;

/** Fails unless `error` quotes HOSTILE short and escaped, naming `what`. */
function assertQuoted(error: unknown, what: string): void {
  assert.ok(error instanceof Error, `${what}: ${error}`);
  const message = error.message;
  assert.doesNotMatch(message, /[\p{Cc}\p{Cf}]/u, what);
  assert.ok(message.includes(SHOWN), `${what}: ${message.slice(0, 300)}`);
  assert.ok(message.length < 500, `${what}: ${message.length} characters`);
}

/** What String() cannot render: an object without a prototype. */
const UNRENDERABLE = Object.create(null);

/**
 * Fails unless `connection` ended with `value` as its cause, and
 * `request` failed quoting it: short and escaped, or as "an object" for
 * UNRENDERABLE.
 */
async function assertEndedOver(
  connection: Connection,
  request: Promise<unknown>,
  value: unknown,
): Promise<void> {
  const error = await request;
  assert.equal((await connection.closed)?.cause, value);
  if (value === UNRENDERABLE) {
    assert.match(
      (error as Error).message,
      /failed to handle a message: "an object"/,
    );
  } else assertQuoted(error, typeof value);
}

const endpoint = { hostname: "fake", port: 1 };

/** A connection over `channel` to `to`, on a virtual clock. */
function over(channel: ByteChannel, to = endpoint) {
  const clock = new VirtualClock();
  const connection = new Connection(channel, to, {
    clock,
    requestTimeoutMs: 1000,
  });
  return { clock, connection };
}

test("a stream channel that closes with hostile text, as an Error or not, is quoted short and escaped in the ConnectionLostError", async () => {
  for (const value of [new Error(HOSTILE), HOSTILE]) {
    let close!: (error?: unknown) => void;
    const { connection } = over(stubChannel({
      onData: () => {},
      onClose: (fn) => (close = fn as (error?: unknown) => void),
    }));
    const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
    close(value);
    assertQuoted(await request, typeof value);
    assert.equal((await connection.closed)?.cause, value);
  }
});

test("a stream channel whose write throws hostile text is quoted short and escaped", async () => {
  const { clock, connection } = over(stubChannel({
    onData: () => {},
    write: () => {
      throw new Error(HOSTILE);
    },
  }));
  const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
  await clock.advance(0);
  assertQuoted(await request, "write");
});

test("a request route whose send throws hostile text is quoted short and escaped", async () => {
  const { clock, connection } = over(stubChannel({ onData: () => {} }));
  connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send: () => {
      throw new Error(HOSTILE);
    },
    close: () => {},
  });
  const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
  await clock.advance(0);
  assertQuoted(await request, "route");
});

test("an adapter whose connect or startTls fails with hostile text that is no Error is quoted short and escaped", async () => {
  const adapter = {
    name: "memory",
    connect: () => Promise.reject(HOSTILE),
    listen: () => Promise.reject(new Error("unused")),
  } as RuntimeAdapter;
  const connecting = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: 7000,
    clock: new VirtualClock(),
  }).catch((e) => e);
  assertQuoted(connecting, "connect");
  const { connection } = over(stubChannel({
    onData: () => {},
    startTls: () => Promise.reject(HOSTILE),
  }));
  assertQuoted(
    await connection.startTls({ serverName: "db" }).catch((e) => e),
    "startTls",
  );
  connection.destroy();
});

const negotiated = {
  protocol: "udp",
  clientProtocols: ["udp"],
  nodeProtocols: ["udp"],
  udpPort: 7001,
  udpToken: "00".repeat(16),
} as unknown as NegotiationResult;

/** A datagram channel that accepts everything, with `parts` over it. */
function datagramChannel(parts: object = {}): DatagramChannel {
  return {
    hostname: "127.0.0.1",
    port: 5555,
    closed: false,
    onMessage: () => {},
    onClose: () => {},
    send: () => true,
    close: () => {},
    ...parts,
  };
}

/**
 * A stream connection (to an IP address: UDP needs one) upgraded to UDP
 * through `datagram`; the upgrade's outcome.
 */
async function upgraded(datagram: RuntimeAdapter["datagram"]) {
  const { clock, connection } = over(stubChannel({ onData: () => {} }), {
    hostname: "127.0.0.1",
    port: 7000,
  });
  const adapter = {
    name: "memory",
    connect: () => Promise.reject(new Error("unused")),
    listen: () => Promise.reject(new Error("unused")),
    datagram,
  } as RuntimeAdapter;
  const upgrade = await udpTransport({ adapter })!(
    connection,
    negotiated,
    new AbortController().signal,
  ).then(() => "upgraded", (e: unknown) => e);
  return { clock, connection, upgrade };
}

test("a datagram socket that cannot be opened, or whose channel throws, sends or closes with hostile text, is quoted short and escaped", async () => {
  const opening = await upgraded(() => Promise.reject(HOSTILE));
  assertQuoted(opening.upgrade, "datagram()");
  opening.connection.destroy();

  const throwing = await upgraded(() =>
    Promise.resolve(datagramChannel({
      onMessage: () => {
        throw new Error(HOSTILE);
      },
    }))
  );
  assertQuoted(throwing.upgrade, "onMessage");
  throwing.connection.destroy();

  const sending = await upgraded(() =>
    Promise.resolve(datagramChannel({
      send: () => {
        throw new Error(HOSTILE);
      },
    }))
  );
  assert.equal(sending.upgrade, "upgraded");
  const request = sending.connection.sendRequest(ops.echo("x"))
    .catch((e) => e);
  await sending.clock.advance(0);
  assertQuoted(await request, "send");

  let close!: (error?: unknown) => void;
  const closing = await upgraded(() =>
    Promise.resolve(datagramChannel({
      onClose: (fn: (error?: unknown) => void) => (close = fn),
    }))
  );
  assert.equal(closing.upgrade, "upgraded");
  close(HOSTILE);
  assertQuoted(await closing.connection.closed, "close");
});

test("a factory's connection that throws hostile text as the pool takes it in is quoted short and escaped", async () => {
  const clock = new VirtualClock();
  const pool = new ConnectionPool<FakeConnection>({
    address: ADDRESS,
    config: { minConnections: 0, maxConnections: 1 },
    clock,
    factory: () => {
      const conn = new FakeConnection();
      Object.defineProperty(conn, "closed", {
        value: {
          then: () => {
            throw new Error(HOSTILE);
          },
        },
      });
      return Promise.resolve(conn);
    },
  });
  const got = watch(pool.getConnection({ timeoutMs: 1000 }));
  await clock.advance(1);
  assertQuoted(got.error, "factory");
  await pool.close();
});

test("an adapter whose connect or startTls rejects with an Error of hostile text (the runtime's mapping, no code it knows) is quoted short and escaped, and the cause keeps it whole", async () => {
  const thrown = new Error(HOSTILE);
  const adapter = {
    name: "memory",
    connect: () => Promise.reject(thrown),
    listen: () => Promise.reject(new Error("unused")),
  } as RuntimeAdapter;
  const connecting = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: 7000,
    clock: new VirtualClock(),
  }).catch((e) => e);
  // Before: a megabyte message ("connecting to 127.0.0.1:7000 failed: ...").
  assertQuoted(connecting, "connect");
  assert.equal(connecting.cause, thrown);
  const { connection } = over(stubChannel({
    onData: () => {},
    startTls: () => Promise.reject(new Error(HOSTILE)),
  }));
  const switching = await connection.startTls({ serverName: "db" }).catch((
    e,
  ) => e);
  assertQuoted(switching, "startTls");
  // Whole, as escaped for a terminal (see causeOf in runtime/tls.ts).
  assert.ok((switching.cause as Error).message.endsWith("x".repeat(1 << 20)));
  connection.destroy();
});

test("a chunk whose reading throws hostile text ends the connection with it quoted short and escaped; one that throws what String() cannot render does not throw out of onData", async () => {
  for (const value of [new Error(HOSTILE), HOSTILE, UNRENDERABLE]) {
    let onData!: (chunk: Uint8Array) => void;
    const { connection } = over(stubChannel({
      onData: (fn) => (onData = fn),
    }));
    const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
    // A custom channel's chunk: reading its length is foreign code.
    class Hostile extends Uint8Array {
      override get length(): number {
        throw value;
      }
    }
    // Before: String(value) for the one without a prototype threw a raw
    // TypeError out of onData, into the channel.
    onData(new Hostile(16));
    await assertEndedOver(connection, request, value);
  }
});

test("a reply a request route hands in whose reading throws hostile text ends the connection with it quoted short and escaped; one that throws what String() cannot render does not throw out of the receiver", async () => {
  for (const value of [new Error(HOSTILE), HOSTILE, UNRENDERABLE]) {
    const { connection } = over(stubChannel({ onData: () => {} }));
    const receive = connection.routeRequests({
      maxPayload: 1024,
      tooLarge: (length) => new RangeError(`${length} bytes`),
      send: () => {},
      close: () => {},
    });
    const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
    // A custom route's message: reading its payload is foreign code.
    const message = {
      type: MessageType.Response,
      flags: 0,
      sequence: 1,
      get payload(): Uint8Array {
        throw value;
      },
    };
    // Before: String(value) for the one without a prototype threw a raw
    // TypeError out of the receiver, into the route.
    assert.equal(receive(message), true);
    await assertEndedOver(connection, request, value);
  }
});
