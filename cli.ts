/**
 * The nodewire command line: ping nodes, show cluster health, run a bounded
 * load, or run a reference node or a local cluster of them, with
 * authentication and TLS.
 *
 * ```sh
 * deno run -A jsr:@nodewire/client/cli ping 127.0.0.1:7000 127.0.0.1:7001
 * node ./node_modules/@nodewire/client/cli.js health 127.0.0.1:7000 --json
 * printf '%s' "$SECRET" | nodewire cluster --nodes 3 --user app --password-stdin --tls
 * ```
 *
 * Every command takes `--json` (one JSON document on stdout, messages on
 * stderr) and `--help`. Passwords are read from standard input only
 * (`--password-stdin`); `--password` is refused.
 *
 * Exit codes: 0 success; 1 the operation failed (a node unreachable or
 * unhealthy, requests failed, a port taken); 2 bad usage; 3 refused
 * (authentication, TLS verification or protocol negotiation failed).
 *
 * @example Run the CLI from code
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * const code = await main(["ping", "127.0.0.1:7000", "--json"]);
 * ```
 *
 * @module
 */

import {
  optionShown,
  parseArgs,
  type ParsedArgs,
  UsageError,
  wordShown,
} from "./src/cli/args.ts";
import {
  bench,
  benchOptions,
  health,
  ping,
} from "./src/cli/client_commands.ts";
import { clientConfig } from "./src/cli/client_config.ts";
import { Output } from "./src/cli/output.ts";
import { serve } from "./src/cli/serve.ts";
import { commandHelp, COMMANDS, ExitCode, overview } from "./src/cli/spec.ts";
import {
  commandArgs,
  isMainModule,
  setExitCode,
} from "./src/runtime/process.ts";
import { readOptions, signal as signalRule } from "./src/config/options.ts";
import { InvalidArgumentError } from "./src/errors.ts";
import { startTestNode } from "./testing/node.ts";
import { nodeId } from "./testing/options.ts";
import { ops } from "./testing/ops.ts";

/**
 * Options of {@linkcode main} for running the CLI inside a program.
 *
 * @example
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * // A node for the length of a test, stopped after 5 s at the latest.
 * const code = await main(["node", "--port", "0"], { signal: AbortSignal.timeout(5000) });
 * console.log(code); // 0
 * ```
 */
export interface MainOptions {
  /**
   * Stops a long-running command (`node`, `cluster`) like SIGTERM does;
   * it then resolves with its exit code.
   */
  signal?: AbortSignal;
}

/**
 * Runs the CLI with `args` and resolves with the exit code; never throws
 * (`args` that are not strings, or unknown options, resolve with 2).
 * `node` and `cluster` resolve once stopped by SIGINT, SIGTERM or
 * `options.signal`.
 *
 * @example
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * console.log(await main(["--help"])); // 0
 * ```
 *
 * @example A local cluster for a test, stopped from code
 * ```ts
 * import { main } from "@nodewire/client/cli";
 * const stop = new AbortController();
 * const running = main(["cluster", "--nodes", "3", "--port", "0", "--json"], {
 *   signal: stop.signal,
 * });
 * // ... the URL is on stdout; run the tests, then:
 * stop.abort();
 * console.log(await running); // 0
 * ```
 */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const listed = readArgs(args);
  const out = new Output(listed?.includes("--json") ?? false);
  const [name, ...rest] = listed ?? [];
  // Own names only: `toString` is no command, and must not run one.
  const spec = name === undefined || !Object.hasOwn(COMMANDS, name)
    ? undefined
    : COMMANDS[name];
  try {
    if (!listed) {
      throw new InvalidArgumentError(
        "args",
        args,
        `expected an array of strings (at most ${MAX_ARGS})`,
        { method: "main" },
      );
    }
    const { signal } = readOptions<MainOptions>("main", options, {
      signal: signalRule,
    });
    if (name === "--help" || name === "-h" || name === "help") {
      const topic = name === "help"
        ? rest.find((a) => a !== "--json")
        : undefined;
      if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
        throw new UsageError(`no command ${wordShown(topic)} to explain`);
      }
      return help(out, topic);
    }
    if (name === undefined || name === "--json") {
      throw new UsageError("no command given");
    }
    if (spec === undefined) {
      throw new UsageError(
        name.startsWith("-")
          ? `expected a command before options, got ${optionShown(name)}`
          : `unknown command ${wordShown(name)}`,
      );
    }
    const parsed = parseArgs(rest, spec);
    if (parsed.options.has("help")) return help(out, spec.name);
    return await run(spec.name, parsed, out, signal);
  } catch (error) {
    if (error instanceof UsageError) {
      const command = error.command ?? spec?.name;
      return out.fail(
        error,
        command === undefined
          ? overview()
          : `run "nodewire ${command} --help" for its options`,
      );
    }
    return out.fail(error);
  }
}

/** More arguments than any command line can hold (ARG_MAX is ~2 MB). */
const MAX_ARGS = 100_000;

/**
 * `args` read once into a copy, or undefined unless they are an array of
 * at most {@linkcode MAX_ARGS} strings: a hole, an index whose getter
 * throws or a revoked proxy is bad usage, never a crash, and a sparse
 * array a billion long is not walked (spreading it ended the process).
 */
function readArgs(args: unknown): string[] | undefined {
  try {
    // Inside the try: even Array.isArray throws for a revoked proxy.
    if (!Array.isArray(args)) return undefined;
    const length: unknown = args.length; // a proxy's may be anything
    if (!Number.isInteger(length) || (length as number) > MAX_ARGS) return;
    const list: string[] = [];
    for (let i = 0; i < (length as number); i++) {
      const arg: unknown = args[i];
      if (typeof arg !== "string") return undefined;
      list.push(arg);
    }
    return list;
  } catch {
    return undefined;
  }
}

function help(out: Output, command: string | undefined): number {
  const text = command === undefined
    ? overview()
    : commandHelp(COMMANDS[command]);
  out.result({ ok: true, command: command ?? null, usage: text }, () => text);
  return ExitCode.Ok;
}

async function run(
  command: string,
  parsed: ParsedArgs,
  out: Output,
  signal: AbortSignal | undefined,
): Promise<number> {
  switch (command) {
    case "ping":
      return await ping(await clientConfig(parsed, out), out);
    case "health":
      return await health(await clientConfig(parsed, out), out);
    case "bench": {
      const load = benchOptions(parsed);
      return await bench(load, await clientConfig(parsed, out), out, ops.echo);
    }
    default:
      return await serve(
        command as "node" | "cluster",
        parsed,
        out,
        { start: startTestNode, nodeId },
        signal,
      );
  }
}

// The exit code is set, not forced: once the client has disconnected (or
// the nodes closed) nothing is left open, so the process ends on its own,
// and a leak would show as a process that does not end instead of being
// hidden by an exit.
if (await isMainModule(import.meta)) setExitCode(await main(commandArgs()));
