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
  /** The span of the attempt under way, once attempts have spans. */
  attemptSpan: Span | undefined;
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

  /** `system` is `db.system.name`, also the spans' name. */
  constructor(
    readonly client: Client,
    readonly tracer: Tracer | undefined,
    readonly metrics: ClientMetrics | undefined,
    readonly system: string,
  ) {}

  requestStarted(m: RequestMessage): void {
    if (m.attempt === 0) {
      // Started synchronously inside `client.request()`: the active
      // context, and so the parent, is the caller's.
      this.#requests.set(m.requestId, {
        startedAt: m.startedAt,
        wallStart: wallNow(),
        span: this.tracer?.startSpan(this.system, {
          kind: CLIENT,
          attributes: { "db.system.name": this.system },
        }),
        attemptSpan: undefined,
        address: m.address,
      });
      return;
    }
    const state = this.#requests.get(m.requestId);
    if (state === undefined) return;
    if (m.address !== undefined) state.address = m.address;
    if (state.span !== undefined) {
      state.attemptSpan = this.#attemptSpan(state.span, m, undefined);
    }
  }

  requestReplied(m: RequestMessage): void {
    const state = this.#take(m);
    if (state === undefined) return;
    this.#used(m);
    state.attemptSpan?.end();
    this.#finish(state, m, undefined);
  }

  requestFailed(m: RequestMessage): void {
    const state = m.retrying ? this.#requests.get(m.requestId) : this.#take(m);
    if (state === undefined) return;
    if (m.address !== undefined) state.address = m.address;
    this.#used(m);
    if (state.span !== undefined) {
      // The first failure that leads to a retry gives the first attempt
      // its span, after the fact.
      const attempt = state.attemptSpan ??
        (m.retrying
          ? this.#attemptSpan(state.span, m, state.wallStart)
          : undefined);
      if (attempt !== undefined) {
        failed(attempt, attemptError(m.error));
        attempt.end();
      }
      state.attemptSpan = undefined;
    }
    if (!m.retrying) this.#finish(state, m, m.error);
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

  /** The request's state, forgotten: the request is over. */
  #take(m: RequestMessage): RequestState | undefined {
    const state = this.#requests.get(m.requestId);
    if (state === undefined) return undefined;
    this.#requests.delete(m.requestId);
    if (m.address !== undefined) state.address = m.address;
    return state;
  }

  /** An attempt's time on its connection, once it had one. */
  #used(m: RequestMessage): void {
    if (
      this.metrics !== undefined && m.address !== undefined &&
      m.waitMs !== undefined && m.durationMs !== undefined
    ) {
      this.metrics.used(m.address, m.durationMs - m.waitMs);
    }
  }

  /** A span for attempt `m`, the child of `parent`, started now or at `startTime`. */
  #attemptSpan(
    parent: Span,
    m: RequestMessage,
    startTime: number | undefined,
  ): Span | undefined {
    const attributes: Attributes = {
      "db.system.name": this.system,
      "nodewire.attempt": m.attempt,
      ...this.#server(m.address),
    };
    return this.tracer?.startSpan(
      `${this.system} attempt`,
      { kind: CLIENT, attributes, startTime },
      contextOf(parent),
    );
  }

  /** The request is over: its duration is recorded and its span ends. */
  #finish(state: RequestState, m: RequestMessage, error: unknown): void {
    const endedAt = m.startedAt + (m.durationMs ?? 0);
    const attributes: Attributes = {
      "db.system.name": this.system,
      ...this.#server(state.address),
    };
    if (error !== undefined) Object.assign(attributes, errorAttributes(error));
    this.metrics?.operation((endedAt - state.startedAt) / 1000, attributes);
    const span = state.span;
    if (span === undefined) return;
    for (const [key, value] of Object.entries(attributes)) {
      if (value !== undefined) span.setAttribute(key, value);
    }
    span.setAttribute("nodewire.attempts", m.attempt + 1);
    if (error !== undefined) failed(span, error);
    span.end();
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

/** Marks `span` failed with `error`. */
function failed(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.recordException(e);
  span.setStatus({ code: ERROR, message: e.message });
  const type = errorAttributes(error)["error.type"];
  if (type !== undefined) span.setAttribute("error.type", type);
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
