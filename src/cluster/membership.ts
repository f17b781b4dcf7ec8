/**
 * What live membership needs beside the manager: the table of slots that
 * indexes the dense per-node arrays the balancers read, and the checks on
 * what `addNode` and `removeNode` are given.
 *
 * @module
 */

import { parseHost, sameNodeKey } from "../config/hosts.ts";
import type { HostAddress } from "../config/shapes.ts";
import { rejectUrlInHost } from "../config/url.ts";
import { ConfigError } from "../errors.ts";

/**
 * The slots of the manager's nodes and the array of their loads, indexed
 * by slot. A removed node's slot is reused by the next node added (the
 * removed node has moved its count to a cell of its own first), so the
 * array only grows when more nodes are members at once than ever before.
 * It starts with room to spare, and grows by doubling: a grown array is a
 * new array, so whoever holds the old one (the nodes, the balancer) must
 * be given the new one; `claim` says when.
 */
export class SlotTable {
  /** In-flight counts by slot. Replaced, not resized, when it grows. */
  loads: Int32Array;
  readonly #free: number[] = [];
  #next = 0;

  /** Room for `members` nodes, and as many again to be added. */
  constructor(members: number) {
    this.loads = new Int32Array(Math.max(8, 2 * members));
  }

  /**
   * A free slot, its load zeroed. `grew` is true when the array had to
   * grow: `loads` is then a new array holding the old values.
   */
  claim(): { slot: number; grew: boolean } {
    const reused = this.#free.pop();
    if (reused !== undefined) {
      this.loads[reused] = 0;
      return { slot: reused, grew: false };
    }
    const slot = this.#next++;
    if (slot < this.loads.length) return { slot, grew: false };
    const grown = new Int32Array(2 * this.loads.length);
    grown.set(this.loads);
    this.loads = grown;
    return { slot, grew: true };
  }

  /** Gives `slot` back, once its node no longer counts there. */
  release(slot: number): void {
    this.#free.push(slot);
  }
}

/**
 * Parses a host given to `addNode` like a configured one: `host`,
 * `host:port`, `[ipv6]:port` or a bare IPv6 literal, and never a URL or
 * anything holding credentials.
 *
 * @throws {ConfigError} naming `host`.
 */
export function parseNewHost(entry: unknown): HostAddress {
  if (typeof entry !== "string") {
    throw new ConfigError("host", entry, "expected a host string");
  }
  rejectUrlInHost(entry, "host");
  return parseHost(entry, "host");
}

/**
 * The {@linkcode sameNodeKey} of what `removeNode` is given, so that
 * `db:7000`, `db` (the default port), ` DB.:7000 ` name the same node.
 *
 * @throws {ConfigError} naming `address` for something that is no address.
 */
export function parseNodeAddress(entry: unknown): string {
  if (typeof entry !== "string") {
    throw new ConfigError("address", entry, "expected a node's address string");
  }
  rejectUrlInHost(entry, "address");
  return sameNodeKey(parseHost(entry, "address"));
}
