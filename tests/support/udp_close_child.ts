// Run by tests/udp_review.test.ts in a process of its own: closes UDP
// clients and connections while datagrams are in flight (sent and not
// answered) and packed (submitted in the same tick as the close), prints
// what each request got and every unhandled rejection as one JSON line,
// then lets the process end by itself: anything left open keeps it alive.
import process from "node:process";
import { Client } from "../../src/client/client.ts";
import { startTestNode } from "../../testing/node.ts";
import { ops } from "../../testing/ops.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import { connectUdp } from "./udp_scene.ts";

const unhandled: string[] = [];
process.on("unhandledRejection", (reason) => unhandled.push(String(reason)));
const name = (e: unknown) => (e as Error)?.constructor?.name ?? String(e);
const outcome = (p: Promise<unknown>) => p.then(() => "reply", name);

// The node holds every SLEEP until its clock moves, which it never does.
const node = await startTestNode({
  protocols: ["udp"],
  udpPort: 0,
  clock: new VirtualClock(),
});

// A client disconnected at once: one request in flight, one submitted in
// the same tick as disconnect() (refused), none answered.
const client = await Client.connect({
  hosts: [node.address],
  healthConfig: { intervalMs: 0 },
  retryConfig: { maxRetries: 0 },
  poolConfig: { minConnections: 1, maxConnections: 1 },
});
const inFlight = client.request(ops.sleep(1e6), { idempotent: true });
while (node.udpStats!.accepted === 0) {
  await new Promise((resolve) => setTimeout(resolve, 1)); // until it landed
}
const done = client.disconnect({ timeoutMs: 0 });
const refused = client.request(ops.echo("late"));
const clientOutcomes = await Promise.all([outcome(refused), outcome(inFlight)]);
await done;

// A connection destroyed in the tick its requests were packed.
const destroyedConnection = await connectUdp(node, { protocols: ["udp"] });
const packed = [1, 2].map((i) =>
  destroyedConnection.sendRequest(ops.sleep(1e6, `p${i}`))
);
destroyedConnection.destroy();
const destroyed = await Promise.all(packed.map(outcome));

// A connection closed gracefully with a request in flight: close() waits
// for it, bounded by its timeout.
const closedConnection = await connectUdp(node, { protocols: ["udp"] });
const waiting = closedConnection.sendRequest(ops.sleep(1e6), {
  timeoutMs: 20,
});
await new Promise((resolve) => setTimeout(resolve, 5)); // it left
const closing = closedConnection.close();
const closed = [await outcome(waiting)];
await closing;

await new Promise((resolve) => setTimeout(resolve, 20));
const udpSessionsLeft = node.udpSessions;
await node.close();
console.log(JSON.stringify({
  unhandled,
  client: clientOutcomes,
  destroyed,
  closed,
  udpSessionsLeft,
}));
