/**
 * The main job: start a local reference node, connect, ping, send a burst
 * of requests and print round-trip figures.
 *
 * @module
 */
import { Connection } from "../src/connection.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const adapter = await getAdapter();
const node = await startTestNode({ nodeId: "demo-node" });
console.log(
  `runtime: ${adapter.name}; reference node ${node.nodeId} on ${node.address}`,
);

const connection = await Connection.connect({
  adapter,
  hostname: node.hostname,
  port: node.port,
});
console.log(`connected to ${connection.nodeId} (connection #${connection.id})`);

const pings: number[] = [];
for (let i = 0; i < 20; i++) pings.push(await connection.ping());
console.log(`ping: ${summary(pings)}`);

const sequential: number[] = [];
for (let i = 0; i < 2000; i++) {
  const start = performance.now();
  await connection.sendRequest(ops.echo("x"));
  sequential.push(performance.now() - start);
}
console.log(`2000 sequential requests: ${summary(sequential)}`);

for (const inFlight of [16, 64, 256]) {
  const total = 50_000;
  const latencies: number[] = [];
  const start = performance.now();
  const counter = { sent: 0 };
  await Promise.all(
    Array.from(
      { length: inFlight },
      () => burstWorker(connection, counter, total, latencies),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  console.log(
    `${total} requests, ${inFlight} in flight: ${
      Math.round(total / seconds).toLocaleString("en-US")
    } req/s; ${summary(latencies)}`,
  );
}

const check = replyText(await connection.sendRequest(ops.echo("goodbye")));
await connection.close();
await node.close();
console.log(`last reply "${check}"; closed cleanly`);

async function burstWorker(
  connection: Connection,
  counter: { sent: number },
  total: number,
  latencies: number[],
) {
  while (counter.sent < total) {
    counter.sent++;
    const t = performance.now();
    await connection.sendRequest(ops.echo("burst"));
    latencies.push(performance.now() - t);
  }
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `p50 ${ms(at(0.5))}, p99 ${ms(at(0.99))}, max ${
    ms(sorted[sorted.length - 1])
  }`;
}

function ms(value: number): string {
  return value < 1
    ? `${Math.round(value * 1000)} µs`
    : `${value.toFixed(2)} ms`;
}
