/**
 * The root of the SDK's errors: {@linkcode NodewireError}, which every
 * error the SDK throws or rejects with extends, and the errors about what
 * the caller or the peer got wrong (config, an argument, protocol).
 *
 * @module
 */

import { ERROR_CODES, type ErrorCode } from "./codes.ts";

/** Options shared by every SDK error. */
export interface NodewireErrorOptions {
  /** The underlying error, kept for diagnostics. */
  cause?: unknown;
  /**
   * Overrides the class's default retryability. Anything but a boolean
   * (`undefined` given explicitly too) leaves the default.
   */
  retryable?: boolean;
}

/**
 * Base class of every error the SDK throws or rejects with.
 *
 * @example Telling SDK errors apart from the rest
 * ```ts
 * import { type Client, NodewireError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload);
 * } catch (error) {
 *   if (!(error instanceof NodewireError)) throw error; // a bug, not the SDK
 *   console.log(error.code, error.retryable, error.message);
 * }
 * ```
 */
export class NodewireError extends Error {
  /** Stable machine-readable code, such as `CONNECTION_REFUSED`. */
  readonly code: ErrorCode;
  /** Whether trying the same operation again may succeed. */
  readonly retryable: boolean;

  /**
   * Creates an error with a code, a message and options. The message is
   * kept as {@linkcode printable} shows it: it may quote a caller or a
   * node, and must not write to a terminal or split a log line.
   *
   * @throws {InvalidArgumentError} for a `code` that is not one of
   *   {@linkcode ErrorCode}'s strings: `code` is a promise to whoever
   *   switches on it (a subclass of the caller's own is held to it too).
   */
  constructor(
    code: ErrorCode,
    message: string,
    options: NodewireErrorOptions = {},
  ) {
    if (!ERROR_CODES.has(code)) {
      throw badCode(
        new.target,
        code,
        `one of the codes ErrorCode lists, such as "CONNECTION_FAILED"`,
      );
    }
    const { cause, retryable } = optionsOf(options);
    super(
      printable(textOf(message)),
      cause === undefined ? undefined : { cause },
    );
    this.name = new.target.name;
    this.code = code;
    this.retryable = flagOf(retryable) ?? false;
  }
}

/**
 * A configuration value is missing or out of range. Never retried.
 *
 * @example
 * ```ts
 * import { Client, ConfigError } from "@nodewire/client";
 * try {
 *   await Client.connect({ hosts: ["127.0.0.1:7000"], poolConfig: { maxConnections: 0 } });
 * } catch (error) {
 *   if (error instanceof ConfigError) console.log(error.field); // "poolConfig.maxConnections"
 *   else throw error;
 * }
 * ```
 */
export class ConfigError extends NodewireError {
  /** Always `"CONFIG_INVALID"`. */
  declare readonly code: "CONFIG_INVALID";
  /** The path of the offending field, such as `hosts[0]`. */
  readonly field: string;

  /**
   * Creates a config error. `value` is rendered into the message; pass
   * `"[redacted]"` for secrets. `options.cause` keeps what reading the
   * value threw, if it did.
   */
  constructor(
    field: string,
    value: unknown,
    expected: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      "CONFIG_INVALID",
      `invalid ${textOf(field)}: ${textOf(expected)}, got ${
        renderValue(value)
      }`,
      options,
    );
    this.field = field;
  }
}

/**
 * An argument or per-call option of a method is of the wrong type, out of
 * range or unknown: a bug in the calling code, refused before the call
 * changed anything. Never retried, and never counted against a node.
 *
 * @example
 * ```ts
 * import { type Client, InvalidArgumentError } from "@nodewire/client";
 * declare const client: Client;
 * try {
 *   await client.request(new Uint8Array([1]), { timeoutMs: Number.NaN });
 * } catch (error) {
 *   if (error instanceof InvalidArgumentError) console.log(error.argument); // "options.timeoutMs"
 *   else throw error;
 * }
 * ```
 */
export class InvalidArgumentError extends NodewireError {
  /** Always `"INVALID_ARGUMENT"`. */
  declare readonly code: "INVALID_ARGUMENT";
  /**
   * What was wrong: the parameter, or the option's path within it, such
   * as `payload` or `options.timeoutMs`.
   */
  readonly argument: string;

