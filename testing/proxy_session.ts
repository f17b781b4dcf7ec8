/**
 * One proxied connection of a fault proxy: the client's connection and its
 * forward connection to the node, the two pipes between them (the faults
 * acting on each direction are in proxy_pipe.ts), and how the pair ends.
 *
 * @module
 */

import type { ByteChannel, RuntimeAdapter } from "../src/runtime/types.ts";
import { Pipe, type ProxyHost } from "./proxy_pipe.ts";

export type { ProxyHost } from "./proxy_pipe.ts";

/** One client connection and its forward connection to the node. */
export class Session {
  readonly proxy: ProxyHost;
  readonly client: ByteChannel;
  node: ByteChannel | undefined;
  readonly toNode: Pipe;
  readonly toClient: Pipe;
  /** Bytes let through since the budgets were last set. */
  used = 0;
  /** A budget ran out: nothing more is let through. */
  doomed = false;
  finished = false;
  #clientClosed = false;
  #nodeClosed = false;
  readonly #connecting = new AbortController();
  readonly #onFinish: (session: Session, error?: Error) => void;

  constructor(
    proxy: ProxyHost,
    client: ByteChannel,
    onFinish: (session: Session, error?: Error) => void,
  ) {
    this.proxy = proxy;
    this.client = client;
    this.#onFinish = onFinish;
    this.toNode = new Pipe(this, false);
    this.toClient = new Pipe(this, true);
    this.#attach(client, this.toNode, () => (this.#clientClosed = true));
  }

  /**
   * Feeds what `channel` reads into `pipe`: its end ends the pipe, its
   * failure resets the session.
   */
  #attach(channel: ByteChannel, pipe: Pipe, closed: () => void): void {
    channel.onData((chunk) => pipe.input(chunk));
    channel.onClose((error) => {
      closed();
      if (error) this.reset();
      else pipe.end();
      this.#checkDone();
    });
  }

  /** How many more bytes `limit` lets through, or `undefined` without one. */
  budgetLeft(limit: number | undefined): number | undefined {
    return limit === undefined ? undefined : Math.max(0, limit - this.used);
  }

  async connect(adapter: RuntimeAdapter): Promise<void> {
    const target = this.proxy.target;
    let node: ByteChannel;
    try {
      node = await adapter.connect({
        hostname: target.hostname,
        port: target.port,
        signal: this.#connecting.signal,
      });
    } catch {
      if (this.finished) return;
      this.proxy.stats.upstreamFailures++;
      // What a client of a proxy sees when the node behind it is gone.
      this.reset();
      return;
    }
    if (this.finished) {
      node.destroy();
      return;
    }
    this.node = node;
    this.#attach(node, this.toClient, () => (this.#nodeClosed = true));
    this.toNode.connected();
  }

  /** Drops both sides at once with a reset (for `error`, when given). */
  reset(error?: Error): void {
    if (this.finished) return;
    this.doomed = true;
    this.#finish(error);
    this.client.destroy();
    this.node?.destroy();
  }

  /** Closes both sides cleanly (FIN), dropping what is still queued. */
  closeBoth(): void {
    if (this.finished) return;
    this.doomed = true;
    this.#finish();
    this.client.close();
    this.node?.close();
  }

  #checkDone(): void {
    if (this.#clientClosed && (this.#nodeClosed || this.node === undefined)) {
      this.#finish();
    }
  }

  #finish(error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.#connecting.abort();
    this.toNode.stop();
    this.toClient.stop();
    this.#onFinish(this, error);
  }
}
