/**
 * One instrumented client's spans and metrics, from its messages. Once an
 * attempt fails and is retried, its span is made after the fact; later
 * attempts get their own: the common case costs one span.
 *
 * @module
 */

import type { Client } from "../client/client.ts";
import type {
  CheckoutMessage,
  ConnectionOpenMessage,
  RequestMessage,
} from "../diagnostics/channels.ts";
import {
  NodewireError,
  PoolTimeoutError,
  RemoteError,
  RetriesExhaustedError,
} from "../errors.ts";
import { letGo } from "../errors/base.ts";
import type { ClientMetrics } from "./metrics.ts";
import type { Attributes, Context, Span, Tracer } from "./types.ts";

/** `SpanKind.CLIENT` of the API. */
const CLIENT = 2;
/** `SpanStatusCode.ERROR` of the API. */
const ERROR = 2;
/** The API's key of a context's span: `Symbol.for`, so copies interoperate. */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/** A request under way. */
interface RequestState {
  /** When its first attempt started, ms on the client's clock. */
  readonly startedAt: number;
  /** The same moment as ms since the epoch, for an attempt span made later. */
  readonly wallStart: number;
  /** The request's span, when tracing. */
  readonly span: Span | undefined;
  /** The first attempt, while it has no outcome. */
  first: RequestMessage | undefined;
  /** Whether its attempts have spans: it made more than one. */
  split: boolean;
  /** Attempts started (retries and hedges included). */
  attempts: number;
  /** The node of the latest attempt that had one. */
  address: string | undefined;
}

/** What an instrumented client's telemetry hears, by message. */
export interface TelemetrySink {
  /** An attempt started. */
  requestStarted(message: RequestMessage): void;
  /** An attempt got its reply. */
  requestReplied(message: RequestMessage): void;
  /** An attempt failed. */
  requestFailed(message: RequestMessage): void;
  /** A connection opened, or failed to. */
  connectionOpened(message: ConnectionOpenMessage): void;
  /** A checkout ended. */
  checkedOut(message: CheckoutMessage): void;
}

/** Turns one client's messages into spans and metrics. */
export class ClientTelemetry implements TelemetrySink {
  readonly #requests = new Map<number, RequestState>();
  /** Attempt spans until their attempt's outcome. */
  readonly #attempts = new Map<RequestMessage, Span>();

  /** `system` is `db.system.name`, also the spans' name. */
  constructor(
    readonly client: Client,
    readonly tracer: Tracer | undefined,
    readonly metrics: ClientMetrics | undefined,
    readonly system: string,
  ) {}

  /** @internal Requests and attempt spans under way, for tests. */
  get size(): number {
    return this.#requests.size + this.#attempts.size;
  }