  /**
   * Creates the error. `value` is rendered into the message, short and
   * without its contents (never pass a secret itself); `options.method`
   * names the method called, `options.cause` what reading the value threw.
   */
  constructor(
    argument: string,
    value: unknown,
    expected: string,
    options: { method?: string; cause?: unknown } = {},
  ) {
    const { method, cause } = optionsOf(options);
    super(
      "INVALID_ARGUMENT",
      `${method === undefined ? "" : `${textOf(method)}: `}invalid ${
        textOf(argument)
      }: ${textOf(expected)}, got ${renderValue(value)}`,
      { cause },
    );
    this.argument = argument;
  }
}

/**
 * The peer sent bytes that do not follow the wire protocol, or a frame
 * breaks a limit. Never retried on its own: the connection that saw it is
 * closed and its pending requests fail with {@linkcode ConnectionLostError}.
 *
 * @example
 * ```ts
 * import { type Client, ConnectionLostError, ProtocolError } from "@nodewire/client";
 * declare const client: Client;
 * declare const payload: Uint8Array;
 * try {
 *   await client.request(payload);
 * } catch (error) {
 *   if (error instanceof ConnectionLostError && error.cause instanceof ProtocolError) {
 *     console.log(`${error.address} broke the protocol: ${error.cause.message}`);
 *   } else throw error;
 * }
 * ```
 */
export class ProtocolError extends NodewireError {
  /** Always `"PROTOCOL_ERROR"`. */
  declare readonly code: "PROTOCOL_ERROR";
  /** Creates a protocol error saying what was wrong. */
  constructor(message: string, options: NodewireErrorOptions = {}) {
    super("PROTOCOL_ERROR", message, {
      ...optionsOf(options),
      retryable: false,
    });
  }
}

/**
 * The error of an error class constructed with a code it does not take.
 * Built whatever `code` and `type` are (a proxy, a class whose name
 * cannot be read).
 */
export function badCode(
  type: unknown,
  code: unknown,
  expected: string,
): InvalidArgumentError {
  return new InvalidArgumentError("code", code, expected, {
    method: `new ${textOf(fieldOf(type, "name"))}`,
  });
}

/**
 * A caught value's message: the `message` of an Error, else the value as
 * text. For building messages that quote another failure; it never
 * throws, whatever was caught.
 */
export function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    // A revoked proxy, a throwing getter or toString, an object without
    // a prototype: the message must not fail while reporting a failure.
    return renderValue(error);
  }
}

/**
 * `value` as text for a message, as `String()` gives it; by its kind
 * (`an object`) where `String()` throws: a revoked proxy, a proxy whose
 * traps throw, a `toString` that throws. For values a caller or a peer
 * handed an error's constructor, which must build the error whatever
 * they are.
 */
export function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    return renderValue(value);
  }
}

/**
 * `value instanceof type`, false where even that throws (a proxy whose
 * `getPrototypeOf` trap throws, a revoked proxy): for values a runtime
 * adapter, a factory or a caller may fail with, which are anything.
 */
