// A TLS listener's channel that stops reading (pause()) stops taking bytes
// from its socket, on every runtime: the sender's writes queue behind full
// buffers, as over plain TCP. On Deno and Bun the listener's TLS runs
// through node:tls over a stream (src/runtime/node/tls_stream.ts), which
// pushed every ciphertext byte into that stream whether or not the TLS
// socket read it: a peer that kept sending filled the listener's memory.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { getAdapter } from "../src/runtime/detect.ts";
import type { ByteChannel } from "../src/runtime/types.ts";

const CERTS = new URL("../testing/certs/", import.meta.url);
const cert = (name: string) => readFileSync(new URL(name, CERTS), "utf8");

/** Resolves true when `promise` settles within `ms` real ms, else false. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

test("a paused TLS listener channel holds back its peer: the sender's writes stay queued, it does not take in everything sent", async () => {
  const adapter = await getAdapter();
  let received = 0;
  let accept!: (channel: ByteChannel) => void;
  const accepted = new Promise<ByteChannel>((resolve) => accept = resolve);
  const listener = await adapter.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert("server.pem"), key: cert("server-key.pem") },
  }, (channel) => {
    channel.onData((chunk) => {
      received += chunk.length;
      // The application stops reading at its first chunk.
      channel.pause!();
    });
    channel.onClose(() => {});
    accept(channel);
  });
  const client = await adapter.connect({
    hostname: "127.0.0.1",
    port: listener.port,
    tls: { serverName: "localhost", ca: [cert("ca.pem")] },
  });
  client.onData(() => {});
  const closed = new Promise((resolve) => client.onClose(resolve));
  const server = await accepted;
  let sent = 0;
  try {
    // Loopback's kernel buffers and the TLS layers hold a few MiB; a
    // listener that takes everything lets all 64 MiB through.
    const chunk = new Uint8Array(256 * 1024);
    const LIMIT = 64 << 20;
    while (sent < LIMIT) {
      sent += chunk.length;
      if (client.write(chunk)) continue;
      // Queued: stuck unless the listener keeps taking bytes in.
      if (!await within(client.drained(), 400)) break;
    }
    assert.ok(
      sent < 32 << 20,
      `the listener took in ${sent >> 20} MiB it never read (${received} read)`,
    );
    assert.ok(received > 0, "the listener got its first chunk");
  } finally {
    client.destroy();
    server.destroy();
    await closed;
    await listener.close();
  }
});
