// The channel a custom runtime adapter hands the connection is checked
// and watched, not trusted: one that is no ByteChannel, or whose methods
// throw or misbehave, ends the connection (or refuses it) with an SDK
// error that names the adapter, never with a TypeError from deep inside,
// an uncaught error or an unhandled rejection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionError,
  InvalidArgumentError,
  type NodewireError,
} from "../src/errors.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { ops } from "../testing/ops.ts";
import { stubChannel } from "./support/stub_channel.ts";

const endpoint = { hostname: "fake", port: 1 };

test("what is no ByteChannel is refused, naming the method it lacks", () => {
  const trap = () => {
    throw new Error("trap");
  };
  const full = stubChannel({ onData: () => {} });
  const methods = Object.keys(full).filter((k) =>
    typeof full[k as keyof ByteChannel] === "function"
  );
  const notChannels = fc.oneof(
    fc.constantFrom<unknown>(undefined, null, 42, "channel", () => {}),
    // A channel whose write cannot even be read.
    fc.constant(
      new Proxy(full, {
        get: (target, key) =>
          key === "write" ? trap() : Reflect.get(target, key),
      }),
    ),
    // A channel with one method missing or of the wrong kind.
    fc.tuple(fc.constantFrom(...methods), fc.constantFrom(undefined, 1, "x"))
      .map(([name, value]) => ({ ...full, [name]: value })),
  );
  fc.assert(
    fc.property(notChannels, (channel) => {
      assert.throws(
        () => new Connection(channel as ByteChannel, endpoint),
        (error: unknown) => {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.equal(error.argument, "channel");
          assert.match(
            error.message,
            /^the runtime adapter: invalid channel: expected a ByteChannel \((it has no \w+\(\) method|it is no object|its \w+ could not be read)\)/,
          );
          return true;
        },
      );
    }),
    { numRuns: 60 },
  );
});

test("a channel that throws when given its receivers is refused, saying so", () => {
  for (const name of ["onData", "onClose"] as const) {
    const channel = stubChannel({
      onData: () => {},
      [name]: () => {
        throw new Error(`${name} boom`);
      },
    });
    assert.throws(
      () => new Connection(channel, endpoint),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError, String(error));
        assert.equal((error as NodewireError).code, "CONNECTION_FAILED");
        assert.ok(error.message.includes(`${name} boom`), error.message);
        assert.ok(error.message.includes("runtime adapter"), error.message);
        return true;
      },
    );
  }
});

test("a well-formed stub channel still makes a connection", async () => {
  const connection = new Connection(
    stubChannel({ onData: () => {} }),
    endpoint,
  );
  const pending = connection.sendRequest(ops.echo("x")).catch((e) => e);
  connection.destroy();
  assert.ok(await pending instanceof ConnectionError);
});