export function isInstance(
  value: unknown,
  type: abstract new (...args: never) => unknown,
): boolean {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/**
 * `value` if it is an `Error`, else an `Error` saying what it is. Never
 * throws: a factory, a connection or a subscriber may fail with anything
 * (a proxy whose traps throw, an object without a prototype), and the
 * failure must still be told.
 */
export function asError(value: unknown): Error {
  return isInstance(value, Error) ? value as Error : new Error(textOf(value));
}

/**
 * `value` when it is a boolean, else undefined: a flag a caller handed an
 * error's constructor (`retryable`, `sent`), which must stay a boolean
 * whatever it was given, without a throw (see {@linkcode optionsOf}).
 */
export function flagOf(value: unknown): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

/**
 * `options` read once ({@linkcode optionsOf}), with `retryable` the
 * caller's when it is a boolean, else `byDefault`: for a subclass whose
 * default retryability is its own.
 */
export function withRetryable(
  options: NodewireErrorOptions,
  byDefault: boolean,
): NodewireErrorOptions {
  const read = optionsOf(options);
  return { ...read, retryable: flagOf(read.retryable) ?? byDefault };
}

/**
 * The options a caller handed an error's constructor, read once into a
 * plain object; none where they cannot be read (a revoked proxy, a proxy
 * whose traps throw, a getter that throws), since the error must still be
 * built.
 */
export function optionsOf<T extends object>(options: T): T {
  try {
    return { ...options };
  } catch {
    return {} as T;
  }
}

/**
 * `value[key]`, or undefined where it cannot be read (a revoked proxy, a
 * getter that throws): for the fields of what a caller handed an error's
 * constructor, which must build the error whatever it is.
 */
export function fieldOf(value: unknown, key: string): unknown {
  try {
    return (value as Record<string, unknown> | null | undefined)?.[key];
  } catch {
    return undefined;
  }
}

/**
 * The items of `list` when it is an array that can be read, else
 * undefined: for a list a caller handed an error's constructor.
 */
export function itemsOf(list: unknown): readonly unknown[] | undefined {
  try {
    return Array.isArray(list) ? [...list] : undefined;
  } catch {
    // A revoked proxy of an array, or one whose traps throw.
    return undefined;
  }
}

/**
 * `items` (of `total`) for an error message: the first ten, then how many
 * more, so a message stays readable in a log however large the cluster.
 */
export function listed(
  items: readonly string[],
  total: number = items.length,
): string {
  const more = total - 10;
  const named = items.slice(0, 10).join(", ");
  return more > 0 ? `${named}, and ${more} more` : named;
}

/**
 * `text` cut at `max` characters, with "…" when it was longer: for text
 * from elsewhere (a node, a caller) quoted in a message or a log line.
 */
export function clipped(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * What a terminal or a log viewer would act on or hide rather than show:
 * controls (C0, DEL, C1), format characters (bidi overrides and
 * isolates, zero-width ones), line and paragraph separators, and lone
 * surrogates.
 */
const UNSEEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/**
 * `text` with every {@linkcode UNSEEN} character (a newline too) written
 * as JSON writes an escape, `\u001b`, so that what it shows is what it
 * holds. Inside a JSON text it changes no value.
 */
export function printable(text: string): string {
  return text.replace(UNSEEN, (c) => {
    let escaped = "";
    for (let i = 0; i < c.length; i++) {
      escaped += `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`;
    }
    return escaped;
  });
}

/**
 * Text from elsewhere (a caller, a user's argument, a node) for a message:
 * in double quotes, cut at `max` characters, with {@linkcode printable}
 * escapes (and JSON's) for what a terminal would not show as it is.
 */
export function quoted(text: string, max = 80): string {
  return printable(JSON.stringify(clipped(text, max)));
}

/**
 * What a foreign failure (a channel's, an adapter's, a route's, a TLS
 * stack's) says, for one of our messages: quoted and cut at 200
 * characters, so that a megabyte of text makes no megabyte message. The
 * error that quotes it keeps the failure whole as its `cause`.
 */
export function foreignText(error: unknown): string {
  return quoted(messageOf(error), 200);
}

/**
 * Renders a value for an error message, short and safe: a string or a
 * number as itself, anything else by its kind (an object's contents are
 * never shown, and rendering never throws, even for a revoked proxy).
 */
function renderValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return quoted(value);
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "boolean":
    case "undefined":
      return String(value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
  }
  if (value === null) return "null";
  try {
    if (Array.isArray(value)) return `an array of ${value.length}`;
    // The built-in tag names what a view or buffer is (Uint16Array,
    // DataView, ArrayBuffer), without reading anything of its contents.
    const tag = Object.prototype.toString.call(value).slice(8, -1);
    if (tag !== "Object") return `${/^[AEIO]/.test(tag) ? "an" : "a"} ${tag}`;
  } catch {
    // A revoked proxy, or a getter that throws: say no more.
  }
  return "an object";
}

/**
 * `value` when it is a NodewireError, else undefined: for the predicates
 * that take any value (`isNodeFailure`, `peakEwmaFailureSample`). A value
 * that cannot even be asked (a revoked proxy, whose `instanceof` throws)
 * is refused naming `method`, as `isRetryable` refuses it.
 *
 * @throws {InvalidArgumentError} for a value `instanceof` cannot look at.
 */
export function nodewireErrorOf(
  value: unknown,
  method: string,
): NodewireError | undefined {
  try {
    return value instanceof NodewireError ? value : undefined;
  } catch (cause) {
    throw new InvalidArgumentError("error", value, "could not be read", {
      method,
      cause,
    });
  }
}

/**
 * What a foreign object's method returned that nobody waits for (a custom
 * channel's or connection's `close` or `destroy`): a promise, from an
 * async one, that rejects is let go of quietly, not left as an unhandled
 * rejection.
 */
export function letGo(result: unknown): void {
  if (result !== undefined) Promise.resolve(result).then(ignore, ignore);
}

function ignore(): void {}
