// ./otel against the real OpenTelemetry SDKs (dev dependencies only): the
// metrics read back from an in-memory exporter through a metric reader,
// the spans from an in-memory span exporter. A virtual clock and the
// in-memory network make every duration exact.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as api from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider as SdkMeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Client } from "../src/client/client.ts";
import type { ConnectionConfig } from "../src/config/shapes.ts";
import { channels } from "../src/diagnostics/channels.ts";
import {
  InvalidArgumentError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { hedgeScene } from "./support/hedge_scene.ts";
import {
  type Context,
  instrumentClient,
  type MeterProvider,
  type TracerProvider,
} from "../otel.ts";

// The structural types take the API's own interfaces: this file would not
// type-check (deno check tests/) if they drifted apart.
export const acceptsApiTypes = {
  meterProvider: (p: api.MeterProvider): MeterProvider => p,
  tracerProvider: (p: api.TracerProvider): TracerProvider => p,
  context: (c: api.Context): Context => c,
};

/** A context manager for synchronous code, enough for a parent span. */
class SyncContextManager implements api.ContextManager {
  #current: api.Context = api.ROOT_CONTEXT;
  active(): api.Context {
    return this.#current;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: api.Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.#current;
    this.#current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#current = previous;
    }
  }
  bind<T>(_context: api.Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#current = api.ROOT_CONTEXT;
    return this;
  }
}
api.context.setGlobalContextManager(new SyncContextManager());
after(() => api.context.disable());

/** A meter provider whose metrics are read back on demand. */
function metricsSdk() {
  const exporter = new InMemoryMetricExporter(
    AggregationTemporality.CUMULATIVE,
  );
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3_600_000,
  });
  const provider = new SdkMeterProvider({ readers: [reader] });
  return {
    provider,
    /** Every data point of the metric `name`, collected now. */
    async collect() {
      exporter.reset();
      await reader.forceFlush();
      const metrics = exporter.getMetrics().flatMap((r) =>
        r.scopeMetrics.flatMap((s) => s.metrics)
      );
      return (name: string) => {
        const metric = metrics.find((m) => m.descriptor.name === name);
        return metric?.dataPoints.map((p) => ({
          attributes: p.attributes,
          value: p.value,
        })) ?? [];
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

function tracesSdk() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return {
    provider,
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    shutdown: () => provider.shutdown(),
  };
}

/** A node and a client on the in-memory network and a virtual clock. */
async function setup(extra: Partial<ConnectionConfig> = {}) {
  const network = createMemoryNetwork();
  const clock = new VirtualClock();
  const node = await startTestNode({ nodeId: "o0", runtime: network, clock });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    clock,
    healthConfig: { intervalMs: 0 },
    retryConfig: { initialBackoffMs: 10, maxRetries: 2 },
    ...extra,
  });
  return {
    network,
    clock,
    node,
    client,
    host: client.manager.nodes[0].host,
    async close() {
      await client.disconnect();
      await node.close();
    },
  };
}

const histogram = (value: unknown) =>
  value as { count: number; sum: number; min: number; max: number };

