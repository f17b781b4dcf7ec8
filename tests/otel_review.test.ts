// ./otel against providers that misbehave or outlive the client (found by
// an adversarial review): the bridge ends with the client's disconnect,
// and a tracer or meter that throws loses its own telemetry, never the
// bridge's bookkeeping nor the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/client/client.ts";
import { channels } from "../src/diagnostics/channels.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import {
  instrumentClient,
  type Meter,
  type Span,
  type Tracer,
} from "../otel.ts";

/**
 * A meter that keeps its batch callbacks where the test can see them; the
 * instruments named in `broken` throw.
 */
function fakeMeter(broken: (name: string) => boolean = () => false) {
  const callbacks = new Set<unknown>();
  const calls = { removed: 0 };
  const instrument = (name: string) => {
    const record = () => {
      if (broken(name)) throw new Error(`${name} is broken`);
    };
    return { record, add: record };
  };
  const meter: Meter = {
    createHistogram: instrument,
    createCounter: instrument,
    createObservableUpDownCounter: () => ({}),
    addBatchObservableCallback: (callback) => void callbacks.add(callback),
    removeBatchObservableCallback: (callback) => {
      calls.removed++;
      callbacks.delete(callback);
    },
  };
  return { provider: { getMeter: () => meter }, meter, callbacks, calls };
}

type SpanMethod = keyof Span;

/** A tracer counting its spans; the methods in `throwing` throw. */
function fakeTracer(throwing: readonly SpanMethod[] = []) {
  const spans = { started: 0, ended: 0 };
  const tracer: Tracer = {
    startSpan() {
      spans.started++;
      const call = (method: SpanMethod) => {
        if (method === "end") spans.ended++;
        if (throwing.includes(method)) throw new Error(`${method} is broken`);
        return span;
      };
      const span: Span = {
        setAttribute: () => call("setAttribute"),
        setStatus: () => call("setStatus"),
        recordException: () => void call("recordException"),
        end: () => void call("end"),
      };
      return span;
    },
  };
  return { provider: { getTracer: () => tracer }, tracer, spans };
}

async function cluster(nodes: number) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const started: Awaited<ReturnType<typeof startTestNode>>[] = [];
  for (let i = 0; i < nodes; i++) {
    started.push(
      await startTestNode({ nodeId: `r${i}`, runtime: network, clock }),
    );
  }
  const client = await Client.connect({
    hosts: started.map((node) => node.address),
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    retryConfig: { initialBackoffMs: 10, maxRetries: 2 },
  });
  return {
    network,
    clock,
    client,
    async close() {
      await client.disconnect();
      for (const node of started) await node.close();
    },
  };
}

test("a client's disconnect ends its instrumentation: callbacks removed, channels unheard, close() still idempotent", async () => {
  const meter = fakeMeter();
  const tracer = fakeTracer();
  const s = await cluster(2);
  try {
    const otel = instrumentClient(s.client, {
      meterProvider: meter.provider,
      tracerProvider: tracer.provider,
    });
    assert.equal(meter.callbacks.size, 1);
    await s.client.request(ops.echo());
    assert.equal(tracer.spans.started, 1);
    // Cancelled by the disconnect: its span still ends, with the error.
    const slow = s.client.request(ops.sleep(1000)).catch((e) => e);
    await s.clock.advance(0);
    const disconnected = s.client.disconnect({ timeoutMs: 10 });
    await s.clock.advance(10);
    await disconnected;
    assert.equal(((await slow) as Error).name, "ClientClosedError");
    assert.equal(tracer.spans.ended, 2, "the cancelled request's span ended");

    assert.equal(meter.callbacks.size, 0, "the pools are no longer read");
    assert.equal(meter.calls.removed, 1);
    assert.equal(channels.requestStart.hasSubscribers, false);
    assert.equal(channels.poolCheckout.hasSubscribers, false);
    otel.close();
    otel.close();
    assert.equal(meter.calls.removed, 1, "nothing undone twice");

    // Another client's requests reach no sink of the old one.
    const other = await cluster(1);
    try {
      await other.client.request(ops.echo());
      assert.equal(tracer.spans.started, 2);
    } finally {
      await other.close();
    }
  } finally {
    await s.close();
  }
});

test("a node removed from an instrumented client closes its pool but not the instrumentation", async () => {
  const meter = fakeMeter();
  const tracer = fakeTracer();
  const s = await cluster(2);
  const otel = instrumentClient(s.client, {
    meterProvider: meter.provider,
    tracerProvider: tracer.provider,
  });
  try {
    await s.client.manager.removeNode(s.client.manager.nodes[1].address);
    await s.client.request(ops.echo());
    assert.equal(tracer.spans.started, 1);
    assert.equal(meter.callbacks.size, 1);
    assert.equal(channels.requestStart.hasSubscribers, true);
  } finally {
    otel.close();
    await s.close();
  }
  assert.equal(meter.calls.removed, 1);
});

test("a lazy client disconnected before its first call ends its instrumentation", async () => {
  const meter = fakeMeter();
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    healthConfig: { intervalMs: 0 },
  }, { lazy: true });
  try {
    instrumentClient(client, { meterProvider: meter.provider });
    await client.disconnect();
    assert.equal(meter.callbacks.size, 0);
    assert.equal(channels.requestStart.hasSubscribers, false);
  } finally {
    await client.disconnect();
    await node.close();
  }
});
