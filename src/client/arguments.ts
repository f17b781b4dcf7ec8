/**
 * The checks at the door of the Client's methods (and, in
 * `retry_arguments.ts`, of the retry helpers the root exports): every argument and
 * per-call option is refused with an {@linkcode InvalidArgumentError}
 * before the call changes anything, so a caller's bug fails that one call
 * and never a connection, a pool or a node's health that other calls share.
 *
 * The rules are tables of the shared checks (`src/config/validate.ts`),
 * read by the shared walk (`src/config/options.ts`). Unknown option names
 * are errors, with a "did you mean" when a known name is close; durations
 * follow the config's one rule (`isDuration`).
 * Reading an option that throws (a getter, a revoked proxy) is refused the
 * same way, with what it threw as the cause. Values are read once, here:
 * `Client.request` and `Client.requestMany` go on with a copy of their
 * options, so a getter that would answer differently on a second read is
 * never asked again.
 *
 * `Client.request` is the hot path: {@linkcode checkedRequest} reads each
 * option once, and the call without options allocates nothing; the error
 * is built only on the rare way out ({@linkcode rejectRequest}).
 *
 * A payload must be what it says it is: a subclass (or the array itself)
 * may put getters in front of `length` and the other view accessors, and
 * the writer frames a payload by its `length` but copies its real bytes,
 * so a lie would put the shared connection out of step.
 *
 * @module
 */

import {
  bool,
  duration,
  nested,
  optionsError,
  readOptions,
  refusal,
  refuse,
  type Rules,
  signal,
  unknownName,
} from "../config/options.ts";
import {
  isAbortSignal,
  isCallable,
  isDuration,
  msOrZero,
} from "../config/validate.ts";
import { CONNECT as CONNECTION, TLS_CONNECT } from "../connection/control.ts";
import { DIRECT_PAYLOAD_BYTES } from "../connection/frame_writer.ts";
import { invalidPayload, isPayload, REAL } from "../connection/payload.ts";
import { lengthOf } from "../protocol/payload_length.ts";
import type { InvalidArgumentError } from "../errors.ts";
import type { ListenerOptions } from "../events.ts";
import { readListenerArguments as checkListenerArguments } from "../config/listeners.ts";
import { POOL_EVENT_NAMES, type PoolEventName } from "../pool/events.ts";
import type { ClientEventMap } from "./events.ts";
import type { ClientRequestOptions } from "./request_options.ts";

/** Options of `Client.request`; `isRetryable` takes them too. */
export const REQUEST_RULES: Rules = {
  timeoutMs: duration,
  signal,
  idempotent: bool,
  retry: bool,
  hedge: bool,
};

/** `ping` and `withConnection`. */
const CALL_RULES: Rules = { timeoutMs: duration, signal };

const DISCONNECT_RULES: Rules = {
  // 0 is a grace period too: cancel what is in flight at once.
  timeoutMs: msOrZero,
};

const HEALTH_CHECK_RULES: Rules = { signal };

const CONNECT_RULES: Rules = {
  signal,
  // What `Client.connect({...}, { connection })` may override in every
  // connection the pools open (a power user's hook: the handshake, most
  // often): Connection.connect's own options, by its own rules.
  connection: nested({
    ...CONNECTION,
    tls: nested(TLS_CONNECT),
    // The pool gives every connection a signal of its own: one given here
    // would be ignored without a word.
    signal: () =>
      "not taken here (each connection gets its pool's signal); use " +
      "options.signal to cancel Client.connect",
  }),
  lazy: bool,
};

/**
 * The options of a `Client.request` called without any: known by
 * identity, so that such a call reads and allocates nothing for them.
 */
export const NO_REQUEST_OPTIONS: ClientRequestOptions = Object.freeze({});

/**
 * Whether a Uint8Array `payload` is what it says: its `length`, which the
 * writer frames it by, is its real one, and so are the other accessors of
 * a payload the writer hands to the runtime as it is (Node's socket reads
 * them of a Uint8Array that is not a Buffer). A getter that throws fails
 * it too. Every payload's `length` is checked: cheaper on V8 than telling
 * a plain Uint8Array by its prototype, and it catches a getter on the
 * array itself.
 */
function isTruthful(payload: Uint8Array): boolean {
  try {
    const length = payload.length;
    if (length !== lengthOf(payload)) return false;
    return length < DIRECT_PAYLOAD_BYTES ||
      (payload.byteLength === REAL.byteLength.call(payload) &&
        payload.byteOffset === REAL.byteOffset.call(payload) &&
        payload.buffer === REAL.buffer.call(payload));
  } catch {
    return false;
  }
}

/**
 * The error for a Uint8Array `payload` that {@linkcode isTruthful}
 * refused, naming `argument` and the accessor that lied or threw.
 */
