// A custom clock whose now() throws once the client is up, met as an
// attempt's outcome is booked while a diagnostics_channel subscriber (an
// APM agent) listens: the outcome's publication read the clock (the
// attempt's duration) before it published, so the throw lost the
// `nodewire:request:end` (or `:error`) of an attempt whose `:start` was
// published, and the agent's span stayed open for good; a clock that broke
// as a retry was announced published the attempt's `:error` twice. Now
// every `:start` has exactly one `:end` or `:error` (the latter with its
// error), whatever the clock does: only what the clock would have given
// (the duration) is missing, and the logger hears of the clock once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { LogEntry } from "../src/config/shapes.ts";
import type { RequestMessage } from "../src/diagnostics/channels.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { ops } from "../testing/ops.ts";
import { clientOnBreakableClock } from "./support/breakable_clock.ts";
import { tickEnds } from "./support/stub_connection.ts";

/** Counts, per attempt's message, its starts and its outcomes. */
function countPublications() {
  const seen = new Map<
    RequestMessage,
    { starts: number; outcomes: string[] }
  >();
  const entry = (m: RequestMessage) => {
    let e = seen.get(m);
    if (e === undefined) seen.set(m, e = { starts: 0, outcomes: [] });
    return e;
  };
  const onStart = (m: unknown) => entry(m as RequestMessage).starts++;
  const onEnd = (m: unknown) => entry(m as RequestMessage).outcomes.push("end");
  const onError = (m: unknown) => {
    const message = m as RequestMessage;
    entry(message).outcomes.push(
      message.error instanceof Error ? "error" : "error without its error",
    );
  };
  subscribe("nodewire:request:start", onStart);
  subscribe("nodewire:request:end", onEnd);
  subscribe("nodewire:request:error", onError);
  return {
    seen,
    stop() {
      unsubscribe("nodewire:request:start", onStart);
      unsubscribe("nodewire:request:end", onEnd);
      unsubscribe("nodewire:request:error", onError);
    },
  };
}

/** One scene: a request and when the clock breaks. */
interface Scene {
  name: string;
  config: Partial<ConnectionConfig>;
  payload: Uint8Array;
  /** The clock breaks after this many more reads... */
  reads: number;
  /** ...counted from just before the request (else `afterMs` after it). */
  early?: boolean;
  /** The virtual ms moved on after the request before the count starts (0). */
  afterMs?: number;
  /** Test nodes, each behind a fault proxy (1); the first one 100 ms slow. */
  nodes?: number;
  /** Whether a `retry` listener is there (its event reads the clock). */
  retryListener?: boolean;
}

/**
 * A request on a client with `config`, the clock breaking as told until
 * the request settled; then each of its attempts' starts must have had
 * exactly one outcome, and the request one that settles it.
 */
async function scene(sc: Scene): Promise<void> {
  const { name, reads } = sc;
  const logs: LogEntry[] = [];
  const nodes = sc.nodes ?? 1;
  const s = await clientOnBreakableClock({
    nodes,
    proxied: nodes,
    config: { logger: (entry) => logs.push(entry), ...sc.config },
  });
  const { client, virtual, state } = s;
  if (sc.retryListener) client.addEventListener("retry", () => {});
  if (nodes > 1) await s.proxies[0].setFaults({ latencyMs: 100 });
  const published = countPublications();
  let escaped: unknown[] = [];
  try {
    let outcome: unknown = "pending";
    if (sc.early) state.reads = reads;
    client.request(sc.payload, { idempotent: true }).then(
      () => (outcome = "reply"),
      (error) => (outcome = error),
    );
    if (!sc.early) {
      for (let i = 0; i < 3; i++) await tickEnds();
      if (sc.afterMs) {
        await virtual.advance(sc.afterMs);
        for (let i = 0; i < 3; i++) await tickEnds();
      }
      state.reads = reads;
    }
    for (let i = 0; i < 20 && outcome === "pending"; i++) {
      await virtual.advance(10);
      for (let j = 0; j < 3; j++) await tickEnds();
    }
    state.reads = Infinity;
    // Whatever is still out (a hedge's loser) ends meanwhile.
    for (let i = 0; i < 10; i++) {
      await virtual.advance(100);
      for (let j = 0; j < 3; j++) await tickEnds();
    }
    assert.notEqual(outcome, "pending", name);
    assert.equal(client.stats().inFlight, 0, name);
    assert.deepEqual(
      client.stats().nodes.map((n) => n.inFlight),
      s.nodes.map(() => 0),
      `${name}: nodes still charged`,
    );
    if (reads === 0) assert.ok(state.thrown > 0, `${name}: no throw`);
    let settles = 0;
    for (const [m, { starts, outcomes }] of published.seen) {
      const what = `${name}: attempt ${m.attempt}${m.hedge ? " (hedge)" : ""}`;
      // Before: an outcome lost (a start alone), or published twice.
      assert.equal(starts, 1, `${what}: starts`);
      assert.equal(outcomes.length, 1, `${what}: outcomes ${outcomes}`);
      assert.notEqual(outcomes[0], "error without its error", what);
      if (m.settles) {
        settles++;
        assert.equal(outcomes[0], outcome === "reply" ? "end" : "error", what);
      }
    }
    // The request's own outcome, published whatever the clock did.
    assert.equal(settles, 1, `${name}: outcomes that settle`);
    const told = logs.filter((e) => e.event === "clockFailed").length;
    assert.ok(told <= 1, `${name}: told ${told} times`);
  } finally {
    published.stop();
    escaped = await s.teardown();
  }
  assert.deepEqual(escaped, [], name);
}

for (const loadBalancing of ["round-robin", "peak-ewma"] as const) {
  test(`${loadBalancing}: a reply booked while the clock's now() throws still publishes its attempt's end`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene({
        name: `reply, ${loadBalancing}, ${reads} reads`,
        config: { loadBalancing },
        payload: ops.sleep(10, "x"),
        reads,
      });
    }
  });

  test(`${loadBalancing}: a failure booked while the clock's now() throws still publishes its attempt's error, once`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      await scene({
        name: `failure, ${loadBalancing}, ${reads} reads`,
        config: { loadBalancing },
        payload: ops.fail(3, false, "no"),
        reads,
        early: true,
      });
    }
  });

  test(`${loadBalancing}: retried failures booked while the clock's now() throws, a retry listener listening, publish each attempt's error once`, async () => {
    for (let reads = 0; reads <= 8; reads++) {
      await scene({
        name: `retried, ${loadBalancing}, ${reads} reads`,
        config: {
          loadBalancing,
          retryConfig: {
            maxRetries: 2,
            initialBackoffMs: 10,
            maxBackoffMs: 10,
          },
        },
        payload: ops.fail(3, true, "again"),
        reads,
        early: true,
        retryListener: true,
      });
    }
  });

  test(`${loadBalancing}: a hedged request whose attempts' outcomes are booked while the clock's now() throws publishes each attempt's outcome once`, async () => {
    for (let reads = 0; reads <= 6; reads++) {
      for (const afterMs of [0, 10]) {
        await scene({
          name: `hedged, ${loadBalancing}, ${afterMs} ms, ${reads} reads`,
          config: { loadBalancing, hedging: { delayMs: 10 } },
          payload: ops.sleep(20, "x"),
          reads,
          afterMs,
          nodes: 2,
        });
      }
    }
  });
}
