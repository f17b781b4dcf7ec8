/**
 * A wrapper that keeps a secret out of every rendering of the object that
 * holds it: `String()`, template literals, `JSON.stringify`, and the
 * inspectors of Node, Bun and Deno.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors/base.ts";

const REDACTED = "[redacted]";

function notAString(value: unknown): InvalidArgumentError {
  // Only the kind of value, never the value: it may be the secret.
  return new InvalidArgumentError(
    "value",
    `[redacted ${value === null ? "null" : typeof value}]`,
    "expected a string",
    { method: "Secret" },
  );
}

/**
 * Holds a secret, such as a password, so that it is only readable through
 * {@linkcode Secret.reveal}.
 *
 * @example
 * ```ts
 * import { Secret } from "@nodewire/client";
 * const password = new Secret("hunter2");
 * console.log(String(password), JSON.stringify({ password })); // [redacted] {"password":"[redacted]"}
 * password.reveal(); // "hunter2"
 * ```
 */
export class Secret {
  // A private field is invisible to inspectors and to JSON.stringify.
  readonly #value: string;

  /**
   * Wraps `value`.
   *
   * @throws {InvalidArgumentError} when `value` is not a string (it is
   *   not rendered in the message).
   */
  constructor(value: string) {
    if (typeof value !== "string") throw notAString(value);
    this.#value = value;
  }

  /** Returns the secret itself; call only where it is consumed. */
  reveal(): string {
    return this.#value;
  }

  /** Always `"[redacted]"`. */
  toString(): string {
    return REDACTED;
  }

  /** Always `"[redacted]"`. */
  toJSON(): string {
    return REDACTED;
  }

  /** Node's and Bun's `util.inspect` hook. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }

  /** Deno's `Deno.inspect` hook. */
  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }
}
