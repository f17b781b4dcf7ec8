/**
 * The client's `diagnostics_channel` channels and their messages (sizes,
 * times, addresses and errors; never payload bytes or credentials;
 * `clientId` is the client's `id`): quiet placeholders until
 * {@linkcode loadChannels} has the runtime's. Publishers ask
 * `hasSubscribers` before they build a message.
 *
 * @module
 */

import {
  type ChannelListener,
  type DiagnosticsModule,
  loadDiagnosticsModule,
} from "../runtime/diagnostics.ts";
import type { ProtocolType } from "../protocol_type.ts";

/**
 * One attempt of `Client.request` (retries and hedges are attempts too):
 * published on `nodewire:request:start`, then the same object on `:end` or
 * `:error` with its outcome. The outcome with `settles` is the request's.
 *
 * @example
 * ```ts
 * import type { RequestMessage } from "@nodewire/client/core";
 * const log = (m: RequestMessage) => console.log(m.requestId, m.attempt, m.address, m.durationMs);
 * ```
 */
export interface RequestMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The request's number in its client, the same for all its attempts. */
  readonly requestId: number;
  /** 0 for the first attempt, 1 for the first retry, and so on. */
  readonly attempt: number;
  /** Whether it is a hedge: sent beside the attempt `attempt`, to another node. */
  readonly hedge: boolean;
  /** The node, `host:port`; undefined when none was picked. */
  readonly address: string | undefined;
  /** Whether the caller said the request is safe to execute twice. */
  readonly idempotent: boolean;
  /** The request payload's size in bytes. */
  readonly payloadBytes: number;
  /**
   * When the attempt started: ms on the client's clock (NaN for an attempt
   * with no `address` when a custom clock threw).
   */
  readonly startedAt: number;
  /** The connection that carried the attempt, once it had one. */
  connectionId: number | undefined;
  /** Its wait for a pool connection, in ms, once it had one. */
  waitMs: number | undefined;
  /**
   * `end` and `error`: how long the attempt took, in ms, its wait
   * included; undefined when a custom clock threw (the outcome is
   * published all the same).
   */
  durationMs: number | undefined;
  /** `end`: the reply's size in bytes. */
  replyBytes: number | undefined;
  /** `error`: why; with `settles`, the error the request fails with. */
  error: Error | undefined;
  /** `error`: whether the client retries the request after this attempt. */
  retrying: boolean;
  /** `end` and `error`: this outcome is the request's: it is over. */
  settles: boolean;
}

/**
 * A checkout from a node's pool ended, on `nodewire:pool:checkout`: one per
 * request attempt and `ping()` (`shared`), per `withConnection()` try
 * (`exclusive`).
 *
 * @example
 * ```ts
 * import type { CheckoutMessage } from "@nodewire/client/core";
 * const log = (m: CheckoutMessage) => console.log(m.address, m.mode, m.waitMs);
 * ```
 */
export interface CheckoutMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /**
   * The pool's node, `host:port`; every node, comma-separated, for a lazy
   * client's `withConnection` that timed out during its first connect
   * (as its `PoolTimeoutError` names them).
   */
  readonly address: string;
  /** Shared by many requests (multiplexed) or lent for exclusive use. */
  readonly mode: "shared" | "exclusive";
  /** The connection handed out; undefined when the checkout failed. */
  readonly connectionId: number | undefined;
  /** How long the caller waited, in ms (0 when one was ready). */
  readonly waitMs: number;
  /** Why the checkout failed (`PoolTimeoutError`, `PoolClosedError`, ...). */
  readonly error: Error | undefined;
}

/**
 * Opening a connection ended, on `nodewire:connection:open`: it is open
 * (HELLO and handshake done) with a `connectionId`, or failed with `error`.
 *
 * @example
 * ```ts
 * import type { ConnectionOpenMessage } from "@nodewire/client/core";
 * const log = (m: ConnectionOpenMessage) => console.log(m.address, m.protocol, m.error);
 * ```
 */
export interface ConnectionOpenMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The new connection's id; undefined when opening failed. */
  readonly connectionId: number | undefined;
  /** The id the node gave in HELLO_OK, when it got that far. */
  readonly nodeId: string | undefined;
  /** The protocol negotiated, when the handshake negotiated one. */
  readonly protocol: ProtocolType | undefined;
  /** Whether the connection speaks TLS. */
  readonly encrypted: boolean;
  /** How long opening took or failed after, in ms. */
  readonly durationMs: number;
  /** Why opening failed (refused, timed out, TLS, negotiation, authentication). */
  readonly error: Error | undefined;
}

/**
 * A connection of the client closed, on `nodewire:connection:close`.
 *
 * @example
 * ```ts
 * import type { ConnectionCloseMessage } from "@nodewire/client/core";
 * const log = (m: ConnectionCloseMessage) => console.log(m.connectionId, m.error);
 * ```
 */
export interface ConnectionCloseMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The connection's id. */
  readonly connectionId: number;
  /** The node's id. */
  readonly nodeId: string | undefined;
  /** How long the connection was open, in ms. */
  readonly durationMs: number;
  /** Set when it broke (lost, reset, heartbeat missed); undefined for a clean close. */
  readonly error: Error | undefined;
}

/**
 * A node turned healthy or unhealthy, on `nodewire:node:health`.
 *
 * @example
 * ```ts
 * import type { NodeHealthMessage } from "@nodewire/client/core";
 * const log = (m: NodeHealthMessage) => console.log(m.address, m.healthy, m.reason);
 * ```
 */
