// A child process of edges_review.test.ts: a channel from the runtime's
// adapter (plain TCP, or TLS when the first argument is "tls") to a peer,
// the parent on loopback, that accepted and never reads. It writes until
// its writes queue behind full buffers, closes the channel, and prints how
// its close ended; it must then exit on its own (the parent kills it if it
// does not).
import process from "node:process";
import { getAdapter } from "../../src/runtime/detect.ts";

const [mode, port] = process.argv.slice(-2);
const adapter = await getAdapter();
const channel = await adapter.connect({
  hostname: "127.0.0.1",
  port: Number(port),
  tls: mode === "tls"
    ? { serverName: "localhost", dangerouslySkipVerify: true }
    : undefined,
});
const closed = new Promise<Error | undefined>((resolve) =>
  channel.onClose(resolve)
);
channel.onData(() => {});
const chunk = new Uint8Array(256 * 1024);
// Loopback's kernel buffers hold a few MiB; 64 MiB at most is far more.
// Queued means still queued after the socket had a moment to flush.
for (let sent = 0; sent < 64 << 20; sent += chunk.length) {
  channel.write(chunk);
  await new Promise((resolve) => setTimeout(resolve, 1));
  if (channel.bufferedAmount >= 2 << 20) break;
}
const queued = channel.bufferedAmount;
const started = performance.now();
channel.close();
console.log(`closing with ${queued} bytes queued (${adapter.name} ${mode})`);
// Bounded, so that a close that never ends says so rather than hanging.
let timer: ReturnType<typeof setTimeout> | undefined;
const outcome = await Promise.race([
  closed.then((error) => `closed: ${error?.name ?? "clean"}`),
  new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("close did not finish"), 3000);
  }),
]);
clearTimeout(timer);
console.log(`${outcome} after ${Math.round(performance.now() - started)} ms`);
if (outcome === "close did not finish") process.exit(3);
