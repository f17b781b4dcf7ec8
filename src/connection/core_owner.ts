/**
 * The connection a core works for, as the core and the cold code beside
 * it (attaching a stream, failing what is in flight) see it. Apart from
 * core.ts so that those files name it without importing the core, which
 * imports them.
 *
 * @module
 */

import type { Endpoint } from "../errors.ts";
import type { ConnectionStats } from "./types.ts";

/**
 * The connection a core works for, as the core sees it: where errors say
 * the node is, the counters, and the way to end it.
 */
export interface CoreOwner extends Endpoint {
  /** `host:port` of the node. */
  readonly address: string;
  /** The connection's counters, updated by the core. */
  readonly stats: ConnectionStats;
  /** Ends the connection at once (a protocol violation, a node's ERROR). */
  destroy(error?: Error): void;
}
