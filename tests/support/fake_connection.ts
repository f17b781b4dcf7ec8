/**
 * A connection without a socket, for testing a pool on its own.
 *
 * @module
 */

import type { PoolableConnection } from "../../src/pool/types.ts";

let nextId = 1;

/**
 * A {@linkcode PoolableConnection} that only keeps the state a pool looks
 * at, and records what was done to it. A test sets `inFlight` and `isOpen`
 * directly, breaks it with {@linkcode FakeConnection.break}, and reads
 * `closeCalls` and `destroyedWith` afterwards.
 *
 * @example
 * ```ts
 * import { ConnectionPool } from "@nodewire/client";
 * import { FakeConnection } from "@nodewire/client/testing";
 * const pool = new ConnectionPool({
 *   address: "127.0.0.1:7000",
 *   config: { minConnections: 0, maxConnections: 2 },
 *   factory: () => Promise.resolve(new FakeConnection()),
 * });
 * const connection = await pool.getConnection();
 * pool.returnConnection(connection);
 * await pool.close();
 * console.log(connection.closeCalls); // 1
 * ```
 */
export class FakeConnection implements PoolableConnection {
  /** Given, or the next of a process-wide increasing count. */
  readonly id: number;
  /** Requests pending on it; set by the test. */
  inFlight = 0;
  /** False once closed, destroyed or broken (or set by the test). */
  isOpen = true;
  /** Settles when it is gone: with the error if it broke. */
  readonly closed: Promise<Error | undefined>;
  /** How many times `close()` was called. */
  closeCalls = 0;
  /** Whether `destroy()` was called. */
  destroyed = false;
  /** The error `destroy()` was given, if any. */
  destroyedWith: Error | undefined;
  #settle!: (error: Error | undefined) => void;

  /** A fresh open connection, with the next id unless `id` is given. */
  constructor(id?: number) {
    this.id = id ?? nextId++;
    this.closed = new Promise((resolve) => (this.#settle = resolve));
  }

  /** Closes at once; a subclass may close later through `markClosed`. */
  close(): Promise<void> {
    this.closeCalls++;
    this.isOpen = false;
    this.markClosed(undefined);
    return Promise.resolve();
  }

  /** Closes at once, recording `error`. */
  destroy(error?: Error): void {
    this.destroyed = true;
    this.destroyedWith = error;
    this.isOpen = false;
    this.markClosed(error);
  }

  /** The peer went away: the connection breaks with `error`. */
  break(error: Error = new Error("connection reset by peer")): void {
    this.isOpen = false;
    this.markClosed(error);
  }

  /** Settles `closed` (only the first call counts). */
  protected markClosed(error: Error | undefined): void {
    this.#settle(error);
  }
}
