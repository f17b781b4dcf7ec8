// A child process of connection_review.test.ts: a Connection to a node (the
// parent, on loopback) that answered HELLO and then stopped reading. It
// sends until the socket is congested, lets its requests time out, closes
// the connection, prints "closed", and must then exit on its own: the
// parent kills it if it does not.
import process from "node:process";
import { Connection } from "../../src/connection/connection.ts";
import { getAdapter } from "../../src/runtime/detect.ts";

const port = Number(process.argv[process.argv.length - 1]);
const connection = await Connection.connect({
  adapter: await getAdapter(),
  hostname: "127.0.0.1",
  port,
  requestTimeoutMs: 300,
});
const payload = new Uint8Array(256 * 1024);
const requests: Promise<unknown>[] = [];
// 64 MiB at most: far more than loopback buffers hold.
for (let i = 0; i < 256 && connection.bufferedAmount < 8 << 20; i++) {
  requests.push(connection.sendRequest(payload).catch((e) => e.name));
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await Promise.all(requests);
const owed = connection.bufferedAmount;
await connection.close();
console.log("closed", owed > 0 ? "congested" : "drained");
