// ./otel against providers that misbehave or outlive the client (found by
// an adversarial review): the bridge ends with the client's disconnect,
// and a tracer or meter that throws loses its own telemetry, never the
// bridge's bookkeeping nor the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rejectionsDuring } from "./support/uncaught.ts";
import { Client } from "../src/client/client.ts";
import { channels } from "../src/diagnostics/channels.ts";
import {
  InvalidArgumentError,
  RemoteError,
  RetriesExhaustedError,
} from "../src/errors.ts";
import { attachSink } from "../src/otel/instrument.ts";
import { ClientMetrics } from "../src/otel/metrics.ts";
import { ClientTelemetry } from "../src/otel/telemetry.ts";
import { RemoteErrorCode } from "../src/protocol/messages.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";
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

test("a tracer or meter that throws loses its telemetry, never a request nor the bridge's bookkeeping", async () => {
  // Node's and Bun's runners fail the test on an uncaught error; Deno's
  // only reports it on globalThis.
  const uncaught: unknown[] = [];
  const onError = (e: Event) => uncaught.push((e as ErrorEvent).error);
  const deno = "Deno" in globalThis;
  if (deno) globalThis.addEventListener("error", onError);
  const broken: SpanMethod[][] = [
    ["end"],
    ["setAttribute"],
    ["setStatus"],
    ["recordException"],
    ["end", "setAttribute", "setStatus", "recordException"],
  ];
  for (const throwing of broken) {
    for (const meterThrows of [false, true]) {
      const label = `${throwing.join("+")}${meterThrows ? ", meter" : ""}`;
      const s = await cluster(1);
      const tracer = fakeTracer(throwing);
      // All but wait_time, so that a lend is followed until it comes back.
      const meter = fakeMeter((name) =>
        meterThrows && name !== "db.client.connection.wait_time"
      );
      const metrics = new ClientMetrics(s.client, meter.meter, String);
      const telemetry = new ClientTelemetry(
        s.client,
        tracer.tracer,
        metrics,
        "nodewire",
      );
      const detach = attachSink(s.client.id, telemetry);
      try {
        const ok = Array.from(
          { length: 4 },
          (_, i) => s.client.request(ops.echo(`ok${i}`)).then(replyText),
        );
        const notFound = Array.from(
          { length: 3 },
          () =>
            s.client.request(ops.fail(RemoteErrorCode.NotFound, false))
              .catch((e) => e),
        );
        const overloaded = Array.from(
          { length: 3 },
          () =>
            s.client.request(ops.fail(RemoteErrorCode.Overloaded, true))
              .catch((e) => e),
        );
        // A lend's use time is recorded when the connection comes back.
        const lend = s.client.withConnection(async () => {});
        // The backoff waits, 10 then 20 ms.
        await s.clock.advance(10);
        await s.clock.advance(20);
        assert.deepEqual(await Promise.all(ok), ["ok0", "ok1", "ok2", "ok3"]);
        for (const e of await Promise.all(notFound)) {
          assert.ok(e instanceof RemoteError, label);
        }
        for (const e of await Promise.all(overloaded)) {
          assert.ok(e instanceof RetriesExhaustedError, label);
        }
        await lend;
        assert.equal(telemetry.size, 0, `${label}: nothing kept`);
        // 10 requests, 3 attempt spans for each retried one.
        assert.equal(tracer.spans.started, 19, label);
        assert.equal(tracer.spans.ended, 19, `${label}: every span ended`);
      } finally {
        detach();
        metrics.close();
        await s.close();
      }
    }
  }
  if (deno) globalThis.removeEventListener("error", onError);
  assert.deepEqual(uncaught, [], "nothing reported as uncaught");
});

test("instrumentClient reads its options once, at the door, and goes on with the copy", async () => {
  // The options were checked and then read again: a getter that threw on
  // the second read was instrumentClient's raw Error (and an option that
  // answered something else later was taken unchecked).
  const { close, client } = await cluster(1);
  try {
    const meter = fakeMeter();
    const tracer = fakeTracer();
    let reads = 0;
    const once = (value: unknown): PropertyDescriptor => ({
      enumerable: true,
      get() {
        if (reads++ >= 4) throw new Error("read a second time");
        return value;
      },
    });
    const options = Object.defineProperties({}, {
      meterProvider: once(meter.provider),
      tracerProvider: once(tracer.provider),
      dbSystemName: once("once"),
      poolName: once((address: string) => address),
    });
    const instrumentation = instrumentClient(client, options);
    assert.equal(reads, 4);
    await client.request(ops.echo("traced"));
    assert.equal(tracer.spans.started, 1);
    instrumentation.close();
  } finally {
    await close();
  }
});

test("a meter missing a method the bridge calls is refused at the door as the provider's, leaving nothing registered", async () => {
  // The door checked only createHistogram and addBatchObservableCallback:
  // a meter without createCounter was instrumentClient's raw TypeError,
  // one without removeBatchObservableCallback was close()'s.
  const { close, client } = await cluster(1);
  try {
    for (
      const missing of [
        "createCounter",
        "createObservableUpDownCounter",
        "removeBatchObservableCallback",
      ] as const
    ) {
      const { meter, callbacks } = fakeMeter();
      const partial: Partial<Meter> = { ...meter };
      delete partial[missing];
      assert.throws(
        () =>
          instrumentClient(client, {
            meterProvider: { getMeter: () => partial as Meter },
          }),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.argument === "provider.meter" &&
          e.message.includes(missing),
        missing,
      );
      assert.equal(callbacks.size, 0, `${missing}: no callback left behind`);
      assert.equal(channels.requestStart.hasSubscribers, false, missing);
    }
  } finally {
    await close();
  }
});

