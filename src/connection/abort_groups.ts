/**
 * The abort listeners of one connection's requests in flight.
 *
 * @module
 */

import { AbortedError } from "../errors.ts";
import type { Pending } from "./in_flight.ts";

/**
 * One listener per signal, however many requests in flight on the
 * connection share it. A listener per request made each
 * `addEventListener` and `removeEventListener` scan the signal's
 * listeners: quadratic for a signal that thousands of requests share
 * (aborting 20,000 blocked Deno's event loop for 6.8 s), and Node warns
 * of a leak past ten listeners on one signal.
 */
export class AbortGroups {
  readonly #groups = new Map<AbortSignal, Set<Pending>>();
  readonly #aborted: (pending: Pending, error: AbortedError) => void;

  /**
   * `aborted` is called for each request in flight whose signal aborts,
   * with the error it fails with: one for all of a signal's requests, as
   * one error stands for one cause elsewhere (a connection's loss), since
   * each costs a stack trace (5-30 µs on V8).
   */
  constructor(aborted: (pending: Pending, error: AbortedError) => void) {
    this.#aborted = aborted;
  }

  /** Listens to `signal` (not aborted yet) for `pending`. */
  add(pending: Pending, signal: AbortSignal): void {
    let group = this.#groups.get(signal);
    if (group === undefined) {
      group = new Set();
      this.#groups.set(signal, group);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    group.add(pending);
    pending.abort = signal;
  }

  /** `pending` settled: its signal no longer concerns it. */
  remove(pending: Pending): void {
    const signal = pending.abort!;
    pending.abort = undefined;
    const group = this.#groups.get(signal);
    if (group === undefined || !group.delete(pending) || group.size > 0) {
      return;
    }
    this.#groups.delete(signal);
    signal.removeEventListener("abort", this.#onAbort);
  }

  #onAbort = (event: Event): void => {
    const signal = event.target as AbortSignal;
    const group = this.#groups.get(signal);
    if (group === undefined) return;
    this.#groups.delete(signal);
    const error = new AbortedError("request aborted", signal.reason);
    for (const pending of group) {
      // Its listener is gone with the group: nothing to remove.
      pending.abort = undefined;
      this.#aborted(pending, error);
    }
  };
}
