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
  ConnectionLostError,
  InvalidArgumentError,
  type NodewireError,
  RequestTimeoutError,
} from "../src/errors.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";
import { recordUncaught } from "./support/uncaught.ts";

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

test("a channel that refuses its receivers with hostile text is quoted escaped and cut short: its control characters and megabytes went into the message as they were", () => {
  const hostile = "\u001b[2J\nconnected to db ok\u202e" + "x".repeat(1 << 20);
  for (const name of ["onData", "onClose"] as const) {
    const channel = stubChannel({
      onData: () => {},
      [name]: () => {
        throw new Error(hostile);
      },
    });
    assert.throws(
      () => new Connection(channel, endpoint),
      (error: unknown) => {
        assert.ok(error instanceof ConnectionError, String(error));
        assert.doesNotMatch(error.message, /[\p{Cc}\p{Cf}]/u);
        assert.ok(
          error.message.includes("\\u001b[2J\\nconnected to db ok"),
          error.message.slice(0, 300),
        );
        assert.ok(error.message.length < 500, `${error.message.length} chars`);
        // The cause keeps what was thrown, for whoever needs all of it.
        assert.equal((error.cause as Error).message, hostile);
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

/** How a channel's write side misbehaves. */
const writeFaults: Record<string, Partial<ByteChannel>> = {
  "write throws": {
    write: () => {
      throw new Error("write boom");
    },
  },
  "write throws a string": {
    write: () => {
      throw "write boom";
    },
  },
  "write is async and rejects": {
    write: () => Promise.reject(new Error("write boom")) as never,
  },
  "drained rejects": {
    write: () => false,
    drained: () => Promise.reject(new Error("drain boom")),
  },
  "drained throws": {
    write: () => false,
    drained: () => {
      throw new Error("drain boom");
    },
  },
};

test("a channel whose write or drained fails ends the connection with a ConnectionLostError saying so, nothing uncaught", async () => {
  const reported = recordUncaught(true);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...Object.keys(writeFaults)),
      fc.integer({ min: 1, max: 5 }),
      async (fault, count) => {
        const clock = new VirtualClock();
        const connection = new Connection(
          stubChannel({ onData: () => {}, ...writeFaults[fault] }),
          endpoint,
          { clock, requestTimeoutMs: 1000 },
        );
        const settled = Array.from(
          { length: count },
          (_, i) => connection.sendRequest(ops.echo(`r${i}`)).catch((e) => e),
        );
        await clock.advance(0);
        for (const error of await Promise.all(settled)) {
          assert.ok(error instanceof ConnectionLostError, String(error));
          assert.match(
            error.message,
            /the runtime adapter's channel failed to write: "(write|drain) boom"/,
          );
        }
        assert.ok(await connection.closed instanceof ConnectionLostError);
        assert.equal(clock.pendingTimers, 0);
      },
    ),
    { numRuns: 30 },
  );
  await clock0();
  assert.deepEqual(reported, []);
});

test("a bufferedAmount getter that throws only stops the slab's reuse", async () => {
  const reported = recordUncaught(true);
  const clock = new VirtualClock();
  let writes = 0;
  const channel = stubChannel({
    onData: () => {},
    write: () => {
      writes++;
      return true;
    },
    releasesWrites: true,
  });
  Object.defineProperty(channel, "bufferedAmount", {
    get() {
      throw new Error("bufferedAmount boom");
    },
  });
  const connection = new Connection(channel, endpoint, {
    clock,
    requestTimeoutMs: 1000,
  });
  const first = connection.sendRequest(ops.echo("a")).catch((e) => e);
  await clock.advance(0);
  const second = connection.sendRequest(ops.echo("b")).catch((e) => e);
  await clock.advance(1000);
  assert.equal(writes, 2);
  assert.ok(await first instanceof RequestTimeoutError);
  assert.ok(await second instanceof RequestTimeoutError);
  connection.destroy();
  await clock0();
  assert.deepEqual(reported, []);
});

/** Lets what was queued for later (a report of an uncaught error) run. */
const clock0 = () => new Promise((resolve) => setTimeout(resolve, 0));

test("a channel whose close or destroy throws still lets close() and destroy() end the connection", async () => {
  const boom = (what: string) => () => {
    throw new Error(`${what} boom`);
  };
  for (const how of ["close", "destroy"] as const) {
    for (const faulty of ["close", "destroy"] as const) {
      const clock = new VirtualClock();
      const calls: string[] = [];
      const channel = stubChannel({
        onData: () => {},
        close: () => calls.push("close"),
        destroy: () => calls.push("destroy"),
      });
      const throwing = boom(faulty);
      channel[faulty] = () => {
        calls.push(faulty);
        throwing();
      };
      const connection = new Connection(channel, endpoint, { clock });
      if (how === "close") await connection.close();
      else connection.destroy();
      const ended = await connection.closed;
      if (how === "destroy") assert.ok(ended instanceof ConnectionError);
      else assert.equal(ended, undefined);
      // A close that threw is followed by a destroy: the socket must not
      // stay open.
      const expected = how === "destroy"
        ? ["destroy"]
        : faulty === "close"
        ? ["close", "destroy"]
        : ["close"];
      assert.deepEqual(calls, expected, `${how} with a throwing ${faulty}`);
      await assert.rejects(
        connection.sendRequest(ops.echo("x")),
        ConnectionError,
      );
      assert.equal(clock.pendingTimers, 0);
    }
  }
});

test("a channel that closes with what is no Error ends the connection with a ConnectionLostError quoting it", async () => {
  const trap = () => {
    throw new Error("trap");
  };
  const reasons = fc.oneof(
    // Quoted as foreign text is: in double quotes, JSON's escapes.
    fc.string({ maxLength: 12 }).map((text) => ({
      value: text,
      shown: JSON.stringify(text),
    })),
    fc.constantFrom(
      { value: 42, shown: `"42"` },
      { value: { code: "ECONNRESET" }, shown: `"[object Object]"` },
      {
        value: new Proxy({}, { get: trap, getPrototypeOf: trap }),
        shown: `"an object"`,
      },
    ),
  );
  await fc.assert(
    fc.asyncProperty(reasons, async ({ value, shown }) => {
      let close!: (error?: unknown) => void;
      const connection = new Connection(
        stubChannel({
          onData: () => {},
          onClose: (fn) => (close = fn as (error?: unknown) => void),
        }),
        endpoint,
        { clock: new VirtualClock() },
      );
      const request = connection.sendRequest(ops.echo("x")).catch((e) => e);
      close(value);
      const error = await request;
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.ok(
        error.message.endsWith(
          `lost: the runtime adapter's channel closed with ${shown}`,
        ),
        error.message,
      );
      assert.equal((await connection.closed)?.message, error.message);
    }),
    { numRuns: 40 },
  );
});

test("Connection.remoteAddress is undefined, never a throw, when a custom channel's remoteAddress cannot be read or is no address; a good one reads as given", () => {
  const trap = () => {
    throw new Error("trap");
  };
  const unreadable: PropertyDescriptor[] = [
    { get: trap },
    { value: new Proxy({}, { get: trap }) },
    { value: 7 },
    { value: "127.0.0.1:7000" },
    { value: { hostname: 5, port: 1 } },
    { value: { hostname: "", port: 1 } },
    { value: { hostname: "10.0.0.1", port: "7000" } },
    { value: { hostname: "10.0.0.1", port: 70000 } },
    { value: { hostname: "10.0.0.1", port: Number.NaN } },
  ];
  for (const [i, descriptor] of unreadable.entries()) {
    const channel = stubChannel({ onData: () => {} });
    Object.defineProperty(channel, "remoteAddress", descriptor);
    const connection = new Connection(channel, endpoint, {
      clock: new VirtualClock(),
    });
    assert.equal(connection.remoteAddress, undefined, `case ${i}`);
    connection.destroy();
  }
  const channel = stubChannel({
    onData: () => {},
    remoteAddress: { hostname: "::1", port: 7000 },
  });
  const connection = new Connection(channel, endpoint, {
    clock: new VirtualClock(),
  });
  assert.deepEqual(connection.remoteAddress, { hostname: "::1", port: 7000 });
  connection.destroy();
});

test("a channel whose close or destroy is async and rejects still lets close() and destroy() end the connection, and the rejection is not left unhandled", async () => {
  const reported = recordUncaught(true);
  for (const how of ["close", "destroy"] as const) {
    const calls: string[] = [];
    const rejecting = (what: string) => () => {
      calls.push(what);
      return Promise.reject(new Error(`async ${what} boom`)) as never;
    };
    const clock = new VirtualClock();
    const connection = new Connection(
      stubChannel({
        onData: () => {},
        close: rejecting("close"),
        destroy: rejecting("destroy"),
      }),
      endpoint,
      { clock },
    );
    if (how === "close") await connection.close();
    else connection.destroy();
    await connection.closed;
    assert.deepEqual(calls, [how]);
  }
  await clock0();
  assert.deepEqual(reported, []);
});

test("bufferedAmount reads a custom channel's count guarded: a getter that throws or answers no count is read as nothing queued", () => {
  const answers: (() => unknown)[] = [
    () => {
      throw new Error("trap");
    },
    () => "12",
    () => -1,
    () => NaN,
    () => undefined,
  ];
  for (const answer of answers) {
    const channel = stubChannel({ onData: () => {} });
    Object.defineProperty(channel, "bufferedAmount", { get: answer });
    const connection = new Connection(
      channel,
      { hostname: "fake", port: 1 },
      { clock: new VirtualClock() },
    );
    assert.equal(connection.bufferedAmount, 0, String(answer));
    connection.destroy();
  }
  const counting = stubChannel({ onData: () => {}, bufferedAmount: 7 });
  const connection = new Connection(counting, { hostname: "fake", port: 1 }, {
    clock: new VirtualClock(),
  });
  assert.equal(connection.bufferedAmount, 7);
  connection.destroy();
});
