/**
 * The few parts of the OpenTelemetry API that `./otel` calls, declared
 * structurally so the package depends on no `@opentelemetry/*` module: the
 * application's `MeterProvider` and `TracerProvider` (from
 * `@opentelemetry/api` 1.x and any SDK) fit them as they are. Each is a
 * subset of the API's interface of the same name.
 *
 * @module
 */

/**
 * Attribute values, as the API's `Attributes`.
 *
 * @example
 * ```ts
 * import type { Attributes } from "@nodewire/client/otel";
 * const attributes: Attributes = { "db.system.name": "nodewire", "server.port": 7000 };
 * ```
 */
export interface Attributes {
  /** An attribute's value, by its name; `undefined` leaves it out. */
  [key: string]: string | number | boolean | undefined;
}

/**
 * What creating an instrument takes, as the API's `MetricOptions`.
 *
 * @example
 * ```ts
 * import type { MetricOptions } from "@nodewire/client/otel";
 * const options: MetricOptions = { unit: "s", advice: { explicitBucketBoundaries: [0.001, 0.01, 0.1, 1] } };
 * ```
 */
export interface MetricOptions {
  /** What the instrument measures. */
  description?: string;
  /** Its unit, in UCUM (`s`, `{connection}`). */
  unit?: string;
  /** Hints to the SDK, such as a histogram's bucket boundaries. */
  advice?: { explicitBucketBoundaries?: number[] };
}

/**
 * A histogram, as the API's `Histogram`.
 *
 * @example
 * ```ts
 * import type { Histogram } from "@nodewire/client/otel";
 * declare const histogram: Histogram;
 * histogram.record(0.004, { "db.system.name": "nodewire" });
 * ```
 */
export interface Histogram {
  /** Records one value. */
  record(value: number, attributes?: Attributes): void;
}

/**
 * A monotonic counter, as the API's `Counter`.
 *
 * @example
 * ```ts
 * import type { Counter } from "@nodewire/client/otel";
 * declare const counter: Counter;
 * counter.add(1);
 * ```
 */
export interface Counter {
  /** Adds `value`. */
  add(value: number, attributes?: Attributes): void;
}

/**
 * An asynchronous instrument, read by a callback when metrics are
 * collected; as the API's `Observable`.
 *
 * @example
 * ```ts
 * import type { Observable } from "@nodewire/client/otel";
 * declare const observable: Observable;
 * console.log(typeof observable);
 * ```
 */
// deno-lint-ignore no-empty-interface
export interface Observable {}

/**
 * What a batch callback reports through, as the API's
 * `BatchObservableResult`.
 *
 * @example
 * ```ts
 * import type { BatchObservableResult, Observable } from "@nodewire/client/otel";
 * declare const count: Observable;
 * const callback = (result: BatchObservableResult) => result.observe(count, 3, { "db.client.connection.state": "idle" });
 * ```
 */
export interface BatchObservableResult {
  /** Reports `value` for `observable` with `attributes`. */
  observe(observable: Observable, value: number, attributes?: Attributes): void;
}

/**
 * A meter, as the API's `Meter`: the instruments `./otel` creates.
 *
 * @example
 * ```ts
 * import type { Meter } from "@nodewire/client/otel";
 * declare const meter: Meter;
 * meter.createCounter("db.client.connection.timeouts", { unit: "{timeout}" }).add(1);
 * ```
 */
export interface Meter {
  /** A histogram named `name`. */
  createHistogram(name: string, options?: MetricOptions): Histogram;
  /** A monotonic counter named `name`. */
  createCounter(name: string, options?: MetricOptions): Counter;
  /** An asynchronous up-down counter named `name`. */
  createObservableUpDownCounter(
    name: string,
    options?: MetricOptions,
  ): Observable;
  /** Reads `observables` through one callback at each collection. */
  addBatchObservableCallback(
    callback: (result: BatchObservableResult) => void,
    observables: Observable[],
  ): void;
  /** Undoes `addBatchObservableCallback`. */
  removeBatchObservableCallback(
    callback: (result: BatchObservableResult) => void,
    observables: Observable[],
  ): void;
}

