/**
 * One live status line on a terminal, plain lines elsewhere.
 *
 * @module
 */

import { stdoutIsTerminal, writeStdout } from "../runtime/process.ts";

/**
 * Shows progress: on a terminal, one line rewritten in place, with event
 * lines printed above it; elsewhere, a plain line at most every
 * `plainEveryMs`, so logs stay readable.
 */
export class ProgressLine {
  readonly #tty: boolean;
  readonly #plainEveryMs: number;
  #lastPlain = -Infinity;
  #shown = false;

  /** Detects the terminal unless `tty` says otherwise. */
  constructor(options: { tty?: boolean; plainEveryMs?: number } = {}) {
    this.#tty = options.tty ?? stdoutIsTerminal();
    this.#plainEveryMs = options.plainEveryMs ?? 1000;
  }

  /** Whether output goes to a terminal. */
  get isTerminal(): boolean {
    return this.#tty;
  }

  /** Replaces the status line. */
  update(text: string): void {
    if (this.#tty) {
      writeStdout(`\r\x1b[2K${text}`);
      this.#shown = true;
      return;
    }
    const now = performance.now();
    if (now - this.#lastPlain >= this.#plainEveryMs) {
      this.#lastPlain = now;
      writeStdout(`${text}\n`);
    }
  }

  /** Prints a line that stays, above the status line. */
  event(text: string): void {
    if (this.#tty && this.#shown) writeStdout("\r\x1b[2K");
    writeStdout(`${text}\n`);
    this.#shown = false;
  }

  /** Ends the status line. */
  done(): void {
    if (this.#tty && this.#shown) writeStdout("\n");
    this.#shown = false;
  }
}
