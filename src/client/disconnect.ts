/**
 * A client's shutdown (`Client.disconnect()`): the grace period calls in
 * flight get, the cancelling of what is left after it, the bounded wait
 * for connections lent straight from a pool, and the error a call of a
 * closing client fails with.
 *
 * @module
 */

import { type Clock, holdTimer, type TimerHandle } from "../clock.ts";
import type { Logger } from "../config/shapes.ts";
import {
  blameClock,
  clearTimer,
  clockFailed,
} from "../config/clock_failure.ts";
import { disconnected } from "../cluster/log.ts";
import type { BatchHost } from "./batch.ts";
import {
  AbortedError,
  ClientClosedError,
  type ConfigError,
  RemoteError,
} from "../errors.ts";

/**
 * Options of {@linkcode Client.disconnect}.
 *
 * @example
 * ```ts
 * import { Client } from "@nodewire/client";
 * declare const client: Client;
 * await client.disconnect({ timeoutMs: 2000 }); // requests in flight get 2 s
 * ```
 */
export interface DisconnectOptions {
  /**
   * How long requests in flight may take to finish before they are
   * cancelled, in ms. Default `timeoutMs` of the config.
   */
  timeoutMs?: number;
}

/**
 * The error a call of a closing client fails with: `error` restated as a
 * {@linkcode ClientClosedError}, saying why when it was `cancelled`.
 */
export function closingError(
  error: unknown,
  cancelled: Error | undefined,
): unknown {
  if (error instanceof ClientClosedError) return error;
  // A node's answer and the caller's own abort stay what they are.
  if (error instanceof AbortedError || error instanceof RemoteError) {
    return error;
  }
  return new ClientClosedError(
    cancelled?.message ?? "the client disconnected during the request",
    { cause: error },
  );
}

/**
 * One client's shutdown, from the first `disconnect()` on. Made, then
 * started: the client holds it before its first steps run, because they
 * dispatch events (idle connections close at once when nothing is in
 * flight), and a listener that calls `disconnect()` again must find this
 * shutdown, not start another.
 */
export class Shutdown {
  /** Resolves when all of it is done. */
  readonly done: Promise<void>;
  #finish!: (run: Promise<void>) => void;
  #grace: Grace | undefined;
  #cancelled: Error | undefined;
  /**
   * A custom clock's now() threw as the shutdown timed its grace: the
   * shutdown goes on without that reading, and `done` rejects with this
   * once everything is closed.
   */
  #clockError: ConfigError | undefined;

  constructor() {
    this.done = new Promise<void>((resolve) => (this.#finish = resolve));
  }

  /** Starts shutting down, with `timeoutMs` of grace; `done` follows it. */
  start(client: BatchHost, log: Logger | undefined, timeoutMs: number): void {
    this.#finish(this.#run(client, log, timeoutMs));
  }

  /** Why requests still in flight after the grace period were cancelled. */
  get cancelled(): Error | undefined {
    return this.#cancelled;
  }

  /** The client is idle: the grace period, if one runs, is over. */
  idle(): void {
    this.#grace?.end();
  }

  /** A more urgent `disconnect()`: what is still in flight gets less time. */
  shorten(timeoutMs: number): void {
    this.#grace?.shorten(timeoutMs);
  }

  /** The clock threw (`error` names it): told once the rest is done. */
  readonly #clockThrew = (error: ConfigError): void => {
    this.#clockError ??= error;
  };

  async #run(
    { manager, path, config }: BatchHost,
    log: Logger | undefined,
    timeoutMs: number,
  ): Promise<void> {
    manager.stopHealthLoop();
    // A request waiting to be retried will not be: it ends now.
    path.stop();
    let waitedMs = 0;
    if (path.inFlight > 0) {
      const grace = this.#grace = new Grace(
        config.clock,
        timeoutMs,
        this.#clockThrew,
      );
      await grace.done;
      this.#grace = undefined;
      waitedMs = grace.elapsedMs;
    }
    if (path.inFlight > 0) {
      this.#cancelled = new ClientClosedError(
        `disconnect cancelled the request after waiting ${waitedMs} ms`,
      );
      manager.destroyConnections(this.#cancelled);
    }
    // A connection lent straight from a pool (client.manager, /core) is
    // no call of the client's, nor is a hedge's losing attempt once its
    // request has the hedge's answer, but the pools wait for them: what is
    // left of the grace bounds that wait too, or the disconnect waits for
    // the slowest node (for ever, for one that never answers).
    const grace = this.#grace = new Grace(
      config.clock,
      Math.max(0, timeoutMs - waitedMs),
      this.#clockThrew,
    );
    let shut = false;
    // The close failing (a custom clock's throw, read again below to
    // name it) ends no wait here: told once the rest is done.
    let closeFailed: [unknown] | undefined;
    const closed = manager.close().then(
      () => {},
      (error) => void (closeFailed = [error]),
    ).finally(() => {
      shut = true;
      grace.end();
    });
    await grace.done;
    this.#grace = undefined;
    if (!shut) {
      manager.destroyConnections(
        new ClientClosedError(
          "disconnect closed the connection, still in use " +
            `${waitedMs + grace.elapsedMs} ms after it was called`,
        ),
      );
    }
    await closed;
    log?.(disconnected());
    if (this.#clockError !== undefined) throw this.#clockError;
    if (closeFailed !== undefined) {
      throw blameClock(config.clock, closeFailed[0]);
    }
  }
}

