/**
 * How a connection ends: closing gracefully, destroying, the node's
 * GOODBYE, the stream closing under it, the request route it closes, and
 * the errors a connection no longer open fails work with. Runs a few
 * times per connection, never per request; the state it moves stays in the Connection, whose request path
 * and pools read it on every request.
 *
 * @module
 */

import {
  ConnectionClosedError,
  type ConnectionLostError,
  type Endpoint,
  InvalidArgumentError,
} from "../errors.ts";
import { missingMethod } from "../runtime/contract.ts";
import { asError, letGo } from "../errors/base.ts";
import type { Message } from "../protocol/frame.ts";
import { destroyQuietly, sayGoodbye, streamClosedError } from "./closing.ts";
import type { ConnectionCore } from "./core.ts";
import { lostError } from "./in_flight.ts";
import { switching } from "./tls_switching.ts";
import type { RequestRoute } from "./types.ts";

/** Where a connection is in its life. */
export type ConnectionState = "open" | "closing" | "closed";

/** Reads and moves the state a connection keeps in a field of its own. */
export interface StateAccess {
  /** The state now. */
  get(): ConnectionState;
  /** Moves to `state`. */
  set(state: ConnectionState): void;
}

/**
 * The end of one connection's life: what `close()` and `destroy()` do,
 * what a GOODBYE and a closed stream do, and the errors that follow.
 */
export class ConnectionLifecycle {
  /** Settles when the connection is gone: with the error if it broke. */
  readonly closed: Promise<Error | undefined>;
  readonly #endpoint: Endpoint;
  readonly #core: ConnectionCore;
  readonly #state: StateAccess;
  #resolveClosed!: (error: Error | undefined) => void;
  #closeError: Error | undefined;
  /** How it ended when no error says it (a lost error's reason). */
  #closedHow = "the connection was closed";

