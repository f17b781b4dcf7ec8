/**
 * A typed `EventTarget`: listeners are checked against an event map (unknown
 * names are type errors, each listener's event type is inferred), and the
 * target knows whether anyone listens, so an emitter builds no event nobody
 * hears.
 *
 * The public surface names only our own types and the globals every
 * runtime's typings declare (`Event`, `AbortSignal`), never the listener and
 * options types that only the DOM lib declares, so the published `.d.ts`
 * type-checks in a Node or Bun project without the DOM lib.
 *
 * @module
 */

/**
 * Options for {@linkcode TypedEventTarget.addEventListener}, as
 * `EventTarget` takes them.
 *
 * @example
 * ```ts
 * import type { ListenerOptions } from "@nodewire/client/core";
 * const controller = new AbortController();
 * const options: ListenerOptions = { once: true, signal: controller.signal };
 * ```
 */
export interface ListenerOptions {
  /** Remove the listener after it ran once. */
  once?: boolean;
  /** Remove the listener when this signal aborts. */
  signal?: AbortSignal;
  /** Register for the capture phase (a distinct registration of the same listener). */
  capture?: boolean;
  /** Promise not to call `preventDefault()`; accepted for compatibility. */
  passive?: boolean;
}

/**
 * A listener for events of type `E`: a function, or an object with a
 * `handleEvent` method, as `EventTarget` accepts.
 *
 * @example
 * ```ts
 * import type { RetryEvent } from "@nodewire/client";
 * import type { TypedListener } from "@nodewire/client/core";
 * const onRetry: TypedListener<RetryEvent> = (e) => console.log(e.detail.delayMs);
 * ```
 */
export type TypedListener<E> =
  | ((event: E) => void)
  | { handleEvent(event: E): void };

/**
 * An event map: event name to the class of event dispatched under it, as
 * in {@linkcode ClientEventMap}.
 *
 * @example
 * ```ts
 * import type { EventMap, TypedEventTarget } from "@nodewire/client/core";
 * function logAll<M extends EventMap<M>>(target: TypedEventTarget<M>, types: (keyof M & string)[]): void {
 *   for (const type of types) target.addEventListener(type, (e) => console.log(e.type));
 * }
 * ```
 */
export type EventMap<M> = { [K in keyof M]: Event };

/**
 * An `EventTarget` typed by the event map `M`. Registration, dispatch
 * order, `once`, `signal`, `capture` and `handleEvent` objects behave
 * exactly as `EventTarget`'s: at run time it is one (`instanceof
 * EventTarget` holds).
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * const client = await Client.connect({ hosts: ["127.0.0.1:7000"] });
 * client.addEventListener("retry", (e) => console.log(e.detail.delayMs, "ms"));
 * ```
 */
export interface TypedEventTarget<M extends EventMap<M>> {
  /**
   * Registers `listener` for events named `type`; a name not in the map
   * is a type error, and the listener's event type follows from the name.
   * Adding the same listener twice (same `capture`) is ignored.
   */
  addEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M[K]> | null,
    options?: boolean | ListenerOptions,
  ): void;
  /** Removes a listener added with the same `type`, `listener` and `capture`. */
  removeEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M[K]> | null,
    options?: boolean | Pick<ListenerOptions, "capture">,
  ): void;
  /** Dispatches `event` to the listeners of its type; `false` when one called `preventDefault()` on a cancelable event. */
  dispatchEvent(event: M[keyof M]): boolean;
  /**
   * Whether any listener is registered for `type` now. A `once` listener
   * stops counting when it runs, a `signal`ed one when the signal aborts.
   * Emitters check this before building an event, which keeps unheard
   * events free.
   */
  hasListeners(type: keyof M & string): boolean;
}

/**
 * The class behind {@linkcode TypedEventTarget}: extend it with an event
 * map, `class Emitter extends TypedEventTarget<MyEvents> {}`.
 *
 * @example
 * ```ts
 * import { TypedEventTarget } from "@nodewire/client/core";
 * class PingEvent extends Event {
 *   readonly at: number;
 *   constructor(at: number) {
 *     super("ping");
 *     this.at = at;
 *   }
 * }
 * class Emitter extends TypedEventTarget<{ ping: PingEvent }> {
 *   ping(): void {
 *     if (this.hasListeners("ping")) this.dispatchEvent(new PingEvent(performance.now()));
 *   }
 * }
 * const emitter = new Emitter();
 * emitter.addEventListener("ping", (e) => console.log("pong at", e.at));
 * emitter.ping();
 * ```
 */
export const TypedEventTarget: new <
  M extends EventMap<M>,
