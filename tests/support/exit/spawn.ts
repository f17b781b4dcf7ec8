// Runs a TypeScript file as a child process of the runtime running the
// tests: `deno run -A`, `bun`, or `node` with the parent's --import hooks
// (tsx, and on the suite's Node leg the hook that maps the library to the
// packed JavaScript, whose folder the child finds in the inherited env).
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { root } from "../repo.ts";

const g = globalThis as { Deno?: unknown; Bun?: unknown };

/** "deno", "bun" or "node": the runtime running this code. */
export const runtime: "deno" | "bun" | "node" = g.Deno
  ? "deno"
  : g.Bun
  ? "bun"
  : "node";

/** The parent's --import flags, so a Node child loads what the suite loads. */
function nodeImports(): string[] {
  const argv = process.execArgv;
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--import" && argv[i + 1]) out.push("--import", argv[++i]);
    else if (argv[i].startsWith("--import=")) out.push(argv[i]);
  }
  return out.length > 0 ? out : ["--import", "tsx"];
}

/** Starts `script` with `args` on this runtime, from the repository root. */
export function spawnScript(script: string, args: string[]): ChildProcess {
  const argv = runtime === "deno"
    ? ["run", "-A", "--unstable-net", script, ...args]
    : runtime === "bun"
    ? [script, ...args]
    : [...nodeImports(), script, ...args];
  return spawn(process.execPath, argv, {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/**
 * Runs `script` to its end and returns the JSON of the last line it
 * printed: the report of a child that checks what the parent cannot (an
 * uncaught error fails a `bun test` test whatever handler is installed).
 * A child that exits other than with 0 fails, with its stderr; so does
 * one still running after `killAfterMs` (given), killed then as held.
 */
export async function childReport(
  script: string,
  killAfterMs?: number,
): Promise<unknown> {
  const child = spawnScript(script, []);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  let killed = false;
  // A real timer, as the child runs on its own clock: it bounds the
  // wait, it measures nothing.
  const killer = killAfterMs === undefined ? undefined : setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, killAfterMs);
  const code = await new Promise((resolve) => child.on("close", resolve));
  clearTimeout(killer);
  if (killed) {
    throw new Error(`${script} was held past ${killAfterMs} ms: ${stderr}`);
  }
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${stderr}`);
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}
