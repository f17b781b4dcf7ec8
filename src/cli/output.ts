/**
 * Where the CLI writes: the result on stdout (text, or with `--json` one
 * JSON document and nothing else), everything meant for people on stderr;
 * and which exit code an error means.
 *
 * @module
 */

import { ConfigError, InvalidArgumentError, NodewireError } from "../errors.ts";
import { printable } from "../errors/base.ts";
import { UsageError } from "./args.ts";
import { ExitCode } from "./spec.ts";

/** Error codes after which a retry cannot help: the node said no. */
const REFUSED = new Set([
  "AUTH_FAILED",
  "SASLPREP_FAILED",
  "NEGOTIATION_FAILED",
]);

/** The exit code an error ends the CLI with. */
export function exitCodeOf(error: unknown): number {
  if (
    error instanceof UsageError || error instanceof ConfigError ||
    error instanceof InvalidArgumentError
  ) {
    return ExitCode.Usage;
  }
  if (error instanceof NodewireError) {
    if (REFUSED.has(error.code)) return ExitCode.Refused;
    // A handshake that timed out may pass later; a refused certificate not.
    if (error.code === "TLS_FAILED" && !error.retryable) {
      return ExitCode.Refused;
    }
  }
  return ExitCode.Failed;
}

/** The `error` member of a failed command's JSON document. */
export function errorJson(error: unknown): { code: string; message: string } {
  return {
    code: error instanceof NodewireError
      ? error.code
      : error instanceof UsageError
      ? "USAGE"
      : "ERROR",
    message: error instanceof Error ? error.message : String(error),
  };
}

/** The CLI's two streams, in text or JSON mode. */
export class Output {
  /** Whether `--json` was given. */
  readonly json: boolean;
  #printed = false;

  /** An output in JSON mode when `json`. */
  constructor(json: boolean) {
    this.json = json;
  }

  /**
   * Prints the command's result: `doc` as one line of JSON in JSON mode,
   * else `text()`. At most one result per run, so stdout stays one
   * document.
   */
  result(doc: Record<string, unknown>, text: () => string): void {
    if (this.#printed) throw new Error("a command prints one result");
    this.#printed = true;
    console.log(shown(this.json ? JSON.stringify(doc) : text()));
  }

  /** A message for people, on stderr in both modes. */
  note(text: string): void {
    console.error(shown(text));
  }

  /**
   * Reports a failure: the message on stderr, and in JSON mode a document
   * `{ ok: false, error: { code, message } }` on stdout unless a result
   * was already printed. Returns the exit code.
   */
  fail(error: unknown, help?: string): number {
    const code = exitCodeOf(error);
    const { code: name, message } = errorJson(error);
    const tag = error instanceof NodewireError ? ` [${name}]` : "";
    console.error(shown(`error${tag}: ${message}${help ? `\n\n${help}` : ""}`));
    if (this.json && !this.#printed) {
      this.#printed = true;
      console.log(
        shown(JSON.stringify({ ok: false, error: { code: name, message } })),
      );
    }
    return code;
  }
}

/**
 * What the CLI prints, its lines kept and every other control or format
 * character escaped: the messages quote user input already, but a node's
 * id or error text, or a runtime's message repeating a host name, may
 * hold an escape sequence or a bidi override meant for the terminal.
 * In a JSON document the escapes change no value.
 */
function shown(text: string): string {
  return text.split("\n").map(printable).join("\n");
}