>() => TypedEventTarget<M> = class TypedEventTarget extends EventTarget {
  /**
   * Per event type, per listener, its registrations. `EventTarget` is
   * given only the callback and `capture`: `once` and `signal` are done
   * here, because `EventTarget` drops such listeners without telling
   * anyone (and runtimes differ in whether that goes through an
   * overridden `removeEventListener`).
   */
  #listeners = new Map<string, Map<Listener, Slots>>();

  override addEventListener(
    type: string,
    listener: Listener | null,
    options?: boolean | ListenerOptions,
  ): void {
    if (listener === null) return; // a no-op for EventTarget too
    if (typeof listener !== "function" && typeof listener !== "object") {
      // Not a listener: EventTarget says why (a TypeError).
      super.addEventListener(type, listener as never, options);
      return;
    }
    // As EventTarget converts them: the name to a string (a symbol throws),
    // the options to booleans; a signal that is none throws before
    // anything is registered.
    type = `${type}`;
    const capture = isCapture(options);
    const { once, signal, passive } = typeof options === "object" &&
        options !== null
      ? options
      : NO_OPTIONS;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError("options.signal must be an AbortSignal");
    }
    if (signal?.aborted) return; // EventTarget ignores it too
    let byListener = this.#listeners.get(type);
    const slots = byListener?.get(listener);
    // EventTarget ignores a second registration, whatever its options.
    if ((capture ? slots?.capture : slots?.bubble) !== undefined) return;
    const registration: Registration = { callback: listener };
    if (once) {
      // Removed before it runs, as EventTarget does with `once`.
      registration.callback = (event: Event): void => {
        this.#drop(type, listener, capture, registration);
        // As EventTarget calls it: `this` is the target (the event's currentTarget).
        if (typeof listener === "function") listener.call(this, event);
        else listener.handleEvent(event);
      };
    }
    super.addEventListener(type, registration.callback, {
      capture,
      passive: !!passive,
    });
    if (byListener === undefined) {
      byListener = new Map();
      this.#listeners.set(type, byListener);
    }
    if (slots === undefined) {
      byListener.set(
        listener,
        capture
          ? { bubble: undefined, capture: registration }
          : { bubble: registration, capture: undefined },
      );
    } else if (capture) slots.capture = registration;
    else slots.bubble = registration;
    signal?.addEventListener(
      "abort",
      () => this.#drop(type, listener, capture, registration),
      { once: true },
    );
  }

  override removeEventListener(
    type: string,
    listener: Listener | null,
    options?: boolean | Pick<ListenerOptions, "capture">,
  ): void {
    if (listener === null) return;
    // Refused as addEventListener refuses them (the pool's and the
    // manager's callers would otherwise never learn of the mistake).
    if (typeof listener !== "function" && typeof listener !== "object") {
      super.removeEventListener(type, listener as never, options);
      return;
    }
    type = `${type}`; // a symbol throws
    let capture: boolean;
    try {
      capture = isCapture(options);
    } catch {
      // Options that cannot be read (a revoked proxy, a throwing getter)
      // match no registration, and removing nothing is what
      // removeEventListener does for anything it does not know.
      return;
    }
    const slots = this.#listeners.get(type)?.get(listener);
    const registration = capture ? slots?.capture : slots?.bubble;
    if (registration !== undefined) {
      this.#drop(type, listener, capture, registration);
    }
  }

  hasListeners(type: string): boolean {
    return this.#listeners.size !== 0 && this.#listeners.has(type);
  }

  /** Removes `registration`, unless it is gone or a later one took its place. */
  #drop(
    type: string,
    listener: Listener,
    capture: boolean,
    registration: Registration,
  ): void {
    const byListener = this.#listeners.get(type);
    const slots = byListener?.get(listener);
    if (byListener === undefined || slots === undefined) return;
    if (capture) {
      if (slots.capture !== registration) return;
      slots.capture = undefined;
    } else {
      if (slots.bubble !== registration) return;
      slots.bubble = undefined;
    }
    // An object, not the boolean: Node 20 ignores `capture` given as `true`.
    super.removeEventListener(type, registration.callback, { capture });
    if (slots.bubble !== undefined || slots.capture !== undefined) return;
    byListener.delete(listener);
    if (byListener.size === 0) this.#listeners.delete(type);
  }
} as never;

type Callback = (event: Event) => void;
type Listener = Callback | { handleEvent(event: Event): void };
/** One registration; its identity tells it from a later one of the same listener. */
interface Registration {
  /** What EventTarget holds: the listener, or the `once` wrapper around it. */
  callback: Listener;
}
interface Slots {
  bubble: Registration | undefined;
  capture: Registration | undefined;
}

const NO_OPTIONS: ListenerOptions = Object.freeze({});

function isCapture(options?: boolean | { capture?: boolean }): boolean {
  return !!(typeof options === "object" && options !== null
    ? options.capture
    : options);
}
