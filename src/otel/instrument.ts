/**
 * {@linkcode instrumentClient}: OpenTelemetry metrics and spans for a
 * client, from the application's own providers.
 *
 * @module
 */

import { Client } from "../client/client.ts";
import { rejectUnknownKeys } from "../config/validate.ts";
import { ClientClosedError, ConfigError } from "../errors.ts";
import { attachSink } from "./hub.ts";
import { ClientMetrics } from "./metrics.ts";
import { ClientTelemetry } from "./telemetry.ts";
import type { MeterProvider, TracerProvider } from "./types.ts";

/** The instrumentation scope the meter and the tracer are named after. */
const SCOPE = "@nodewire/client";

const OPTION_KEYS = new Set([
  "meterProvider",
  "tracerProvider",
  "dbSystemName",
  "poolName",
]);

/**
 * Options of {@linkcode instrumentClient}: at least one provider.
 *
 * @example
 * ```ts
 * import type { OtelOptions } from "@nodewire/client/otel";
 * import type { MeterProvider } from "@nodewire/client/otel";
 * declare const meterProvider: MeterProvider;
 * const options: OtelOptions = { meterProvider, poolName: (address) => `orders/${address}` };
 * ```
 */
export interface OtelOptions {
  /** Records the metrics: the application's (or the global) meter provider. */
  meterProvider?: MeterProvider;
  /** Records the spans: the application's (or the global) tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * `db.system.name` of every metric and span, and the spans' name. Default
   * `"nodewire"`; name the database the nodes are, when it has a
   * well-known value in the conventions.
   */
  dbSystemName?: string;
  /**
   * `db.client.connection.pool.name` of a node's pool. Default: the node's
   * `host:port`. Give each client's pools their own names when the
   * application instruments several clients of the same nodes.
   */
  poolName?: (address: string) => string;
}

/**
 * A client's instrumentation, from {@linkcode instrumentClient}.
 *
 * @example
 * ```ts
 * import type { ClientInstrumentation } from "@nodewire/client/otel";
 * declare const instrumentation: ClientInstrumentation;
 * instrumentation.close();
 * ```
 */
export interface ClientInstrumentation {
  /**
   * Stops recording: no new spans or metric points, and the pools are no
   * longer read at collection. Spans of requests in flight are not ended.
   * Idempotent.
   */
  close(): void;
}

/**
 * Records OpenTelemetry metrics and spans for `client`, by the database
 * client conventions, through the application's providers; the package
 * itself depends on no `@opentelemetry` module. It listens on the client's
 * `diagnostics_channel` channels, so an uninstrumented client pays
 * nothing.
 *
 * Metrics: `db.client.operation.duration` (per request, retries included,
 * with `db.system.name`, `server.address`, `server.port` and, on failure,
 * `error.type`), and per node pool (`db.client.connection.pool.name`)
 * `db.client.connection.count` by `db.client.connection.state`
 * (`idle`, `used`), `.max`, `.pending_requests`, `.timeouts`,
 * `.create_time`, `.wait_time` and `.use_time`.
 *
 * Spans: one CLIENT span per request, the child of the caller's active
 * span, covering all its attempts, with the error recorded when it fails;
 * when it was retried, a child span per attempt.
 *
 * @throws {ConfigError} for an unknown option, a provider that is not
 *   one, or neither provider.
 * @throws {ClientClosedError} when the client is disconnected.
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * import { instrumentClient, type MeterProvider, type TracerProvider } from "@nodewire/client/otel";
 * declare const meterProvider: MeterProvider;
 * declare const tracerProvider: TracerProvider;
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
 * const instrumentation = instrumentClient(client, { meterProvider, tracerProvider });
 * await client.request(new Uint8Array([1, 104, 105]));
 * instrumentation.close();
 * await client.disconnect();
 * ```
 */
export function instrumentClient(
  client: Client,
  options: OtelOptions,
): ClientInstrumentation {
  if (!(client instanceof Client)) {
    throw new ConfigError("client", client, "expected a Client");
  }
  if (typeof options !== "object" || options === null) {
    throw new ConfigError("options", options, "expected an object");
  }
  rejectUnknownKeys("options", options, OPTION_KEYS);
  const { meterProvider, tracerProvider } = options;
  if (
    meterProvider !== undefined &&
    typeof meterProvider?.getMeter !== "function"
  ) {
    throw new ConfigError(
      "options.meterProvider",
      meterProvider,
      "expected a MeterProvider (with getMeter)",
    );
  }
  if (
    tracerProvider !== undefined &&
    typeof tracerProvider?.getTracer !== "function"
  ) {
    throw new ConfigError(
      "options.tracerProvider",
      tracerProvider,
      "expected a TracerProvider (with getTracer)",
    );
  }
  if (meterProvider === undefined && tracerProvider === undefined) {
    throw new ConfigError(
      "options",
      options,
      "a meterProvider, a tracerProvider or both",
    );
  }
  const system = options.dbSystemName ?? "nodewire";
  if (typeof system !== "string" || system === "") {
    throw new ConfigError(
      "options.dbSystemName",
      system,
      "expected a non-empty string",
    );
  }
  const poolName = options.poolName ?? ((address: string) => address);
  if (typeof poolName !== "function") {
    throw new ConfigError("options.poolName", poolName, "expected a function");
  }
  if (client.closed) throw new ClientClosedError();

  const metrics = meterProvider === undefined
    ? undefined
    : new ClientMetrics(client, meterProvider.getMeter(SCOPE), poolName);
  const telemetry = new ClientTelemetry(client, {
    tracer: tracerProvider?.getTracer(SCOPE),
    metrics,
    system,
  });
  const detach = attachSink(client.id, telemetry);
  let open = true;
  return {
    close(): void {
      if (!open) return;
      open = false;
      detach();
      metrics?.close();
    },
  };
}
