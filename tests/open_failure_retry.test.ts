// A request that waited for a pool connection whose open failed never
// left the client, so it is retried as one whose connect was refused is,
// idempotent or not (README: retries "always when the request never
// left"): a host that is unreachable (a socket error with no class of its
// own, CONNECTION_FAILED, was retried only for idempotent requests) and a
// node that hangs up before HELLO_OK alike. Virtual clock, in-memory
// network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import type { NodewireError } from "../src/errors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/** How the pool's next open fails. */
const FAILURES = {
  "the host is unreachable": "unreachable",
  "the node hangs up before HELLO_OK": "hangs up",
} as const;

for (const [name, failure] of Object.entries(FAILURES)) {
  test(`a request waiting for an open that failed (${name}) is retried, though not idempotent`, async () => {
    const network = createMemoryNetwork();
    const clock = new VirtualClock();
    const node = await startTestNode({ nodeId: "n0", runtime: network, clock });
    // Accepts and closes at once: a restarting node, or a balancer
    // with no node behind it.
    const hangUp = await network.listen({ port: 0 }, (channel) => {
      channel.close();
    });
    let failing = false;
    const adapter: RuntimeAdapter = {
      name: "memory",
      connect(options) {
        if (!failing) return network.connect(options);
        if (failure === "hangs up") {
          return network.connect({ ...options, port: hangUp.port });
        }
        return Promise.reject(
          Object.assign(new Error("connect EHOSTUNREACH"), {
            code: "EHOSTUNREACH",
          }),
        );
      },
      listen: (options, onConnection) => network.listen(options, onConnection),
    };
    const client = await Client.connect({
      hosts: [node.address],
      runtime: adapter,
      clock,
      healthConfig: { intervalMs: 0 },
      poolConfig: { minConnections: 0 },
      retryConfig: { maxRetries: 2, initialBackoffMs: 10, jitter: false },
    });
    const seen: string[] = [];
    client.addEventListener("retry", (e) => {
      seen.push((e.detail.error as NodewireError).code);
      failing = false; // the node is back for the retry
    });
    try {
      // The pool's one connection breaks; the next request needs a new one.
      failing = true;
      network.breakAll("partition");
      await clock.advance(0);
      assert.equal(client.stats().nodes[0].pool.open, 0);
      const reply = client.request(ops.echo("once"));
      for (let i = 0; i < 50; i++) await clock.advance(10);
      assert.equal(replyText(await reply), "once");
      assert.deepEqual(seen, [
        failure === "hangs up" ? "CONNECTION_LOST" : "CONNECTION_FAILED",
      ]);
    } finally {
      await client.disconnect({ timeoutMs: 1 });
      await hangUp.close();
      await node.close();
    }
  });
}
