/**
 * `node:diagnostics_channel` (Deno, Bun and Node have it), imported on
 * first use: Deno's first `node:` import costs milliseconds.
 *
 * @module
 */

/** A named channel as the core uses it: asked first, published to rarely. */
export interface ChannelHandle {
  /** Whether anyone subscribed; read before a message is built. */
  readonly hasSubscribers: boolean;
  /** Hands `message` to every subscriber, synchronously. */
  publish(message: unknown): void;
}

/** A subscriber: the message and the channel's name. */
export type ChannelListener = (message: unknown, name: string | symbol) => void;

/** The module's calls the core uses. */
export interface DiagnosticsModule {
  /** The channel named `name`; the same object for the same name. */
  channel(name: string): ChannelHandle;
  /** Subscribes `listener` to the channel named `name`. */
  subscribe(name: string, listener: ChannelListener): void;
  /** Removes a subscription; false when there was none. */
  unsubscribe(name: string, listener: ChannelListener): boolean;
}

let loading: Promise<DiagnosticsModule | undefined> | undefined;

/**
 * The runtime's `node:diagnostics_channel`, or `undefined` where there is
 * none (a browser, a worker without Node compatibility): then nothing is
 * published and nobody can subscribe.
 */
export function loadDiagnosticsModule(): Promise<
  DiagnosticsModule | undefined
> {
  loading ??= import("node:diagnostics_channel").then(
    (dc): DiagnosticsModule => ({
      channel: (name) => dc.channel(name),
      subscribe: (name, listener) => dc.subscribe(name, listener),
      unsubscribe: (name, listener) => dc.unsubscribe(name, listener),
    }),
    () => undefined,
  );
  return loading;
}
