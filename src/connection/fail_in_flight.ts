/**
 * Failing the requests in flight once the connection has ended: all of
 * them as it closes (the core's `shutDown`), with the error their frame's
 * fate calls for, or those a batch run put in the table after that (the
 * core's `failLate`). Apart from core.ts because it runs once per
 * connection, never for a request that is answered.
 *
 * @module
 */

import {
  type HeldFrame,
  isHeld,
  type Pending,
  SAFE_TO_REPEAT,
  tellError,
} from "./in_flight.ts";
import type { PendingTable } from "./pending_table.ts";

/** The parts of a connection's core that failing its requests touches. */
export interface InFlightTarget {
  /** Requests and pings in flight, by sequence number. */
  readonly table: PendingTable<Pending>;
  /** Removes a pending entry; false when it had already settled. */
  settle(pending: Pending): boolean;
}

/**
 * Fails every request in `core`'s table with `lost(sent, retryable)`. A
 * request is not `sent` when its frame is among `held` (held back by
 * congestion), `unflushed` (dropped from the writer) or `unrouted` (taken
 * by the route and never sent).
 */
export function failInFlight(
  core: InFlightTarget,
  lost: (sent: boolean, retryable: boolean) => Error,
  held: readonly HeldFrame[],
  unflushed: ReadonlySet<number> | undefined,
  unrouted: ReadonlySet<number> | undefined,
): void {
  // One error per kind of request, not one per request: a written
  // request is safe to retry only when it may be repeated.
  const errors: (Error | undefined)[] = [undefined, undefined, undefined];
  for (const p of core.table.values()) {
    core.settle(p);
    const unsent = isHeld(held, p) || unflushed?.has(p.sequence) === true ||
      (unrouted !== undefined && unrouted.has(p.sequence));
    const kind = unsent ? 0 : (p.type & SAFE_TO_REPEAT) !== 0 ? 1 : 2;
    tellError(
      p.sink,
      errors[kind] ??= lost(kind !== 0, kind !== 2),
      p.sequence,
    );
  }
}

/**
 * Fails every request in `core`'s table with `lost(false, true)`: put
 * there after the connection had closed, they never went out on an open
 * one (see `ConnectionCore.failLate`).
 */
export function failLeftBehind(
  core: InFlightTarget,
  lost: (sent: boolean, retryable: boolean) => Error,
): void {
  let error: Error | undefined;
  for (const p of core.table.values()) {
    core.settle(p);
    tellError(p.sink, error ??= lost(false, true), p.sequence);
  }
}