test("a poolName that throws or names no pool is refused at the door as options.poolName, leaving nothing registered", async () => {
  // It was called at the door, but what it threw came out of
  // instrumentClient raw, and a name that was no string was taken as the
  // attribute's value without a word.
  const { close, client } = await cluster(1);
  try {
    const cases: [string, (address: string) => unknown, RegExp][] = [
      ["throws", () => {
        throw new Error("no name today");
      }, /could not be called \(it threw no name today\)/],
      ["undefined", () => undefined, /expected a function returning a string/],
      ["number", () => 42, /expected a function returning a string/],
    ];
    for (const [label, poolName, message] of cases) {
      const { provider, callbacks } = fakeMeter();
      assert.throws(
        () =>
          instrumentClient(client, {
            meterProvider: provider,
            poolName: poolName as (address: string) => string,
          }),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.argument === "options.poolName" && message.test(e.message),
        label,
      );
      assert.equal(callbacks.size, 0, `${label}: no callback left behind`);
      assert.equal(channels.requestStart.hasSubscribers, false, label);
    }
  } finally {
    await close();
  }
});

test("a provider, or the meter it gives, that throws at the door is an InvalidArgumentError naming the provider, leaving nothing registered", async () => {
  // What the application's provider threw came out of instrumentClient
  // raw: no SDK class, no code, no word of which provider it was.
  const { close, client } = await cluster(1);
  try {
    const boom = new Error("no SDK here");
    const broken = fakeMeter();
    const cases: [string, Record<string, unknown>, string][] = [
      ["getTracer", {
        tracerProvider: {
          getTracer: () => {
            throw boom;
          },
        },
      }, "options.tracerProvider"],
      ["getMeter", {
        meterProvider: {
          getMeter: () => {
            throw boom;
          },
        },
      }, "options.meterProvider"],
      ["createHistogram", {
        meterProvider: {
          getMeter: () => ({
            ...broken.meter,
            createHistogram: () => {
              throw boom;
            },
          }),
        },
      }, "options.meterProvider"],
    ];
    for (const [label, options, argument] of cases) {
      assert.throws(
        () => instrumentClient(client, options as never),
        (e: unknown) =>
          e instanceof InvalidArgumentError && e.argument === argument &&
          e.cause === boom && /threw no SDK here/.test(e.message),
        label,
      );
      assert.equal(channels.requestStart.hasSubscribers, false, label);
    }
    assert.equal(broken.callbacks.size, 0, "no callback left behind");
  } finally {
    await close();
  }
});

test("a tracer or meter whose methods are async and reject loses its telemetry and leaves no unhandled rejection", async () => {
  // A throw was caught, but what an async span.end() or histogram.record()
  // returned was let go: its rejection was the process's unhandled one.
  const fail = (what: string) => async () => {
    await Promise.resolve();
    throw new Error(`${what} is down`);
  };
  let ended = 0;
  const tracer: Tracer = {
    startSpan: () => ({
      setAttribute: fail("setAttribute"),
      setStatus: fail("setStatus"),
      recordException: fail("recordException") as () => void,
      end: (() => {
        ended++;
        return fail("end")();
      }) as () => void,
    }),
  };
  const instrument = () => ({ record: fail("record"), add: fail("add") });
  const meter = {
    createHistogram: instrument,
    createCounter: instrument,
    createObservableUpDownCounter: () => ({}),
    addBatchObservableCallback: fail("addBatchObservableCallback"),
    removeBatchObservableCallback: fail("removeBatchObservableCallback"),
  } as unknown as Meter;
  const s = await cluster(1);
  try {
    const rejected = await rejectionsDuring(async () => {
      const instrumentation = instrumentClient(s.client, {
        tracerProvider: { getTracer: () => tracer },
        meterProvider: { getMeter: () => meter },
      });
      assert.equal(replyText(await s.client.request(ops.echo("ok"))), "ok");
      const retried = s.client.request(
        ops.fail(RemoteErrorCode.Overloaded, true),
      )
        .catch((e) => e);
      await s.clock.advance(10);
      await s.clock.advance(20);
      assert.ok(await retried instanceof RetriesExhaustedError);
      await s.client.withConnection(async () => {});
      instrumentation.close();
    });
    assert.ok(ended >= 4, `${ended} spans ended`);
    assert.deepEqual(rejected, []);
  } finally {
    await s.close();
  }
});

test("a meter whose removeBatchObservableCallback throws loses that, not close(): the client is let go of all the same", async () => {
  // close() threw the meter's error at its caller, before it removed its
  // checkedIn listener from the client, which then held the bridge.
  const broken = fakeMeter();
  const meter: Meter = {
    ...broken.meter,
    removeBatchObservableCallback: () => {
      throw new Error("the meter is gone");
    },
  };
  const s = await cluster(1);
  try {
    assert.equal(s.client.hasListeners("checkedIn"), false);
    const instrumentation = instrumentClient(s.client, {
      meterProvider: { getMeter: () => meter },
    });
    assert.equal(s.client.hasListeners("checkedIn"), true);
    instrumentation.close();
    assert.equal(s.client.hasListeners("checkedIn"), false);
    assert.equal(s.client.hasListeners("poolClosed"), false);
    assert.equal(channels.requestStart.hasSubscribers, false);
  } finally {
    await s.close();
  }
});
