// A custom clock whose now() throws once the client is up, met as a reply
// is booked: RequestPath's succeeded() and hedgeAnswered() read the clock
// (the reply's latency under peak-ewma, the hedge policy's sample, the
// diagnostics message's duration) before they settled the request, so the
// throw left the request pending for good and escaped from the
// connection's reply dispatch as an uncaught exception. The reply did
// arrive: now the request settles with it, the node is given back once,
// and the clock's failure reaches the logger once, as a ConfigError
// naming `clock` (event `clockFailed`), with nothing uncaught. A batch's
// replies, booked in batch.ts under peak-ewma, were stranded the same way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { Client } from "../src/client/client.ts";
import type { ConnectionConfig, LogEntry } from "../src/config/shapes.ts";
import { ConfigError } from "../src/errors.ts";
import type { TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import type { FaultProxy } from "../testing/proxy.ts";
import {
  type breakableClock,
  clientOnBreakableClock,
} from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

type Breakable = ReturnType<typeof breakableClock>;

/** What each scene leaves for the common checks. */
interface Scene {
  client: Client;
  /** Where the request's outcome lands: "pending", its reply's text, or the error. */
  outcome: { value: unknown };
}

/** What a scene's body is given. */
type Stage = Breakable & {
  client: Client;
  proxies: FaultProxy[];
  nodes: TestNode[];
  send(payload: Uint8Array): { value: unknown };
};

/**
 * A client on a breakable clock with `config`, over `nodeCount` test
 * nodes, each behind a fault proxy; its logger's entries in `logs`. Runs
 * `body`, then checks what every scene must hold (`requests` requests
 * answered in all) and tears everything down, whatever happened.
 */
async function scene(
  name: string,
  nodeCount: number,
  config: Partial<ConnectionConfig>,
  observed: boolean,
  requests: number,
  body: (s: Stage) => Promise<Scene["outcome"]>,
): Promise<void> {
  const logs: LogEntry[] = [];
  const breakable = await clientOnBreakableClock({
    nodes: nodeCount,
    proxied: nodeCount,
    config: { logger: (entry) => logs.push(entry), ...config },
  });
  const { client, nodes, virtual, broke, state } = breakable;
  const heard = () => {};
  if (observed) subscribe("nodewire:request:end", heard);
  let escaped: unknown[] = [];
  try {
    const outcome = await body({
      ...breakable,
      send(payload) {
        const outcome: { value: unknown } = { value: "pending" };
        client.request(payload, { idempotent: true }).then(
          (reply) => (outcome.value = replyText(reply)),
          (error) => (outcome.value = error),
        );
        return outcome;
      },
    });
    state.reads = Infinity;
    // Whatever is still out (a hedge's loser) answers meanwhile.
    await virtual.advance(1_000);
    for (let i = 0; i < 5; i++) await tickEnds();
    // Before: "pending" for good.
    assert.equal(outcome.value, "x", `${name}: ${String(outcome.value)}`);
    assert.equal(client.stats().inFlight, 0, name);
    assert.deepEqual(
      client.stats().nodes.map((n) => n.inFlight),
      nodes.map(() => 0),
      name,
    );
    assert.equal(client.stats().succeeded, requests, name);
    // Else the scene would check nothing.
    if (name.endsWith(" 0 reads")) {
      assert.ok(state.thrown > 0, `${name}: no throw`);
    }
    // Told once, however often the clock threw while replies were booked.
    const { thrown } = state;
    const told = logs.filter((e) => e.event === "clockFailed");
    assert.equal(told.length, thrown > 0 ? 1 : 0, `${name}: ${thrown} throws`);
    for (const entry of told) {
      assert.equal(entry.level, "error");
      assert.ok(entry.error instanceof ConfigError, String(entry.error));
      assert.equal(entry.error.field, "clock");
      assert.equal(entry.error.cause, broke);
      assert.match(entry.message, /clock/);
    }
  } finally {
    if (observed) unsubscribe("nodewire:request:end", heard);
    escaped = await breakable.teardown();
  }
  // Before: the clock's Error, uncaught from the reply dispatch.
  assert.deepEqual(escaped, [], name);
}

/** One request, its reply booked with the clock breaking after `reads` reads. */
async function replyAfter(
  { virtual, state, send }: Stage,
  reads: number,
): Promise<Scene["outcome"]> {
  const outcome = send(ops.sleep(10, "x"));
  for (let i = 0; i < 3; i++) await tickEnds();
  state.reads = reads;
  await virtual.advance(10);
  for (let i = 0; i < 5; i++) await tickEnds();
  return outcome;
}

/**
 * A request hedged at 10 ms (`outcome`, its main attempt 100 ms late):
 * the clock breaks after `reads` reads as the hedge's reply comes, which
 * settles it; the main attempt's late reply meets the clock still broken.
 */
async function hedgeWins(
  { client, virtual, state }: Stage,
  outcome: Scene["outcome"],
  reads: number,
): Promise<Scene["outcome"]> {
  await virtual.advance(10);
  for (let i = 0; i < 3; i++) await tickEnds();
  assert.equal(outcome.value, "pending");
  state.reads = reads;
  await virtual.advance(20);
  for (let i = 0; i < 5; i++) await tickEnds();
  assert.equal(outcome.value, "x", "the hedge's reply settles it");
  assert.equal(client.stats().hedges, 1);
  await virtual.advance(200);
  for (let i = 0; i < 5; i++) await tickEnds();
  return outcome;
}

// N: the clock breaks after N more reads, counted from just before the
// reply under test arrives, and stays broken until the request settled.
// Past the reads the reply's booking makes, nothing breaks (the control).
for (const observed of [false, true]) {
  const seen = observed ? ", a diagnostics subscriber listening" : "";

  test(`peak-ewma: a reply booked while the clock's now() throws settles its request with the reply, nothing escapes${seen}`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene(
        `peak-ewma, ${reads} reads`,
        1,
        { loadBalancing: "peak-ewma" },
        observed,
        1,
        (s) => replyAfter(s, reads),
      );
    }
  });

  test(`hedging: the main attempt's reply booked while the clock's now() throws settles the request with it, nothing escapes${seen}`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene(
        `hedged main, ${reads} reads`,
        1,
        { loadBalancing: "round-robin", hedging: { delayMs: 50 } },
        observed,
        1,
        (s) => replyAfter(s, reads),
      );
    }
  });

  test(`hedging: the hedge's reply, and the main attempt's late one, booked while the clock's now() throws: the request settles with the hedge's, nothing escapes${seen}`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene(
        `hedge wins, ${reads} reads`,
        2,
        { loadBalancing: "round-robin", hedging: { delayMs: 10 } },
        observed,
        1,
        async (s) => {
          const { send, proxies } = s;
          await proxies[0].setFaults({ latencyMs: 100 });
          // Main to the slow node (first in turn), answered at 220 ms; the
          // hedge at 10 ms to the other, answered at 30 ms.
          const outcome = send(ops.sleep(20, "x"));
          return await hedgeWins(s, outcome, reads);
        },
      );
    }
  });

  test(`peak-ewma and hedging: the hedge's reply, and the main attempt's late one, booked while the clock's now() throws: the request settles with the hedge's, nothing escapes${seen}`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene(
        `timed hedge wins, ${reads} reads`,
        2,
        { loadBalancing: "peak-ewma", hedging: { delayMs: 10 } },
        observed,
        2,
        async (s) => {
          const { client, send, proxies } = s;
          // A request that is not hedged holds one node (whichever the
          // balancer took), so the next goes to the other (one in flight
          // costs more than none, neither timed yet), made slow here.
          client.request(ops.sleep(500)).catch(() => {});
          const busy = client.stats().nodes.findIndex((n) => n.inFlight > 0);
          await proxies[1 - busy].setFaults({ latencyMs: 100 });
          const outcome = send(ops.sleep(20, "x"));
          assert.deepEqual(
            client.stats().nodes.map((n) => n.inFlight),
            [1, 1],
            "the main attempt went to the idle node",
          );
          return await hedgeWins(s, outcome, reads);
        },
      );
    }
  });
}

test("peak-ewma: a batch's replies booked while the clock's now() throws settle their items with the replies, nothing escapes", async () => {
  for (let reads = 0; reads <= 6; reads++) {
    await scene(
      `batch, ${reads} reads`,
      1,
      { loadBalancing: "peak-ewma" },
      false,
      2,
      async ({ client, virtual, state }) => {
        const outcome: { value: unknown } = { value: "pending" };
        client.requestMany([ops.sleep(10, "x"), ops.sleep(10, "x")]).then(
          (results) => {
            const texts = results.map((r) =>
              r.ok ? replyText(r.value) : r.error
            );
            outcome.value = texts.every((t) => t === "x") ? "x" : texts;
          },
          (error) => (outcome.value = error),
        );
        for (let i = 0; i < 3; i++) await tickEnds();
        state.reads = reads;
        await virtual.advance(10);
        for (let i = 0; i < 5; i++) await tickEnds();
        return outcome;
      },
    );
  }
});