function untruthfulPayload(
  payload: Uint8Array,
  argument: string,
  method: string,
): InvalidArgumentError {
  let problem = "its length changed while being read (a getter that " +
    "answers differently each time)";
  let cause: unknown;
  for (const name of Object.keys(REAL) as (keyof typeof REAL)[]) {
    try {
      if (payload[name] === REAL[name].call(payload)) continue;
      problem =
        `expected a Uint8Array whose ${name} is its own, not a getter's`;
    } catch (error) {
      problem = `its ${name} could not be read (a getter threw)`;
      cause = error;
    }
    break;
  }
  return refuse(method, argument, payload, problem, cause);
}

/**
 * The options `Client.request(payload, options)` goes ahead with, or
 * undefined when it may not: `payload` must be a real `Uint8Array` that
 * is what it says (see {@linkcode isTruthful}) and the options valid.
 * Each option is read once, here, and the request path works on a copy:
 * a getter that would answer differently later, or throw, is never asked
 * again. The call without options allocates nothing: its options are
 * {@linkcode NO_REQUEST_OPTIONS}.
 */
export function checkedRequest(
  payload: unknown,
  options: unknown,
): ClientRequestOptions | undefined {
  if (!isPayload(payload) || !isTruthful(payload)) return undefined;
  if (options === NO_REQUEST_OPTIONS) return NO_REQUEST_OPTIONS;
  return readRequestOptions(options);
}

/**
 * Valid request `options` copied into a plain object, each read once, or
 * undefined when they are not valid.
 */
function readRequestOptions(
  options: unknown,
): ClientRequestOptions | undefined {
  if (typeof options !== "object" || options === null) return undefined;
  try {
    // Inside the try: a revoked proxy throws here.
    if (Array.isArray(options)) return undefined;
    const { timeoutMs, signal, idempotent, retry, hedge } = options as {
      timeoutMs?: unknown;
      signal?: unknown;
      idempotent?: unknown;
      retry?: unknown;
      hedge?: unknown;
    };
    if (timeoutMs !== undefined && !isDuration(timeoutMs)) return undefined;
    if (idempotent !== undefined && typeof idempotent !== "boolean") {
      return undefined;
    }
    if (retry !== undefined && typeof retry !== "boolean") return undefined;
    if (hedge !== undefined && typeof hedge !== "boolean") return undefined;
    if (signal !== undefined && !isAbortSignal(signal)) return undefined;
    // An unknown name is most likely a misspelt one, silently ignored
    // otherwise; a class's getters count (no array for a plain object).
    if (unknownName(options, REQUEST_RULES) !== undefined) return undefined;
    return {
      timeoutMs,
      signal,
      idempotent,
      retry,
      hedge,
    } as ClientRequestOptions;
  } catch {
    return undefined; // a getter or a proxy's trap threw
  }
}

/**
 * The rejection of a `Client.request` that {@linkcode checkedRequest}
 * refused, naming the argument and the bad value.
 */
export function rejectRequest(
  payload: unknown,
  options: unknown,
): Promise<never> {
  const method = "Client.request";
  return Promise.reject(
    !isPayload(payload)
      ? invalidPayload(payload, method)
      : !isTruthful(payload)
      ? untruthfulPayload(payload, "payload", method)
      : refusal(method, options, REQUEST_RULES),
  );
}

/**
 * Most payloads one `Client.requestMany` call takes. A batch is held in
 * memory whole, with a record per request in flight, and every item's
 * timeout starts when the batch is sent: past this, a caller is better
 * served by batches in sequence.
 */
export const MAX_BATCH_ITEMS = 100_000;

/** The arguments of `Client.requestMany`, checked and read once. */
export interface RequestManyArguments {
  /** A copy of the caller's payload list. */
  readonly payloads: Uint8Array[];
  /** A copy of the caller's options, each read once. */
  readonly options: ClientRequestOptions;
}

/**
 * Checks the arguments of `Client.requestMany` and returns copies of the
 * payload list and the options, each read once: later changes to the
 * caller's array do not reach the batch or its retries, and an option's
 * getter is not asked again (a batch reads its options per chunk and per
 * failure, long after the call).
 *
 * @throws {InvalidArgumentError} for something that is not an array, one
 *   over {@linkcode MAX_BATCH_ITEMS} long, a hole or an item that is not
 *   a Uint8Array or not what it says (named by its index), or bad options.
 */
