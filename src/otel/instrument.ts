/**
 * {@linkcode instrumentClient}: OpenTelemetry metrics and spans for a
 * client, from the application's own providers.
 *
 * @module
 */

import { Client } from "../client/client.ts";
import {
  func,
  methods as objectWith,
  optionsError,
  readOptions,
  refuse,
  type Rules,
  text,
} from "../config/options.ts";
import {
  ClientClosedError,
  InvalidArgumentError,
  messageOf,
  NodewireError,
} from "../errors.ts";
import {
  type CheckoutMessage,
  type ConnectionOpenMessage,
  type DiagnosticsMessages,
  loadChannels,
  type RequestMessage,
  subscribeChannel,
} from "../diagnostics/channels.ts";
import { ClientMetrics } from "./metrics.ts";
import { ClientTelemetry, type TelemetrySink } from "./telemetry.ts";
import type { MeterProvider, TracerProvider } from "./types.ts";

/** The instrumentation scope the meter and the tracer are named after. */
const SCOPE = "@nodewire/client";

/**
 * What the providers gave; `undefined` stands for no provider. Every
 * method the bridge calls, so that a meter without one is refused here,
 * not met as a TypeError later (in close(), for the last).
 */
const MADE: Rules = {
  tracer: objectWith("startSpan"),
  meter: objectWith(
    "createHistogram",
    "createCounter",
    "createObservableUpDownCounter",
    "addBatchObservableCallback",
    "removeBatchObservableCallback",
  ),
};

const RULES: Rules = {
  meterProvider: objectWith("getMeter"),
  tracerProvider: objectWith("getTracer"),
  dbSystemName: text,
  poolName: func,
};

/**
 * Options of {@linkcode instrumentClient}: at least one provider.
 *
 * @example
 * ```ts
 * import type { MeterProvider, OtelOptions } from "@nodewire/client/otel";
 * declare const meterProvider: MeterProvider;
 * const options: OtelOptions = { meterProvider, poolName: (address) => `orders/${address}` };
 * ```
 */
export interface OtelOptions {
  /** Records the metrics: the application's (or the global) meter provider. */
  meterProvider?: MeterProvider;
  /** Records the spans: the application's (or the global) tracer provider. */
  tracerProvider?: TracerProvider;
  /** `db.system.name`, also the spans' name. Default `"nodewire"`. */
  dbSystemName?: string;
  /**
   * `db.client.connection.pool.name` of a node's pool, a string. Default:
   * its `host:port`; name them apart when several clients of the same
   * nodes are instrumented. Called at once for the client's nodes (a
   * throw or a name that is no string fails `instrumentClient`), later
   * for a node added.
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
   * Idempotent. The client's disconnect does it too, once finished.
   */
  close(): void;
}

/**
 * Records the OpenTelemetry database client metrics (operation duration,
 * connection pool metrics) and a CLIENT span per request (a child span per
 * attempt when it made several) for `client`, through the application's
 * providers, from its `diagnostics_channel` messages. docs/OBSERVABILITY.md
 * lists the metrics and attributes.
 *
 * @throws {InvalidArgumentError} for an unknown option, a provider that
 *   is not one, throws, or gives no tracer or meter (or a meter that
 *   throws as its instruments are made), neither provider, or a
 *   `poolName` that throws or returns no string for a node.
 * @throws {ClientClosedError} when the client is disconnected.
 * @example
 * ```ts
 * import type { Client } from "@nodewire/client";
 * import { instrumentClient, type TracerProvider } from "@nodewire/client/otel";
 * declare const client: Client;
 * declare const tracerProvider: TracerProvider; // e.g. trace.getTracerProvider()
 * const instrumentation = instrumentClient(client, { tracerProvider });
 * instrumentation.close();
 * ```
 */