test("the pool and operation metrics of the conventions are recorded and read back", async () => {
  const sdk = metricsSdk();
  const s = await setup({
    poolConfig: {
      minConnections: 1,
      maxConnections: 1,
      connectionTimeoutMs: 100,
    },
  });
  const otel = instrumentClient(s.client, { meterProvider: sdk.provider });
  const pool = { "db.client.connection.pool.name": s.node.address };
  try {
    // A connection opened while instrumented: its create time.
    const first = s.client.manager.nodes[0].pool.connections()[0];
    first.destroy(new Error("replaced"));
    await first.closed;
    // An operation of 50 ms.
    const slow = s.client.request(ops.sleep(50, "x"));
    await s.clock.advance(50);
    assert.equal(replyText(await slow), "x");
    // The only connection lent for 30 ms while a request waits for it.
    const lent = s.client.withConnection(() =>
      new Promise<void>((resolve) => s.clock.setTimeout(resolve, 30))
    );
    await s.clock.advance(0);
    const waiting = s.client.request(ops.echo("w"), { retry: false });
    await s.clock.advance(0);
    const during = await sdk.collect();
    assert.deepEqual(during("db.client.connection.count"), [
      {
        attributes: { ...pool, "db.client.connection.state": "idle" },
        value: 0,
      },
      {
        attributes: { ...pool, "db.client.connection.state": "used" },
        value: 1,
      },
    ]);
    assert.deepEqual(during("db.client.connection.pending_requests"), [
      { attributes: pool, value: 1 },
    ]);
    assert.deepEqual(during("db.client.connection.max"), [
      { attributes: pool, value: 1 },
    ]);
    await s.clock.advance(30);
    await lent;
    assert.equal(replyText(await waiting), "w");
    // A wait that times out.
    let release!: () => void;
    const held = s.client.withConnection(() =>
      new Promise<void>((resolve) => (release = resolve))
    );
    await s.clock.advance(0);
    const late = s.client.request(ops.echo(), { retry: false }).catch((e) => e);
    await s.clock.advance(100);
    assert.equal((await late).code, "POOL_TIMEOUT");
    release();
    await held;
    // A node's own error.
    await assert.rejects(
      s.client.request(ops.fail(RemoteErrorCode.NotFound, false)),
      (e: unknown) =>
        e instanceof RemoteError && e.code === "REMOTE_ERROR" &&
        e.remoteCode === RemoteErrorCode.NotFound &&
        /answered error 3: failed on request/.test(e.message),
    );

    const read = await sdk.collect();
    assert.deepEqual(read("db.client.connection.count"), [
      {
        attributes: { ...pool, "db.client.connection.state": "idle" },
        value: 1,
      },
      {
        attributes: { ...pool, "db.client.connection.state": "used" },
        value: 0,
      },
    ]);
    assert.deepEqual(read("db.client.connection.pending_requests"), [
      { attributes: pool, value: 0 },
    ]);
    assert.deepEqual(read("db.client.connection.timeouts"), [
      { attributes: pool, value: 1 },
    ]);
    const created = read("db.client.connection.create_time");
    assert.equal(created.length, 1);
    assert.deepEqual(created[0].attributes, pool);
    assert.equal(histogram(created[0].value).count, 1);
    const waited = read("db.client.connection.wait_time");
    assert.deepEqual(waited[0].attributes, pool);
    // The slow request, the waiting one (30 ms), two lends, the failing
    // request; the timed-out wait is not a wait that obtained one.
    assert.equal(histogram(waited[0].value).count, 5);
    assert.equal(histogram(waited[0].value).max, 0.03);
    const used = read("db.client.connection.use_time");
    assert.deepEqual(used[0].attributes, pool);
    // Three requests on the connection (50 ms, 0, 0) and two lends (30 ms,
    // and 100 ms while a request waited for it in vain).
    assert.equal(histogram(used[0].value).count, 5);
    assert.equal(histogram(used[0].value).max, 0.1);
    assert.equal(histogram(used[0].value).min, 0);
    assert.ok(Math.abs(histogram(used[0].value).sum - 0.18) < 1e-9);

    const operations = read("db.client.operation.duration");
    const server = {
      "db.system.name": "nodewire",
      "server.address": s.host.hostname,
      "server.port": s.host.port,
    };
    const ok = operations.find((p) => p.attributes["error.type"] === undefined);
    assert.deepEqual(ok?.attributes, server);
    assert.equal(histogram(ok!.value).count, 2);
    assert.equal(histogram(ok!.value).max, 0.05);
    const failed = operations.filter((p) => p.attributes["error.type"]);
    assert.deepEqual(
      failed.map((p) => p.attributes).sort((a, b) =>
        String(a["error.type"]).localeCompare(String(b["error.type"]))
      ),
      [
        {
          ...server,
          "error.type": String(RemoteErrorCode.NotFound),
          "db.response.status_code": String(RemoteErrorCode.NotFound),
        },
        { ...server, "error.type": "POOL_TIMEOUT" },
      ],
    );
  } finally {
    otel.close();
    await s.close();
    await sdk.shutdown();
  }
});

test("a request is one CLIENT span, the child of the caller's span, with the node's address", async () => {
  const sdk = tracesSdk();
  const s = await setup();
  const otel = instrumentClient(s.client, { tracerProvider: sdk.provider });
  try {
    const tracer = sdk.provider.getTracer("app");
    const parent = tracer.startSpan("handle order");
    const reply = api.context.with(
      api.trace.setSpan(api.ROOT_CONTEXT, parent),
      () => s.client.request(ops.echo("hi")),
    );
    assert.equal(replyText(await reply), "hi");
    parent.end();
    const [span] = sdk.spans().filter((x) => x.name === "nodewire");
    assert.ok(span, "the request's span");
    assert.equal(span.kind, api.SpanKind.CLIENT);
    assert.equal(
      span.parentSpanContext?.spanId,
      parent.spanContext().spanId,
    );
    assert.equal(span.spanContext().traceId, parent.spanContext().traceId);
    assert.deepEqual(span.attributes, {
      "db.system.name": "nodewire",
      "server.address": s.host.hostname,
      "server.port": s.host.port,
      "nodewire.attempts": 1,
    });
    assert.equal(span.status.code, api.SpanStatusCode.UNSET);
    assert.equal(span.instrumentationScope.name, "@nodewire/client");
    assert.equal(sdk.spans().length, 2, "no attempt spans for one attempt");
  } finally {
    otel.close();
    await s.close();
    await sdk.shutdown();
  }
});

