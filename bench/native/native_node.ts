/**
 * Starts a benchmark node in a child process: the native C node of
 * `bench/native/node.c` (built on demand with the system compiler), or,
 * where there is no compiler, the TypeScript reference node run by the
 * same runtime. Either way the node has its own process, so a client
 * benchmark measures the client, not the node sharing its thread.
 *
 * The child's stdin is a pipe: the node exits when it reaches EOF, so it
 * cannot outlive the bench even when the bench dies without `close()`.
 * Only `node:` modules are used, so this runs on Deno, Bun and Node.
 *
 * @example
 * ```ts ignore
 * import { startNativeNode, startScriptNode } from "./native_node.ts";
 * let node = await startNativeNode({ tls: true });
 * if ("unavailable" in node) {
 *   console.error(`native node ${node.unavailable}; using the TypeScript node`);
 *   node = await startScriptNode({ tls: true });
 * }
 * // ... connect to node.address ...
 * await node.close();
 * ```
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const SOURCE = join(HERE, "node.c");
const BUILD_DIR = join(HERE, ".build");
const BINARY = join(BUILD_DIR, "node");
const CERTS = join(ROOT, "testing", "certs");
const START_TIMEOUT_MS = 15_000;
const BUILD_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 3_000;

/** What to start. */
export interface BenchNodeOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /**
   * Serve TLS (offered first in negotiation) with the test certificate of
   * `testing/certs` (localhost, 127.0.0.1). Default false. A native node
   * built without OpenSSL serves no TLS: check `tls` on the result.
   */
  tls?: boolean;
  /** Serve UDP too. Default true. */
  udp?: boolean;
}

/** A running benchmark node. */
export interface BenchNode {
  /** Which node runs: the C one, or the TypeScript reference node. */
  readonly kind: "native" | "script";
  readonly host: string;
  readonly port: number;
  /** The UDP port, 0 when the node serves no UDP. */
  readonly udpPort: number;
  /** Whether the node serves TLS. */
  readonly tls: boolean;
  /** `host:port`, for a client's `hosts`. */
  readonly address: string;
  /** The CA that signed the node's certificate (PEM), for `tls.ca`. */
  readonly ca: string;
  /** The child's process id (to read its CPU or memory from outside). */
  readonly pid: number | undefined;
  /**
   * Ends the node's stdin and waits (bounded) for it to exit: `"exited"`
   * when it did so by itself, `"killed"` when it had to be killed.
   */
  close(): Promise<"exited" | "killed">;
}

/** Why the native node cannot run here. */
export interface NodeUnavailable {
  /** `unavailable: <why>`. */
  readonly unavailable: string;
}

/** The certificate files a node serves with `tls: true`. */
export const TEST_CERT = {
  cert: join(CERTS, "server.pem"),
  key: join(CERTS, "server-key.pem"),
  ca: join(CERTS, "ca.pem"),
};

function mtime(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

interface Exit {
  code: number | null;
  output: string;
  missing: boolean;
}

/** Runs a command to its end (bounded), collecting its output. */
function run(command: string, args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    let output = "";
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ code: null, output: String(error), missing: true });
      return;
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), BUILD_TIMEOUT_MS);
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    child.on("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      resolve({
        code: null,
        output: String(error),
        missing: error.code === "ENOENT",
      });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, missing: false });
    });
  });
}

let building: Promise<string | NodeUnavailable> | undefined;

/**
 * The path of the native binary, built first when missing or older than
 * node.c: with OpenSSL when that compiles and links, else without TLS.
 * The compiler is `$CC`, else the first of cc, gcc, clang found.
 */
export function buildNativeNode(): Promise<string | NodeUnavailable> {
  building ??= build().finally(() => (building = undefined));
  return building;
}

