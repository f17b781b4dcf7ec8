// A client of a node that agrees to TLS and then never answers the TLS
// handshake, run alone by tests/handshake_review.test.ts:
//
//   mute_tls.ts <port> <"tls" | "connect" | "switch">
//
// "tls": the TLS handshake timeout (200 ms) fires first; "connect": the
// connect timeout (300 ms) does; "switch": a /core caller's own
// Connection.startTls, with no signal, meets its limit (the connection's
// connect timeout, 300 ms). Prints `error <name> <code> <reason>`, then
// `mark <epoch ms>`, and lets the process end by itself.
import process from "node:process";
import { readFileSync } from "node:fs";
import { Client } from "../../../mod.ts";
import { Connection } from "../../../src/connection/connection.ts";
import { MessageType } from "../../../src/protocol/frame.ts";
import { encodeJson } from "../../../src/protocol/messages.ts";
import { getAdapter } from "../../../src/runtime/detect.ts";

const [port, mode] = process.argv.slice(2);
const ca = readFileSync(
  new URL("../../../testing/certs/ca.pem", import.meta.url),
  "utf8",
);

/** NEGOTIATE, then the switch the node agrees to and never answers. */
async function switchAlone(): Promise<void> {
  const connection = await Connection.connect({
    adapter: await getAdapter(),
    hostname: "127.0.0.1",
    port: Number(port),
    timeoutMs: 300,
    startsTls: true,
  });
  connection.sendMessage(
    MessageType.Negotiate,
    encodeJson({ protocols: ["tls"] }),
  );
  await connection.receiveMessage({ pauseReading: true });
  await connection.startTls({ serverName: "localhost", ca: [ca] });
  console.log("connected");
  connection.destroy();
}

try {
  if (mode === "switch") await switchAlone();
  else {
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
  }
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