/**
 * The application's meter provider, as the API's `MeterProvider` (an
 * SDK's `MeterProvider`, or `metrics.getMeterProvider()`).
 *
 * @example
 * ```ts
 * import type { MeterProvider } from "@nodewire/client/otel";
 * declare const provider: MeterProvider;
 * const meter = provider.getMeter("@nodewire/client");
 * ```
 */
export interface MeterProvider {
  /** The meter of the instrumentation scope `name`. */
  getMeter(name: string, version?: string): Meter;
}

/**
 * A span's identity, as the API's `SpanContext`.
 *
 * @example
 * ```ts
 * import type { SpanContext } from "@nodewire/client/otel";
 * declare const context: SpanContext;
 * console.log(context.traceId, context.spanId);
 * ```
 */
export interface SpanContext {
  /** The trace, 32 hex digits. */
  traceId: string;
  /** The span, 16 hex digits. */
  spanId: string;
  /** Sampling flags. */
  traceFlags: number;
}

/**
 * A span, as the API's `Span`: what `./otel` sets on its spans.
 *
 * @example
 * ```ts
 * import type { Span } from "@nodewire/client/otel";
 * declare const span: Span;
 * span.setAttribute("server.port", 7000);
 * span.end();
 * ```
 */
export interface Span {
  /** The span's identity. */
  spanContext(): SpanContext;
  /** Sets one attribute. */
  setAttribute(key: string, value: string | number | boolean): unknown;
  /** Sets the status: `code` 2 is ERROR. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Adds an `exception` event for `exception`. */
  recordException(exception: Error): void;
  /** Ends the span, now or at `endTime` (ms since the epoch). */
  end(endTime?: number): void;
}

/**
 * A context, as the API's `Context`: `./otel` passes one holding the
 * request's span as the parent of its attempts' spans.
 *
 * @example
 * ```ts
 * import type { Context } from "@nodewire/client/otel";
 * declare const context: Context;
 * console.log(context.getValue(Symbol.for("OpenTelemetry Context Key SPAN")));
 * ```
 */
export interface Context {
  /** The value under `key`. */
  getValue(key: symbol): unknown;
  /** A context with `value` under `key`. */
  setValue(key: symbol, value: unknown): Context;
  /** A context without `key`. */
  deleteValue(key: symbol): Context;
}

/**
 * What starting a span takes, as the API's `SpanOptions`.
 *
 * @example
 * ```ts
 * import type { SpanOptions } from "@nodewire/client/otel";
 * const options: SpanOptions = { kind: 2, attributes: { "db.system.name": "nodewire" } };
 * ```
 */
export interface SpanOptions {
  /** The span kind: 2 is CLIENT. */
  kind?: number;
  /** Attributes known at the start. */
  attributes?: Attributes;
  /** When it started, ms since the epoch; default now. */
  startTime?: number;
}

/**
 * A tracer, as the API's `Tracer`.
 *
 * @example
 * ```ts
 * import type { Tracer } from "@nodewire/client/otel";
 * declare const tracer: Tracer;
 * tracer.startSpan("nodewire", { kind: 2 }).end();
 * ```
 */
export interface Tracer {
  /**
   * Starts a span, the child of the span in `context` (default: the
   * active context, the caller's).
   */
  startSpan(name: string, options?: SpanOptions, context?: Context): Span;
}

/**
 * The application's tracer provider, as the API's `TracerProvider` (an
 * SDK's provider, or `trace.getTracerProvider()`).
 *
 * @example
 * ```ts
 * import type { TracerProvider } from "@nodewire/client/otel";
 * declare const provider: TracerProvider;
 * const tracer = provider.getTracer("@nodewire/client");
 * ```
 */
export interface TracerProvider {
  /** The tracer of the instrumentation scope `name`. */
  getTracer(name: string, version?: string): Tracer;
}