test("a retried request has a child span per attempt, each failure recorded on its own span", async () => {
  const sdk = tracesSdk();
  const s = await setup({ poolConfig: { minConnections: 1 } });
  const otel = instrumentClient(s.client, { tracerProvider: sdk.provider });
  try {
    // The connection breaks under an idempotent request: retried, it
    // succeeds on the second attempt.
    const pending = s.client.request(ops.sleep(100, "again"), {
      idempotent: true,
    });
    await s.clock.advance(1);
    s.network.breakAll("cable cut");
    await s.clock.advance(10);
    await s.clock.advance(100);
    assert.equal(replyText(await pending), "again");
    const spans = sdk.spans();
    const request = spans.find((x) => x.name === "nodewire")!;
    const attempts = spans.filter((x) => x.name === "nodewire attempt");
    assert.equal(request.status.code, api.SpanStatusCode.UNSET);
    assert.equal(request.attributes["nodewire.attempts"], 2);
    assert.deepEqual(attempts.map((x) => x.attributes["nodewire.attempt"]), [
      0,
      1,
    ]);
    for (const attempt of attempts) {
      assert.equal(attempt.kind, api.SpanKind.CLIENT);
      assert.equal(
        attempt.parentSpanContext?.spanId,
        request.spanContext().spanId,
      );
      assert.equal(
        attempt.spanContext().traceId,
        request.spanContext().traceId,
      );
      assert.equal(attempt.attributes["server.port"], s.host.port);
    }
    assert.equal(attempts[0].status.code, api.SpanStatusCode.ERROR);
    assert.equal(attempts[0].attributes["error.type"], "CONNECTION_LOST");
    assert.match(String(attempts[0].status.message), /cable cut/);
    assert.equal(attempts[0].events[0]?.name, "exception");
    assert.equal(attempts[1].status.code, api.SpanStatusCode.UNSET);
    // The first attempt's span, made after the fact, starts with the request.
    const ms = (t: api.HrTime) => t[0] * 1000 + t[1] / 1e6;
    assert.ok(
      Math.abs(ms(attempts[0].startTime) - ms(request.startTime)) < 5,
      "the first attempt starts when the request does",
    );
  } finally {
    otel.close();
    await s.close();
    await sdk.shutdown();
  }
});

test("a failed request's span has the error: status, exception event, error.type of the last attempt", async () => {
  const sdk = tracesSdk();
  const s = await setup();
  const otel = instrumentClient(s.client, { tracerProvider: sdk.provider });
  try {
    const pending = s.client.request(
      ops.fail(RemoteErrorCode.Overloaded, true),
    ).then(() => undefined, (e) => e);
    // The backoff waits, 10 then 20 ms.
    await s.clock.advance(10);
    await s.clock.advance(20);
    const error = await pending;
    assert.ok(error instanceof RetriesExhaustedError);
    const spans = sdk.spans();
    const request = spans.find((x) => x.name === "nodewire")!;
    assert.equal(request.status.code, api.SpanStatusCode.ERROR);
    assert.equal(request.status.message, error.message);
    const status = String(RemoteErrorCode.Overloaded);
    assert.equal(request.attributes["error.type"], status);
    assert.equal(request.attributes["db.response.status_code"], status);
    assert.equal(request.attributes["nodewire.attempts"], 3);
    const exception = request.events.find((e) => e.name === "exception");
    assert.equal(
      exception?.attributes?.["exception.message"],
      error.message,
    );
    const attempts = spans.filter((x) => x.name === "nodewire attempt");
    assert.equal(attempts.length, 3);
    assert.ok(
      attempts.every((x) =>
        x.status.code === api.SpanStatusCode.ERROR &&
        x.attributes["error.type"] === status
      ),
    );
  } finally {
    otel.close();
    await s.close();
    await sdk.shutdown();
  }
});

