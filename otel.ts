/**
 * OpenTelemetry for a nodewire client: the database client metrics and
 * spans of the semantic conventions, recorded through the application's
 * own `MeterProvider` and `TracerProvider`. Nothing here imports
 * `@opentelemetry/*`: the providers are taken as they are, by the
 * structural types below, which the API's own interfaces satisfy.
 *
 * @example Metrics and spans for a client
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { instrumentClient, type MeterProvider, type TracerProvider } from "@nodewire/client/otel";
 * // The application's providers, e.g. metrics.getMeterProvider() and
 * // trace.getTracerProvider() from @opentelemetry/api once an SDK is set up.
 * declare const meterProvider: MeterProvider;
 * declare const tracerProvider: TracerProvider;
 *
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
 * const otel = instrumentClient(client, { meterProvider, tracerProvider });
 * await client.request(new Uint8Array([1, 104, 105]));
 * otel.close();
 * await client.disconnect();
 * ```
 *
 * @module
 */

export {
  type ClientInstrumentation,
  instrumentClient,
  type OtelOptions,
} from "./src/otel/instrument.ts";
export type {
  Attributes,
  BatchObservableResult,
  Context,
  Counter,
  Histogram,
  Meter,
  MeterProvider,
  MetricOptions,
  Observable,
  Span,
  SpanContext,
  SpanOptions,
  Tracer,
  TracerProvider,
} from "./src/otel/types.ts";
