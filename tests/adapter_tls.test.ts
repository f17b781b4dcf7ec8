// Connection.startTls trusts a custom adapter's startTls with the
// handshake, not with the shape of its failure: one that threw or
// rejected with a string or a raw error passed it on as it came, and one
// that handed back the plaintext channel itself was taken as encrypted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import { InvalidArgumentError, TlsError } from "../src/errors.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { watch } from "./support/pool_scene.ts";

const endpoint = { hostname: "fake", port: 1 };

/** A connection whose channel's startTls is `startTls`. */
function connectionWith(startTls: ByteChannel["startTls"]): Connection {
  return new Connection(
    stubChannel({ onData: () => {}, startTls }),
    endpoint,
    { clock: new VirtualClock() },
  );
}

test("whatever a startTls fails with, the caller gets a TlsError saying it", async () => {
  const trap = () => {
    throw new Error("trap");
  };
  const values = fc.oneof(
    // Quoted as foreign text is: in double quotes, JSON's escapes.
    fc.string({ maxLength: 8 }).map((text) => ({
      value: text,
      shown: JSON.stringify(text),
    })),
    fc.constantFrom(
      { value: undefined, shown: `"undefined"` },
      { value: 7, shown: `"7"` },
      {
        value: new Proxy({}, { get: trap, getPrototypeOf: trap }),
        shown: `"an object"`,
      },
    ),
  );
  await fc.assert(
    fc.asyncProperty(values, fc.boolean(), async ({ value, shown }, sync) => {
      const connection = connectionWith(() => {
        if (sync) throw value;
        return Promise.reject(value);
      });
      const error = await connection.startTls({ serverName: "db" }).then(
        () => "resolved",
        (e: unknown) => e,
      );
      assert.ok(error instanceof TlsError, String(typeof error));
      assert.equal(error.reason, "handshake");
      assert.equal(error.address, "fake:1");
      assert.ok(
        error.message.endsWith(
          `the runtime adapter's startTls failed with ${shown}, not an Error`,
        ),
        error.message,
      );
      connection.destroy();
    }),
    { numRuns: 40 },
  );
});

test("a raw TLS error from a custom startTls is mapped as a runtime's", async () => {
  const raw = Object.assign(
    new Error("unable to verify the first certificate"),
    {
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    },
  );
  const connection = connectionWith(() => Promise.reject(raw));
  await assert.rejects(
    connection.startTls({ serverName: "db" }),
    (e: unknown) =>
      e instanceof TlsError && e.reason === "certificate" && e.cause === raw,
  );
  connection.destroy();
});

test("a startTls that hands back the plaintext channel itself is refused", async () => {
  const connection = new Connection(
    stubChannel({
      onData: () => {},
      startTls() {
        return Promise.resolve(this as ByteChannel);
      },
    }),
    endpoint,
    { clock: new VirtualClock() },
  );
  await assert.rejects(
    connection.startTls({ serverName: "db" }),
    (e: unknown) =>
      e instanceof TlsError &&
      e.message.endsWith(
        "the runtime adapter's startTls returned the plaintext channel",
      ),
  );
  connection.destroy();
});

/**
 * A connection with a connect timeout of `connectTimeoutMs` whose
 * channel's startTls never settles on its own, deaf to its signal; the
 * test may deliver a secure channel late.
 */
function deafTls(connectTimeoutMs?: number) {
  const clock = new VirtualClock();
  const destroyed: string[] = [];
  let deliver!: (channel: ByteChannel) => void;
  const channel = stubChannel({
    onData: () => {},
    destroy: () => destroyed.push("plaintext"),
    startTls: () => new Promise((resolve) => (deliver = resolve)),
  });
  const connection = new Connection(channel, endpoint, {
    clock,
    connectTimeoutMs,
  });
  const late = stubChannel({
    onData: () => {},
    destroy: () => destroyed.push("secure"),
  });
  return { clock, connection, destroyed, deliverLate: () => deliver(late) };
}

