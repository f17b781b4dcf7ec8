// Defects at the edges of the handshake and the runtime adapters, each
// with a test that failed before its fix: a node announcing a maxFrameSize
// nothing fits in, a TLS handshake answered by a plain-TCP peer (Deno
// reported a lost connection, Bun without verification a connection), and
// a channel's close() against a peer that never reads (it never ended, and
// held the process open).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Connection } from "../src/connection/connection.ts";
import { ProtocolError, TlsError } from "../src/errors.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import { decodeHelloOk, encodeJson } from "../src/protocol/messages.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { spawnScript } from "./support/exit/spawn.ts";

const codec = new MessageCodec();

/**
 * A node on `adapter` that answers every HELLO with a HELLO_OK carrying
 * `hello`, and otherwise reads and ignores.
 */
async function helloNode(adapter: RuntimeAdapter, hello: object) {
  const channels: ByteChannel[] = [];
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    channels.push(channel);
    channel.onClose(() => {});
    const reader = new MessageCodec();
    channel.onData((chunk) =>
      reader.decode(chunk, (m) => {
        if (m.type !== MessageType.Hello) return;
        channel.write(codec.encode({
          type: MessageType.HelloOk,
          flags: 0,
          sequence: m.sequence,
          payload: encodeJson(hello),
        }));
      })
    );
  });
  return {
    port: listener.port,
    async close() {
      for (const channel of channels) channel.destroy();
      await listener.close();
    },
  };
}

// ---------------------------------------------------------- maxFrameSize

test("a node whose HELLO_OK announces a maxFrameSize below 1024 is refused at the handshake, with a ProtocolError naming the field, the value and the least accepted", async () => {
  const network = createMemoryNetwork();
  for (const size of [1, 16, 40, 1023]) {
    const node = await helloNode(network, {
      nodeId: "tiny",
      maxFrameSize: size,
      auth: "none",
    });
    try {
      // Before: connected, and then could send nothing a real client sends.
      const error = await Connection.connect({
        adapter: network,
        hostname: "127.0.0.1",
        port: node.port,
      }).then((c) => (c.destroy(), undefined), (e: unknown) => e);
      assert.ok(error instanceof ProtocolError, `${size}: ${error}`);
      assert.equal(error.code, "PROTOCOL_ERROR");
      assert.match(
        error.message,
        new RegExp(
          `HELLO_OK maxFrameSize is ${size}, expected an integer of at least 1024`,
        ),
      );
      assert.equal(network.openChannels, 0, "the socket was closed");
    } finally {
      await node.close();
    }
  }
  // The least accepted connects, and keeps to the node's limit.
  const node = await helloNode(network, {
    nodeId: "small",
    maxFrameSize: 1024,
    auth: "none",
  });
  try {
    const c = await Connection.connect({
      adapter: network,
      hostname: "127.0.0.1",
      port: node.port,
    });
    await assert.rejects(
      c.sendRequest(new Uint8Array(1025)),
      /at most 1024 bytes/,
    );
    c.destroy();
  } finally {
    await node.close();
  }
});

test("decodeHelloOk: a maxFrameSize under 1024, or not an integer, is a ProtocolError that shows the value", () => {
  const hello = (maxFrameSize: unknown) =>
    encodeJson({ nodeId: "n", maxFrameSize, auth: "none" });
  for (const bad of [0, 1, 1023, 1023.5, 2048.5, "2048", null, -4096]) {
    assert.throws(
      () => decodeHelloOk(hello(bad)),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message.includes(`maxFrameSize is ${JSON.stringify(bad)}`) &&
        e.message.includes("at least 1024"),
      String(bad),
    );
  }
  assert.equal(decodeHelloOk(hello(1024)).maxFrameSize, 1024);
  assert.equal(decodeHelloOk(hello(1 << 24)).maxFrameSize, 1 << 24);
});

// ------------------------------------------------- TLS to a plain peer

const FRAME = codec.encode({
  type: MessageType.HelloOk,
  flags: 0,
  sequence: 1,
  payload: encodeJson({ nodeId: "plain", maxFrameSize: 1 << 20, auth: "none" }),
});
const GARBAGE = new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n");

/**
 * A plain-TCP peer on loopback that writes `bytes`: on accept, or in
 * answer to the first bytes it reads (the ClientHello).
 */
async function plainPeer(bytes: Uint8Array, when: "accept" | "answer") {
  const adapter = await getAdapter();
  const channels: ByteChannel[] = [];
  const listener = await adapter.listen({ port: 0 }, (channel) => {
    channels.push(channel);
    channel.onClose(() => {});
    let answered = false;
    channel.onData(() => {
      if (when === "answer" && !answered) {
        answered = true;
        channel.write(bytes);
      }
    });
    if (when === "accept") channel.write(bytes);
  });
  return {
    port: listener.port,
    async close() {
      for (const channel of channels) channel.destroy();
      await listener.close();
    },
  };
}

const CERTS = new URL("../testing/certs/", import.meta.url);
const cert = (name: string) => readFileSync(new URL(name, CERTS), "utf8");

/** Verifying against the test CA, and not verifying at all. */
const VERIFY_MODES = [
  ["verified", { serverName: "localhost", ca: [cert("ca.pem")] }],
  ["unverified", { serverName: "localhost", dangerouslySkipVerify: true }],
] as const;

