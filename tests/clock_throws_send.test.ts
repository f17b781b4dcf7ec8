// A custom clock whose now() throws once the client is up, met as a
// request is handed to its connection: Connection's #call put the request
// in its table and then read the clock for its deadline, so the throw left
// an entry that never settles. The request itself failed with the
// ConfigError naming the clock (the request path catches it), but the
// stray entry held the connection's graceful close, and so
// client.disconnect(), for good. Now the deadline is read first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

// The clock breaks after `reads` more reads, counted from the request's
// call: 0 breaks the pool's look; 1 breaks what the connection reads as
// it takes the request (before the fix: disconnect() never settled; its
// deadline timer, armed from that reading since, read the clock a second
// time then, which 2 broke); from 2 on, the request is sent and answered.
for (let reads = 0; reads <= 4; reads++) {
  test(`a request whose clock breaks after ${reads} more reads settles, leaves nothing in flight, and the client still disconnects`, async () => {
    // Its own teardown below: disconnect() is what is checked.
    const { client, virtual, broke, state, network, nodes, watch } =
      await clientOnBreakableClock({
        config: { loadBalancing: "round-robin" },
      });
    try {
      let outcome: unknown = "pending";
      state.reads = reads;
      client.request(ops.echo("a")).then(
        () => (outcome = "reply"),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 5; i++) await tickEnds();
      state.reads = Infinity;
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      if (reads < 2) {
        assert.ok(outcome instanceof ConfigError, String(outcome));
        assert.equal(outcome.field, "clock");
        assert.equal(outcome.cause, broke);
      } else {
        assert.equal(outcome, "reply");
      }
      assert.equal(client.stats().inFlight, 0);
      assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
      // Bounded: a close held for good fails here instead of hanging.
      const done = client.disconnect({ timeoutMs: 1 });
      for (let i = 0; i < 5; i++) await virtual.advance(1);
      let guard: ReturnType<typeof setTimeout> | undefined;
      const settled = await Promise.race([
        done.then(() => "closed"),
        new Promise((resolve) => {
          guard = setTimeout(() => resolve("held"), 5_000);
        }),
      ]);
      clearTimeout(guard);
      assert.equal(settled, "closed", "client.disconnect() never settled");
    } finally {
      // A close held for good keeps the memory network's channels, and so
      // the process, open: dropped here whatever happened above.
      network.breakAll("the test is over");
      await nodes[0].close();
    }
    assert.deepEqual(await watch.stop(), []);
  });
}
