// A runtime adapter of the user's own (a transport, a test double) is
// trusted with the socket, not with the client's liveness: its connect
// may never settle, settle after the client gave up, or fail with
// something that is no SDK error. Connection.connect was held for good
// by a connect deaf to its signal, and passed a string, undefined or a
// raw error through as it came.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { Connection } from "../src/connection/connection.ts";
import {
  AbortedError,
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  type NodewireError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const endpoint = { hostname: "127.0.0.1", port: 7000 };

/** The memory network's adapter with `connect` replaced. */
function adapterWith(connect: RuntimeAdapter["connect"]): RuntimeAdapter {
  const net = createMemoryNetwork();
  return { name: "memory", connect, listen: (o, f) => net.listen(o, f) };
}

/** Starts a connect with a 1000 ms limit; its outcome once settled. */
function start(adapter: RuntimeAdapter, clock: VirtualClock) {
  const outcome: { value?: unknown; settled: boolean } = { settled: false };
  Connection.connect({ adapter, ...endpoint, clock, timeoutMs: 1000 }).then(
    (connection) => {
      connection.destroy();
      outcome.value = connection;
      outcome.settled = true;
    },
    (error: unknown) => {
      outcome.value = error;
      outcome.settled = true;
    },
  );
  return outcome;
}

test("a connect that never settles, deaf to its signal, fails at the limit", async () => {
  const clock = new VirtualClock();
  const outcome = start(adapterWith(() => new Promise(() => {})), clock);
  await clock.advance(999);
  assert.equal(outcome.settled, false);
  await clock.advance(1);
  assert.ok(
    outcome.value instanceof ConnectTimeoutError,
    String(outcome.value),
  );
  assert.equal(clock.pendingTimers, 0);
});

test("a channel that comes after the client gave up is destroyed", async () => {
  const clock = new VirtualClock();
  let deliver!: (channel: ByteChannel) => void;
  let destroyed = 0;
  const late: ByteChannel = {
    onData: () => {},
    onClose: () => {},
    write: () => true,
    drained: () => Promise.resolve(),
    close: () => {},
    destroy: () => void destroyed++,
    bufferedAmount: 0,
    remoteAddress: undefined,
  };
  const outcome = start(
    adapterWith(() => new Promise((resolve) => (deliver = resolve))),
    clock,
  );
  await clock.advance(1000);
  assert.ok(outcome.value instanceof ConnectTimeoutError);
  deliver(late);
  await clock.advance(0);
  assert.equal(destroyed, 1);
});

test("whatever a connect fails with, the caller gets an SDK error saying it", async () => {
  const trap = () => {
    throw new Error("trap");
  };
  const values = fc.oneof(
    // What is no Error is quoted as foreign text is: double quotes, JSON's
    // escapes. An Error is mapped as a runtime's socket error is.
    fc.string({ maxLength: 8 }).map((text) => ({
      value: text,
      shown: JSON.stringify(text),
    })),
    fc.constantFrom(
      { value: undefined, shown: `"undefined"` },
      { value: null, shown: `"null"` },
      { value: 42, shown: `"42"` },
      { value: new TypeError("bad socket"), shown: "bad socket" },
      { value: new Proxy({}, { get: trap, getPrototypeOf: trap }), shown: "" },
    ),
  );
  await fc.assert(
    fc.asyncProperty(values, fc.boolean(), async ({ value, shown }, sync) => {
      const clock = new VirtualClock();
      const outcome = start(
        adapterWith(() => {
          if (sync) throw value;
          return Promise.reject(value);
        }),
        clock,
      );
      await clock.advance(0);
      const error = outcome.value;
      assert.ok(error instanceof ConnectionError, String(typeof error));
      assert.equal(error.code, "CONNECTION_FAILED");
      assert.ok(error.message.includes(shown), error.message);
      assert.ok(error.message.includes("127.0.0.1:7000"), error.message);
      assert.equal(clock.pendingTimers, 0);
    }),
    { numRuns: 60 },
  );
});

test("a raw refusal from a custom adapter keeps its meaning", async () => {
  const clock = new VirtualClock();
  const refused = Object.assign(new Error("connect ECONNREFUSED"), {
    code: "ECONNREFUSED",
  });
  const outcome = start(adapterWith(() => Promise.reject(refused)), clock);
  await clock.advance(0);
  assert.ok(outcome.value instanceof ConnectionRefusedError);
  assert.equal((outcome.value as NodewireError).cause, refused);
});

test("a channel that ends before HELLO fails the connect saying how it ended, not only that the connection is closed", async () => {
  const cases: [Partial<ByteChannel>, RegExp][] = [
    [{ onClose: (fn) => fn() }, /lost: closed by the node$/],
    [{ onClose: (fn) => fn(new Error("gone")) }, /lost: "gone"$/],
    [
      { onData: (fn) => fn(new Uint8Array(17).fill(9)) },
      /lost: protocol violation: /,
    ],
  ];
  for (const [parts, message] of cases) {
    const clock = new VirtualClock();
    const channel = stubChannel({ onData: () => {}, ...parts });
    const outcome = start(adapterWith(() => Promise.resolve(channel)), clock);
    await clock.advance(0);
    assert.ok(
      outcome.value instanceof ConnectionLostError,
      String(outcome.value),
    );
    assert.match((outcome.value as Error).message, message);
    assert.equal(clock.pendingTimers, 0);
  }
});

test("a channel that arrives a few microtasks before the connect is aborted is released, on whichever turn the abort lands", async () => {
  // The pool aborts the connects in progress when the client disconnects,
  // often in the very task whose I/O completed them: connectChannel once
  // checked "aborted?" when the channel arrived and gave it up two turns
  // later, and an abort in between left an open socket nobody held (a
  // Deno process did not exit after disconnect()).
  for (let turns = 0; turns <= 12; turns++) {
    const clock = new VirtualClock();
    let released = 0;
    const channel = stubChannel({
      onData: () => {},
      close: () => void released++,
      destroy: () => void released++,
    });
    const caller = new AbortController();
    const adapter = adapterWith(() => {
      (async () => {
        for (let i = 0; i < turns; i++) await null;
        caller.abort(new Error("disconnecting"));
      })();
      return Promise.resolve(channel);
    });
    let outcome: unknown;
    Connection.connect({
      adapter,
      ...endpoint,
      clock,
      timeoutMs: 1000,
      signal: caller.signal,
    }).then((connection) => {
      outcome = connection;
      connection.destroy();
    }, (error: unknown) => (outcome = error));
    await clock.advance(0);
    assert.ok(
      outcome instanceof AbortedError,
      `abort after ${turns} turns: ${outcome}`,
    );
    assert.ok(released > 0, `abort after ${turns} turns: channel kept open`);
    assert.equal(clock.pendingTimers, 0);
  }
});

test("a signal aborted before the call fails the connect at once, even through a connect deaf to it, and what that connect delivers later is released", async () => {
  const clock = new VirtualClock();
  let deliver: ((channel: ByteChannel) => void) | undefined;
  let released = 0;
  const channel = stubChannel({
    onData: () => {},
    close: () => void released++,
    destroy: () => void released++,
  });
  const adapter = adapterWith(() =>
    new Promise((resolve) => (deliver = resolve))
  );
  let outcome: unknown;
  Connection.connect({
    adapter,
    ...endpoint,
    clock,
    timeoutMs: 1000,
    signal: AbortSignal.abort(new Error("gave up already")),
  }).then((connection) => {
    outcome = connection;
    connection.destroy();
  }, (error: unknown) => (outcome = error));
  await clock.advance(0);
  assert.ok(outcome instanceof AbortedError, String(outcome));
  assert.equal(clock.pendingTimers, 0);
  // A connect not even started need deliver nothing.
  deliver?.(channel);
  await clock.advance(0);
  assert.equal(released, deliver === undefined ? 0 : 1);
});
