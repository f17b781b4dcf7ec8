/**
 * The runtime layer read line by line for what a receiver handed to it
 * (onData, a listener's onConnection) or a runtime's socket can do at the
 * wrong moment: throw what is not an Error, throw at all, refuse a send
 * it took before. Each case fails the way the contract says, never with
 * an uncaught exception, an unhandled rejection or a stuck socket.
 * Loopback and the in-memory network only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createMemoryNetwork } from "../src/runtime/memory.ts";

/** Lets every queued microtask run (delivery is one hop per step). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

test("a data receiver that throws what cannot be made text still destroys its channel, nothing uncaught", async () => {
  const network = createMemoryNetwork();
  const listener = await network.listen({ port: 0 }, (server) => {
    server.onData(() => {});
    server.onClose(() => {});
    server.write(new Uint8Array([1, 2, 3]));
  });
  const client = await network.connect({
    hostname: "127.0.0.1",
    port: listener.port,
  });
  const closes: (Error | undefined)[] = [];
  client.onClose((error) => closes.push(error));
  // No prototype, so String() throws: the channel's own report of the
  // throw threw, out of the delivery, into the event loop.
  client.onData(() => {
    throw Object.create(null);
  });
  await flush();
  assert.equal(closes.length, 1, "the channel closed once");
  assert.ok(closes[0] instanceof Error);
  assert.match(closes[0].message, /object/);
  assert.equal(network.openChannels, 0);
  await listener.close();
});