test("a startTls that never settles fails after the connection's connect timeout with a TlsError (handshake-timeout) naming it, the connection is destroyed, and a secure channel delivered later is destroyed", async () => {
  const { clock, connection, destroyed, deliverLate } = deafTls(3000);
  const switching = watch(connection.startTls({ serverName: "db" }));
  await clock.advance(2999);
  assert.equal(switching.done, false, "it is given the connect timeout");
  await clock.advance(1);
  const outcome = switching.error;
  assert.ok(outcome instanceof TlsError, String(outcome));
  assert.equal(outcome.reason, "handshake-timeout");
  assert.match(
    outcome.message,
    /^TLS with fake:1 failed: the runtime adapter's startTls did not settle within 3000 ms \(the connection's connect timeout\)$/,
  );
  assert.equal(connection.isOpen, false, "no plaintext is sent again");
  assert.deepEqual(destroyed, ["plaintext"]);
  assert.equal(clock.pendingTimers, 0);
  deliverLate();
  await clock.advance(0);
  assert.deepEqual(destroyed, ["plaintext", "secure"]);
});

test("a startTls deaf to the caller's signal fails when it aborts, with the reason mapped as an adapter's rejection, and the connection is destroyed", async () => {
  const { clock, connection, destroyed } = deafTls();
  const controller = new AbortController();
  const switching = watch(
    connection.startTls({ serverName: "db", signal: controller.signal }),
  );
  await clock.advance(10);
  assert.equal(switching.done, false);
  const reason = new TlsError("given up", {
    reason: "handshake-timeout",
    address: "fake:1",
  });
  controller.abort(reason);
  await clock.advance(0);
  assert.equal(switching.error, reason);
  assert.equal(connection.isOpen, false);
  assert.deepEqual(destroyed, ["plaintext"]);
  assert.equal(clock.pendingTimers, 0, "the connect-timeout timer is cleared");
});

test("startTls refuses bad options with InvalidArgumentError, before the adapter sees them", async () => {
  let called = 0;
  const connection = connectionWith(() => {
    called++;
    return new Promise<never>(() => {});
  });
  const bad: [unknown, string][] = [
    [undefined, "options"],
    [{}, "serverName"],
    [{ serverName: "" }, "serverName"],
    [{ serverName: "db", signal: { aborted: true } }, "signal"],
    [{ serverName: "db", ca: "PEM" }, "ca"],
    [{ serverName: "db", ca: [1] }, "ca"],
    [
      { serverName: "db", dangerouslySkipVerify: "yes" },
      "dangerouslySkipVerify",
    ],
    [{ serverName: "db", servername: "db" }, "servername"],
  ];
  for (const [options, named] of bad) {
    const error = await connection.startTls(options as never).then(
      () => "resolved",
      (e: unknown) => e,
    );
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.ok(error.message.includes(named), error.message);
  }
  assert.equal(called, 0, "the adapter never saw them");
  assert.equal(connection.isOpen, true);
  connection.destroy();
});

test("close() during a TLS switch writes nothing into the handshake: the connection closes without GOODBYE, and the switch fails as lost", async () => {
  const clock = new VirtualClock();
  const writes: Uint8Array[] = [];
  const events: string[] = [];
  let deliver!: (channel: ByteChannel) => void;
  const channel = stubChannel({
    onData: () => {},
    write: (bytes) => {
      writes.push(bytes.slice());
      return true;
    },
    close: () => events.push("plaintext close"),
    destroy: () => events.push("plaintext destroy"),
    startTls: () => new Promise((resolve) => (deliver = resolve)),
  });
  const connection = new Connection(channel, endpoint, { clock });
  const switching = watch(connection.startTls({ serverName: "db" }));
  await clock.advance(0);
  const before = writes.length;
  await connection.close();
  assert.equal(writes.length, before, "no GOODBYE went into the handshake");
  assert.equal(connection.isOpen, false);
  deliver(stubChannel({
    onData: () => {},
    destroy: () => events.push("secure destroy"),
  }));
  await clock.advance(0);
  assert.ok(switching.error instanceof Error, String(switching.error));
  assert.ok(events.includes("secure destroy"), events.join());
  assert.equal(clock.pendingTimers, 0);
});
