// Connection.startTls trusts a custom adapter's startTls with the
// handshake, not with the shape of its failure: one that threw or
// rejected with a string or a raw error passed it on as it came, and one
// that handed back the plaintext channel itself was taken as encrypted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import { TlsError } from "../src/errors.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

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
    fc.string({ maxLength: 8 }).map((text) => ({ value: text, shown: text })),
    fc.constantFrom(
      { value: undefined, shown: "undefined" },
      { value: 7, shown: "7" },
      {
        value: new Proxy({}, { get: trap, getPrototypeOf: trap }),
        shown: "an object",
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
