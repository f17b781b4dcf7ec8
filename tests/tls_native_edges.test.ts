// Edges of the channel a `startsTls` hint gives (on Deno the Deno.Conn
// channel of src/runtime/deno/conn_channel.ts, elsewhere the usual one),
// found by attacking it: each test holds what the ByteChannel contract
// (src/runtime/types.ts) and the Node and Bun channels do. Each failed on
// Deno before the fix of the commit that added this file; the Deno-only
// check is registered on Deno only.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { ConnectionLostError, InvalidArgumentError } from "../src/errors.ts";
import { detectRuntime, getAdapter } from "../src/runtime/detect.ts";
import { connectHinted, pem } from "./helpers.ts";
import type { ByteChannel, Listener } from "../src/runtime/types.ts";

const CA = pem("ca.pem");
const ON_DENO = detectRuntime() === "deno";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What `promise` did within `ms`: "resolved", "rejected" or "pending". */
async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<
  | { state: "resolved"; value: T }
  | { state: "rejected"; error: unknown }
  | { state: "pending" }
> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ state: "resolved" as const, value }),
        (error) => ({ state: "rejected" as const, error }),
      ),
      new Promise<{ state: "pending" }>((resolve) =>
        timer = setTimeout(() => resolve({ state: "pending" }), ms)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(
  outcome: { state: string; error?: unknown; value?: unknown },
): string {
  if (outcome.state === "rejected") return `rejected with ${outcome.error}`;
  if (outcome.state === "resolved") {
    return `resolved with ${
      (outcome.value as object | undefined)?.constructor?.name
    }`;
  }
  return "still pending";
}

/**
 * A listener that serves a TLS upgrade on each connection and echoes over
 * it; counts the server sides that completed the handshake and those that
 * closed (or failed), and keeps every channel to destroy at the end.
 */
async function tlsEchoServer() {
  const adapter = await getAdapter();
  const channels: ByteChannel[] = [];
  const counts = { secured: 0, closed: 0 };
  const listener: Listener = await adapter.listen({ port: 0 }, (channel) => {
    channels.push(channel);
    channel.acceptTls!({ cert: pem("server.pem"), key: pem("server-key.pem") })
      .then(
        (secure) => {
          counts.secured++;
          channels.push(secure);
          secure.onClose(() => counts.closed++);
          secure.onData((chunk) => secure.write(chunk));
        },
        () => counts.closed++,
      );
  });
  return {
    adapter,
    port: listener.port,
    counts,
    async close() {
      for (const channel of channels) channel.destroy();
      await listener.close();
    },
  };
}

// ---------------------------------------------------------------------------
// startTls on a spent channel (upgraded already, or closed) rejects with
// ConnectionLostError. It had gone to the node:tls bridge, which waits for
// a close that was delivered already: a promise that never settled.

test("startTls called a second time on the same channel rejects (ConnectionLostError) instead of hanging", async () => {
  const server = await tlsEchoServer();
  const channel = await connectHinted(server.adapter, server.port);
  const first = channel.startTls!({ serverName: "localhost", ca: [CA] });
  const second = channel.startTls!({ serverName: "localhost", ca: [CA] });
  try {
    const outcome = await within(second, 2000);
    assert.ok(
      outcome.state === "rejected" &&
        outcome.error instanceof ConnectionLostError,
      `the second startTls must reject, not hang: ${describe(outcome)}`,
    );
  } finally {
    second.catch(() => {});
    (await first.catch(() => undefined))?.destroy();
    await server.close();
  }
});

test("startTls on a channel that was destroyed (its close already delivered) rejects instead of hanging", async () => {
  const server = await tlsEchoServer();
  const channel = await connectHinted(server.adapter, server.port);
  const closed = new Promise((resolve) => channel.onClose(resolve));
  channel.onData(() => {});
  channel.destroy();
  await closed;
  const pending = channel.startTls!({ serverName: "localhost", ca: [CA] });
  try {
    const outcome = await within(pending, 2000);
    assert.ok(
      outcome.state === "rejected" &&
        outcome.error instanceof ConnectionLostError,
      `startTls must reject, not hang: ${describe(outcome)}`,
    );
  } finally {
    pending.then((secure) => secure.destroy(), () => {});
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// startTls checks its options as the other channels do: a rejection with
// InvalidArgumentError, never a synchronous throw, an unknown key let
// through, or a malformed CA reported as the node's untrusted certificate.

test("startTls with options that are not an object rejects with InvalidArgumentError rather than throwing synchronously", async () => {
  const server = await tlsEchoServer();
  const channel = await connectHinted(server.adapter, server.port);
  try {
    let result: Promise<ByteChannel> | undefined;
    assert.doesNotThrow(() => {
      result = channel.startTls!(undefined as never);
    }, "startTls returns a promise; it must not throw");
    await assert.rejects(result!, InvalidArgumentError);
  } finally {
    channel.destroy();
    await server.close();
  }
});

test("startTls with an unknown option or a ca that is not an array of PEM strings rejects with InvalidArgumentError", async () => {
  const server = await tlsEchoServer();
  try {
    for (
      const bad of [
        { serverName: "localhost", ca: [CA], bogus: 1 },
        { serverName: "localhost", ca: CA },
        { serverName: "localhost", ca: ["not a certificate"] },
        { serverName: 42 },
      ]
    ) {
      const channel = await connectHinted(server.adapter, server.port);
      const pending = channel.startTls!(bad as never);
      const outcome = await within(pending, 3000);
      if (outcome.state === "resolved") outcome.value.destroy();
      channel.destroy();
      assert.ok(
        outcome.state === "rejected" &&
          outcome.error instanceof InvalidArgumentError,
        `${JSON.stringify(bad).slice(0, 60)}: ${describe(outcome)}`,
      );
    }
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// An abort in the tick startTls was called, before Deno.startTls returned
// the TLS connection: the socket it took must still be closed (it had been
// left to finish its handshake, owned by nobody, the node not marked).

test("an abort right after startTls (same tick) closes the socket: the node does not keep a connection nobody owns", async () => {
  const server = await tlsEchoServer();
  const channel = await connectHinted(server.adapter, server.port);
  const controller = new AbortController();
  const reason = new Error("given up");
  const pending = channel.startTls!({
    serverName: "localhost",
    ca: [CA],
    signal: controller.signal,
  });
  controller.abort(reason);
  try {
    await assert.rejects(pending, (error) => error === reason);
    for (let i = 0; i < 100 && server.counts.closed === 0; i++) {
      await sleep(10);
    }
    assert.equal(
      server.counts.closed,
      1,
      `the node's side must be closed (secured ${server.counts.secured}, ` +
        `closed ${server.counts.closed})`,
    );
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// resume() before onData must not start reading: chunks read with no
// receiver were dropped, and onData then started a second read loop.

test("resume() before onData does not start reading: bytes sent before onData are delivered to it", async () => {
  const adapter = await getAdapter();
  const peers: net.Socket[] = [];
  const server = net.createServer((socket) => {
    peers.push(socket);
    socket.on("error", () => {});
    socket.write("early|");
    setTimeout(() => socket.end("late"), 150);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const port = (server.address() as net.AddressInfo).port;
  const channel = await adapter.connect({
    hostname: "127.0.0.1",
    port,
    startsTls: true,
  });
  try {
    channel.resume?.();
    await sleep(75); // "early|" has arrived; no receiver yet
    let text = "";
    const closed = new Promise((resolve) => channel.onClose(resolve));
    channel.onData((chunk) => (text += new TextDecoder().decode(chunk)));
    assert.notEqual((await within(closed, 3000)).state, "pending");
    assert.equal(text, "early|late");
  } finally {
    channel.destroy();
    for (const peer of peers) peer.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

// Registered on Deno only: checks the type of channel the hint gave, so
// that the tests above are known to have run on a DenoConnChannel there.
if (ON_DENO) {
  test("Deno: the channels attacked above are DenoConnChannels", async () => {
    const server = await tlsEchoServer();
    const channel = await connectHinted(server.adapter, server.port);
    try {
      assert.equal(channel.constructor.name, "DenoConnChannel");
    } finally {
      channel.destroy();
      await server.close();
    }
  });
}

// Registered on Deno only: the Deno.Conn channel hands a write to its conn
// within write(), so the parts a tick's frames go out in (frame_writer.ts)
// leave apart; what comes while a write is under way leaves merged next.
if (ON_DENO) {
  test("Deno: the Conn channel writes at once, and merges what waits behind a write under way", async () => {
    const { DenoConnChannel } = await import(
      "../src/runtime/deno/conn_channel.ts"
    );
    const written: number[] = [];
    let finish: (() => void) | undefined;
    const conn = {
      write(bytes: Uint8Array) {
        written.push(bytes.length);
        return new Promise<number>((resolve) =>
          finish = () => resolve(bytes.length)
        );
      },
      read: () => new Promise<number | null>(() => {}),
      close() {},
      remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    } as unknown as Deno.Conn;
    const channel = new DenoConnChannel(conn, {
      hostname: "127.0.0.1",
      port: 1,
    });
    try {
      channel.write(new Uint8Array(10));
      assert.deepEqual(written, [10], "handed to the conn within write()");
      channel.write(new Uint8Array(20));
      channel.write(new Uint8Array(30));
      await sleep(0);
      assert.deepEqual(written, [10], "one write at a time");
      finish!();
      await sleep(0);
      assert.deepEqual(written, [10, 50], "what waited leaves merged");
      finish!();
      await sleep(0);
      assert.equal(channel.bufferedAmount, 0);
    } finally {
      channel.destroy();
    }
  });
}
