/**
 * OpenTelemetry metrics and spans for a client, through the application's
 * own providers (see {@linkcode instrumentClient}); nothing here imports
 * `@opentelemetry/*`.
 *
 * @example
 * ```ts
 * import type { Client } from "@nodewire/client";
 * import { instrumentClient, type MeterProvider } from "@nodewire/client/otel";
 * declare const client: Client;
 * declare const meterProvider: MeterProvider; // e.g. metrics.getMeterProvider()
 * instrumentClient(client, { meterProvider });
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
  Meter,
  MeterProvider,
  Span,
  Tracer,
  TracerProvider,
} from "./src/otel/types.ts";
