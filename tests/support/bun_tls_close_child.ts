// Run by tests/runtime_bun_tls_close.test.ts in a Bun process of its own:
// opens a TLS channel with the Bun adapter to the parent's server on
// 127.0.0.1 (the port is the first argument), writes 64 KiB, closes it
// gracefully, then lets the process end by itself: a socket left open
// keeps it alive. Prints, as one JSON line at exit, how long after
// close() the process ended.
import { readFileSync } from "node:fs";
import process from "node:process";
import { getAdapter } from "../../src/runtime/detect.ts";

const ca = readFileSync(
  new URL("../../testing/certs/ca.pem", import.meta.url),
  "utf8",
);
const adapter = await getAdapter("bun");
const channel = await adapter.connect({
  hostname: "127.0.0.1",
  port: Number(process.argv[2]),
  tls: { ca: [ca], serverName: "localhost" },
});
channel.onData(() => {});
channel.write(new Uint8Array(64 * 1024).fill(7));
const closedAt = performance.now();
channel.close();
process.on("exit", () => {
  console.log(JSON.stringify({ exitMs: performance.now() - closedAt }));
});
