/**
 * The OpenTelemetry API as `./otel` calls it: subsets of the API's
 * interfaces of the same names, so the application's providers fit.
 *
 * @module
 */

/**
 * Attributes, as the API's: `undefined` leaves one out.
 *
 * @example
 * ```ts
 * import type { Attributes } from "@nodewire/client/otel";
 * const attributes: Attributes = { "server.port": 7000 };
 * ```
 */
export interface Attributes {
  /** An attribute's value, by its name. */
  [key: string]: string | number | boolean | undefined;
}

/**
 * What a batch callback reports through, as the API's; an observable is
 * what `createObservableUpDownCounter` returned.
 *
 * @example
 * ```ts
 * import type { BatchObservableResult } from "@nodewire/client/otel";
 * declare const result: BatchObservableResult;
 * declare const count: object;
 * result.observe(count, 3);
 * ```
 */
export interface BatchObservableResult {
  /** Reports a value of `observable`. */
  observe(observable: object, value: number, attributes?: Attributes): void;
}

/**
 * A meter, as the API's: the calls `./otel` makes (`options` as the API's
 * `MetricOptions`).
 *
 * @example
 * ```ts
 * import type { Meter } from "@nodewire/client/otel";
 * declare const meter: Meter;
 * meter.createCounter("db.client.connection.timeouts").add(1);
 * ```
 */
export interface Meter {
  /** A histogram. */
  createHistogram(
    name: string,
    options?: object,
  ): { record(value: number, attributes?: Attributes): void };
  /** A counter. */
  createCounter(
    name: string,
    options?: object,
  ): { add(value: number, attributes?: Attributes): void };
  /** An asynchronous up-down counter. */
  createObservableUpDownCounter(name: string, options?: object): object;
  /** Reads `observables` through one callback at each collection. */
  addBatchObservableCallback(
    callback: (result: BatchObservableResult) => void,
    observables: object[],
  ): void;
  /** Undoes `addBatchObservableCallback`. */
  removeBatchObservableCallback(
    callback: (result: BatchObservableResult) => void,
    observables: object[],
  ): void;
}

/**
 * The application's meter provider, as the API's `MeterProvider`.
 *
 * @example
 * ```ts
 * import type { MeterProvider } from "@nodewire/client/otel";
 * declare const provider: MeterProvider;
 * const meter = provider.getMeter("app");
 * ```
 */
export interface MeterProvider {
  /** The meter of a scope. */
  getMeter(name: string, version?: string): Meter;
}

/**
 * A span, as the API's: the calls `./otel` makes.
 *
 * @example
 * ```ts
 * import type { Span } from "@nodewire/client/otel";
 * declare const span: Span;
 * span.end();
 * ```
 */
export interface Span {
  /** Sets an attribute. */
  setAttribute(key: string, value: string | number | boolean): unknown;
  /** Sets the status; code 2 is ERROR. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Adds an `exception` event. */
  recordException(exception: Error): void;
  /** Ends it, now or at `endTime` (ms since the epoch). */
  end(endTime?: number): void;
}

/**
 * A context, as the API's: `./otel` passes one holding a request's span
 * as the parent of its attempts' spans.
 *
 * @example
 * ```ts
 * import type { Context } from "@nodewire/client/otel";
 * declare const context: Context;
 * context.getValue(Symbol.for("OpenTelemetry Context Key SPAN"));
 * ```
 */
export interface Context {
  /** The value under `key`. */
  getValue(key: symbol): unknown;
  /** A copy with `value` under `key`. */
  setValue(key: symbol, value: unknown): Context;
  /** A copy without `key`. */
  deleteValue(key: symbol): Context;
}

/**
 * A tracer, as the API's.
 *
 * @example
 * ```ts
 * import type { Tracer } from "@nodewire/client/otel";
 * declare const tracer: Tracer;
 * tracer.startSpan("nodewire").end();
 * ```
 */
export interface Tracer {
  /**
   * Starts a span of `kind` (2 is CLIENT) at `startTime` (ms since the
   * epoch; default now), the child of the one in `context` (default: the
   * active one).
   */
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Attributes; startTime?: number },
    context?: Context,
  ): Span;
}

/**
 * The application's tracer provider, as the API's `TracerProvider`.
 *
 * @example
 * ```ts
 * import type { TracerProvider } from "@nodewire/client/otel";
 * declare const provider: TracerProvider;
 * const tracer = provider.getTracer("app");
 * ```
 */
export interface TracerProvider {
  /** The tracer of a scope. */
  getTracer(name: string, version?: string): Tracer;
}
