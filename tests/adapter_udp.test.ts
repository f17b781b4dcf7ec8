// The UDP transport opens its datagram socket through the runtime
// adapter, which may be the user's own. What its datagram() or channel
// does wrong fails the upgrade or ends the connection with an SDK error
// that says so: a rejection with a string, a channel that is none, a
// send, onMessage, port or close that throws were passed on raw, thrown
// out of sendRequest or out of destroy().
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import { udpTransport } from "../src/handshake/udp.ts";
import type { NegotiationResult } from "../src/handshake/handshake.ts";
import {
  ConnectionError,
  ConnectionLostError,
  InvalidArgumentError,
} from "../src/errors.ts";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { recordUncaught } from "./support/uncaught.ts";

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
 * A connection to 127.0.0.1:7000 over a stub stream, upgraded to UDP
 * through an adapter whose datagram() is `datagram`; what the upgrade and
 * then one request settle with.
 */
async function upgradeThenRequest(
  datagram: RuntimeAdapter["datagram"],
): Promise<{ upgrade: unknown; request: unknown; connection: Connection }> {
  const clock = new VirtualClock();
  const connection = new Connection(
    stubChannel({ onData: () => {} }),
    { hostname: "127.0.0.1", port: 7000 },
    { clock, requestTimeoutMs: 1000 },
  );
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
  const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
  await clock.advance(1000);
  return { upgrade, request: await request, connection };
}

test("a datagram() that fails with what is no SDK error, or gives what is no channel, fails the upgrade saying so", async () => {
  const trap = () => {
    throw new Error("trap");
  };
  const failures = fc.oneof(
    fc.string({ maxLength: 8 }).map((text) => ({
      datagram: () => Promise.reject(text),
      check: (e: unknown) =>
        e instanceof ConnectionError && e.code === "LISTEN_FAILED" &&
        e.message.endsWith(
          `open a datagram socket on 127.0.0.1: ${JSON.stringify(text)}`,
        ),
    })),
    fc.constantFrom<unknown>(
      null,
      7,
      {},
      datagramChannel({ send: undefined }),
      new Proxy(datagramChannel(), {
        get: (t, k) => k === "close" ? trap() : Reflect.get(t, k),
      }),
    ).map((channel) => ({
      datagram: () => Promise.resolve(channel as DatagramChannel),
      check: (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "channel" &&
        /^the runtime adapter's datagram\(\): invalid channel: expected a DatagramChannel/
          .test(e.message),
    })),
  );
  await fc.assert(
    fc.asyncProperty(failures, async ({ datagram, check }) => {
      const { upgrade, connection } = await upgradeThenRequest(datagram);
      assert.ok(check(upgrade), String(upgrade));
      connection.destroy();
    }),
    { numRuns: 30 },
  );
});

test("a datagram channel whose port, onMessage or onClose throws fails the upgrade, and is closed", async () => {
  const boom = () => {
    throw new Error("channel boom");
  };
  for (const name of ["port", "onMessage", "onClose"]) {
    let closed = 0;
    const channel = datagramChannel({ close: () => void closed++ });
    Object.defineProperty(
      channel,
      name,
      name === "port" ? { get: boom } : { value: boom },
    );
    const { upgrade, connection } = await upgradeThenRequest(() =>
      Promise.resolve(channel)
    );
    assert.ok(upgrade instanceof ConnectionError, String(upgrade));
    assert.equal(upgrade.code, "CONNECTION_FAILED");
    assert.match(upgrade.message, /datagram channel threw: "channel boom"/);
    assert.equal(closed, 1, name);
    connection.destroy();
  }
});

test("a datagram channel whose send throws ends the connection; one whose close throws does not break destroy()", async () => {
  const reported = recordUncaught(true);
  const sending = await upgradeThenRequest(() =>
    Promise.resolve(datagramChannel({
      send: () => {
        throw new Error("send boom");
      },
    }))
  );
  assert.equal(sending.upgrade, "upgraded");
  assert.ok(sending.request instanceof ConnectionLostError);
  assert.match(
    (sending.request as Error).message,
    /its UDP socket failed to send: "send boom"$/,
  );
  const closing = await upgradeThenRequest(() =>
    Promise.resolve(datagramChannel({
      close: () => {
        throw new Error("close boom");
      },
    }))
  );
  assert.equal(closing.upgrade, "upgraded");
  closing.connection.destroy();
  assert.ok(await closing.connection.closed instanceof ConnectionError);
  assert.deepEqual(reported, []);
});

test("a datagram channel that closes with what is no Error ends the connection quoting it", async () => {
  let close!: (error?: unknown) => void;
  const { upgrade, connection } = await upgradeThenRequest(() =>
    Promise.resolve(datagramChannel({
      onClose: (fn: (error?: unknown) => void) => (close = fn),
    }))
  );
  assert.equal(upgrade, "upgraded");
  close("socket gone");
  const ended = await connection.closed;
  assert.ok(ended instanceof ConnectionLostError);
  assert.match(ended.message, /its UDP socket closed: "socket gone"$/);
});

test("a stream channel whose remoteAddress cannot be read or has no text hostname reports none, so the UDP upgrade to a node named by host name fails saying so, opening no socket; a connection whose own remoteAddress throws or has no text hostname is refused naming that", async () => {
  const boom = {
    get() {
      throw new Error("remoteAddress boom");
    },
  };
  const noText = { value: { hostname: 5, port: 1 } };
  const empty = { value: { hostname: "", port: 1 } };
  const upgradeFails = async (connection: Connection, message: RegExp) => {
    let opened = 0;
    const adapter = {
      name: "memory",
      connect: () => Promise.reject(new Error("unused")),
      listen: () => Promise.reject(new Error("unused")),
      datagram: () => {
        opened++;
        return Promise.resolve(datagramChannel());
      },
    } as RuntimeAdapter;
    await assert.rejects(
      udpTransport({ adapter })!(
        connection,
        negotiated,
        new AbortController().signal,
      ),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError, String(error));
        assert.equal(error.code, "CONNECTION_FAILED");
        assert.match(error.message, message);
        return true;
      },
    );
    assert.equal(opened, 0);
    connection.destroy();
  };
  const node = { hostname: "db.internal", port: 7000 };
  for (const descriptor of [boom, noText, empty]) {
    const channel = stubChannel({ onData: () => {} });
    Object.defineProperty(channel, "remoteAddress", descriptor);
    const connection = new Connection(channel, node, {
      clock: new VirtualClock(),
    });
    assert.equal(connection.remoteAddress, undefined);
    await upgradeFails(
      connection,
      /gives no remoteAddress: configure the node by its IP address$/,
    );
  }
  const cases: [PropertyDescriptor, RegExp][] = [
    [boom, /remoteAddress could not be read$/],
    [
      noText,
      /remoteAddress has a hostname that is no IP address text \(5\)$/,
    ],
    [
      empty,
      /remoteAddress has a hostname that is no IP address text \(\)$/,
    ],
  ];
  for (const [descriptor, message] of cases) {
    const connection = new Connection(
      stubChannel({ onData: () => {} }),
      node,
      { clock: new VirtualClock() },
    );
    // What is handed in as a connection may be a subclass or a wrapper.
    Object.defineProperty(connection, "remoteAddress", descriptor);
    await upgradeFails(connection, message);
  }
});