test("TLS to a peer that answers with bytes that are not TLS is a TlsError (code TLS_FAILED, reason handshake) on every runtime, not a lost connection nor a connection", async () => {
  const adapter = await getAdapter();
  for (const [verify, tls] of VERIFY_MODES) {
    for (
      const [what, bytes] of [["garbage", GARBAGE], ["a frame", FRAME]] as const
    ) {
      for (const when of ["accept", "answer"] as const) {
        const peer = await plainPeer(bytes, when);
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 10_000);
        try {
          const error = await adapter.connect({
            hostname: "127.0.0.1",
            port: peer.port,
            signal: controller.signal,
            tls,
          }).then((c) => (c.destroy(), undefined), (e: unknown) => e);
          const label = `${what} on ${when}, ${verify}, ${adapter.name}`;
          // Before: on Deno a ConnectionLostError ("closed during the TLS
          // handshake"); on Bun, unverified, a channel, as if the
          // handshake had succeeded.
          assert.ok(error instanceof TlsError, `${label}: ${error}`);
          assert.equal(error.code, "TLS_FAILED", label);
          assert.equal(error.reason, "handshake", label);
          assert.equal(error.retryable, false, label);
        } finally {
          clearTimeout(timer);
          await peer.close();
        }
      }
    }
  }
});

test("Connection.connect with TLS from the first byte to a plain-TCP reference node fails with TlsError", async () => {
  const adapter = await getAdapter();
  const node = await startTestNode({ runtime: adapter });
  try {
    for (const [verify, tls] of VERIFY_MODES) {
      const error = await Connection.connect({
        adapter,
        hostname: "127.0.0.1",
        port: node.port,
        timeoutMs: 10_000,
        tls,
      }).then((c) => (c.destroy(), undefined), (e: unknown) => e);
      const label = `${verify}, ${adapter.name}`;
      // Before: ConnectionLostError on Deno, and on Bun unverified
      // ("broken pipe", once the HELLO was written after a "handshake").
      assert.ok(error instanceof TlsError, `${label}: ${error}`);
      assert.equal(error.code, "TLS_FAILED", label);
      assert.equal(error.reason, "handshake", label);
    }
  } finally {
    await node.close();
  }
});

// ------------------------------------------ close() against a deaf peer

/**
 * Runs tests/support/stalled_close.ts against a listener here that
 * accepts and never reads (it never registers `onData`, so the adapter
 * leaves every byte in the kernel), and returns its output once it has
 * exited. Fails, killing it, when it does not exit within 5 s of closing.
 */
async function stalledClose(tls: boolean): Promise<string> {
  const adapter = await getAdapter();
  const channels: ByteChannel[] = [];
  const listener = await adapter.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: tls
      ? {
        cert: cert("server.pem"),
        key: cert("server-key.pem"),
      }
      : undefined,
  }, (channel) => {
    channels.push(channel);
    channel.onClose(() => {});
  });
  try {
    const child = spawnScript(
      fileURLToPath(new URL("./support/stalled_close.ts", import.meta.url)),
      [tls ? "tls" : "tcp", String(listener.port)],
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk) => stdout += chunk);
    child.stderr!.on("data", (chunk) => stderr += chunk);
    // "close", not "exit": the output is complete then.
    const exited = new Promise<number | null>((resolve) =>
      child.on("close", resolve)
    );
    let killed = "";
    const kill = (why: string) => {
      killed = why;
      child.kill("SIGKILL");
    };
    // Starting the runtime and filling the buffers: 60 s at most.
    let timer = setTimeout(() => kill("it never closed"), 60_000);
    const closing = new Promise<void>((resolve) =>
      child.stdout!.on("data", () => {
        if (stdout.includes("closing")) resolve();
      })
    );
    await Promise.race([closing, exited]);
    clearTimeout(timer);
    timer = setTimeout(
      () => kill("it was still running 5 s after close()"),
      5_000,
    );
    const code = await exited;
    clearTimeout(timer);
    assert.equal(killed, "", `killed: ${killed}; ${stdout} ${stderr}`);
    assert.equal(code, 0, `exit ${code}: ${stdout} ${stderr}`);
    return stdout;
  } finally {
    for (const channel of channels) channel.destroy();
    await listener.close();
  }
}

test("a raw channel closed with writes queued behind a peer that never reads: close() ends (the queued bytes dropped, onClose with ConnectionLostError) and the process exits on its own", async () => {
  const stdout = await stalledClose(false);
  // Before: "close did not finish" on Deno, Bun and Node; the child exited
  // (code 3) only because it gave up waiting itself.
  const queued = Number(/closing with (\d+) bytes queued/.exec(stdout)?.[1]);
  assert.ok(queued > 0, `the scene queued writes: ${stdout}`);
  assert.match(stdout, /closed: ConnectionLostError/, stdout);
  const ms = Number(/after (\d+) ms/.exec(stdout)?.[1]);
  assert.ok(ms < 2_000, `close took ${ms} ms: ${stdout}`);
});

test("a TLS channel closed while its peer reads nothing: close() ends and the process exits on its own", async () => {
  // Before: on Node the TLS socket's queued writes held the close, and on
  // Bun the ended TLS socket waited for the peer to close; the process
  // stayed alive with them.
  const stdout = await stalledClose(true);
  assert.match(stdout, /closed: (clean|ConnectionLostError)/, stdout);
});