export interface NodeHealthMessage {
  /** The client's `id`. */
  readonly clientId: number;
  /** The node, `host:port`. */
  readonly address: string;
  /** The node's id, when known. */
  readonly nodeId: string | undefined;
  /** The new state. */
  readonly healthy: boolean;
  /** What caused the change. */
  readonly reason: string;
}

/**
 * Each channel's name and the message published on it.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import type { DiagnosticsMessages } from "@nodewire/client/core";
 * subscribe("nodewire:request:end", (message) => {
 *   const m = message as DiagnosticsMessages["nodewire:request:end"];
 *   console.log(m.durationMs);
 * });
 * ```
 */
export interface DiagnosticsMessages {
  /** An attempt of a request starts. */
  "nodewire:request:start": RequestMessage;
  /** An attempt got its reply. */
  "nodewire:request:end": RequestMessage;
  /** An attempt failed. */
  "nodewire:request:error": RequestMessage;
  /** A connection opened, or failed to. */
  "nodewire:connection:open": ConnectionOpenMessage;
  /** A connection closed. */
  "nodewire:connection:close": ConnectionCloseMessage;
  /** A checkout from a node's pool ended. */
  "nodewire:pool:checkout": CheckoutMessage;
  /** A node turned healthy or unhealthy. */
  "nodewire:node:health": NodeHealthMessage;
}

/**
 * The names of a client's channels, for `node:diagnostics_channel`'s
 * `subscribe` (Deno, Bun, Node); {@linkcode DiagnosticsMessages} has
 * their messages.
 *
 * @example
 * ```ts
 * import { subscribe } from "node:diagnostics_channel";
 * import { DIAGNOSTICS_CHANNELS } from "@nodewire/client/core";
 * subscribe(DIAGNOSTICS_CHANNELS.nodeHealth, (message) => console.log(message));
 * ```
 */
export const DIAGNOSTICS_CHANNELS: {
  /** `nodewire:request:start` */
  readonly requestStart: "nodewire:request:start";
  /** `nodewire:request:end` */
  readonly requestEnd: "nodewire:request:end";
  /** `nodewire:request:error` */
  readonly requestError: "nodewire:request:error";
  /** `nodewire:connection:open` */
  readonly connectionOpen: "nodewire:connection:open";
  /** `nodewire:connection:close` */
  readonly connectionClose: "nodewire:connection:close";
  /** `nodewire:pool:checkout` */
  readonly poolCheckout: "nodewire:pool:checkout";
  /** `nodewire:node:health` */
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
let done = false;

/**
 * Loads the runtime's `diagnostics_channel` and puts its channels in
 * {@linkcode channels}, before a client opens its first connection so
 * that subscribers hear everything from the start. Returns `undefined`
 * once they are loaded, so that callers need not wait a tick then. Never
 * rejects: a runtime whose module fails (its `channel()` throws) leaves
 * diagnostics off, every channel quiet, as a runtime without one does.
 */
export function loadChannels(): Promise<void> | undefined {
  if (done) return undefined;
  loading ??= loadDiagnosticsModule().then((dc) => {
    done = true;
    const runtime = dc === undefined ? undefined : channelsOf(dc);
    if (runtime === undefined) return;
    loaded = dc;
    Object.assign(channels, runtime);
  });
  return loading;
}

/**
 * Every channel of `dc`, or `undefined` when asking for one throws: all
 * or none, so that no channel is half on. Exported for the tests of a
 * runtime whose own module cannot be broken on purpose (Deno's).
 */
export function channelsOf(dc: DiagnosticsModule): typeof channels | undefined {
  try {
    const found: Partial<Record<string, Channel<never>>> = {};
    for (const key of Object.keys(DIAGNOSTICS_CHANNELS)) {
      const name = DIAGNOSTICS_CHANNELS[key as keyof typeof channels];
      found[key] = dc.channel(name);
    }
    return found as typeof channels;
  } catch {
    return undefined;
  }
}

/**
 * Subscribes `listener` to the channel `name` (the channels are loaded)
 * and returns the call that unsubscribes it. Where the runtime has no
 * `diagnostics_channel`, or its calls throw, nothing is ever published
 * nor heard.
 */
export function subscribeChannel(
  name: keyof DiagnosticsMessages,
  listener: ChannelListener,
): () => void {
  const dc = loaded;
  if (dc === undefined) return () => {};
  try {
    dc.subscribe(name, listener);
  } catch {
    // The runtime's module failed after all: diagnostics stay off.
    return () => {};
  }
  return () => {
    try {
      dc.unsubscribe(name, listener);
    } catch { /* nothing to undo */ }
  };
}

/** Whether a request's messages have anyone to hear them. */
export function requestObserved(): boolean {
  return channels.requestStart.hasSubscribers ||
    channels.requestEnd.hasSubscribers ||
    channels.requestError.hasSubscribers;
}

/**
 * Where the last client id lives: on the global object, under a
 * registered symbol, so that two copies of the library in one program
 * (two versions, JSR's and npm's), which publish on the same channels,
 * never give two clients the same id.
 */
const LAST_CLIENT_ID = Symbol.for("@nodewire/client last client id");

/** A number for a new client, unique within the process. */
export function nextClientId(): number {
  const holder = globalThis as { [LAST_CLIENT_ID]?: unknown };
  const last = holder[LAST_CLIENT_ID];
  const id = (Number.isSafeInteger(last) ? last as number : 0) + 1;
  holder[LAST_CLIENT_ID] = id;
  return id;
}