test("closing the instrumentation stops it and leaves the channels unheard", async () => {
  const metrics = metricsSdk();
  const traces = tracesSdk();
  const s = await setup();
  const otel = instrumentClient(s.client, {
    meterProvider: metrics.provider,
    tracerProvider: traces.provider,
    dbSystemName: "orders-db",
    poolName: (address) => `orders/${address}`,
  });
  try {
    await s.client.request(ops.echo());
    assert.equal(traces.spans()[0].name, "orders-db");
    assert.equal(
      (await metrics.collect())("db.client.connection.max")[0].attributes[
        "db.client.connection.pool.name"
      ],
      `orders/${s.node.address}`,
    );
    assert.equal(channels.requestStart.hasSubscribers, true);
    otel.close();
    otel.close();
    assert.equal(channels.requestStart.hasSubscribers, false);
    assert.equal(channels.poolCheckout.hasSubscribers, false);
    await s.client.request(ops.echo());
    assert.equal(traces.spans().length, 1);
    const pool = s.client.manager.nodes[0].pool;
    let reads = 0;
    const stats = pool.stats.bind(pool);
    pool.stats = () => (reads++, stats());
    await metrics.collect();
    assert.equal(reads, 0, "the pools are no longer read");
  } finally {
    await s.close();
    await metrics.shutdown();
    await traces.shutdown();
  }
});

test("bad options are InvalidArgumentErrors naming the option", async () => {
  const s = await setup();
  try {
    // Refused before a provider is used: stand-ins will do.
    const meterProvider = { getMeter: () => assert.fail("not used") };
    const tracerProvider = { getTracer: () => assert.fail("not used") };
    const bad: [unknown, string][] = [
      [undefined, "options"],
      [{}, "options"],
      [{ meterProvider: {} }, "options.meterProvider"],
      [{ tracerProvider: 3 }, "options.tracerProvider"],
      [{ tracerProvider, tracer: 1 }, "options.tracer"],
      [{ meterProvider, dbSystemName: "" }, "options.dbSystemName"],
      [{ meterProvider, poolName: "orders" }, "options.poolName"],
    ];
    for (const [options, field] of bad) {
      assert.throws(
        () => instrumentClient(s.client, options as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === field,
        field,
      );
    }
    assert.equal(channels.requestStart.hasSubscribers, false);
  } finally {
    await s.close();
  }
});

test("a hedged request: the main attempt's span from the request's start, the hedge's beside it, the request's ending with the winner", async () => {
  const sdk = tracesSdk();
  try {
    await hedgeScene({}, async ({ client, clock, fast }) => {
      const otel = instrumentClient(client, { tracerProvider: sdk.provider });
      try {
        const reply = client.request(ops.echo("fast"), { idempotent: true });
        await clock.advance(10);
        assert.equal(replyText(await reply), "fast");
        const request = sdk.spans().find((x) => x.name === "nodewire")!;
        assert.ok(request, "the request's span ends with the winning reply");
        assert.equal(request.attributes["nodewire.attempts"], 2);
        assert.equal(request.attributes["server.port"], fast.port);
        const hedge = sdk.spans().find((x) =>
          x.attributes["nodewire.hedge"] === true
        );
        assert.ok(hedge, "the hedge's span");
        assert.equal(
          hedge.parentSpanContext?.spanId,
          request.spanContext().spanId,
        );
        await clock.advance(250); // the main attempt's late reply
        const main = sdk.spans().find((x) =>
          x.name === "nodewire attempt" &&
          x.attributes["nodewire.hedge"] === undefined
        );
        assert.ok(main, "the main attempt's span ends with its late reply");
        assert.equal(
          main.parentSpanContext?.spanId,
          request.spanContext().spanId,
        );
        const ms = (t: api.HrTime) => t[0] * 1000 + t[1] / 1e6;
        assert.ok(Math.abs(ms(main.startTime) - ms(request.startTime)) < 5);
        assert.equal(main.status.code, api.SpanStatusCode.UNSET);
      } finally {
        otel.close();
      }
    });
  } finally {
    await sdk.shutdown();
  }
});

test("a lazy client can be instrumented before its first call", async () => {
  const sdk = tracesSdk();
  const network = createMemoryNetwork();
  const node = await startTestNode({ runtime: network });
  const client = await Client.connect({
    hosts: [node.address],
    runtime: network,
    healthConfig: { intervalMs: 0 },
  }, { lazy: true });
  const otel = instrumentClient(client, { tracerProvider: sdk.provider });
  try {
    await client.request(ops.echo("x"));
    assert.equal(sdk.spans().filter((x) => x.name === "nodewire").length, 1);
  } finally {
    otel.close();
    await client.disconnect();
    await node.close();
    await sdk.shutdown();
  }
});
