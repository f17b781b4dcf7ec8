// A TLS switch whose secure channel the connection refuses to attach (a
// custom adapter's startTls resolving with a channel whose copyBelow is
// bad, that is no ByteChannel, or whose onData/onClose throws). The
// connection ends with the refusal, as any failed switch does; but it was
// marked encrypted before the attach, so `encrypted` (and the stats,
// diagnostics and log lines that read it) went on saying TLS for a
// connection that never carried a byte of it. And a refusal at
// onData/onClose came after the connection had taken the secure channel
// as its stream: it then destroyed that one twice and the plaintext one
// never, a socket left open for good under a custom secure channel whose
// destroy does not reach it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import {
  ConnectionError,
  ConnectionLostError,
  InvalidArgumentError,
} from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** Throws, as a receiver-refusing channel's onData or onClose does. */
const refuse = (): never => {
  throw new Error("adapter bug: no receivers");
};

/**
 * Secure channels the connection must refuse, each over a stub whose
 * destroy reaches no socket (so the plaintext one stays open unless the
 * connection destroys it), and what the refusal must be.
 */
const refused: Array<{
  what: string;
  secure: Record<string, unknown>;
  error: (e: unknown) => boolean;
}> = [
  {
    what: "a copyBelow of -1",
    secure: { copyBelow: -1 },
    error: (e) =>
      e instanceof InvalidArgumentError && e.argument === "copyBelow",
  },
  {
    what: 'a copyBelow of "x"',
    secure: { copyBelow: "x" },
    error: (e) =>
      e instanceof InvalidArgumentError && e.argument === "copyBelow" &&
      /"x"/.test(e.message),
  },
  {
    what: "no write method",
    secure: { write: undefined },
    error: (e) =>
      e instanceof InvalidArgumentError &&
      /expected a ByteChannel/.test(e.message),
  },
  {
    what: "an onData that throws",
    secure: { onData: refuse },
    error: (e) =>
      e instanceof ConnectionError && e.code === "CONNECTION_FAILED" &&
      /refused its receivers: .*no receivers/.test(e.message),
  },
  {
    what: "an onClose that throws",
    secure: { onClose: refuse },
    error: (e) =>
      e instanceof ConnectionError && e.code === "CONNECTION_FAILED" &&
      /refused its receivers: .*no receivers/.test(e.message),
  },
];

/**
 * A connection to a reference node on the in-memory network, through an
 * adapter whose startTls resolves with a stub made of `secure`; counts
 * each channel's destroy calls. The plaintext channel's destroy reaches
 * its memory socket; the stub's reaches none.
 */
async function scene(secure: Record<string, unknown>) {
  const clock = new VirtualClock();
  const memory = createMemoryNetwork();
  const node = await startTestNode({ nodeId: "n1", clock, runtime: memory });
  const destroyed = { plain: 0, secure: 0 };
  const adapter: RuntimeAdapter = {
    ...memory,
    name: memory.name,
    connect: async (options) => {
      const raw = await memory.connect(options);
      const destroyRaw = raw.destroy.bind(raw);
      return Object.assign(raw, {
        destroy: (reason?: Error) => {
          destroyed.plain++;
          destroyRaw(reason);
        },
        startTls: () =>
          Promise.resolve({
            ...stubChannel({ onData: () => {} }),
            destroy: () => void destroyed.secure++,
            ...secure,
          } as ByteChannel),
      });
    },
  };
  const connection = await Connection.connect({
    adapter,
    hostname: node.hostname,
    port: node.port,
    clock,
  }).catch(async (error) => {
    await node.close();
    throw error;
  });
  return { connection, memory, node, destroyed };
}

for (const { what, secure, error } of refused) {
  test(`a secure channel with ${what} ends the connection with the refusal, not encrypted, failing the request that waited for it, and nothing escapes`, async () => {
    const watch = watchEscapes();
    const { connection, node } = await scene(secure);
    try {
      const switched = connection.startTls({ serverName: "n1" });
      // Sent during the switch: it waits for the secure channel.
      const request = connection.sendRequest(ops.echo("x")).then(
        () => "reply",
        (e: unknown) => e,
      );
      const refusal = await switched.then(() => "switched", (e: unknown) => e);
      assert.ok(error(refusal), String(refusal));
      assert.equal(connection.isOpen, false);
      // Before: true, for a connection that never carried TLS.
      assert.equal(connection.encrypted, false, "not encrypted");
      const outcome = await request;
      assert.ok(outcome instanceof ConnectionLostError, String(outcome));
      assert.equal(outcome.cause, refusal);
      assert.equal(await connection.closed, refusal);
    } finally {
      connection.destroy();
      await node.close();
    }
    assert.deepEqual(await watch.stop(), []);
  });
}

for (const { what, secure } of refused) {
  test(`a secure channel with ${what} is destroyed once, and the plaintext one by the connection itself, once: no socket left open`, async () => {
    const { connection, memory, node, destroyed } = await scene(secure);
    try {
      await assert.rejects(connection.startTls({ serverName: "n1" }));
      // Before (onData, onClose): the connection had taken the secure
      // channel as its stream, so it destroyed that one twice and the
      // plaintext one never: its socket stayed open, the node's end too.
      assert.deepEqual(destroyed, { plain: 1, secure: 1 });
      assert.equal(memory.openChannels, 0, "the plaintext socket is closed");
      connection.destroy();
      assert.deepEqual(destroyed, { plain: 1, secure: 1 }, "once");
    } finally {
      await node.close();
    }
  });
}

test("a secure channel that reports its close as its receiver is set fails startTls() with the connection's ConnectionLostError, not a success on a closed connection", async () => {
  const watch = watchEscapes();
  // Its socket closed as the handshake ended, say.
  const { connection, node } = await scene({
    onClose: (fn: (error?: Error) => void) => fn(new Error("closed at once")),
  });
  try {
    const switched = connection.startTls({ serverName: "n1" }).then(
      () => "switched",
      (e: unknown) => e,
    );
    const request = connection.sendRequest(ops.echo("x")).then(
      () => "reply",
      (e: unknown) => e,
    );
    const outcome = await switched;
    assert.equal(connection.isOpen, false);
    // Before: "switched", for a connection already closed.
    assert.ok(outcome instanceof ConnectionLostError, String(outcome));
    assert.match(outcome.message, /closed at once/);
    assert.equal(outcome.sent, false);
    const failed = await request;
    assert.ok(failed instanceof ConnectionLostError, String(failed));
    assert.match(failed.message, /closed at once/);
  } finally {
    connection.destroy();
    await node.close();
  }
  assert.deepEqual(await watch.stop(), []);
});