  requestStarted(m: RequestMessage): void {
    if (m.attempt === 0 && !m.hedge) {
      // Started synchronously inside `client.request()`: the active
      // context, and so the parent, is the caller's.
      this.#requests.set(m.requestId, {
        startedAt: m.startedAt,
        wallStart: wallNow(),
        span: this.#start(this.system, {
          kind: CLIENT,
          attributes: { "db.system.name": this.system },
        }),
        first: m,
        split: false,
        attempts: 1,
        address: m.address,
      });
      return;
    }
    const state = this.#requests.get(m.requestId);
    if (state === undefined) return;
    state.attempts++;
    if (m.address !== undefined) state.address = m.address;
    if (state.span === undefined) return;
    // A second attempt: from now on each has a span, the first one's
    // (still out, beside a hedge) from the request's start.
    if (!state.split && state.first !== undefined) {
      this.#attemptSpan(state, state.first, state.wallStart);
    }
    state.split = true;
    this.#attemptSpan(state, m, undefined);
  }

  requestReplied(m: RequestMessage): void {
    this.#outcome(m, undefined);
  }

  requestFailed(m: RequestMessage): void {
    this.#outcome(m, m.error);
  }

  /** An attempt's outcome; with `settles`, the request's. */
  #outcome(m: RequestMessage, error: Error | undefined): void {
    const state = this.#requests.get(m.requestId);
    if (state !== undefined) {
      if (state.first === m) state.first = undefined;
      if (m.address !== undefined) state.address = m.address;
      // The first failure that leads to a retry gives the first attempt
      // its span, after the fact.
      if (m.retrying && !state.split && state.span !== undefined) {
        state.split = true;
        this.#attemptSpan(state, m, state.wallStart);
      }
    }
    // Its span may outlive the request: a hedge that lost the race.
    const span = this.#attempts.get(m);
    this.#attempts.delete(m);
    if (m.settles) this.#requests.delete(m.requestId);
    // The maps are done with before the application's meter and tracer
    // run: what they throw loses their own telemetry, nothing else.
    this.#used(m);
    if (span !== undefined) end(span, attemptError(error));
    if (m.settles && state !== undefined) this.#finish(state, m, error);
  }

  connectionOpened(m: ConnectionOpenMessage): void {
    if (m.error === undefined) this.metrics?.created(m.address, m.durationMs);
  }

  checkedOut(m: CheckoutMessage): void {
    const metrics = this.metrics;
    if (metrics === undefined) return;
    if (m.error === undefined) {
      metrics.waited(
        m.address,
        m.waitMs,
        m.mode === "exclusive" ? m.connectionId : undefined,
      );
    } else if (m.error instanceof PoolTimeoutError) {
      metrics.timedOut(m.address);
    }
  }

  /** An attempt's time on its connection, once it had one. */
  #used(m: RequestMessage): void {
    if (
      this.metrics !== undefined && m.address !== undefined &&
      m.waitMs !== undefined && m.durationMs !== undefined
    ) {
      try {
        this.metrics.used(m.address, m.durationMs - m.waitMs);
      } catch { /* the meter's own loss */ }
    }
  }

  /** A span for attempt `m`, started now or at `startTime`. */
  #attemptSpan(
    state: RequestState,
    m: RequestMessage,
    startTime: number | undefined,
  ): void {
    const attributes: Attributes = {
      "db.system.name": this.system,
      "nodewire.attempt": m.attempt,
      ...this.#server(m.address),
    };
    if (m.hedge) attributes["nodewire.hedge"] = true;
    const span = this.#start(
      `${this.system} attempt`,
      { kind: CLIENT, attributes, startTime },
      contextOf(state.span!),
    );
    if (span !== undefined) this.#attempts.set(m, span);
  }

  /** A span from the tracer, if any and if it did not throw. */
  #start(...args: Parameters<Tracer["startSpan"]>): Span | undefined {
    try {
      return this.tracer?.startSpan(...args);
    } catch {
      return undefined;
    }
  }

  /** The request is over: its duration is recorded and its span ends. */
  #finish(state: RequestState, m: RequestMessage, error: unknown): void {
    const endedAt = m.startedAt + (m.durationMs ?? 0);
    const attributes: Attributes = {
      "db.system.name": this.system,
      ...this.#server(state.address),
    };
    if (error !== undefined) Object.assign(attributes, errorAttributes(error));
    try {
      this.metrics?.operation((endedAt - state.startedAt) / 1000, attributes);
    } catch { /* the meter's own loss */ }
    if (state.span === undefined) return;
    end(state.span, error, {
      ...attributes,
      "nodewire.attempts": state.attempts,
    });
  }

  /** `server.address` and `server.port` of the node at `address`. */
  #server(address: string | undefined): Attributes {
    const host = address === undefined
      ? undefined
      : this.client.manager.node(address)?.host;
    return host === undefined
      ? {}
      : { "server.address": host.hostname, "server.port": host.port };
  }
}

/**
 * `error.type`: a node's status code (also `db.response.status_code`), else
 * the error's `code`; the last attempt's for `RetriesExhaustedError` (the
 * conventions prefer the original error to a wrapper).
 */
export function errorAttributes(error: unknown): Attributes {
  const original = attemptError(error);
  if (original instanceof RemoteError) {
    const status = String(original.remoteCode);
    return { "error.type": status, "db.response.status_code": status };
  }
  if (original instanceof NodewireError) return { "error.type": original.code };
  if (original instanceof Error && original.name) {
    return { "error.type": original.name };
  }
  return { "error.type": "_OTHER" };
}

/** The attempt's own error inside a `RetriesExhaustedError`. */
function attemptError(error: unknown): unknown {
  return error instanceof RetriesExhaustedError && error.cause !== undefined
    ? error.cause
    : error;
}

/**
 * Ends `span` with `attributes`, failed when there is an `error`. Each
 * call is the application's tracer code: one that throws loses what it
 * was to record, and the others are still made.
 */
function end(span: Span, error: unknown, attributes: Attributes = {}): void {
  if (error !== undefined) {
    const e = error instanceof Error ? error : new Error(String(error));
    call(span, "recordException", e);
    call(span, "setStatus", { code: ERROR, message: e.message });
    attributes["error.type"] = errorAttributes(error)["error.type"];
  }
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) call(span, "setAttribute", key, value);
  }
  call(span, "end");
}

/**
 * `span[method](a, b)`, whose throw is the tracer's own loss, and so is
 * the rejection of what an async one returns (let go of, never the
 * process's unhandled rejection).
 */
function call(span: Span, method: keyof Span, a?: unknown, b?: unknown): void {
  try {
    letGo(
      (span[method] as (a: unknown, b: unknown) => unknown).call(span, a, b),
    );
  } catch { /* swallowed, as a sink's throw is (attachSink) */ }
}

/** Now, in ms since the epoch, finer than `Date.now()`. */
function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A context whose span is `span`: the parent of the spans started in it. */
function contextOf(span: Span): Context {
  return mapContext(new Map([[SPAN_KEY, span]]));
}

function mapContext(values: Map<symbol, unknown>): Context {
  return {
    getValue: (key) => values.get(key),
    setValue: (key, value) => mapContext(new Map(values).set(key, value)),
    deleteValue: (key) => {
      const copy = new Map(values);
      copy.delete(key);
      return mapContext(copy);
    },
  };
}
