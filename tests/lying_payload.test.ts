// A payload whose `length` or `byteLength` getter answers the door's check
// truthfully and lies afterwards (a subclass's getter that counts its
// reads) is framed by its real length everywhere: over the stream, one by
// one and in batches, and over UDP with and without several frames a
// datagram. Before, the header stated the lie and the real bytes followed:
// a negative answer made the node close the connection under the other
// requests, a larger one sent stale buffer bytes, a smaller one cut it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Client } from "../src/client/client.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

/** The answers a getter lies with after its first read. */
const LIES = [-5, 0, 3, 100, 2 ** 32, NaN];

/** `bytes` in a Uint8Array whose `name` getter lies after the first read. */
function liar(bytes: Uint8Array, name: "length" | "byteLength", lie: number) {
  let reads = 0;
  const array = new Uint8Array(bytes);
  Object.defineProperty(array, name, {
    get: () => reads++ === 0 ? bytes.length : lie,
  });
  return array;
}

async function withClient(
  udp: boolean,
  run: (client: Client) => Promise<void>,
  udpBatch = true,
) {
  const node = await startTestNode({
    nodeId: "n1",
    protocols: udp ? ["tcp", "udp"] : ["tcp"],
    udpBatch,
  });
  try {
    const client = await Client.connect({
      hosts: [node.address],
      protocols: udp ? ["udp"] : ["tcp"],
      poolConfig: { minConnections: 1, maxConnections: 1 },
      healthConfig: { intervalMs: 0 },
      retryConfig: { maxRetries: 0 },
    });
    try {
      await run(client);
    } finally {
      await client.disconnect();
    }
  } finally {
    await node.close();
  }
}

const echoed = (reply: Uint8Array) => replyText(reply);

for (const name of ["length", "byteLength"] as const) {
  test(`over the stream, a payload whose ${name} lies after the door is sent as its real bytes, and the requests around it are untouched`, async () => {
    await withClient(false, async (client) => {
      for (const lie of LIES) {
        const said = `lie ${lie}`;
        const [before, lied, after] = await Promise.all([
          client.request(ops.echo("before"), { timeoutMs: 2000 }),
          client.request(liar(ops.echo(said), name, lie), { timeoutMs: 2000 }),
          client.request(ops.echo("after"), { timeoutMs: 2000 }),
        ]);
        assert.deepEqual(
          [echoed(before), echoed(lied), echoed(after)],
          ["before", said, "after"],
        );
        const batch = await client.requestMany([
          ops.echo("first"),
          liar(ops.echo(said), name, lie),
          ops.echo("last"),
        ], { timeoutMs: 2000 });
        assert.deepEqual(
          batch.map((r) => r.ok ? echoed(r.value) : r.error.message),
          ["first", said, "last"],
        );
      }
      assert.equal(client.stats().failed, 0);
    });
  });

  for (const udpBatch of [true, false]) {
    test(`over UDP${udpBatch ? " with udp-batch" : ""}, a payload whose ${name} lies after the door is sent as its real bytes, and the frames around it are untouched`, async () => {
      await withClient(true, async (client) => {
        assert.equal(client.stats().nodes[0].protocol, "udp");
        for (const lie of LIES) {
          const said = `lie ${lie}`;
          const replies = await Promise.all([
            client.request(ops.echo("before"), { timeoutMs: 2000 }),
            client.request(liar(ops.echo(said), name, lie), {
              timeoutMs: 2000,
            }),
            client.request(ops.echo("after"), { timeoutMs: 2000 }),
          ]);
          assert.deepEqual(replies.map(echoed), ["before", said, "after"]);
        }
      }, udpBatch);
    });
  }
}

test("a payload whose byteLength getter throws, sent while someone follows requests on the diagnostics channels, is sent and observed by its real length: request() does not throw, nor is its node charged for good", async () => {
  const sizes: unknown[] = [];
  const listener = (message: unknown) =>
    sizes.push((message as { payloadBytes: unknown }).payloadBytes);
  subscribe("nodewire:request:start", listener);
  try {
    await withClient(false, async (client) => {
      const payload = ops.echo("abc");
      Object.defineProperty(payload, "byteLength", {
        get() {
          throw new Error("byteLength bug");
        },
      });
      let outcome: unknown;
      try {
        outcome = await client.request(payload).then(replyText);
      } catch (error) {
        outcome = error;
      }
      // Before: request() threw the getter's Error at once, its promise
      // never made, and the node's in-flight count stayed one up.
      assert.equal(outcome, "abc");
      assert.deepEqual(sizes, [ops.echo("abc").length]);
      assert.equal(client.stats().inFlight, 0);
      assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
    });
  } finally {
    unsubscribe("nodewire:request:start", listener);
  }
});
