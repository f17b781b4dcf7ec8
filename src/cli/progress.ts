/**
 * One live status line on a terminal, plain lines elsewhere.
 *
 * @module
 */

import { stdoutIsTerminal, writeStdout } from "../runtime/process.ts";
import { stderrIsTerminal, writeStderr } from "../runtime/process_io.ts";

/**
 * Shows progress: on a terminal, one line rewritten in place, with event
 * lines printed above it; elsewhere, a plain line at most every
 * `plainEveryMs`, so logs stay readable.
 */
export class ProgressLine {
  readonly #tty: boolean;
  readonly #plainEveryMs: number;
  readonly #write: (text: string) => void;
  #lastPlain = -Infinity;
  #shown = false;

  /**
   * Writes to `stream` (default stdout; the CLI keeps stdout for results),
   * and detects whether it is a terminal unless `tty` says.
   */
  constructor(
    options: {
      tty?: boolean;
      plainEveryMs?: number;
      stream?: "stdout" | "stderr";
    } = {},
  ) {
    const stderr = options.stream === "stderr";
    this.#write = stderr ? writeStderr : writeStdout;
    this.#tty = options.tty ??
      (stderr ? stderrIsTerminal() : stdoutIsTerminal());
    this.#plainEveryMs = options.plainEveryMs ?? 1000;
  }

  /** Whether output goes to a terminal. */
  get isTerminal(): boolean {
    return this.#tty;
  }

  /** Replaces the status line. */
  update(text: string): void {
    if (this.#tty) {
      this.#write(`\r\x1b[2K${text}`);
      this.#shown = true;
      return;
    }
    const now = performance.now();
    if (now - this.#lastPlain >= this.#plainEveryMs) {
      this.#lastPlain = now;
      this.#write(`${text}\n`);
    }
  }

  /** Prints a line that stays, above the status line. */
  event(text: string): void {
    if (this.#tty && this.#shown) this.#write("\r\x1b[2K");
    this.#write(`${text}\n`);
    this.#shown = false;
  }

  /** Ends the status line. */
  done(): void {
    if (this.#tty && this.#shown) this.#write("\n");
    this.#shown = false;
  }
}
