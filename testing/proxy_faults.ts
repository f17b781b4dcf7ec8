/**
 * The faults a fault proxy injects, and their checks.
 *
 * @module
 */

import { bool } from "../src/config/options.ts";
import { count, delay, type OptionNames } from "./options.ts";

/**
 * The faults a {@linkcode FaultProxy} can inject. Every field is optional;
 * a missing field means that fault is off.
 *
 * Byte budgets (`resetAfterBytes`, `dataLimit`) count the bytes a
 * connection carried in both directions since the budget was set, or since
 * the connection opened when that was later.
 *
 * @example
 * ```ts
 * import type { ProxyFaults } from "@nodewire/client/testing";
 * const slowAndChoppy: ProxyFaults = { latencyMs: 20, jitterMs: 10, chunkSize: 1 };
 * ```
 */
export interface ProxyFaults {
  /** Delay added to every chunk, in ms on the proxy's clock. Order is kept. */
  latencyMs?: number;
  /** Extra delay drawn uniformly from [0, jitterMs) per chunk, in ms. */
  jitterMs?: number;
  /**
   * Forward at most this many bytes per write: 1 delivers byte by byte.
   * On the memory network every write arrives as its own chunk; on real
   * sockets the kernel may merge pieces unless `chunkIntervalMs` spaces
   * them out.
   */
  chunkSize?: number;
  /** Time between the pieces cut by `chunkSize`, in ms. Default 0. */
  chunkIntervalMs?: number;
  /**
   * Hold every byte, both ways, on every connection (new ones included):
   * the peer looks silent, as behind a black hole or a long network pause.
   * Held bytes flow again, in order, when the stall is cleared, as TCP
   * would retransmit them.
   */
  stall?: boolean;
  /** Reset each connection (both sides) after it carried this many bytes. */
  resetAfterBytes?: number;
  /**
   * Cut each connection's next frame from the node in the middle (in its
   * payload, or in its header when the payload is under 2 bytes), forward
   * the first half and close both sides cleanly.
   */
  closeMidFrame?: boolean;
  /** Close each connection (both sides, cleanly) after it carried this many bytes. */
  dataLimit?: number;
  /**
   * Send every frame from the node to the client twice: a node that
   * answers twice. A frame is held until it is complete.
   */
  duplicateFrames?: boolean;
  /**
   * Refuse new connections (the port is unbound) and drop every open one
   * with a reset. Clearing it binds the same port again.
   */
  down?: boolean;
}

/** The checks of each fault's value. */
// NaN or Infinity as a delay armed a timer that never delivered and
// re-armed itself forever; a string was concatenated into the delay.
export const PROXY_FAULTS: OptionNames<ProxyFaults> = {
  latencyMs: delay,
  jitterMs: delay,
  chunkSize: count,
  chunkIntervalMs: delay,
  stall: bool,
  resetAfterBytes: count,
  closeMidFrame: bool,
  dataLimit: count,
  duplicateFrames: bool,
  down: bool,
};
