/**
 * Letting go of a connection without anything escaping: a close or destroy
 * of a custom connection may throw, or reject, and the pool has nobody to
 * hand that to. Apart from the roster because the opener lets go of the
 * connections it will not take in the same way.
 *
 * @module
 */

import { letGo } from "../errors/base.ts";
import type { PoolableConnection } from "./types.ts";

/**
 * Does nothing; a rejection handler for promises whose outcome is handled
 * elsewhere.
 */
export function noop(): void {}

/**
 * Closes gracefully; destroys when that fails. Never rejects. A close that
 * returns no promise (a JavaScript caller's synchronous one) is done, as a
 * heartbeat's answer that is no promise is: taken for a failure, its
 * connection was destroyed at once, cutting short the requests it let
 * finish.
 */
export function closeQuietly(conn: PoolableConnection): Promise<void> {
  try {
    return Promise.resolve(conn.close()).then(
      noop,
      (error) => destroyQuietly(conn, error),
    );
  } catch (error) {
    destroyQuietly(conn, error);
    return Promise.resolve();
  }
}

/**
 * The last resort after a failed close or check: nothing more to do if it
 * throws too, or if it returns a promise (an async destroy) that rejects.
 */
export function destroyQuietly(conn: PoolableConnection, error: unknown): void {
  try {
    letGo(conn.destroy(error instanceof Error ? error : undefined));
  } catch {
    // The connection is unusable either way and already off the books.
  }
}
