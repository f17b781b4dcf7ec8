/**
 * One set of `diagnostics_channel` subscriptions for every instrumented
 * client: each message goes to the telemetry of the client it names. The
 * subscriptions exist only while some client is instrumented, so an
 * application that instruments none leaves every channel unheard (and
 * every client's request path on its no-subscriber branch).
 *
 * @module
 */

import { subscribeChannel } from "../diagnostics/channels.ts";
import type {
  CheckoutMessage,
  ConnectionOpenMessage,
  DiagnosticsMessages,
  RequestMessage,
} from "../diagnostics/messages.ts";

/** What an instrumented client's telemetry hears, by message. */
export interface TelemetrySink {
  /** An attempt started. */
  requestStarted(message: RequestMessage): void;
  /** An attempt got its reply. */
  requestReplied(message: RequestMessage): void;
  /** An attempt failed. */
  requestFailed(message: RequestMessage): void;
  /** A connection opened, or failed to. */
  connectionOpened(message: ConnectionOpenMessage): void;
  /** A checkout ended. */
  checkedOut(message: CheckoutMessage): void;
}

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
  if (sinks.size === 0) subscribeAll();
  let set = sinks.get(clientId);
  if (set === undefined) sinks.set(clientId, set = new Set());
  set.add(sink);
  return () => {
    if (!set.delete(sink)) return;
    if (set.size === 0) sinks.delete(clientId);
    if (sinks.size === 0) unsubscribeAll();
  };
}

function subscribeAll(): void {
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