async function build(): Promise<string | NodeUnavailable> {
  const source = mtime(SOURCE);
  if (source === undefined) return { unavailable: `unavailable: no ${SOURCE}` };
  const built = mtime(BINARY);
  if (built !== undefined && built >= source) return BINARY;
  mkdirSync(BUILD_DIR, { recursive: true });
  const fromEnv = process.env.CC;
  const compilers = fromEnv ? [fromEnv] : ["cc", "gcc", "clang"];
  // A private output name, renamed into place: two benches or test runs
  // building at once never run a half-written binary.
  const temp = `${BINARY}.${process.pid}.${Date.now()}`;
  const base = ["-O2", "-std=c11", "-o", temp, SOURCE];
  const failures: string[] = [];
  for (const cc of compilers) {
    const withTls = await run(cc, [
      "-DNODEWIRE_TLS",
      ...base,
      "-lssl",
      "-lcrypto",
    ]);
    if (withTls.missing) {
      failures.push(`${cc}: not found`);
      continue;
    }
    let result = withTls;
    if (withTls.code !== 0) result = await run(cc, base);
    if (result.code === 0) {
      renameSync(temp, BINARY);
      return BINARY;
    }
    rmSync(temp, { force: true });
    return {
      unavailable: `unavailable: ${cc} failed to build ${SOURCE}: ${
        result.output.trim().slice(0, 2000)
      }`,
    };
  }
  return {
    unavailable: `unavailable: no C compiler found (${failures.join("; ")})`,
  };
}

/**
 * Builds (when needed) and starts the native node. Resolves with the
 * running node, or `{ unavailable }` when it cannot be built here (no
 * compiler): the caller falls back and says so. A node that builds but
 * does not start throws.
 */
export async function startNativeNode(
  options: BenchNodeOptions = {},
): Promise<BenchNode | NodeUnavailable> {
  const binary = await buildNativeNode();
  if (typeof binary !== "string") return binary;
  return await launch("native", binary, [], options);
}

/**
 * Starts the TypeScript reference node (testing/node.ts, through
 * bench/native/script_node.ts) in a child process of the running runtime,
 * serving the same protocols as the native node would: for machines
 * without a C compiler.
 */
export function startScriptNode(
  options: BenchNodeOptions = {},
): Promise<BenchNode> {
  const script = join(HERE, "script_node.ts");
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  const prefix = g.Deno
    ? ["run", "-A", "--unstable-net", script]
    : g.Bun
    ? [script]
    : ["--import", "tsx", script];
  return launch("script", process.execPath, prefix, options);
}

function launch(
  kind: "native" | "script",
  command: string,
  prefix: string[],
  options: BenchNodeOptions,
): Promise<BenchNode> {
  const args = [...prefix, "--port", String(options.port ?? 0)];
  if (options.tls) args.push("--cert", TEST_CERT.cert, "--key", TEST_CERT.key);
  if (options.udp === false) args.push("--no-udp");
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const close = async (): Promise<"exited" | "killed"> => {
    child.stdin?.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS);
    });
    const slow = await Promise.race([exited.then(() => false), late]);
    clearTimeout(timer);
    if (slow) {
      child.kill("SIGKILL");
      await exited;
    }
    child.stdout?.destroy();
    return slow ? "killed" : "exited";
  };
  return new Promise<BenchNode>((resolve, reject) => {
    let text = "";
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void close().then(() =>
        reject(new Error(`${kind} node did not start: ${why}`))
      );
    };
    const timer = setTimeout(
      () => fail(`no "listening" line within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    );
    child.on("error", (error) => fail(String(error)));
    child.once(
      "exit",
      (code, signal) => fail(`exited (${code ?? signal}) before listening`),
    );
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      if (done) return;
      text += chunk;
      const m = /listening tcp=(\d+) udp=(\d+) tls=([01])/.exec(text);
      if (m === null) return;
      done = true;
      clearTimeout(timer);
      const host = "127.0.0.1";
      const port = Number(m[1]);
      resolve({
        kind,
        host,
        port,
        udpPort: Number(m[2]),
        tls: m[3] === "1",
        address: `${host}:${port}`,
        pid: child.pid,
        // Lazy: most benches never ask for the CA.
        get ca() {
          return readText(TEST_CERT.ca);
        },
        close,
      });
    });
  });
}

function readText(path: string): string {
  return readFileSync(path, "utf8");
}