/**
 * A disconnect's grace period: over (`done`) when the client is idle
 * (`end()`) or at the deadline, which a later, more urgent disconnect may
 * bring forward (a second Ctrl-C must not wait out the first's grace).
 * Its timer keeps the process alive: the caller of `disconnect()` awaits
 * it, and a call in flight that holds no socket (a custom channel, the
 * memory network) left Node nothing else, so it ended the program inside
 * the await.
 */
export class Grace {
  readonly #clock: Clock;
  readonly #clockThrew: (error: ConfigError) => void;
  #started = 0;
  #deadline = 0;
  #timer: TimerHandle | undefined;
  #resolve!: () => void;
  /** Resolves when the grace period is over. */
  readonly done: Promise<void>;

  /**
   * Starts a grace period of `timeoutMs` on `clock`. A `clock.now()` or
   * `clock.setTimeout()` that throws goes to `clockThrew` (as the
   * ConfigError naming the clock), and the grace period, which cannot be
   * timed then, is over at once: a shutdown that waited on it stopped
   * where it was, with every connection left open. A `clearTimeout()`
   * that throws goes there too, and the grace ends as it would have.
   */
  constructor(
    clock: Clock,
    timeoutMs: number,
    clockThrew: (error: ConfigError) => void,
  ) {
    this.#clock = clock;
    this.#clockThrew = clockThrew;
    this.done = new Promise<void>((resolve) => (this.#resolve = resolve));
    const now = this.#now();
    if (now === undefined) {
      this.end();
      return;
    }
    this.#started = now;
    this.#deadline = now + timeoutMs;
    this.#arm(timeoutMs);
  }

  /** How long it has lasted, in ms (0 when the clock cannot say). */
  get elapsedMs(): number {
    const now = this.#now();
    return now === undefined ? 0 : now - this.#started;
  }

  /** The clock's reading, or undefined when it threw (told). */
  #now(): number | undefined {
    try {
      return this.#clock.now();
    } catch (thrown) {
      this.#clockThrew(clockFailed(this.#clock, thrown));
      return undefined;
    }
  }

  /** Ends it now. */
  readonly end = (): void => {
    const timer = this.#timer;
    this.#timer = undefined;
    // A custom clock whose clearTimeout() throws: the grace ends all the
    // same, and the shutdown is told (disconnect() rejects with the
    // ConfigError naming the clock once everything is closed). Let out,
    // the throw kept the grace from ending (disconnect() never settled),
    // and went out of the call that ended it: the last request's
    // settling, the manager's close, the timer.
    if (timer !== undefined) this.#cleared(timer);
    this.#resolve();
  };

  /** Clears `timer`; a clock that throws is told, not thrown. */
  #cleared(timer: TimerHandle): void {
    const failed = clearTimer(this.#clock, timer);
    if (failed !== undefined) this.#clockThrew(failed);
  }

  /** Ends it `timeoutMs` from now, if that is sooner. */
  shorten(timeoutMs: number): void {
    if (this.#timer === undefined) return;
    const now = this.#now();
    // Called from inside disconnect(): the throw went to its caller, and
    // the grace ran on. A more urgent call it cannot time ends it now.
    if (now === undefined) return this.end();
    const deadline = now + timeoutMs;
    if (deadline >= this.#deadline) return;
    this.#deadline = deadline;
    // The later timer, if the clock could not clear it, finds the grace
    // over when it fires.
    this.#cleared(this.#timer);
    this.#arm(timeoutMs);
  }

  #arm(ms: number): void {
    try {
      this.#timer = this.#clock.setTimeout(this.end, ms);
    } catch (thrown) {
      this.#clockThrew(clockFailed(this.#clock, thrown, "setTimeout"));
      this.end();
      return;
    }
    holdTimer(this.#clock, this.#timer, true);
  }
}
