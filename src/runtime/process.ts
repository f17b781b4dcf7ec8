/**
 * The few process facilities the CLI and the demo need — arguments, the
 * exit code, whether stdout is a terminal, raw writes — behind one small
 * interface, since each runtime spells them differently.
 *
 * @module
 */

interface DenoProcess {
  args: string[];
  exitCode: number;
  exit(code: number): never;
  stdout: { isTerminal(): boolean; writeSync(bytes: Uint8Array): number };
}

interface NodeProcess {
  argv: string[];
  exitCode?: number;
  exit(code: number): never;
  stdout: { isTTY?: boolean; write(text: string): boolean };
}

const g = globalThis as { Deno?: DenoProcess; process?: NodeProcess };
const encoder = new TextEncoder();

/** Command-line arguments after the script name. */
export function commandArgs(): string[] {
  if (g.Deno) return [...g.Deno.args];
  return g.process ? g.process.argv.slice(2) : [];
}

/** Whether standard output is an interactive terminal. */
export function stdoutIsTerminal(): boolean {
  if (g.Deno) return g.Deno.stdout.isTerminal();
  return g.process?.stdout.isTTY === true;
}

/** Writes text to standard output without a newline. */
export function writeStdout(text: string): void {
  if (g.Deno) g.Deno.stdout.writeSync(encoder.encode(text));
  else g.process?.stdout.write(text);
}

/**
 * Sets the code the process exits with when it has nothing left to do, and
 * lets it get there on its own: unlike {@link exitProcess}, a socket or timer
 * left open shows as a process that does not end, instead of being cut off.
 */
export function setExitCode(code: number): void {
  if (g.Deno) g.Deno.exitCode = code;
  else if (g.process) g.process.exitCode = code;
}

/** Ends the process with `code` once output is flushed. */
export function exitProcess(code: number): never {
  if (g.Deno) return g.Deno.exit(code);
  if (g.process) return g.process.exit(code);
  throw new Error(`exit ${code}`);
}

/**
 * Whether the module with this `import.meta` is the program's entry point.
 * Deno, Bun and current Node 22 and 24 say so in `import.meta.main`; Node 20
 * does not, so compare with the script the process was started with. Both
 * sides go through `realpath`: Node loads the entry module by its real path,
 * while `argv[1]` is the path it was given, often a symlink (an npm bin shim,
 * an `npm link`).
 */
export async function isMainModule(
  meta: { url: string; main?: boolean },
): Promise<boolean> {
  if (typeof meta.main === "boolean") return meta.main;
  const script = g.process?.argv[1];
  if (!script || !meta.url.startsWith("file:")) return false;
  // Only Node gets here, so Deno and Bun never load these modules.
  const { realpathSync } = await import("node:fs");
  const { extname, resolve } = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  };
  const self = real(fileURLToPath(meta.url));
  const started = resolve(script);
  // `node cli` starts cli.js too: also try the module's own extension.
  return self !== undefined &&
    [started, started + extname(self)].some((path) => real(path) === self);
}

/** Reads an environment variable; undefined when unset or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    const deno = (globalThis as {
      Deno?: { env: { get(name: string): string | undefined } };
    }).Deno;
    if (deno) return deno.env.get(name);
    return (globalThis as {
      process?: { env: Record<string, string | undefined> };
    })
      .process?.env[name];
  } catch {
    // Deno without --allow-env: behave as unset.
    return undefined;
  }
}
