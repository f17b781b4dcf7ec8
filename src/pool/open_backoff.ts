/**
 * The schedule a pool's opener backs off by after failed opens, and its
 * background refill after connections that die as they open. Apart from
 * the opener so the numbers and their reasons read in one place.
 *
 * @module
 */

/**
 * First delay of background refilling after a factory failure, doubled on
 * each further failure: the retry schedule's defaults, so a refusing node
 * sees a handful of attempts, not a storm.
 */
export const BACKOFF_INITIAL_MS = 100;
/** Upper bound of that delay: a recovered node is noticed within 5 s. */
export const BACKOFF_MAX_MS = 5000;

/** The delay after the `n`th failure in a row (from 1). */
export const backoffAfter = (n: number): number =>
  Math.min(BACKOFF_INITIAL_MS * 2 ** (n - 1), BACKOFF_MAX_MS);
/**
 * A connection that breaks unused sooner than this after it opened proves
 * nothing about the node (one that kills each connection as its handshake
 * ends, or a moment later): the background refill backs off.
 */
export const YOUNG_DEATH_MS = 1000;
