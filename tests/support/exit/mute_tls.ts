// A client of a node that agrees to TLS and then never answers the TLS
// handshake, run alone by tests/handshake_review.test.ts:
//
//   mute_tls.ts <port> <"tls" | "connect">
//
// "tls": the TLS handshake timeout (200 ms) fires first; "connect": the
// connect timeout (300 ms) does. Prints `error <name> <code> <reason>`,
// then `mark <epoch ms>`, and lets the process end by itself.
import process from "node:process";
import { readFileSync } from "node:fs";
import { Client } from "../../../mod.ts";

const [port, mode] = process.argv.slice(2);
const ca = readFileSync(
  new URL("../../../testing/certs/ca.pem", import.meta.url),
  "utf8",
);
try {
  const client = await Client.connect({
    hosts: [`127.0.0.1:${port}`],
    enableTls: true,
    tls: { ca, handshakeTimeoutMs: mode === "tls" ? 200 : 60_000 },
    timeoutMs: mode === "tls" ? 10_000 : 300,
    poolConfig: { minConnections: 1, maxConnecting: 1 },
    healthConfig: { intervalMs: 0 },
    retryConfig: { maxRetries: 0 },
  });
  console.log("connected");
  await client.disconnect();
} catch (error) {
  // A ConnectFailedError: what the one node failed with is the point.
  const e = (error as { failures?: { error: unknown }[] }).failures?.[0]
    ?.error ?? error;
  const { name, code, reason } = e as {
    name: string;
    code?: string;
    reason?: string;
  };
  console.log(`error ${name} ${code} ${reason ?? "-"}`);
}
console.log(`mark ${Date.now()}`);
