/**
 * What the CLI needs from the process beyond `process.ts`: standard input
 * and error, files, a temporary folder, and the termination signals. Each
 * runtime spells these differently; files and folders go through `node:fs`,
 * which all three provide, loaded only when a command asks for them.
 *
 * @module
 */

interface DenoIo {
  stdin: { isTerminal(): boolean; readable: ReadableStream<Uint8Array> };
  stderr: { isTerminal(): boolean; writeSync(bytes: Uint8Array): number };
  addSignalListener(signal: string, fn: () => void): void;
  removeSignalListener(signal: string, fn: () => void): void;
}

interface NodeIo {
  stdin: { isTTY?: boolean } & AsyncIterable<Uint8Array | string>;
  stderr: { isTTY?: boolean; write(text: string): boolean };
  on(signal: string, fn: () => void): void;
  off(signal: string, fn: () => void): void;
}

const g = globalThis as { Deno?: DenoIo; process?: NodeIo };
const encoder = new TextEncoder();

/** The signals that ask a long-running command to stop. */
export type TerminationSignal = "SIGINT" | "SIGTERM";

/** Whether standard input is an interactive terminal. */
export function stdinIsTerminal(): boolean {
  if (g.Deno) return g.Deno.stdin.isTerminal();
  return g.process?.stdin.isTTY === true;
}

/** Whether standard error is an interactive terminal. */
export function stderrIsTerminal(): boolean {
  if (g.Deno) return g.Deno.stderr.isTerminal();
  return g.process?.stderr.isTTY === true;
}

/** Writes text to standard error without a newline. */
export function writeStderr(text: string): void {
  if (g.Deno) g.Deno.stderr.writeSync(encoder.encode(text));
  else g.process?.stderr.write(text);
}

/**
 * Reads standard input to its end as UTF-8 text.
 *
 * @throws {RangeError} when it holds more than `maxBytes`: a secret is
 *   short, so a long input is a mistake (a file piped by accident).
 */
export function readStdin(maxBytes: number): Promise<string> {
  const chunks: AsyncIterable<Uint8Array | string> | undefined = g.Deno
    ? g.Deno.stdin.readable
    : g.process?.stdin;
  if (chunks === undefined) return Promise.resolve("");
  return readText(
    chunks,
    maxBytes,
    `standard input holds more than ${maxBytes} bytes`,
  );
}

/**
 * Reads a UTF-8 text file of at most `maxBytes` bytes, in chunks: a
 * device such as /dev/zero never ends, and reading it whole hung Bun and
 * took 2 GiB elsewhere.
 *
 * @throws {RangeError} for a longer one, once `maxBytes` have been read.
 */
export async function readTextFile(
  path: string,
  maxBytes: number,
): Promise<string> {
  const { open } = await import("node:fs/promises");
  const file = await open(path, "r");
  async function* chunks(): AsyncIterable<Uint8Array> {
    for (;;) {
      const chunk = new Uint8Array(64 * 1024);
      const { bytesRead } = await file.read(chunk, 0, chunk.byteLength, null);
      if (bytesRead === 0) return;
      yield chunk.subarray(0, bytesRead);
    }
  }
  try {
    return await readText(
      chunks(),
      maxBytes,
      `it holds more than ${maxBytes} bytes`,
    );
  } finally {
    await file.close();
  }
}

/**
 * `chunks` read to their end as UTF-8 text, or a RangeError saying
 * `tooLong` as soon as they hold more than `maxBytes`.
 */
async function readText(
  chunks: AsyncIterable<Uint8Array | string>,
  maxBytes: number,
  tooLong: string,
): Promise<string> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    total += bytes.byteLength;
    if (total > maxBytes) throw new RangeError(tooLong);
    parts.push(bytes);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.byteLength;
  }
  return new TextDecoder().decode(all);
}

/**
 * Writes a UTF-8 text file, replacing it; `mode` sets its permissions
 * where the system has them.
 */
export async function writeTextFile(
  path: string,
  text: string,
  mode = 0o644,
): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(path, text, { mode });
}

/** The absolute form of `path`, against the working directory. */
export async function absolutePath(path: string): Promise<string> {
  const { resolve } = await import("node:path");
  return resolve(path);
}

/**
 * Creates a new, empty folder in the system's temporary folder and
 * resolves with its path and a function that removes it with its content.
 */
export async function makeTempDir(
  prefix: string,
): Promise<{ path: string; remove(): Promise<void> }> {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    remove: () => rm(path, { recursive: true, force: true }),
  };
}

/**
 * Writes `text` to a file `name` in a new folder of the system's temporary
 * folder ({@linkcode makeTempDir}) and resolves with the file's path and
 * a function that removes the folder. A write that fails removes the
 * folder before it rejects: nothing is left behind on any path.
 */
export async function writeTempFile(
  prefix: string,
  name: string,
  text: string,
): Promise<{ path: string; remove(): Promise<void> }> {
  const dir = await makeTempDir(prefix);
  const path = `${dir.path}/${name}`;
  try {
    await writeTextFile(path, text);
  } catch (error) {
    await dir.remove();
    throw error;
  }
  return { path, remove: () => dir.remove() };
}

/**
 * Calls `fn` on SIGINT or SIGTERM instead of letting the signal end the
 * process, until the returned function is called. The listeners do not
 * keep the process alive once removed; a runtime that cannot listen for
 * one of them (SIGTERM on Windows) just does not call `fn` for it.
 */
export function onTermination(
  fn: (signal: TerminationSignal) => void,
): () => void {
  const signals: TerminationSignal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => [signal, () => fn(signal)] as const);
  const added: (readonly [TerminationSignal, () => void])[] = [];
  for (const entry of handlers) {
    try {
      if (g.Deno) g.Deno.addSignalListener(entry[0], entry[1]);
      else g.process?.on(entry[0], entry[1]);
      added.push(entry);
    } catch {
      // Not supported here (Deno on Windows has no SIGTERM).
    }
  }
  return () => {
    for (const [signal, handler] of added.splice(0)) {
      if (g.Deno) g.Deno.removeSignalListener(signal, handler);
      else g.process?.off(signal, handler);
    }
  };
}