  /** The lifecycle of the connection to `endpoint` that `core` serves. */
  constructor(endpoint: Endpoint, core: ConnectionCore, state: StateAccess) {
    this.#endpoint = endpoint;
    this.#core = core;
    this.#state = state;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /**
   * Stops taking requests, lets those in flight finish, says GOODBYE and
   * closes the stream; resolves once closed.
   */
  async close(): Promise<void> {
    const state = this.#state;
    if (state.get() === "open") {
      state.set("closing");
      this.#closeWhenIdle(true);
    }
    await this.closed;
  }

  /** Ends the connection at once; `error` is the cause its requests get. */
  destroy(error?: Error): void {
    if (this.#state.get() === "closed") return;
    // `closed` settles with an Error or nothing, whatever a caller passed
    // (asError never throws: a value String() cannot take is told by its
    // kind).
    if (error !== undefined) error = asError(error);
    this.#closedHow = "destroyed by this client";
    this.#finish(
      error ?? new ConnectionClosedError(this.#endpoint, { retryable: true }),
    );
    // A custom channel's destroy that throws: the connection has ended
    // all the same, and the caller asked for nothing more.
    destroyQuietly(this.#core.channel, error);
  }

  /** A node's GOODBYE: take no new work; what is in flight finishes. */
  onGoodbye = (): void => {
    const state = this.#state;
    // Closing already (a GOODBYE or close() before): that close finishes
    // it. Each further GOODBYE must not add a wait of its own.
    if (state.get() !== "open") return;
    state.set("closing");
    this.#closeWhenIdle(false);
  };

  /**
   * Closes the stream (after a GOODBYE if `bye`) once nothing is in
   * flight, unless the connection has ended meanwhile.
   */
  #closeWhenIdle(bye: boolean): void {
    const core = this.#core;
    if (core.table.size === 0) return this.#closeStream(bye);
    core.whenIdle().then(() => {
      if (this.#state.get() === "closing") this.#closeStream(bye);
    });
  }

  /** The stream closed under the connection, with `error` if it broke. */
  onChannelClose = (error?: Error): void => {
    const state = this.#state.get();
    if (state === "closed") return;
    this.#finish(streamClosedError(this.#endpoint, error, state === "closing"));
  };

  /**
   * Sends requests over `route` from now on, closing the route before it,
   * and returns the receiver of its replies (see Connection.routeRequests).
   * Once the connection is closed, `route` is closed at once, and refused.
   */
  route(route: RequestRoute): (message: Message) => boolean {
    const core = this.#core;
    // Checked before anything changes: the request path reads the route's
    // maxPayload and calls its methods on every request.
    checkRoute(route);
    if (this.#state.get() === "closed") {
      route.close();
      throw new ConnectionClosedError(this.#endpoint);
    }
    core.route?.close();
    core.route = route;
    return core.routedReceiver();
  }

  /** Why a connection no longer open refuses a request. */
  refusal(): Error {
    return this.#state.get() === "closed"
      ? this.lostError(false)
      : new ConnectionClosedError(this.#endpoint);
  }

  /**
   * The error for work the ended connection fails: `sent` and `retryable`
   * as {@linkcode lostError} takes them, for the loss `cause`.
   */
  lostError(
    sent: boolean,
    cause: Error | undefined = this.#closeError,
    retryable = true,
  ): ConnectionLostError {
    return lostError(this.#endpoint, sent, cause, retryable, this.#closedHow);
  }

  /**
   * Ends the connection and closes the stream, after a GOODBYE if `bye`
   * and the stream can carry one: during a TLS switch it carries the
   * handshake, and a plaintext frame there would only break it (the
   * switch then fails as lost, and its secure channel is destroyed).
   */
  #closeStream(bye: boolean): void {
    const core = this.#core;
    if (core.writer.splitting) {
      // Called from inside the write of a large payload's header (a
      // custom channel handed a reply back at once, and its sink closed):
      // ended now, the stream was cut between that header and its
      // payload, and the GOODBYE dropped with the frames not yet written.
      // The payload follows in the same call; the close comes after it,
      // and waits for what that call added to the table meanwhile (a
      // batch run's next requests).
      queueMicrotask(() => {
        if (this.#state.get() === "closing") this.#closeWhenIdle(bye);
      });
      return;
    }
    if (bye && !switching.has(core.channel)) sayGoodbye(core.writer);
    this.#closedHow = bye
      ? "closed by this client"
      : "closed by the node (it said GOODBYE)";
    this.#finish(undefined);
    // A peer that reads nothing would hold a graceful close open for good
    // (it waits to flush), and the process with it; nothing is owed to it
    // now that every request has settled.
    if (core.writer.congested) destroyQuietly(core.channel, undefined);
    else {
      try {
        letGo(core.channel.close());
      } catch {
        // A custom channel's close that throws: the socket may stay open
        // unless destroyed, and the connection has ended all the same.
        destroyQuietly(core.channel, undefined);
      }
    }
  }

  /** Moves to closed and fails everything pending exactly once. */
  #finish(error: Error | undefined): void {
    if (this.#state.get() === "closed") return;
    this.#state.set("closed");
    this.#closeError = error;
    this.#core.shutDown((sent, retryable) =>
      this.lostError(sent, error, retryable)
    );
    this.#resolveClosed(error);
  }
}

/**
 * Throws unless `route` is a {@linkcode RequestRoute}: an object with
 * `send`, `close` and `tooLarge` methods, a `maxPayload` that is an
 * integer of 0 or more, and a `withdraw` method if any.
 *
 * @throws {InvalidArgumentError} naming what is wrong.
 */
function checkRoute(route: unknown): void {
  const method = "Connection.routeRequests";
  const problem = missingMethod(route, ["send", "close", "tooLarge"]);
  if (problem !== undefined) {
    throw new InvalidArgumentError(
      "route",
      route,
      `expected a RequestRoute, but ${problem.wrong}`,
      { method, cause: problem.cause },
    );
  }
  const r = route as Record<string, unknown>;
  for (const [name, wrong] of ROUTE_FIELDS) {
    let value: unknown;
    try {
      value = r[name];
    } catch (cause) {
      throw new InvalidArgumentError(
        `route.${name}`,
        undefined,
        "could not be read",
        { method, cause },
      );
    }
    const expected = wrong(value);
    if (expected !== undefined) {
      throw new InvalidArgumentError(`route.${name}`, value, expected, {
        method,
      });
    }
  }
}

/** The fields of a route besides its methods, and what is wrong with each. */
const ROUTE_FIELDS: readonly [
  string,
  (value: unknown) => string | undefined,
][] = [
  [
    "maxPayload",
    (v) =>
      Number.isSafeInteger(v) && (v as number) >= 0
        ? undefined
        : "expected an integer of 0 or more (bytes)",
  ],
  [
    "withdraw",
    (v) =>
      v === undefined || typeof v === "function"
        ? undefined
        : "expected a function or nothing",
  ],
];
