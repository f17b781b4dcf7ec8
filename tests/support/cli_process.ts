// Runs the CLI in a child process on the runtime running the tests (Deno,
// Bun, or Node with the same loaders), for what only a process shows:
// standard input, signals, and stdout holding nothing but the result.
import { spawn } from "node:child_process";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process: {
    execPath: string;
    execArgv: string[];
    env: Record<string, string | undefined>;
    cwd(): string;
  };
};

/** The CLI fixture: main() as the program. */
export const CLI_MAIN: string = fileURLToPath(
  new URL("../fixtures/cli_main.ts", import.meta.url),
);

/**
 * The command line that runs `script` on this runtime. Node keeps its
 * loaders (tsx, and in the suite's Node leg the hooks that map the
 * sources to the packed package), with relative paths made absolute so
 * the child may run in another folder.
 */
export function runtimeArgs(script: string): string[] {
  if (g.Deno) return ["run", "-A", script];
  if (g.Bun) return [script];
  const inherited: string[] = [];
  const argv = g.process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--test")) continue;
    inherited.push(a);
    if ((a === "--import" || a === "--require") && i + 1 < argv.length) {
      const spec = argv[++i];
      inherited.push(
        spec.startsWith(".") && !isAbsolute(spec)
          ? resolve(g.process.cwd(), spec)
          : spec,
      );
    }
  }
  return [...inherited, script];
}

interface SpawnOptions {
  stdin: string;
  cwd?: string;
  env?: Record<string, string>;
}

/** A running child, however this runtime spawns it. */
interface Spawned {
  kill(signal: string): void;
  /** Resolves once it exited and its output was read to the end. */
  done: Promise<number | string>;
}

interface DenoChild {
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}

interface DenoCommand {
  new (
    command: string,
    options: {
      args: string[];
      cwd?: string;
      env: Record<string, string>;
      stdin: "piped";
      stdout: "piped";
      stderr: "piped";
    },
  ): { spawn(): DenoChild };
}

/**
 * Deno's `node:child_process` reports a child that caught SIGTERM and
 * exited 0 as killed by SIGTERM, so on Deno children run through
 * `Deno.Command`, whose status is the real one.
 */
function spawnDeno(
  command: string,
  args: string[],
  options: SpawnOptions,
  onStdout: (text: string) => void,
  onStderr: (text: string) => void,
): Spawned {
  const Command = (globalThis as unknown as { Deno: { Command: DenoCommand } })
    .Deno.Command;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(g.process.env)) {
    if (v !== undefined) env[k] = v;
  }
  const child = new Command(command, {
    args,
    cwd: options.cwd,
    env: { ...env, NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  writer.write(new TextEncoder().encode(options.stdin))
    .then(() => writer.close())
    .catch(() => {});
  const pump = async (
    stream: ReadableStream<Uint8Array>,
    fn: (text: string) => void,
  ) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      fn(decoder.decode(chunk, { stream: true }));
    }
  };
  return {
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
    },
    done: Promise.all([
      child.status,
      pump(child.stdout, onStdout),
      pump(child.stderr, onStderr),
    ]).then(([s]) => s.signal ? `killed by ${s.signal}` : s.code),
  };
}

function spawnNode(
  command: string,
  args: string[],
  options: SpawnOptions,
  onStdout: (text: string) => void,
  onStderr: (text: string) => void,
): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...g.process.env, NO_COLOR: "1", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(options.stdin);
  child.stdout.on("data", (d) => onStdout(String(d)));
  child.stderr.on("data", (d) => onStderr(String(d)));
  return {
    kill: (signal) => child.kill(signal as "SIGTERM"),
    // "close", not "exit": by then stdout and stderr are read to the end.
    done: new Promise((resolve) =>
      child.on(
        "close",
        (code, signal) => resolve(code ?? `killed by ${signal}`),
      )
    ),
  };
}

