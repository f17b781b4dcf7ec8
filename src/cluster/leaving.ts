/**
 * The nodes `removeNode` took out whose pools still drain: the wait for
 * each (bounded by a grace period, after which its connections still in
 * use are destroyed), found again by a second removal of the same node,
 * and their connections for a disconnect to destroy. Apart from the
 * registry because a leaving node is no member any more: nothing here is
 * read when a request is routed.
 *
 * @module
 */

import { type Clock, holdTimer } from "../clock.ts";
import type { Connection } from "../connection/connection.ts";
import {
  clockFailed,
  type OnceTimer,
  onceTimer,
} from "../config/clock_failure.ts";
import {
  type ConfigError,
  ConnectionLostError,
  PoolClosedError,
} from "../errors.ts";
import type { NodeRecord } from "./node.ts";

/** A node that drains: its sameNodeKey, its connections, the wait. */
interface Leaving {
  key: string;
  connections: Connection[];
  gone: Promise<void>;
}

/** The removed nodes whose pools are still draining. */
export class LeavingNodes {
  // Removed nodes whose pools are still draining, with their sameNodeKey.
  // By node, not by key: a node removed, added again and removed again
  // has two of them draining at once, and a disconnect must end both.
  readonly #leaving = new Map<NodeRecord, Leaving>();

  /** The nodes still draining. */
  nodes(): IterableIterator<NodeRecord> {
    return this.#leaving.keys();
  }

  /** The last node removed as `key` that still drains, if any. */
  byKey(key: string): { gone: Promise<void> } | undefined {
    let found: { gone: Promise<void> } | undefined;
    for (const leaving of this.#leaving.values()) {
      if (leaving.key === key) found = leaving;
    }
    return found;
  }

  /** Destroys the connections of every node still draining. */
  destroy(error: Error): void {
    for (const { connections } of this.#leaving.values()) {
      for (const connection of connections) connection.destroy(error);
    }
  }

  /**
   * Clears and closes the pool of `node` (removed as `key`), which is
   * then leaving until its pool has closed; `graceMs` later, a connection
   * still in use is destroyed. Resolves after `gone` was called, once the
   * pool has closed.
   */
  leave(
    node: NodeRecord,
    key: string,
    clock: Clock,
    graceMs: number,
    gone: (node: NodeRecord) => void,
  ): Promise<void> {
    // Taken before the clear: the removal's deadline and a disconnect
    // destroy what is still draining among them.
    const connections = node.pool.connections();
    let close!: (closed: Promise<void>) => void;
    // Bounded as a disconnect's grace is: a connection still lent or busy
    // after `timeoutMs` is destroyed, or a withConnection callback that
    // awaits this removal would wait for it for ever, and it for them.
    // Held as that grace is: the caller awaits it, and a lent connection
    // that holds no socket (the memory network, a custom channel) left
    // Node nothing else, so it ended the program inside the await.
    // A timer the clock could not clear (below) finds the pool closed
    // and destroys nothing.
    const destroyAll = (why: string) => {
      const error = new ConnectionLostError(
        node.host,
        `node ${node.address} was removed from the client, and ${why}`,
      );
      for (const connection of connections) connection.destroy(error);
    };
    let overdue: OnceTimer | undefined;
    let unarmed: ConfigError | undefined;
    try {
      overdue = onceTimer(
        clock,
        graceMs,
        () => destroyAll(`the connection was still in use ${graceMs} ms later`),
      );
      holdTimer(clock, overdue.handle, true);
    } catch (thrown) {
      // A custom clock whose setTimeout() throws: the node leaves all the
      // same, with no grace (it cannot be timed), and removeNode() then
      // rejects with the ConfigError naming the clock. Let out, the throw
      // left the node out of the members with its pool never closed: its
      // connections open for good.
      unarmed = clockFailed(clock, thrown, "setTimeout");
    }
    const wait = new Promise<void>((resolve) => (close = resolve)).then(() => {
      this.#leaving.delete(node);
      gone(node);
      // A custom clock whose clearTimeout() throws: the node is gone all
      // the same, and removeNode() then rejects with the ConfigError
      // naming the clock. Let out first, the throw kept the node among
      // those leaving and nodeRemoved from being told, for good.
      const failed = overdue?.cancel() ?? unarmed;
      if (failed !== undefined) throw failed;
    });
    // Leaving before its pool is cleared and closed: their events come
    // from inside this call, and removing it again from a listener must
    // get this same wait, not "not a node".
    this.#leaving.set(node, { key, connections, gone: wait });
    // Waiters were never sent: the pool's retryable "cleared" failure
    // sends them elsewhere. The reason, which poolCleared and the log
    // carry, is what happened to the pool: closed for good, with a code.
    node.pool.clear(new PoolClosedError(node.pool.address, "closed"));
    close(node.pool.close());
    // After the close began: before it, the pool would replace what dies.
    if (unarmed !== undefined) {
      destroyAll(
        "its grace could not be timed (the clock's setTimeout() threw)",
      );
    }
    return wait;
  }
}