export function instrumentClient(
  client: Client,
  options: OtelOptions,
): ClientInstrumentation {
  const method = "instrumentClient";
  if (!(client instanceof Client)) {
    throw new InvalidArgumentError("client", client, "expected a Client", {
      method,
    });
  }
  // Read once: the bridge goes on with what was checked (a getter is not
  // asked again).
  const read = readOptions<OtelOptions>(method, options, RULES);
  const { meterProvider, tracerProvider } = read;
  if (meterProvider === undefined && tracerProvider === undefined) {
    throw new InvalidArgumentError(
      "options",
      options,
      "a meterProvider, a tracerProvider or both",
      { method },
    );
  }
  const system = read.dbSystemName ?? "nodewire";
  const poolName = read.poolName ?? ((address: string) => address);
  if (client.closed) throw new ClientClosedError();

  // Both first: a provider that throws or gives no tracer or meter
  // leaves nothing registered.
  const tracer = fromProvider(
    "tracerProvider",
    tracerProvider,
    () => tracerProvider?.getTracer(SCOPE),
  );
  const meter = fromProvider(
    "meterProvider",
    meterProvider,
    () => meterProvider?.getMeter(SCOPE),
  );
  const made = optionsError(
    method,
    { tracer, meter },
    MADE,
    undefined,
    "provider",
  );
  if (made !== undefined) throw made;
  const metrics = meter === undefined ? undefined : fromProvider(
    "meterProvider",
    meterProvider,
    () => new ClientMetrics(client, meter, poolName),
  );
  const telemetry = new ClientTelemetry(client, tracer, metrics, system);
  const detach = attachSink(client.id, telemetry);
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    detach();
    client.removeEventListener("poolClosed", ended);
    metrics?.close();
  };
  // It ends with the client: once a disconnect has closed every pool
  // (after the messages of the requests it cancelled), not when a
  // removed node's pool closes. A pool's close() is then its promise.
  const ended = (): void => {
    const pools = client.manager.nodes.map((node) => node.pool);
    if (client.closed && pools.every((pool) => pool.isClosed)) {
      Promise.all(pools.map((pool) => pool.close())).then(close)
        .catch(() => {});
    }
  };
  client.addEventListener("poolClosed", ended);
  return { close };
}

/**
 * `make()`, which calls the application's provider `option` or what it
 * gave: what it throws (an SDK error, a broken stand-in) is
 * instrumentClient's InvalidArgumentError naming the provider, with the
 * throw as its cause; the bridge's own errors (a poolName's) go as they are.
 */
function fromProvider<T>(
  option: string,
  provider: unknown,
  make: () => T,
): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof NodewireError) throw error;
    throw refuse(
      "instrumentClient",
      `options.${option}`,
      provider,
      `could not be used (it threw ${messageOf(error)})`,
      error,
    );
  }
}

// One set of channel subscriptions serves every instrumented client: each
// message goes to the telemetry of the client it names. They exist only
// while some client is instrumented, so the request paths of the others
// stay on their no-subscriber branch.

type Route = (sink: TelemetrySink, message: never) => void;

const ROUTES: Partial<Record<keyof DiagnosticsMessages, Route>> = {
  "nodewire:request:start": (sink, m: RequestMessage) => sink.requestStarted(m),
  "nodewire:request:end": (sink, m: RequestMessage) => sink.requestReplied(m),
  "nodewire:request:error": (sink, m: RequestMessage) => sink.requestFailed(m),
  "nodewire:connection:open": (sink, m: ConnectionOpenMessage) =>
    sink.connectionOpened(m),
  "nodewire:pool:checkout": (sink, m: CheckoutMessage) => sink.checkedOut(m),
};

const sinks = new Map<number, Set<TelemetrySink>>();
let unsubscribers: (() => void)[] = [];

/**
 * Sends `clientId`'s messages to `sink` until the returned call. A sink
 * that throws loses that message: a subscriber's exception would
 * otherwise surface as an uncaught error of the process.
 */
export function attachSink(clientId: number, sink: TelemetrySink): () => void {
  let set = sinks.get(clientId);
  if (set === undefined) sinks.set(clientId, set = new Set());
  set.add(sink);
  subscribeAll();
  return () => {
    if (!set.delete(sink)) return;
    if (set.size === 0) sinks.delete(clientId);
    if (sinks.size === 0) unsubscribeAll();
  };
}

function subscribeAll(): void {
  // A lazy client may not have loaded the channels yet.
  const loading = loadChannels();
  if (loading !== undefined) {
    // Caught: a step that throws here would be an unhandled rejection of
    // the caller's process, with no one to hand it to; telemetry is off.
    loading.then(subscribeAll).catch(() => {});
    return;
  }
  if (sinks.size === 0 || unsubscribers.length > 0) return;
  for (const [name, route] of Object.entries(ROUTES)) {
    unsubscribers.push(
      subscribeChannel(
        name as keyof DiagnosticsMessages,
        (message) => deliver(route, message),
      ),
    );
  }
}

function unsubscribeAll(): void {
  for (const unsubscribe of unsubscribers) unsubscribe();
  unsubscribers = [];
}

function deliver(route: Route, message: unknown): void {
  const set = sinks.get((message as { clientId: number }).clientId);
  if (set === undefined) return;
  for (const sink of set) {
    try {
      route(sink, message as never);
    } catch {
      // Telemetry never breaks the request it describes.
    }
  }
}