/** A child process (the CLI, usually), with its output collected. */
export class Child {
  stdout = "";
  stderr = "";
  /** Resolves with the exit code, or a string saying how it ended else. */
  readonly exited: Promise<number | string>;
  readonly #spawned: Spawned;
  #lineWaiters: (() => void)[] = [];

  constructor(
    command: string,
    args: string[],
    options: SpawnOptions & { timeoutMs: number },
  ) {
    const onStdout = (text: string) => {
      this.stdout += text;
      for (const w of this.#lineWaiters.splice(0)) w();
    };
    const onStderr = (text: string) => (this.stderr += text);
    this.#spawned = (g.Deno ? spawnDeno : spawnNode)(
      command,
      args,
      options,
      onStdout,
      onStderr,
    );
    // Every CLI run here ends on its own or on the signal a test sends;
    // past the limit something kept it alive.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        this.#spawned.kill("SIGKILL");
        resolve(`did not exit within ${options.timeoutMs} ms`);
      }, options.timeoutMs);
    });
    this.exited = Promise.race([this.#spawned.done, limit]).finally(() => {
      clearTimeout(timer);
      for (const w of this.#lineWaiters.splice(0)) w();
    });
  }

  /** The first line of stdout, once written (throws if the child ends first). */
  async firstLine(): Promise<string> {
    let ended = false;
    this.exited.then(() => (ended = true));
    while (!this.stdout.includes("\n")) {
      if (ended) {
        throw new Error(
          `the CLI ended before printing a line: ${await this.exited}\n` +
            `stdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((r) => this.#lineWaiters.push(r));
    }
    return this.stdout.slice(0, this.stdout.indexOf("\n"));
  }

  /**
   * Waits until stdout matches `pattern`; throws, with what the child wrote,
   * if it ends first or (with `withinMs`) takes longer.
   */
  async until(pattern: RegExp, withinMs?: number): Promise<RegExpMatchArray> {
    let ended = false;
    let late = false;
    this.exited.then(() => (ended = true));
    const timer = withinMs === undefined ? undefined : setTimeout(() => {
      late = true;
      for (const w of this.#lineWaiters.splice(0)) w();
    }, withinMs);
    try {
      for (;;) {
        const match = this.stdout.match(pattern);
        if (match) return match;
        if (ended || late) {
          const how = late
            ? `did not print ${pattern} within ${withinMs} ms`
            : `ended (${await this.exited}) before printing ${pattern}`;
          throw new Error(
            `the CLI ${how}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
          );
        }
        await new Promise<void>((r) => this.#lineWaiters.push(r));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` and waits for the exit. */
  stop(signal: "SIGINT" | "SIGTERM"): Promise<number | string> {
    this.#spawned.kill(signal);
    return this.exited;
  }

  /** Ends it at once (cleanup after a failed test). */
  kill(): void {
    this.#spawned.kill("SIGKILL");
  }
}

/**
 * Starts a script with this runtime (the CLI fixture by default), writing
 * `stdin` (if any) and closing it.
 */
export function startCli(
  args: string[],
  options: Partial<SpawnOptions> & { timeoutMs?: number; script?: string } = {},
): Child {
  return startProcess(
    g.process.execPath,
    [...runtimeArgs(options.script ?? CLI_MAIN), ...args],
    options,
  );
}

/** Starts `command` with `args`, writing `stdin` (if any) and closing it. */
export function startProcess(
  command: string,
  args: string[],
  options: Partial<SpawnOptions> & { timeoutMs?: number } = {},
): Child {
  return new Child(command, args, {
    stdin: options.stdin ?? "",
    cwd: options.cwd,
    env: options.env,
    timeoutMs: options.timeoutMs ?? 30_000,
  });
}

/** Runs the CLI (or `script`) to its end. */
export async function runCli(
  args: string[],
  options: Partial<SpawnOptions> & { timeoutMs?: number; script?: string } = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = startCli(args, options);
  const code = await child.exited;
  return { code, stdout: child.stdout, stderr: child.stderr };
}
