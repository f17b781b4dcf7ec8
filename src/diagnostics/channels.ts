/**
 * The client's `diagnostics_channel` channels. The core publishes through
 * {@linkcode channels}: quiet placeholders until {@linkcode loadChannels}
 * has the runtime's channels, then the channels themselves. Every
 * publisher asks `hasSubscribers` before it builds a message, so a channel
 * nobody listens to costs a property read and nothing else.
 *
 * @module
 */

import {
  type ChannelListener,
  type DiagnosticsModule,
  loadDiagnosticsModule,
} from "../runtime/diagnostics.ts";
import type {
  CheckoutMessage,
  ConnectionCloseMessage,
  ConnectionOpenMessage,
  DiagnosticsMessages,
  NodeHealthMessage,
  RequestMessage,
} from "./messages.ts";

/**
 * The name of every channel a client publishes on, by what it reports.
 * The names are stable; subscribe with `node:diagnostics_channel`'s
 * `subscribe(name, listener)` on Deno, Bun or Node. The message shapes
 * are in {@linkcode DiagnosticsMessages}.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import { DIAGNOSTICS_CHANNELS } from "@nodewire/client/core";
 * subscribe(DIAGNOSTICS_CHANNELS.nodeHealth, (message) => console.log(message));
 * ```
 */
export const DIAGNOSTICS_CHANNELS: {
  /** An attempt of a request starts. */
  readonly requestStart: "nodewire:request:start";
  /** An attempt got its reply: the request succeeded. */
  readonly requestEnd: "nodewire:request:end";
  /** An attempt failed; the message says whether the request goes on. */
  readonly requestError: "nodewire:request:error";
  /** A connection opened, or failed to. */
  readonly connectionOpen: "nodewire:connection:open";
  /** A connection closed. */
  readonly connectionClose: "nodewire:connection:close";
  /** A checkout from a node's pool ended. */
  readonly poolCheckout: "nodewire:pool:checkout";
  /** A node turned healthy or unhealthy. */
  readonly nodeHealth: "nodewire:node:health";
} = Object.freeze({
  requestStart: "nodewire:request:start",
  requestEnd: "nodewire:request:end",
  requestError: "nodewire:request:error",
  connectionOpen: "nodewire:connection:open",
  connectionClose: "nodewire:connection:close",
  poolCheckout: "nodewire:pool:checkout",
  nodeHealth: "nodewire:node:health",
});

/** A channel as the core publishes on it, typed by its message. */
export interface Channel<T> {
  /** Whether anyone subscribed: asked before a message is built. */
  readonly hasSubscribers: boolean;
  /** Hands `message` to the subscribers, synchronously. */
  publish(message: T): void;
}

/** What the channels stand for until the runtime's are loaded, or where there are none. */
const QUIET: Channel<never> = Object.freeze({
  hasSubscribers: false,
  publish(): void {},
});

/** The channels the core publishes on, by what they report. */
export const channels: {
  requestStart: Channel<RequestMessage>;
  requestEnd: Channel<RequestMessage>;
  requestError: Channel<RequestMessage>;
  connectionOpen: Channel<ConnectionOpenMessage>;
  connectionClose: Channel<ConnectionCloseMessage>;
  poolCheckout: Channel<CheckoutMessage>;
  nodeHealth: Channel<NodeHealthMessage>;
} = {
  requestStart: QUIET,
  requestEnd: QUIET,
  requestError: QUIET,
  connectionOpen: QUIET,
  connectionClose: QUIET,
  poolCheckout: QUIET,
  nodeHealth: QUIET,
};

let loaded: DiagnosticsModule | undefined;
let loading: Promise<void> | undefined;

/**
 * Loads the runtime's `diagnostics_channel` and puts its channels in
 * {@linkcode channels}. Called before a client opens its first connection,
 * so that subscribers hear everything from the start. Idempotent.
 */
export function loadChannels(): Promise<void> {
  loading ??= loadDiagnosticsModule().then((dc) => {
    if (dc === undefined) return;
    loaded = dc;
    for (const key of Object.keys(DIAGNOSTICS_CHANNELS)) {
      const name = DIAGNOSTICS_CHANNELS[key as keyof typeof channels];
      channels[key as keyof typeof channels] = dc.channel(name);
    }
  });
  return loading;
}

/**
 * Subscribes `listener` to the channel `name` and returns the call that
 * unsubscribes it.
 *
 * @throws {Error} when the channels are not loaded: this runtime has no
 *   `diagnostics_channel`, or no client connected yet.
 */
export function subscribeChannel(
  name: keyof DiagnosticsMessages,
  listener: ChannelListener,
): () => void {
  const dc = loaded;
  if (dc === undefined) {
    throw new Error(
      "diagnostics_channel is not available: this runtime has none, or no client connected yet",
    );
  }
  dc.subscribe(name, listener);
  return () => {
    dc.unsubscribe(name, listener);
  };
}

/** Whether a request's messages have anyone to hear them. */
export function requestObserved(): boolean {
  return channels.requestStart.hasSubscribers ||
    channels.requestEnd.hasSubscribers ||
    channels.requestError.hasSubscribers;
}

let lastClientId = 0;

/** A number for a new client, unique within the process. */
export function nextClientId(): number {
  return ++lastClientId;
}
