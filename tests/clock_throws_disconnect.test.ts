// A custom clock whose now() throws once the client is up, met by
// disconnect(): its grace period read it as it started (or measured what
// it had waited, or was shortened by a second call), and the pool's
// close read it as it tracked each connection's close. The throw ended
// the shutdown where it was: disconnect() rejected with the clock's raw
// Error, and the client's connections (and the pools) were left open, so
// the process could not exit and a second disconnect() only returned the
// same rejection. Now the shutdown goes on without the readings it cannot
// make (a grace it cannot time is over at once: what is in flight is
// cancelled), every connection is closed, and disconnect() then rejects
// with a ConfigError naming the clock, the clock's error as cause.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, NodewireError } from "../src/errors.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** Clock reads the shutdown makes, at most, before it is done. */
const READS = 12;

/** What the client is doing as it is told to disconnect. */
const SCENES = {
  idle: "idle",
  busy: "a request in flight",
  waiting: "a request waiting for the lent connection, checkoutFailed heard",
} as const;

for (const scene of ["idle", "busy", "waiting"] as const) {
  const busy = scene !== "idle";
  for (const breaks of [1, Infinity]) {
    const what = `${SCENES[scene]}, the clock ${
      breaks === 1 ? "throwing once" : "broken for good"
    }`;
    test(`disconnect() meeting a clock whose now() throws (${what}), after 0 to ${READS} reads: every connection closes, disconnect() settles (a ConfigError naming the clock when it met it), nothing escapes`, async () => {
      const problems: string[] = [];
      let named = 0;
      for (let reads = 0; reads <= READS; reads++) {
        const size = scene === "waiting" ? 1 : 2;
        const s = await clientOnBreakableClock({
          config: {
            poolConfig: { minConnections: size, maxConnections: size },
          },
        });
        const { client, virtual, state, broke, network, nodes, watch } = s;
        const name = `${reads} reads`;
        let request: unknown = "none";
        if (scene === "waiting") {
          client.addEventListener("checkoutFailed", () => {});
          // Holds the one connection (its callback answered in 10 s).
          client.withConnection((c) => c.sendRequest(ops.sleep(10_000, "x")))
            .catch(() => {});
          await tickEnds();
        }
        if (busy) {
          request = "pending";
          // The node answers in 10 s: in flight through the whole grace.
          client.request(ops.sleep(10_000, "x")).then(
            () => (request = "replied"),
            (error) => (request = error),
          );
          await tickEnds();
        }
        state.reads = reads;
        state.breaks = breaks;
        state.thrown = 0;
        let outcome: unknown = "pending";
        try {
          client.disconnect({ timeoutMs: 5 }).then(
            () => (outcome = "done"),
            (error) => (outcome = error),
          );
          // A second, more urgent one shortens the grace: it reads too.
          client.disconnect({ timeoutMs: 2 }).catch(() => {});
        } catch (error) {
          outcome = `threw ${error}`;
        }
        // The grace (5 ms) and a little more; never the node's reply.
        for (let i = 0; i < 20 && outcome === "pending"; i++) {
          await virtual.advance(1).catch(() => {});
          await tickEnds();
        }
        const thrown = state.thrown;
        state.reads = Infinity;
        await virtual.advance(0);
        await tickEnds();
        const open = network.openChannels;
        if (outcome === "pending") problems.push(`${name}: still pending`);
        else if (outcome instanceof ConfigError) {
          named++;
          if (outcome.field !== "clock" || outcome.cause !== broke) {
            problems.push(`${name}: ${outcome.message}`);
          }
        } else if (outcome !== "done") {
          problems.push(`${name}: ${String(outcome)}`);
        } else if (thrown > 0 && breaks === Infinity && !busy) {
          // Busy, the request it cancelled may be what met the clock
          // (and was told: below).
          problems.push(`${name}: the clock threw ${thrown} times, untold`);
        }
        if (open > 0) problems.push(`${name}: ${open} channels left open`);
        if (busy && !(request instanceof NodewireError)) {
          problems.push(`${name}: the request ended with ${request}`);
        }
        // Let anything left finish, so the process can exit.
        if (outcome === "pending" || open > 0) {
          let again: Promise<void> = Promise.resolve();
          try {
            again = client.disconnect({ timeoutMs: 0 }).catch(() => {});
          } catch {
            // Thrown, before: the grace was shortened by a reading.
          }
          for (let i = 0; i < 20; i++) await virtual.advance(1000);
          await again;
        }
        for (const node of nodes) await node.close();
        const escaped = await watch.stop();
        if (escaped.length > 0) problems.push(`${name}: escaped ${escaped}`);
      }
      assert.deepEqual(problems, []);
      // Its first reading, at least, is the disconnect's own.
      assert.ok(named > 0, "no disconnect() named the clock");
    });
  }
}
