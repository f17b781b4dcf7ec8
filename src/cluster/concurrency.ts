/**
 * Running many small async jobs with a bound on how many run at once, such
 * as the pings of a health sweep over a large cluster: checking every node
 * at the same moment would open a burst of sockets and time the checks
 * against each other.
 *
 * @module
 */

import { AbortedError } from "../errors.ts";

/** Options for {@linkcode runWithConcurrency}. */
export interface RunWithConcurrencyOptions {
  /**
   * Once aborted, no further item is started; each item not yet started
   * settles as rejected with {@linkcode AbortedError}. Jobs already running
   * are left to finish (give them the signal too to cut them short).
   */
  signal?: AbortSignal;
}

/**
 * Calls `fn` on every item with at most `limit` calls in flight, starting
 * the next item as soon as one finishes. Resolves, once every started call
 * has settled, to one settled result per item in input order, like
 * `Promise.allSettled`. A failing job neither stops the others nor leaves a
 * rejection unhandled: the returned promise rejects only for a bad `limit`.
 *
 * @param items the inputs; read once, up front.
 * @param limit the most calls in flight, a positive integer or `Infinity`.
 * @param fn the job; its exceptions (thrown or rejected) become results.
 * @param options an abort signal.
 * @returns the settled results, in input order; rejects with `RangeError`
 *   when `limit` is not a positive integer or `Infinity`.
 */
export async function runWithConcurrency<T, R>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<R> | R,
  options: RunWithConcurrencyOptions = {},
): Promise<PromiseSettledResult<R>[]> {
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 1))) {
    throw new RangeError(
      `runWithConcurrency: expected a positive integer limit, got ${limit}`,
    );
  }
  const { signal } = options;
  const list = Array.from(items);
  const results: PromiseSettledResult<R>[] = new Array(list.length);
  let next = 0;

  // Each worker takes the next unstarted item until none is left, so
  // exactly `min(limit, items)` calls are in flight while work remains.
  const worker = async (): Promise<void> => {
    while (next < list.length) {
      const i = next++;
      if (signal?.aborted) {
        results[i] = {
          status: "rejected",
          reason: new AbortedError("not started: aborted", signal.reason),
        };
        continue;
      }
      try {
        results[i] = { status: "fulfilled", value: await fn(list[i], i) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };

  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(limit, list.length); w++) workers.push(worker());
  await Promise.all(workers);
  return results;
}