export function checkRequestManyArguments(
  payloads: unknown,
  options: unknown,
): RequestManyArguments {
  const method = "Client.requestMany";
  let count: unknown;
  try {
    // A proxy's length may be anything, or throw; an array's is a length.
    count = Array.isArray(payloads) ? payloads.length : undefined;
  } catch {
    count = undefined;
  }
  if (!Number.isSafeInteger(count) || (count as number) < 0) {
    throw refuse(
      method,
      "payloads",
      payloads,
      "expected an array of Uint8Array payloads",
    );
  }
  if ((count as number) > MAX_BATCH_ITEMS) {
    throw refuse(
      method,
      "payloads",
      payloads,
      `expected at most ${MAX_BATCH_ITEMS} payloads in one call (send a larger batch in parts)`,
    );
  }
  const list = new Array<Uint8Array>(count as number);
  const array = payloads as unknown[];
  for (let i = 0; i < list.length; i++) {
    let payload: unknown;
    let present: boolean;
    try {
      payload = array[i];
      present = payload !== undefined || i in array;
    } catch (cause) {
      throw refuse(
        method,
        `payloads[${i}]`,
        undefined,
        "could not be read",
        cause,
      );
    }
    if (!isPayload(payload)) {
      throw refuse(
        method,
        `payloads[${i}]`,
        payload,
        present
          ? "expected a Uint8Array (a Buffer is one)"
          : "expected a Uint8Array, not a hole in the array",
      );
    }
    if (!isTruthful(payload)) {
      throw untruthfulPayload(payload, `payloads[${i}]`, method);
    }
    list[i] = payload;
  }
  const copy = requestOptionsCopy(options);
  if (copy === undefined) {
    throw refusal(method, options, REQUEST_RULES);
  }
  return { payloads: list, options: copy };
}

/**
 * Request `options` (undefined: none) copied into a plain object, each
 * read once, or undefined when they are not valid.
 */
function requestOptionsCopy(
  options: unknown,
): ClientRequestOptions | undefined {
  return options === undefined ? {} : readRequestOptions(options);
}

/** What `Client.ping` and `Client.withConnection` go on with. */
export interface CallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * The options of `Client.ping`, checked and read once into a copy: the
 * ping goes on with it, and a getter is not asked again.
 *
 * @throws {InvalidArgumentError} naming the bad option.
 */
export function readPingOptions(options: unknown): CallOptions {
  return readOptions("Client.ping", options, CALL_RULES);
}

/**
 * Checks the arguments of `Client.withConnection` and returns its options
 * read once into a copy (the acquire is retried, and a lazy client's
 * connect waits first: each goes on with the copy).
 *
 * @throws {InvalidArgumentError} naming the bad argument or option.
 */
export function readWithConnectionArguments(
  fn: unknown,
  options: unknown,
): CallOptions {
  const method = "Client.withConnection";
  if (!isCallable(fn)) {
    throw refuse(
      method,
      "fn",
      fn,
      typeof fn === "function"
        ? "could not be read (a revoked proxy of a function?)"
        : "expected a function that takes the connection",
    );
  }
  return readOptions(method, options, CALL_RULES);
}

/**
 * The options of `Client.disconnect` read once into a copy.
 *
 * @throws {InvalidArgumentError} naming the bad option.
 */
export function readDisconnectOptions(
  options: unknown,
): { timeoutMs?: number } {
  return readOptions("Client.disconnect", options, DISCONNECT_RULES);
}

/**
 * The options of `Client.healthCheckAllNodes` read once into a copy, or
 * the error to reject with: the call goes on with the copy's signal, and
 * a getter is not asked again.
 */
export function readHealthCheckOptions(
  options: unknown,
): { readonly signal?: AbortSignal } | InvalidArgumentError {
  const copy = {};
  return optionsError(
    "Client.healthCheckAllNodes",
    options,
    HEALTH_CHECK_RULES,
    undefined,
    "options",
    copy,
  ) ?? copy;
}

/**
 * `Client.connect`'s options (`signal`, `connection`, `lazy`), checked
 * and read once into a copy: a getter or proxy is not asked again later.
 *
 * @throws {InvalidArgumentError} naming the bad option.
 */
export function readConnectOptions<T>(options: unknown): T {
  return readOptions("Client.connect", options, CONNECT_RULES);
}

// Typed as a record so that a client event added to the map without
// being added here fails to compile.
const OWN_EVENTS: Record<Exclude<keyof ClientEventMap, PoolEventName>, true> = {
  retry: true,
  retryBudgetExhausted: true,
  nodeHealthChanged: true,
  protocolSelected: true,
  nodeAdded: true,
  nodeRemoved: true,
};

/** Every event name a client dispatches: its own and its pools'. */
const CLIENT_EVENT_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(OWN_EVENTS),
  ...POOL_EVENT_NAMES,
]);

/**
 * Checks the arguments of `Client.addEventListener` and
 * `removeEventListener` (`method`) by the names the client dispatches (its
 * own and its pools'); see `readListenerArguments` in
 * `src/config/listeners.ts`, which does the checks.
 *
 * @throws {InvalidArgumentError} naming the bad argument.
 */
export function readListenerArguments(
  type: unknown,
  listener: unknown,
  options: unknown,
  method = "Client.addEventListener",
): boolean | ListenerOptions | undefined {
  return checkListenerArguments(
    method,
    CLIENT_EVENT_NAMES,
    type,
    listener,
    options,
  );
}
