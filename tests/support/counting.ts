/**
 * Wrappers that count what is still alive, for leak checks that work the
 * same on every runtime: live timers of a clock, open channels of an
 * adapter.
 *
 * @module
 */

import type { Clock, TimerHandle } from "../../src/clock.ts";
import type { DatagramChannel } from "../../src/runtime/datagram.ts";
import type { ByteChannel, RuntimeAdapter } from "../../src/runtime/types.ts";

/**
 * A clock that delegates to another and counts timers set and not yet
 * fired or cleared.
 *
 * @example
 * ```ts
 * import { systemClock } from "@nodewire/client";
 * import { CountingClock } from "@nodewire/client/testing";
 * const clock = new CountingClock(systemClock);
 * clock.clearTimeout(clock.setTimeout(() => {}, 10));
 * console.log(clock.liveTimers); // 0
 * ```
 */
export class CountingClock implements Clock {
  readonly #inner: Clock;
  readonly #live = new Set<TimerHandle>();

  /** Wraps `inner`. */
  constructor(inner: Clock) {
    this.#inner = inner;
  }

  /** Timers set and neither fired nor cleared. */
  get liveTimers(): number {
    return this.#live.size;
  }

  /** The inner clock's time. */
  now(): number {
    return this.#inner.now();
  }

  /** Sets a timer on the inner clock and counts it until it fires. */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = this.#inner.setTimeout(() => {
      this.#live.delete(handle);
      fn();
    }, ms);
    this.#live.add(handle);
    return handle;
  }

  /** Clears a timer and stops counting it. */
  clearTimeout(handle: TimerHandle): void {
    this.#live.delete(handle);
    this.#inner.clearTimeout(handle);
  }
}

/**
 * Wraps an adapter and counts channels whose close the runtime has not yet
 * reported, on both the connecting and the accepting side, and datagram
 * sockets not yet closed (`openDatagrams`; only when the adapter has
 * `datagram`).
 *
 * @example
 * ```ts
 * import { getAdapter } from "@nodewire/client";
 * import { countChannels } from "@nodewire/client/testing";
 * const counted = countChannels(await getAdapter());
 * console.log(counted.openChannels); // 0
 * ```
 */
export function countChannels(
  adapter: RuntimeAdapter,
): RuntimeAdapter & {
  readonly openChannels: number;
  readonly openDatagrams: number;
} {
  let open = 0;
  let openDatagrams = 0;
  const trackDatagram = (socket: DatagramChannel): DatagramChannel => {
    openDatagrams++;
    let onClose: (error?: Error) => void = () => {};
    socket.onClose((error) => {
      openDatagrams--;
      onClose(error);
    });
    return new Proxy(socket, {
      get(target, key) {
        if (key === "onClose") {
          return (fn: (error?: Error) => void) => (onClose = fn);
        }
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  const datagram = adapter.datagram?.bind(adapter);
  const track = (channel: ByteChannel): ByteChannel => {
    open++;
    let onClose: (error?: Error) => void = () => {};
    let closed = false;
    channel.onClose((error) => {
      if (!closed) open--;
      closed = true;
      onClose(error);
    });
    return new Proxy(channel, {
      get(target, key) {
        if (key === "onClose") {
          return (fn: (error?: Error) => void) => (onClose = fn);
        }
        const value = Reflect.get(target, key);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  return {
    name: adapter.name,
    get openChannels() {
      return open;
    },
    get openDatagrams() {
      return openDatagrams;
    },
    connect: async (options) => track(await adapter.connect(options)),
    listen: (options, onConnection) =>
      adapter.listen(options, (channel) => onConnection(track(channel))),
    ...(datagram === undefined ? {} : {
      datagram: async (options) => trackDatagram(await datagram(options)),
    }),
  };
}
