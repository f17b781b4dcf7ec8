// A custom clock whose now() throws once the client is up, met by a single
// request that found no connection ready and waits for one (the only
// connection lent with withConnection): the wait reads the clock as it
// starts and as it ends. The request fails with a ConfigError naming the
// clock, the clock's error as cause; nothing escapes, no node stays
// charged with the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

// The clock breaks after `reads` more reads. "start": given as the
// request comes, 1 (the pool's look, finding none, goes through), so the
// wait's first read throws. "end": given as the lent connection comes
// back, 3 (what giving it back and handing it to the wait read), so the
// wait's last read throws. (Fewer break withConnection's give-back and
// more the send: see the report of this commit's branch.)
for (const [when, reads] of [["start", 1], ["end", 3]] as const) {
  test(`a request waiting for a connection while the clock's now() throws at the wait's ${when}: it fails with a ConfigError naming the clock, nothing escapes, no node stays charged`, async () => {
    const { client, broke, state, teardown } = await clientOnBreakableClock({
      config: { loadBalancing: "round-robin" },
      ticks: 0,
    });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    try {
      // The one connection is lent: the request finds none ready and waits.
      const lent = client.withConnection(() => held);
      for (let i = 0; i < 5; i++) await tickEnds();
      let outcome: unknown = "pending";
      const atStart = when === "start";
      if (atStart) state.reads = reads;
      client.request(ops.echo("a")).then(
        (reply) => (outcome = { reply }),
        (error) => (outcome = error),
      );
      for (let i = 0; i < 5; i++) await tickEnds();
      state.reads = atStart ? Infinity : reads;
      release();
      await lent;
      for (let i = 0; i < 10 && outcome === "pending"; i++) await tickEnds();
      state.reads = Infinity;
      // Before: "pending" for good, the clock's throw unhandled.
      assert.ok(outcome instanceof ConfigError, String(outcome));
      assert.equal(outcome.field, "clock");
      assert.equal(outcome.cause, broke);
      assert.equal(client.stats().inFlight, 0);
      assert.deepEqual(client.stats().nodes.map((n) => n.inFlight), [0]);
    } finally {
      state.reads = Infinity;
      release();
      assert.deepEqual(await teardown(), []);
    }
  });
}
